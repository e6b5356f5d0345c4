//! Jobs described as JSON: `{"name": .., "data": .., "opts": {..}}`, the form of a
//! `jobq add-bulk` line and of the body of the dashboard's `POST /api/queues/{q}/jobs`.
//!
//! `opts` reads the way BullMQ users write them (`delay` and `timeout` in ms or as `"10s"`,
//! `jobId`, `removeOnComplete: true | N | {count, age}`), so jobs written for BullMQ's
//! `addBulk` mostly load as they are. Every error names the bad field and value.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::flow::validate::{size_problem, width_problem};
use crate::flow::FlowJob;
use crate::job::{Backoff, Debounce, Dedup, JobOptions, NewJob, OnChildFailure, Retention};
use crate::text::clip;

/// Why a JSON job description was refused; the message names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JobSpecError(String);

impl JobSpecError {
    fn new(msg: impl Into<String>) -> Self {
        JobSpecError(msg.into())
    }
}

type Result<T> = std::result::Result<T, JobSpecError>;

/// Parses and checks one job from JSON text.
pub fn parse_job_json(text: &str) -> Result<NewJob> {
    let value = super::json_numbers::parse(text).map_err(JobSpecError::new)?;
    if !value.is_object() {
        return Err(JobSpecError::new(format!(
            "expected an object {{\"name\":..,\"data\":..,\"opts\":..}}, got {}",
            clip(text.trim(), 60)
        )));
    }
    parse_job_value(value)
}

/// Checks one job given as a JSON value: `name` (1–256 characters) is required, `data`
/// defaults to null, `opts` to none; any other field is refused.
pub fn parse_job_value(value: Value) -> Result<NewJob> {
    let Value::Object(mut obj) = value else {
        return Err(JobSpecError::new(format!(
            "expected an object {{\"name\":..,\"data\":..,\"opts\":..}}, got {}",
            clip(&value.to_string(), 60)
        )));
    };
    let name = match obj.remove("name") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(JobSpecError::new(format!(
                "\"name\" must be a string, got {other}"
            )))
        }
        None => return Err(JobSpecError::new("\"name\" is missing")),
    };
    if name.is_empty() || name.len() > 256 {
        return Err(JobSpecError::new(format!(
            "job name {name:?}: use 1-256 characters"
        )));
    }
    let data = obj.remove("data").unwrap_or(Value::Null);
    let opts = match obj.remove("opts") {
        None | Some(Value::Null) => JobOptions::new(),
        Some(Value::Object(o)) => parse_job_opts(o)?,
        Some(other) => {
            return Err(JobSpecError::new(format!(
                "\"opts\" must be an object, got {other}"
            )))
        }
    };
    if let Some(key) = obj.keys().next() {
        return Err(JobSpecError::new(format!(
            "unknown field {key:?}: use name, data, opts"
        )));
    }
    opts.validate()
        .map_err(|e| JobSpecError::new(e.to_string()))?;
    Ok(NewJob { name, data, opts })
}

/// Parses a flow from JSON text: a node `{"queue", "name", "data", "opts", "children":
/// [nodes]}` (the form of `jobq flow add` and `POST /api/flows`).
pub fn parse_flow_json(text: &str) -> Result<FlowJob> {
    let value = super::json_numbers::parse(text).map_err(|e| {
        // (the JSON reader stops at 128 levels of nesting: a chain of children that deep is
        // past the flow limit too, which says more than "not valid JSON")
        if e.contains("recursion limit exceeded") {
            JobSpecError::new(format!(
                "{e}: nested too deep to read (a flow has at most {} levels of children)",
                crate::flow::MAX_DEPTH
            ))
        } else {
            JobSpecError::new(e)
        }
    })?;
    parse_flow_value(value)
}

/// Reads a flow given as a JSON value. Each node is read as [`parse_job_value`] reads a job
/// (plus `queue`, required, and `children`, an array of nodes); an error names the node by
/// its path in the tree (`root.children[2]`). Trees past the flow limits are refused
/// before they are read whole.
pub fn parse_flow_value(value: Value) -> Result<FlowJob> {
    let at = |path: &str, e: JobSpecError| JobSpecError::new(format!("flow node {path}: {}", e.0));
    // nodes in pre-order: (node, index of its parent, path); children attached afterwards
    let mut nodes: Vec<(FlowJob, Option<usize>)> = Vec::new();
    let mut stack: Vec<(Value, Option<usize>, String, usize)> =
        vec![(value, None, "root".to_string(), 1)];
    while let Some((value, parent, path, depth)) = stack.pop() {
        if let Some(problem) = size_problem(nodes.len(), depth) {
            return Err(at(&path, JobSpecError::new(problem)));
        }
        let Value::Object(mut obj) = value else {
            return Err(at(
                &path,
                JobSpecError::new(format!(
                    "expected an object {{\"queue\":..,\"name\":..,\"data\":..,\"opts\":..,\
                     \"children\":[..]}}, got {}",
                    clip(&value.to_string(), 60)
                )),
            ));
        };
        let queue = match obj.remove("queue") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(at(
                    &path,
                    JobSpecError::new(format!("\"queue\" must be a string, got {other}")),
                ))
            }
            None => return Err(at(&path, JobSpecError::new("\"queue\" is missing"))),
        };
        let children = match obj.remove("children") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(at(
                    &path,
                    JobSpecError::new(format!(
                        "\"children\" must be an array, got {}",
                        clip(&other.to_string(), 60)
                    )),
                ))
            }
        };
        if let Some(problem) = width_problem(children.len()) {
            return Err(at(&path, JobSpecError::new(problem)));
        }
        let job = parse_job_value(Value::Object(obj))
            .map_err(|e| at(&path, e))
            .map_err(|e| {
                // "use name, data, opts" is a job's list; a node also has queue and children
                JobSpecError::new(e.0.replace(
                    "use name, data, opts",
                    "use queue, name, data, opts, children",
                ))
            })?;
        let index = nodes.len();
        for (i, child) in children.into_iter().enumerate().rev() {
            stack.push((
                child,
                Some(index),
                format!("{path}.children[{i}]"),
                depth + 1,
            ));
        }
        nodes.push((
            FlowJob {
                queue,
                name: job.name,
                data: job.data,
                opts: job.opts,
                children: Vec::new(),
            },
            parent,
        ));
    }
    // attach children to parents, last node first (a child always follows its parent)
    while nodes.len() > 1 {
        let (node, parent) = nodes.pop().expect("more than one node");
        let parent = parent.expect("only the root has no parent");
        nodes[parent].0.children.push(node);
    }
    let (mut root, _) = nodes.pop().expect("the root");
    reverse_children(&mut root);
    Ok(root)
}

/// Children were attached last first: put every node's back in the order given.
fn reverse_children(root: &mut FlowJob) {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        node.children.reverse();
        stack.extend(node.children.iter_mut());
    }
}

/// Reads job options: `delay`, `priority`, `attempts`, `backoff`, `jobId`, `timeout`,
/// `removeOnComplete`, `removeOnFail`, `onChildFailure`, `group` (snake_case spellings
/// accepted too), `dedup` and `debounce` (`{"id": .., "ttl": ms or "5s"}`).
pub fn parse_job_opts(o: Map<String, Value>) -> Result<JobOptions> {
    let mut opts = JobOptions::new();
    for (key, v) in o {
        let bad = |what: &str| JobSpecError::new(format!("opts.{key} {v}: {what}"));
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
                        .ok_or_else(|| bad("use a whole number from 1 to 4294967295"))?,
                )
            }
            "backoff" => {
                opts.backoff = Some(match &v {
                    Value::String(s) => {
                        Backoff::parse(s).map_err(|e| JobSpecError::new(e.to_string()))?
                    }
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
            "group" => {
                opts.group = Some(match &v {
                    Value::String(s) => s.clone(),
                    _ => {
                        return Err(bad(
                            "use a string of 1-128 characters of A-Z a-z 0-9 . _ : -",
                        ))
                    }
                })
            }
            "dedup" => {
                let (id, ttl_ms) = id_and_ttl(&v).map_err(|w| bad(&w))?;
                opts.dedup = Some(Dedup { id, ttl_ms })
            }
            "debounce" => {
                let (id, ttl_ms) = id_and_ttl(&v).map_err(|w| bad(&w))?;
                opts.debounce = Some(Debounce { id, ttl_ms })
            }
            "onChildFailure" | "on_child_failure" => {
                opts.on_child_failure = Some(
                    v.as_str()
                        .and_then(|s| s.parse::<OnChildFailure>().ok())
                        .ok_or_else(|| bad("use \"fail\" or \"ignore\""))?,
                )
            }
            _ => {
                return Err(JobSpecError::new(format!(
                    "unknown option opts.{key}: use delay, priority, attempts, backoff, jobId, \
                     timeout, removeOnComplete, removeOnFail, onChildFailure, group, dedup, \
                     debounce"
                )))
            }
        }
    }
    Ok(opts)
}

/// Milliseconds from a number (ms) or a duration string (`10s`).
fn millis(v: &Value) -> std::result::Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| "use whole milliseconds or a duration such as \"10s\"".into()),
        Value::String(s) => crate::duration::parse_duration(s)
            .map(|d: Duration| d.as_millis() as u64)
            .map_err(|e| e.to_string()),
        _ => Err("use whole milliseconds or a duration such as \"10s\"".into()),
    }
}

/// `{"id": "..", "ttl": ms or "5s"}`, as `dedup` and `debounce` take them (the id and the
/// ttl are range-checked with the other options).
fn id_and_ttl(v: &Value) -> std::result::Result<(String, u64), String> {
    const FORM: &str = "use {\"id\": \"..\", \"ttl\": ms or \"5s\"}";
    let Value::Object(o) = v else {
        return Err(FORM.into());
    };
    if let Some(key) = o.keys().find(|k| *k != "id" && *k != "ttl") {
        return Err(format!("unknown field {key:?}: {FORM}"));
    }
    let id = match o.get("id") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(format!("\"id\" must be a string: {FORM}")),
    };
    let ttl = o
        .get("ttl")
        .ok_or_else(|| format!("\"ttl\" is missing: {FORM}"))?;
    Ok((id, millis(ttl)?))
}

/// `true` = remove at once, `false` = default retention, N = keep the last N,
/// `{"count":N,"age":MS}`.
fn retention(v: &Value) -> std::result::Result<Option<Retention>, String> {
    match v {
        Value::Bool(true) => Ok(Some(Retention::REMOVE)),
        Value::Bool(false) => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(|n| Some(Retention::keep_last(n)))
            .ok_or_else(|| "use a count of at least 0".into()),
        Value::Object(o) => {
            if let Some(key) = o.keys().find(|k| *k != "count" && *k != "age") {
                return Err(format!(
                    "unknown field {key:?}: use {{\"count\":N,\"age\":MS}}"
                ));
            }
            serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| format!("{e}; use {{\"count\":N,\"age\":MS}}"))
        }
        _ => Err("use true, a count, or {\"count\":N,\"age\":MS}".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::MAX_CHILDREN;
    use serde_json::json;

    #[test]
    fn a_retention_object_takes_count_and_age_only() {
        let err = parse_job_json(r#"{"name":"b","opts":{"removeOnFail":{"count":1,"x":2}}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field \"x\""), "{err}");
        parse_job_json(r#"{"name":"b","opts":{"removeOnFail":{"count":1,"age":5}}}"#).unwrap();
    }

    #[test]
    fn reads_a_job_with_every_option() {
        let job = parse_job_json(
            r#"{"name":"b","data":{"x":1},"opts":{"delay":"10s","attempts":3,"backoff":"exp:1s","jobId":"j1","priority":-2,"timeout":500,"removeOnComplete":true,"removeOnFail":{"count":5}}}"#,
        )
        .unwrap();
        assert_eq!(job.name, "b");
        assert_eq!(job.data, json!({"x": 1}));
        let o = &job.opts;
        assert_eq!(o.delay_ms, Some(10_000));
        assert_eq!(o.attempts, Some(3));
        assert_eq!(o.priority, -2);
        assert_eq!(o.job_id.as_deref(), Some("j1"));
        assert_eq!(o.timeout_ms, Some(500));
        assert_eq!(o.remove_on_complete, Some(Retention::REMOVE));
        assert_eq!(o.remove_on_fail, Some(Retention::keep_last(5)));
        let keyed = parse_job_json(
            r#"{"name":"b","opts":{"debounce":{"id":"doc:7","ttl":"5s"},"delay":1000}}"#,
        )
        .unwrap();
        assert_eq!(
            keyed.opts.debounce,
            Some(Debounce {
                id: "doc:7".into(),
                ttl_ms: 5_000
            })
        );
        let keyed =
            parse_job_json(r#"{"name":"b","opts":{"dedup":{"id":"m","ttl":250}}}"#).unwrap();
        assert_eq!(
            keyed.opts.dedup,
            Some(Dedup {
                id: "m".into(),
                ttl_ms: 250
            })
        );
        let plain = parse_job_value(json!({"name": "a"})).unwrap();
        assert_eq!(plain.data, Value::Null);
        assert_eq!(plain.opts, JobOptions::new());
    }

    #[test]
    fn reads_a_flow_in_order_and_names_bad_nodes() {
        let flow = parse_flow_json(
            r#"{"queue":"p","name":"publish","opts":{"onChildFailure":"ignore"},
                "children":[{"queue":"a","name":"x","children":[{"queue":"c","name":"z"}]},
                            {"queue":"b","name":"y","data":{"k":1}}]}"#,
        )
        .unwrap();
        assert_eq!(flow.opts.on_child_failure, Some(OnChildFailure::Ignore));
        let names: Vec<&str> = flow.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["x", "y"]);
        assert_eq!(flow.children[0].children[0].queue, "c");
        assert_eq!(flow.children[1].data, json!({"k": 1}));
        for (text, needle) in [
            (r#"{"queue":"p"}"#, "flow node root: \"name\" is missing"),
            (
                r#"{"queue":"p","name":"x","children":[{"name":"y"}]}"#,
                "flow node root.children[0]: \"queue\" is missing",
            ),
            (
                r#"{"queue":"p","name":"x","children":[{"queue":"q","name":"y","opts":{"onChildFailure":"shrug"}}]}"#,
                "root.children[0]: opts.onChildFailure \"shrug\"",
            ),
            (
                r#"{"queue":"p","name":"x","children":{}}"#,
                "must be an array",
            ),
            (
                r#"{"queue":"p","name":"x","kids":[]}"#,
                "use queue, name, data, opts, children",
            ),
        ] {
            let e = parse_flow_json(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let wide = json!({"queue": "p", "name": "x",
            "children": vec![json!({"queue": "c", "name": "y"}); MAX_CHILDREN + 1]});
        let e = parse_flow_value(wide).unwrap_err().to_string();
        assert!(e.contains("10001 children"), "{e}");
    }

    #[test]
    fn names_the_bad_field_and_value() {
        for (text, needle) in [
            ("{nope", "not valid JSON"),
            (r#"{"data":1}"#, "\"name\" is missing"),
            (r#"{"name":7}"#, "\"name\" must be a string, got 7"),
            (r#"{"name":""}"#, "job name \"\""),
            (r#"{"name":"x","opts":{"attempts":-3}}"#, "-3"),
            (r#"{"name":"x","opts":{"delay":"10parsecs"}}"#, "10parsecs"),
            (r#"{"name":"x","opts":{"frobnicate":1}}"#, "frobnicate"),
            (r#"{"name":"x","opts":[1]}"#, "\"opts\" must be an object"),
            (r#"{"name":"x","extra":1}"#, "extra"),
            (r#"{"name":"x","opts":{"priority":5000}}"#, "5000"),
            ("[1,2]", "expected an object"),
            (
                r#"{"name":"x","opts":{"debounce":{"id":"d"}}}"#,
                "opts.debounce {\"id\":\"d\"}: \"ttl\" is missing",
            ),
            (
                r#"{"name":"x","opts":{"debounce":{"id":"d","ttl":"0s"}}}"#,
                "debounce ttl",
            ),
            (
                r#"{"name":"x","opts":{"debounce":{"id":"d","ttl":1,"max":2}}}"#,
                "unknown field \"max\"",
            ),
            (r#"{"name":"x","opts":{"dedup":"d"}}"#, "opts.dedup \"d\""),
            (
                r#"{"name":"x","opts":{"dedup":{"id":"d","ttl":1},"debounce":{"id":"d","ttl":1}}}"#,
                "dedup and debounce",
            ),
        ] {
            let e = parse_job_json(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    /// Was: a chain of 64 children (deeper than the JSON reader's 128 levels) was "not
    /// valid JSON", with no word of the flow's depth limit.
    #[test]
    fn a_flow_nested_too_deep_to_read_names_the_depth_limit() {
        let mut node = json!({"queue": "q", "name": "n"});
        for _ in 0..64 {
            node = json!({"queue": "q", "name": "n", "children": [node]});
        }
        let e = parse_flow_json(&node.to_string()).unwrap_err().to_string();
        assert!(e.contains("levels of children"), "{e}");
    }
}
