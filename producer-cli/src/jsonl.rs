//! Parsing an `add-bulk` file: one job per line, `{"name":..,"data":..,"opts":{..}}`.
//!
//! The whole input is checked before anything is stored; the first bad line is reported as
//! `line N: …` naming the bad value. `opts` reads the way BullMQ users write them (`delay`
//! and `timeout` in ms or as `"10s"`, `jobId`, `removeOnComplete: true | N | {count, age}`),
//! so files written for BullMQ's addBulk mostly load as they are.

use std::time::Duration;

use queue_core::{Backoff, JobOptions, NewJob, Retention};
use serde_json::{Map, Value};

/// Checks every line of `text`: the number of jobs, or the first bad line as `line N: …`.
/// Each job is dropped as soon as it is checked, so a large file needs little memory.
pub fn check(text: &str) -> Result<usize, String> {
    let mut n = 0;
    for job in jobs(text) {
        job?;
        n += 1;
    }
    Ok(n)
}

/// The jobs of `text` in order, each parsed when it is asked for (blank lines skipped); a
/// bad line yields `line N: …`.
pub fn jobs(text: &str) -> impl Iterator<Item = Result<NewJob, String>> + '_ {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| parse_line(line).map_err(|e| format!("line {}: {e}", i + 1)))
}

/// Every job of `text`, or the first bad line.
#[cfg(test)]
fn parse(text: &str) -> Result<Vec<NewJob>, String> {
    jobs(text).collect()
}

fn parse_line(line: &str) -> Result<NewJob, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err(format!(
            "expected an object {{\"name\":..,\"data\":..,\"opts\":..}}, got {}",
            clip(line)
        ));
    };
    let name = match obj.remove("name") {
        Some(Value::String(s)) => s,
        Some(other) => return Err(format!("\"name\" must be a string, got {other}")),
        None => return Err("\"name\" is missing".into()),
    };
    if name.is_empty() || name.len() > 256 {
        return Err(format!("job name {name:?}: use 1-256 characters"));
    }
    let data = obj.remove("data").unwrap_or(Value::Null);
    let opts = match obj.remove("opts") {
        None | Some(Value::Null) => JobOptions::new(),
        Some(Value::Object(o)) => parse_opts(o)?,
        Some(other) => return Err(format!("\"opts\" must be an object, got {other}")),
    };
    if let Some(key) = obj.keys().next() {
        return Err(format!("unknown field {key:?}: use name, data, opts"));
    }
    opts.validate().map_err(|e| e.to_string())?;
    Ok(NewJob { name, data, opts })
}

fn parse_opts(o: Map<String, Value>) -> Result<JobOptions, String> {
    let mut opts = JobOptions::new();
    for (key, v) in o {
        let bad = |what: &str| format!("opts.{key} {v}: {what}");
        match key.as_str() {
            "delay" | "delayMs" => opts.delay_ms = Some(millis(&v).map_err(|w| bad(&w))?),
            "timeout" | "timeoutMs" => opts.timeout_ms = Some(millis(&v).map_err(|w| bad(&w))?),
            "priority" => {
                opts.priority = v
                    .as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .ok_or_else(|| bad("use a whole number from -1000 to 1000"))?
            }
            "attempts" => {
                opts.attempts = Some(
                    v.as_u64()
                        .filter(|a| *a >= 1)
                        .and_then(|a| u32::try_from(a).ok())
                        .ok_or_else(|| bad("use a whole number of at least 1"))?,
                )
            }
            "backoff" => {
                opts.backoff = Some(match &v {
                    Value::String(s) => Backoff::parse(s).map_err(|e| e.to_string())?,
                    Value::Object(_) => serde_json::from_value(v.clone()).map_err(|e| {
                        bad(&format!(
                            "{e}; use \"exp:1s\" or {{\"type\":\"fixed\",\"delay\":500}}"
                        ))
                    })?,
                    _ => return Err(bad("use \"exp:1s\", \"fixed:500ms\" or an object")),
                })
            }
            "jobId" | "job_id" => {
                opts.job_id = Some(match &v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(bad("use a string")),
                })
            }
            "removeOnComplete" | "remove_on_complete" => {
                opts.remove_on_complete = retention(&v).map_err(|w| bad(&w))?
            }
            "removeOnFail" | "remove_on_fail" => {
                opts.remove_on_fail = retention(&v).map_err(|w| bad(&w))?
            }
            _ => {
                return Err(format!(
                    "unknown option opts.{key}: use delay, priority, attempts, backoff, jobId, \
                     timeout, removeOnComplete, removeOnFail"
                ))
            }
        }
    }
    Ok(opts)
}

/// Milliseconds from a number (ms) or a duration string (`10s`).
fn millis(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| "use whole milliseconds or a duration such as \"10s\"".into()),
        Value::String(s) => queue_core::parse_duration(s)
            .map(|d: Duration| d.as_millis() as u64)
            .map_err(|e| e.to_string()),
        _ => Err("use whole milliseconds or a duration such as \"10s\"".into()),
    }
}

/// `true` = remove at once, `false` = default retention, N = keep the last N,
/// `{"count":N,"age":MS}`.
fn retention(v: &Value) -> Result<Option<Retention>, String> {
    match v {
        Value::Bool(true) => Ok(Some(Retention::REMOVE)),
        Value::Bool(false) => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(|n| Some(Retention::keep_last(n)))
            .ok_or_else(|| "use a count of at least 0".into()),
        Value::Object(_) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| format!("{e}; use {{\"count\":N,\"age\":MS}}")),
        _ => Err("use true, a count, or {\"count\":N,\"age\":MS}".into()),
    }
}

fn clip(s: &str) -> String {
    crate::output::clip(s, 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jobs_with_options() {
        let jobs = parse(concat!(
            r#"{"name":"a","data":{"x":1}}"#,
            "\n\n",
            r#"{"name":"b","opts":{"delay":"10s","attempts":3,"backoff":"exp:1s","jobId":"j1","priority":-2,"timeout":500,"removeOnComplete":true}}"#,
            "\n"
        ))
        .unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].data["x"], 1);
        let o = &jobs[1].opts;
        assert_eq!(o.delay_ms, Some(10_000));
        assert_eq!(o.attempts, Some(3));
        assert_eq!(o.priority, -2);
        assert_eq!(o.job_id.as_deref(), Some("j1"));
        assert_eq!(o.timeout_ms, Some(500));
        assert_eq!(o.remove_on_complete, Some(Retention::REMOVE));
    }

    #[test]
    fn names_the_bad_line_and_value() {
        for (line2, needle) in [
            ("{nope", "not valid JSON"),
            (r#"{"data":1}"#, "\"name\" is missing"),
            (r#"{"name":"x","opts":{"attempts":-3}}"#, "-3"),
            (r#"{"name":"x","opts":{"delay":"10parsecs"}}"#, "10parsecs"),
            (r#"{"name":"x","opts":{"frobnicate":1}}"#, "frobnicate"),
            (r#"{"name":"x","extra":1}"#, "extra"),
            (r#"{"name":"x","opts":{"priority":5000}}"#, "5000"),
            ("[1,2]", "expected an object"),
        ] {
            let text = format!("{{\"name\":\"ok\"}}\n{line2}\n");
            let e = parse(&text).unwrap_err();
            assert!(e.starts_with("line 2: "), "{e}");
            assert!(e.contains(needle), "{line2}: {e}");
        }
    }
}
