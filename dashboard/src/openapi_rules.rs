//! What the generated OpenAPI document cannot say by itself, written into it once it is
//! built (`openapi.rs` `document`): the rules the server checks by hand, so that a client
//! (or a fuzzer such as schemathesis) that follows the document sends what the server
//! takes, and what the document refuses the server refuses too.
//!
//! - Path, query and header values: queue names, job and schedule ids, the `traceparent`
//!   header, as `queue_core::internal::validate` and the handlers check them.
//! - Request bodies: the input form of each (`queue_core::internal::job_spec` for jobs,
//!   flows and options; `api.rs`, `limits.rs`, `schedules.rs` for the rest): no field the
//!   server does not take, no `null` where it refuses one, and the rules between fields
//!   (`every` or `cron`, a limit or its `clear_` flag). Text forms whose full rule a
//!   pattern cannot hold (durations, rates, backoffs, cron) are given a pattern for a plain
//!   subset the server always takes.
//!
//! The response schemas are left as generated: they describe what the server sends.

use serde_json::{json, Map, Value};

/// A name of `[A-Za-z0-9._-]` (`validate_queue_name`). Its length is the schema's
/// `maxLength`, and `.` and `..` (refused) are left to the description: a bounded
/// repetition or an alternation in a pattern makes fuzzers such as schemathesis crawl.
const NAME: &str = "^[A-Za-z0-9._-]+$";

/// An id of printable ASCII without spaces (`validate_job_id`; not `.` or `..` either).
const ID: &str = "^[!-~]+$";

/// A string of `pattern`, 1 to `max` characters.
fn text(pattern: &str, max: usize) -> Value {
    json!({"type": "string", "pattern": pattern, "minLength": 1, "maxLength": max})
}

/// A string of `pattern` (its length is in the pattern).
fn string(pattern: impl Into<String>) -> Value {
    json!({"type": "string", "pattern": pattern.into()})
}

fn queue_name() -> Value {
    let mut s = text(NAME, 128);
    s["description"] =
        json!("Queue name: 1–128 characters of `A-Z a-z 0-9 . _ -`, not `.` or `..`");
    s
}

fn job_id() -> Value {
    text(ID, 256)
}

fn schedule_id() -> Value {
    text(ID, queue_core::schedule::MAX_SCHEDULE_ID_LEN)
}

/// A group key (`validate_group`).
fn group() -> Value {
    text("^[A-Za-z0-9._:-]+$", 128)
}

/// A W3C trace context as `queue_core::trace` reads it.
const TRACEPARENT: &str = "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$";

/// Characters a name may not hold (`text::is_unprintable`), for a character class.
const UNPRINTABLE: &str =
    "\\x00-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u202a-\\u202e\\u2066-\\u2069\\ufeff";

/// A job's handler name (`validate_new_job`): printable, not only spaces, at most 256 bytes
/// (64 characters here: any 64 fit).
fn job_name() -> Value {
    text(&format!("^[^\\s{UNPRINTABLE}][^{UNPRINTABLE}]*$"), 64)
}

/// A duration as text: a subset of what `parse_duration` reads (one number and a unit).
fn duration_text(positive: bool) -> Value {
    let n = if positive {
        "[1-9][0-9]{0,2}"
    } else {
        "(?:0|[1-9][0-9]{0,2})"
    };
    string(format!("^{n}(?:ms|s|m|h|d)$"))
}

/// A duration as the API takes it: milliseconds (up to the 3650 days every duration is held
/// to), or text.
fn millis(positive: bool) -> Value {
    json!({"oneOf": [
        {"type": "integer", "minimum": u64::from(positive),
            "maximum": queue_core::duration::MAX_DURATION_MS},
        duration_text(positive),
    ]})
}

/// `{"id", "ttl"}` of `dedup` and `debounce`.
fn keyed() -> Value {
    json!({
        "type": "object", "additionalProperties": false, "required": ["id", "ttl"],
        "properties": {
            "id": text("^[!-~]+$", 256),
            "ttl": millis(true),
        },
    })
}

/// `removeOnComplete` / `removeOnFail`: true (remove), false (the default), a count to keep,
/// or `{"count", "age"}`.
fn retention() -> Value {
    json!({"oneOf": [
        {"type": "boolean"},
        {"type": "integer", "minimum": 0},
        {"type": "object", "additionalProperties": false, "properties": {
            "count": {"type": ["integer", "null"], "minimum": 0},
            "age": {"type": ["integer", "null"], "minimum": 0,
                "maximum": queue_core::duration::MAX_DURATION_MS},
        }},
    ]})
}

/// A job's options as an add reads them (`job_spec::parse_job_opts`); `in_flow`: without
/// `dedup` and `debounce`, which a flow refuses.
fn job_options(in_flow: bool) -> Value {
    let backoff = json!({"oneOf": [
        string("^(?:fixed|exp|exponential):[1-9][0-9]{0,2}(?:ms|s|m|h)$"),
        {"type": "object", "additionalProperties": false, "required": ["type", "delay"],
            "properties": {
                "type": {"type": "string", "enum": ["fixed", "exponential"]},
                "delay": {"type": "integer", "minimum": 0,
                    "maximum": queue_core::duration::MAX_DURATION_MS},
                "jitter": {"type": "number", "minimum": 0, "maximum": 1},
            }},
    ]});
    // (a number is taken as its text)
    let id = json!({"oneOf": [job_id(), {"type": "number"}]});
    let mut p = Map::new();
    for key in ["delay", "delayMs"] {
        p.insert(key.into(), millis(false));
    }
    for key in ["timeout", "timeoutMs"] {
        p.insert(key.into(), millis(true));
    }
    p.insert(
        "priority".into(),
        json!({"type": "integer", "minimum": -1000, "maximum": 1000}),
    );
    p.insert(
        "attempts".into(),
        json!({"type": "integer", "minimum": 1, "maximum": u32::MAX}),
    );
    p.insert("backoff".into(), backoff);
    for key in ["jobId", "job_id"] {
        p.insert(key.into(), id.clone());
    }
    for key in [
        "removeOnComplete",
        "remove_on_complete",
        "removeOnFail",
        "remove_on_fail",
    ] {
        p.insert(key.into(), retention());
    }
    for key in ["onChildFailure", "on_child_failure"] {
        p.insert(
            key.into(),
            json!({"type": "string", "enum": ["fail", "ignore"]}),
        );
    }
    p.insert("group".into(), group());
    // (`null`: no options)
    let mut opts = json!({"type": ["object", "null"], "additionalProperties": false});
    if !in_flow {
        p.insert("dedup".into(), keyed());
        p.insert("debounce".into(), keyed());
        opts["not"] = json!({"required": ["dedup", "debounce"]});
    }
    opts["properties"] = Value::Object(p);
    opts["description"] = json!(
        "Options as an add reads them: durations in milliseconds or as text (`10s`), \
         snake_case spellings taken too"
    );
    opts
}

/// The body schemas the document refers to by name, as the server reads them.
fn bodies() -> Vec<(&'static str, Value)> {
    let opts = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let new_job = json!({
        "type": "object", "additionalProperties": false, "required": ["name"],
        "description": "A job to add.",
        "properties": {"name": job_name(), "data": {}, "opts": opts("JobOptionsInput")},
    });
    let flow_job = json!({
        "type": "object", "additionalProperties": false, "required": ["queue", "name"],
        "description": "One node of a flow: a job and the jobs that must finish before it runs.",
        "properties": {
            "queue": queue_name(),
            "name": job_name(),
            "data": {},
            "opts": opts("FlowJobOptions"),
            "children": {"type": "array", "maxItems": queue_core::flow::MAX_CHILDREN,
                "items": {"$ref": "#/components/schemas/FlowJob"}},
        },
    });
    let clean = json!({
        "type": "object", "additionalProperties": false, "required": ["state"],
        "properties": {
            "state": {"type": "string", "enum": ["completed", "failed", "cancelled"]},
            "older_than": {"oneOf": [{"type": "null"}, millis(false)]},
            "limit": {"type": ["integer", "null"], "minimum": 0},
        },
    });
    // a limit, or its `clear_` flag: not both (a `null` limit is refused: it would read as
    // either)
    let rate = string("^[1-9][0-9]{0,8}/[1-9][0-9]{0,2}(?:ms|s|m|h)$");
    let count = json!({"type": "integer", "minimum": 1, "maximum": u32::MAX});
    let limits = ["rate", "concurrency", "group_rate", "group_concurrency"];
    let mut props = Map::new();
    let mut rules = Vec::new();
    let mut changes = Vec::new();
    // a group only with a change of the group limits (or none)
    let mut group_changes = vec![
        json!({"not": {"required": ["group"]}}),
        json!({"properties": {"group": {"type": "null"}}}),
    ];
    for key in limits {
        let clear = format!("clear_{key}");
        let value = if key.ends_with("rate") { &rate } else { &count };
        props.insert(key.into(), value.clone());
        props.insert(clear.clone(), json!({"type": ["boolean", "null"]}));
        let set_clear =
            json!({"required": [clear], "properties": {clear.clone(): {"const": true}}});
        rules.push(json!({"not": {"allOf": [{"required": [key]}, set_clear]}}));
        let change = [json!({"required": [key]}), set_clear];
        if key.starts_with("group_") {
            group_changes.extend(change.iter().cloned());
        }
        changes.extend(change);
    }
    props.insert(
        "group".into(),
        json!({"oneOf": [{"type": "null"}, group()]}),
    );
    // something to change
    rules.push(json!({"anyOf": changes}));
    rules.push(json!({"anyOf": group_changes}));
    let limits_body = json!({
        "type": "object", "additionalProperties": false, "properties": props, "allOf": rules,
        "description": "Any of the settings of `jobq limits`; a limit and its `clear_` flag not both.",
    });
    let schedule = json!({
        "type": "object", "additionalProperties": false, "required": ["id", "name"],
        "description": "A schedule: `every` or `cron`, not both.",
        "properties": {
            "id": schedule_id(),
            "name": job_name(),
            "every": {"oneOf": [
                {"type": "integer", "minimum": 10,
                    "maximum": queue_core::duration::MAX_DURATION_MS},
                string("^[1-9][0-9]{0,2}(?:s|m|h|d)$"),
            ]},
            "cron": string("^(?:@(?:hourly|daily|weekly|monthly|yearly)|(?:[0-5]?[0-9]|\\*) (?:[0-5]?[0-9]|\\*) (?:1?[0-9]|2[0-3]|\\*) \\* \\* \\*)$"),
            "data": {},
            "opts": opts("JobOptionsInput"),
        },
        "oneOf": [{"required": ["every"]}, {"required": ["cron"]}],
    });
    vec![
        ("JobOptionsInput", job_options(false)),
        ("FlowJobOptions", job_options(true)),
        ("NewJob", new_job),
        ("FlowJob", flow_job),
        ("CleanBody", clean),
        ("LimitsBody", limits_body),
        ("ScheduleBody", schedule),
    ]
}

/// Writes the rules into `doc`, the document as generated.
pub fn tighten(doc: &mut Value) {
    for (path, item) in doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.iter_mut())
    {
        for op in item
            .as_object_mut()
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            // (`get_mut`: indexing would add a `null` where an operation has none)
            let params = op.get_mut("parameters").and_then(Value::as_array_mut);
            for param in params.into_iter().flat_map(|p| p.iter_mut()) {
                let schema = match (param["in"].as_str(), param["name"].as_str()) {
                    (Some("path" | "query"), Some("queue")) => queue_name(),
                    (Some("path"), Some("id")) if path.contains("/schedules/") => schedule_id(),
                    (Some("path"), Some("id")) | (Some("query"), Some("job")) => job_id(),
                    (Some("query"), Some("jobs")) => json!({"type": "string",
                        "enum": ["1", "true", "yes", "0", "false", "no"]}),
                    (Some("header"), Some("traceparent")) => string(TRACEPARENT),
                    _ => continue,
                };
                param["schema"] = schema;
            }
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    for (name, schema) in bodies() {
        schemas[name] = schema;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_path_and_body_gets_its_rules() {
        let doc = serde_json::from_str::<Value>(crate::openapi::document().unwrap()).unwrap();
        let queue = doc["paths"]["/api/queues/{queue}/pause"]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "queue")
            .unwrap()
            .clone();
        assert_eq!(queue["schema"]["pattern"], NAME);
        for body in [
            "NewJob",
            "FlowJob",
            "CleanBody",
            "LimitsBody",
            "ScheduleBody",
        ] {
            assert_eq!(
                doc["components"]["schemas"][body]["additionalProperties"], false,
                "{body}"
            );
        }
    }
}
