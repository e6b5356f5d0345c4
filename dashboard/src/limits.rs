//! A queue's limits over the API, and what the limits page shares with it: a change,
//! checked whole before any of it is stored, the way `jobq limits` checks its flags.
//!
//! - `GET /api/queues/{q}/limits`: what `jobq limits --json` prints: `rate_max`,
//!   `rate_window_ms`, `concurrency` (null when unset) and `group`: `{"default": {..},
//!   "overrides": {"<group>": {..}}}`.
//! - `POST /api/queues/{q}/limits` with the settings of `jobq limits` as fields: `rate`
//!   (`"MAX/WINDOW"`, e.g. `"100/1s"`), `concurrency` (N), `group_rate`, `group_concurrency`
//!   (the default of every group, or with `group` that group's override), and `clear_rate`,
//!   `clear_concurrency`, `clear_group_rate`, `clear_group_concurrency` (`true`) → 200 with
//!   the limits as they are then.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use queue_core::internal::args::{self, Rate};
use queue_core::{GroupLimitChange, GroupLimits, GroupLimitsView, Limits, Queue};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::api::{object_body, shown_value, QueuePath};
use crate::backend::deadline;
use crate::error::{ApiResult, AppError, ErrorBody};
use crate::query::NoQuery;
use crate::state::AppState;

/// What to do with one kind of limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<T> {
    /// Set it to this.
    Set(T),
    /// Remove it (a group's override falls back to the default).
    Clear,
}

/// A change to a queue's limits; `None`: leave that limit as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitsChange {
    /// The queue's rate limit.
    pub rate: Option<Change<Rate>>,
    /// The queue's global concurrency.
    pub concurrency: Option<Change<u32>>,
    /// Whose group limits change: this group's override, or (`None`) the default.
    pub group: Option<String>,
    /// A group's rate limit.
    pub group_rate: Option<Change<Rate>>,
    /// A group's concurrency.
    pub group_concurrency: Option<Change<u32>>,
}

/// The fields a change may have.
const FIELDS: &str = "rate, clear_rate, concurrency, clear_concurrency, group_rate, \
                      clear_group_rate, group_concurrency, clear_group_concurrency, group";

impl LimitsChange {
    /// Reads and checks a request body (every value before any is stored).
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        let mut obj = object_body(
            body,
            &format!("send {{\"rate\": \"100/1s\", \"concurrency\": 5, ..}} with any of {FIELDS}"),
        )?;
        let change = LimitsChange {
            rate: setting(&mut obj, "rate", rate_value)?,
            concurrency: setting(&mut obj, "concurrency", concurrency_value)?,
            group_rate: setting(&mut obj, "group_rate", rate_value)?,
            group_concurrency: setting(&mut obj, "group_concurrency", concurrency_value)?,
            group: match obj.remove("group") {
                None | Some(Value::Null) => None,
                Some(Value::String(g)) => Some(g),
                Some(other) => {
                    return Err(AppError::BadRequest(format!(
                        "group {}: must be a string",
                        shown_value(&other)
                    )))
                }
            },
        };
        if let Some(key) = obj.keys().next() {
            return Err(AppError::BadRequest(format!(
                "unknown field {key:?}: use {FIELDS}"
            )));
        }
        change.check()?;
        Ok(change)
    }

    /// Checks what a change as a whole must be: something, and a `group` only with a
    /// change of group limits (the rule of `jobq limits --group`).
    pub fn check(&self) -> ApiResult<()> {
        let groups_change = self.group_rate.is_some() || self.group_concurrency.is_some();
        if let Some(g) = &self.group {
            queue_core::internal::validate::validate_group(g)?;
            if !groups_change {
                return Err(AppError::BadRequest(format!(
                    "group {g:?}: say what to change in its override: group_rate, \
                     group_concurrency, clear_group_rate or clear_group_concurrency"
                )));
            }
        }
        if self.rate.is_none() && self.concurrency.is_none() && !groups_change {
            return Err(AppError::BadRequest(format!(
                "nothing to change: send any of {FIELDS}"
            )));
        }
        Ok(())
    }

    /// Stores the change: the queue's limits first, then the group's, each one call.
    pub async fn apply(&self, q: &Queue) -> ApiResult<()> {
        match self.rate {
            Some(Change::Set(r)) => deadline(q.set_rate_limit(r.max, r.window)).await?,
            Some(Change::Clear) => deadline(q.clear_rate_limit()).await?,
            None => {}
        }
        match self.concurrency {
            Some(Change::Set(n)) => deadline(q.set_global_concurrency(n)).await?,
            Some(Change::Clear) => deadline(q.clear_global_concurrency()).await?,
            None => {}
        }
        let group = self.group.as_deref();
        let concurrency = self.group_concurrency.map(|c| match c {
            Change::Set(n) => GroupLimitChange::Concurrency(n),
            Change::Clear => GroupLimitChange::ClearConcurrency,
        });
        let rate = self.group_rate.map(|c| match c {
            Change::Set(r) => GroupLimitChange::Rate {
                max: r.max,
                window: r.window,
            },
            Change::Clear => GroupLimitChange::ClearRate,
        });
        for change in [concurrency, rate].into_iter().flatten() {
            deadline(q.set_group_limit(group, change)).await?;
        }
        Ok(())
    }
}

/// Reads setting `key` and its `clear_<key>` flag: set, clear, or (neither given) leave.
fn setting<T>(
    obj: &mut Map<String, Value>,
    key: &'static str,
    parse: fn(&'static str, &Value) -> ApiResult<T>,
) -> ApiResult<Option<Change<T>>> {
    let clear_key = format!("clear_{key}");
    let clear = match obj.remove(&clear_key) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "{clear_key} {}: use true to remove the limit",
                shown_value(&other)
            )))
        }
    };
    match (obj.remove(key), clear) {
        (None, false) => Ok(None),
        (None, true) => Ok(Some(Change::Clear)),
        (Some(_), true) => Err(AppError::BadRequest(format!(
            "give {key} or {clear_key}, not both"
        ))),
        (Some(Value::Null), false) => Err(AppError::BadRequest(format!(
            "{key} null: give a limit, or \"{clear_key}\": true to remove it"
        ))),
        (Some(v), false) => parse(key, &v).map(|v| Some(Change::Set(v))),
    }
}

/// A rate as `"MAX/WINDOW"`.
fn rate_value(key: &'static str, v: &Value) -> ApiResult<Rate> {
    match v {
        Value::String(s) => parse_rate(key, s),
        other => Err(AppError::BadRequest(format!(
            "{key} {}: use \"MAX/WINDOW\", e.g. \"100/1s\"",
            shown_value(other)
        ))),
    }
}

/// A concurrency as a number (or a string holding one).
fn concurrency_value(key: &'static str, v: &Value) -> ApiResult<u32> {
    match v {
        Value::Number(n) => parse_concurrency(key, &n.to_string()),
        Value::String(s) => parse_concurrency(key, s),
        other => Err(AppError::BadRequest(format!(
            "{key} {}: use a whole number from 1 to {}",
            shown_value(other),
            u32::MAX
        ))),
    }
}

/// `MAX/WINDOW` typed in a field named `key` (1 to 2^53 per 1ms to 365d).
pub fn parse_rate(key: &str, s: &str) -> ApiResult<Rate> {
    args::rate(s.trim()).map_err(|e| AppError::BadRequest(format!("{key} {e}")))
}

/// A concurrency typed in a field named `key` (1 to 4294967295).
pub fn parse_concurrency(key: &str, s: &str) -> ApiResult<u32> {
    args::concurrency(s).map_err(|e| AppError::BadRequest(format!("{key} {e}")))
}

/// A queue's limits as the API shows them: the shape of `jobq limits --json`
/// (`queue_core::internal::limits_view::limits_json`; a test holds the two the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LimitsView {
    /// Queue name.
    pub queue: String,
    /// The queue's own limits (null when unset).
    #[serde(flatten)]
    pub limits: Limits,
    /// Its per-group limits.
    pub group: GroupLimitsShown,
}

/// A queue's per-group limits: the default of every group and the groups' overrides, each
/// holding only the limits set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupLimitsShown {
    /// What a group without an override gets.
    pub default: GroupLimits,
    /// Overrides by group.
    pub overrides: BTreeMap<String, GroupLimits>,
    /// Stored fields that are not limits (a corrupt record), named with their values: the
    /// claim ignores them (a corrupt override leaves its group the default).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub corrupt: Vec<String>,
}

impl LimitsView {
    /// The view of `queue`'s limits.
    pub fn new(queue: &str, limits: Limits, groups: GroupLimitsView) -> Self {
        LimitsView {
            queue: queue.to_string(),
            limits,
            group: GroupLimitsShown {
                default: groups.default,
                overrides: groups.overrides.into_iter().collect(),
                corrupt: groups.corrupt,
            },
        }
    }
}

/// The body of a change, as sent (read by [`LimitsChange::parse`], which names a bad
/// value): any of the settings of `jobq limits`; a limit and its `clear_` flag not both.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct LimitsBody {
    /// The queue's rate limit, `MAX/WINDOW` (1 to 2^53 per 1ms to 365d).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "100/1s")]
    pub rate: Option<String>,
    /// True: remove the queue's rate limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clear_rate: Option<bool>,
    /// The most jobs of the queue active at once over all workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    // (a u32: past int32, so not that format)
    #[schema(minimum = 1, maximum = 4294967295_u64, format = Int64)]
    pub concurrency: Option<u32>,
    /// True: remove the queue's concurrency limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clear_concurrency: Option<bool>,
    /// A group's rate limit, `MAX/WINDOW`: the default of every group, or with `group`
    /// that group's override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_rate: Option<String>,
    /// True: remove the group rate limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clear_group_rate: Option<bool>,
    /// A group's concurrency: the default of every group, or with `group` that group's
    /// override.
    #[serde(skip_serializing_if = "Option::is_none")]
    // (a u32: past int32, so not that format)
    #[schema(minimum = 1, maximum = 4294967295_u64, format = Int64)]
    pub group_concurrency: Option<u32>,
    /// True: remove the group concurrency limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clear_group_concurrency: Option<bool>,
    /// The group whose override the group settings change (1–128 characters of
    /// `A-Z a-z 0-9 . _ : -`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// The limits of `q` as the API shows them.
pub async fn view(q: &Queue, queue: &str) -> ApiResult<LimitsView> {
    let (limits, groups) = tokio::try_join!(deadline(q.limits()), deadline(q.group_limits()))?;
    Ok(LimitsView::new(queue, limits, groups))
}

/// `GET /api/queues/{q}/limits`.
#[utoipa::path(get, path = "/api/queues/{queue}/limits", operation_id = "getLimits",
    tag = "limits", params(QueuePath),
    responses(
        (status = 200, description = "The queue's limits (what `jobq limits --json` prints)",
            body = LimitsView),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn get_limits(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<LimitsView>> {
    let q = state.backend().existing_queue(&queue).await?;
    Ok(Json(view(&q, &queue).await?))
}

/// `POST /api/queues/{q}/limits`: applies a change, then answers the limits as they are.
#[utoipa::path(post, path = "/api/queues/{queue}/limits", operation_id = "setLimits",
    tag = "limits", params(QueuePath),
    request_body(content = LimitsBody,
        example = json!({"rate": "100/1s", "group_concurrency": 2})),
    responses(
        (status = 200, description = "Changed: the limits as they are now", body = LimitsView),
        (status = 400, description = "A bad field, named; nothing changed", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn set_limits(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    body: Bytes,
) -> ApiResult<Json<LimitsView>> {
    let change = LimitsChange::parse(&body)?;
    let q = state.backend().existing_queue(&queue).await?;
    change.apply(&q).await?;
    Ok(Json(view(&q, &queue).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_change_is_read_whole_and_errors_name_the_value() {
        let c = LimitsChange::parse(
            br#"{"rate": "100/1s", "clear_concurrency": true, "group": "vip",
                 "group_concurrency": "3", "clear_group_rate": true}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            LimitsChange {
                rate: Some(Change::Set(Rate {
                    max: 100,
                    window: Duration::from_secs(1)
                })),
                concurrency: Some(Change::Clear),
                group: Some("vip".into()),
                group_rate: Some(Change::Clear),
                group_concurrency: Some(Change::Set(3)),
            }
        );
        for (body, needle) in [
            (&b""[..], "empty"),
            (b"{nope", "not valid JSON"),
            (b"[1]", "expected an object"),
            (b"{}", "nothing to change"),
            (br#"{"clear_rate": false}"#, "nothing to change"),
            (br#"{"rate": "0/1s"}"#, "rate \"0/1s\": MAX"),
            (br#"{"rate": "10/0ms"}"#, "at least 1ms"),
            (br#"{"rate": "10/400d"}"#, "\"10/400d\""),
            (br#"{"rate": "fast"}"#, "\"fast\""),
            (br#"{"rate": 10}"#, "rate 10"),
            (br#"{"rate": null}"#, "clear_rate"),
            (br#"{"rate": "1/1s", "clear_rate": true}"#, "not both"),
            (br#"{"clear_rate": "yes"}"#, "clear_rate \"yes\""),
            (br#"{"concurrency": 0}"#, "concurrency \"0\""),
            (br#"{"concurrency": -2}"#, "concurrency \"-2\""),
            (br#"{"concurrency": 4294967296}"#, "4294967296"),
            (br#"{"concurrency": 1.5}"#, "1.5"),
            (br#"{"group_concurrency": "many"}"#, "\"many\""),
            (br#"{"group": "vip"}"#, "group \"vip\""),
            (
                br#"{"group": "bad key!", "group_concurrency": 1}"#,
                "bad key!",
            ),
            (br#"{"rate": "1/1s", "burst": 2}"#, "burst"),
        ] {
            let e = LimitsChange::parse(body).unwrap_err();
            assert!(matches!(e, AppError::BadRequest(_)), "{e:?}");
            assert!(
                e.to_string().contains(needle),
                "{}: {needle}: {e}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
