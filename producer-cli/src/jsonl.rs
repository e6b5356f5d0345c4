//! Parsing an `add-bulk` file: one job per line, `{"name":..,"data":..,"opts":{..}}`.
//!
//! The whole input is checked before anything is stored; the first bad line is reported as
//! `line N: …` naming the bad value. Each line is read by queue-core's `job_spec` (the same
//! form the dashboard's `POST /api/queues/{q}/jobs` takes): `opts` reads the way BullMQ users
//! write them (`delay` and `timeout` in ms or as `"10s"`, `jobId`,
//! `removeOnComplete: true | N | {count, age}`), so files written for BullMQ's addBulk mostly
//! load as they are.

use queue_core::config::JobCaps;
use queue_core::NewJob;

/// Checks every line of `text`: the number of jobs, or the first bad line as `line N: …`,
/// a job whose data is over `caps` included (so no chunk of the file is stored before a
/// later line is refused). Each job is dropped as soon as it is checked, so a large file
/// needs little memory.
pub fn check(text: &str, caps: &JobCaps) -> Result<usize, String> {
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", i + 1);
        let job = parse_line(line).map_err(at)?;
        caps.check_data_value(&job.data)
            .map_err(|e| at(e.to_string()))?;
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

/// One line: the JSON job form shared with the dashboard's enqueue endpoint.
fn parse_line(line: &str) -> Result<NewJob, String> {
    queue_core::internal::job_spec::parse_job_json(line).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue_core::Retention;

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
    fn data_over_the_cap_is_refused_naming_the_line_and_sizes() {
        let caps = JobCaps {
            max_data_bytes: 20,
            max_opts_bytes: 100,
        };
        let text = concat!(
            r#"{"name":"a","data":"0123456789"}"#,
            "\n\n",
            r#"{"name":"b","data":"0123456789012345678901234567890"}"#,
            "\n"
        );
        let e = check(text, &caps).unwrap_err();
        assert!(e.starts_with("line 3: "), "{e}");
        assert!(e.contains("33 bytes") && e.contains("20 bytes"), "{e}");
        assert_eq!(check(&text[..text.find("\n").unwrap()], &caps), Ok(1));
        assert_eq!(
            caps.check_data_value(&serde_json::json!({"a": [1, "x"]}))
                .unwrap(),
            13
        );
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
