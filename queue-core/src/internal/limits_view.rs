//! A queue's limits as JSON, one shape for `jobq limits --json` and the dashboard's
//! `GET /api/queues/{q}/limits`.

use serde_json::{json, Map, Value};

use crate::groups::GroupLimitsView;
use crate::limits::Limits;

/// The queue's [`Limits`] fields (`rate_max`, `rate_window_ms`, `concurrency`: null when
/// unset) and `group`: `{"default": {...}, "overrides": {"<group>": {...}}}`, each holding
/// only the limits set, with `corrupt` (stored fields that are not limits, named) when any.
pub fn limits_json(queue: &str, l: &Limits, g: &GroupLimitsView) -> Value {
    let overrides: Map<String, Value> = g
        .overrides
        .iter()
        .map(|(name, o)| (name.clone(), json!(o)))
        .collect();
    let mut v = json!({"queue": queue});
    if let (Value::Object(map), Value::Object(fields)) = (&mut v, json!(l)) {
        map.extend(fields);
    }
    v["group"] = json!({"default": g.default, "overrides": overrides});
    if !g.corrupt.is_empty() {
        v["group"]["corrupt"] = json!(g.corrupt);
    }
    v
}

/// A rate limit as typed: `10/1s` (`None` without one).
pub fn rate_text(max: Option<u64>, window_ms: Option<u64>) -> Option<String> {
    match (max, window_ms) {
        (Some(m), Some(w)) => Some(format!(
            "{m}/{}",
            crate::format_duration(std::time::Duration::from_millis(w))
        )),
        _ => None,
    }
}
