//! A queue's schedules (repeatable jobs) over the API, and what the schedules page shares
//! with it: the body of an add, checked the way `jobq schedule add` checks its flags, and
//! each schedule's last run.
//!
//! - `GET /api/queues/{q}/schedules`: `{"queue", "schedules": [..]}`, each as `jobq schedule
//!   list --json` prints it (`id`, `name`, `data`, `opts`, `repeat`: `{"every_ms"}` or
//!   `{"cron"}`, `next_run_ms`), plus `last_run`: the job of its latest tick while it is
//!   stored (`{"tick_ms", "job_id", "state"}`), else null.
//! - `POST /api/queues/{q}/schedules` `{"id", "name", "every": "5m" | ms, "cron":
//!   "0 */5 * * * *", "data", "opts"}` (`every` or `cron`, not both) → 201 with the
//!   schedule and its next run; an existing id is replaced. The queue is created if new, as
//!   an enqueue does.
//! - `DELETE /api/queues/{q}/schedules/{id}` → `{"queue", "id", "removed": true}`; 404 when
//!   the queue or the schedule does not exist.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use futures_util::stream::{self, StreamExt};
use queue_core::internal::job_spec::parse_job_opts;
use queue_core::schedule::tick_job_id;
use queue_core::{CorruptSchedule, JobOptions, JobState, Queue, Repeat, Schedule, ScheduleInfo};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::api::{object_body, shown_value, DurationValue, QueuePath};
use crate::backend::deadline;
use crate::error::{ApiResult, AppError, ErrorBody};
use crate::no_body::NoBody;
use crate::query::NoQuery;
use crate::state::AppState;

/// Schedules whose last run is looked up per listing (one job read each); later ones show
/// none, so a queue with thousands of schedules still lists in a few round trips.
pub const LAST_RUN_LOOKUPS: usize = 100;
/// Last-run reads in flight at once.
const LOOKUPS_IN_FLIGHT: usize = 8;

/// The job of a schedule's latest tick, while it is stored (retention removes it in time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LastRun {
    /// The tick, ms since the epoch.
    pub tick_ms: u64,
    /// The job it added (`sched:<schedule id>:<tick ms>`).
    pub job_id: String,
    /// Where that job is now.
    pub state: JobState,
}

/// A schedule as listed: its definition, next run and last run. The API shows the fields
/// of `jobq schedule list --json`, plus `last_run`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Listed {
    /// The schedule with its next run.
    #[serde(flatten)]
    pub info: ScheduleInfo,
    /// The job of its latest tick, if stored.
    pub last_run: Option<LastRun>,
}

/// A queue's schedules.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleList {
    /// Queue name.
    pub queue: String,
    /// Its schedules, sorted by id.
    pub schedules: Vec<Listed>,
    /// Stored definitions that do not read back (corrupt records: they never fire), with
    /// why, sorted by id: remove them and add them again.
    pub corrupt: Vec<CorruptSchedule>,
}

/// The body of a schedule's add, as sent (read by [`parse_schedule`], which names a bad
/// value): `every` or `cron`, not both.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleBody {
    /// Schedule id (an existing one is replaced).
    pub id: String,
    /// Handler name of the jobs it adds.
    pub name: String,
    /// Ticks every this long, on multiples of it since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<DurationValue>,
    /// Ticks on this cron expression, in UTC: 5 fields (minute first), or 6 with seconds
    /// first, or a nickname such as `@hourly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "0 */5 * * * *")]
    pub cron: Option<String>,
    /// Payload of the jobs it adds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Options of the jobs it adds, as in an enqueue (without `jobId`: each tick's job id
    /// is derived from the schedule's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opts: Option<JobOptions>,
}

/// A schedule removed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleRemoved {
    /// Queue name.
    pub queue: String,
    /// Schedule id.
    pub id: String,
    /// Always true.
    pub removed: bool,
}

/// Every schedule of `q`, sorted by id, with its last run (the first [`LAST_RUN_LOOKUPS`]);
/// then the stored definitions that do not read back.
pub async fn list(q: &Queue) -> ApiResult<(Vec<Listed>, Vec<CorruptSchedule>)> {
    let listing = deadline(q.schedule_listing()).await?;
    let infos = listing.schedules;
    let now = queue_core::internal::clock::now_ms();
    let ticks = infos
        .iter()
        .take(LAST_RUN_LOOKUPS)
        .map(|info| latest_tick(info, now))
        .collect::<ApiResult<Vec<_>>>()?;
    let runs: Vec<Option<LastRun>> = stream::iter(ticks)
        .map(|tick| {
            let q = q.clone();
            async move {
                let Some((tick_ms, job_id)) = tick else {
                    return Ok(None);
                };
                let job = deadline(q.get_job(&job_id)).await?;
                Ok::<_, AppError>(job.map(|job| LastRun {
                    tick_ms,
                    job_id,
                    state: job.state,
                }))
            }
        })
        .buffered(LOOKUPS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<ApiResult<_>>()?;
    let listed = infos
        .into_iter()
        .zip(runs.into_iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(info, run)| Listed {
            info,
            last_run: run.flatten(),
        })
        .collect();
    Ok((listed, listing.corrupt))
}

/// The tick before the schedule's next one (before `now` once a cron expression has no
/// next tick) and the id of the job it added.
fn latest_tick(info: &ScheduleInfo, now: u64) -> ApiResult<Option<(u64, String)>> {
    let tick = match (&info.repeat, info.next_run_ms) {
        (Repeat::Every(d), Some(next)) => next.checked_sub(d.as_millis() as u64),
        (repeat, next) => repeat.latest_at_or_before(next.map_or(now, |n| n.saturating_sub(1)))?,
    };
    Ok(tick.map(|t| (t, tick_job_id(&info.id, t))))
}

/// What a schedule's body holds, for errors.
const USAGE: &str = "send {\"id\": \"nightly\", \"name\": \"report\", \"every\": \"5m\" or \
                     \"cron\": \"0 0 3 * * *\", \"data\": {..}, \"opts\": {..}}";

/// Reads and checks a schedule: `{"id", "name", "every" | "cron", "data", "opts"}` (`opts` as
/// in an enqueue, without `jobId`: each tick's job id is derived from the schedule). The
/// form of the schedules page is read into the same object.
pub fn parse_schedule(mut obj: Map<String, Value>) -> ApiResult<Schedule> {
    let usage = USAGE;
    let mut text = |field: &'static str| match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(AppError::BadRequest(format!(
            "{field} {}: must be a string",
            shown_value(&other)
        ))),
    };
    let id =
        text("id")?.ok_or_else(|| AppError::BadRequest(format!("\"id\" is missing: {usage}")))?;
    let name = text("name")?
        .ok_or_else(|| AppError::BadRequest(format!("\"name\" is missing: {usage}")))?;
    let cron = text("cron")?;
    let every = match obj.remove("every") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            queue_core::internal::args::duration(&s)
                .map_err(|e| AppError::BadRequest(format!("every {e}")))?,
        ),
        Some(Value::Number(n)) => Some(Duration::from_millis(n.as_u64().ok_or_else(|| {
            AppError::BadRequest(format!(
                "every {n}: use whole milliseconds or a duration such as \"5m\""
            ))
        })?)),
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "every {}: use whole milliseconds or a duration such as \"5m\"",
                shown_value(&other)
            )))
        }
    };
    let repeat = match (every, cron) {
        (Some(_), Some(_)) => {
            return Err(AppError::BadRequest(
                "give either \"every\" or \"cron\", not both".into(),
            ))
        }
        (Some(d), None) => Repeat::every(d)?,
        (None, Some(expr)) => Repeat::cron(&expr)?,
        (None, None) => {
            return Err(AppError::BadRequest(format!(
                "\"every\" or \"cron\" is missing: {usage}"
            )))
        }
    };
    let data = obj.remove("data").unwrap_or(Value::Null);
    let opts = match obj.remove("opts") {
        None | Some(Value::Null) => JobOptions::new(),
        Some(Value::Object(o)) => {
            parse_job_opts(o).map_err(|e| AppError::BadRequest(e.to_string()))?
        }
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "opts {}: must be an object",
                shown_value(&other)
            )))
        }
    };
    if let Some(key) = obj.keys().next() {
        return Err(AppError::BadRequest(format!(
            "unknown field {key:?}: use id, name, every, cron, data, opts"
        )));
    }
    let schedule = Schedule {
        id,
        name,
        data,
        opts,
        repeat,
    };
    schedule.validate()?;
    Ok(schedule)
}

/// `GET /api/queues/{q}/schedules`.
#[utoipa::path(get, path = "/api/queues/{queue}/schedules", operation_id = "listSchedules",
    tag = "schedules", params(QueuePath),
    responses(
        (status = 200, description = "The queue's schedules, with their next and last runs",
            body = ScheduleList),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn list_schedules(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<ScheduleList>> {
    let q = state.backend().existing_queue(&queue).await?;
    let (schedules, corrupt) = list(&q).await?;
    Ok(Json(ScheduleList {
        queue,
        schedules,
        corrupt,
    }))
}

/// `POST /api/queues/{q}/schedules`: adds (or replaces) a schedule → 201 with it and its
/// next run.
#[utoipa::path(post, path = "/api/queues/{queue}/schedules", operation_id = "addSchedule",
    tag = "schedules", params(QueuePath),
    request_body(content = ScheduleBody,
        example = json!({"id": "nightly", "name": "analytics.rollup", "cron": "0 0 3 * * *"})),
    responses(
        (status = 201, description = "Stored (replacing one with its id), with its next run",
            body = ScheduleInfo),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 413, description = "Data or options over the size caps", body = ErrorBody),
    ))]
pub async fn add_schedule(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ScheduleInfo>)> {
    queue_core::internal::validate::validate_queue_name(&queue)?;
    let schedule = parse_schedule(object_body(&body, USAGE)?)?;
    let info = upsert(&state, &queue, schedule).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// Stores a checked schedule in `queue` (created if new).
pub async fn upsert(state: &AppState, queue: &str, schedule: Schedule) -> ApiResult<ScheduleInfo> {
    let q = state.backend().queue(queue).await?;
    deadline(q.upsert_schedule(schedule)).await
}

/// Removes schedule `id` of an existing queue: 404 when either is unknown.
pub async fn remove(state: &AppState, queue: &str, id: &str) -> ApiResult<()> {
    let q = state.backend().existing_queue(queue).await?;
    if !deadline(q.remove_schedule(id)).await? {
        return Err(AppError::NotFound(format!(
            "schedule {id:?} not found in queue {queue:?}"
        )));
    }
    Ok(())
}

/// The path of a schedule.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SchedulePath {
    /// Queue name.
    pub queue: String,
    /// Schedule id.
    pub id: String,
}

/// `DELETE /api/queues/{q}/schedules/{id}`.
#[utoipa::path(delete, path = "/api/queues/{queue}/schedules/{id}", operation_id = "removeSchedule",
    tag = "schedules", params(SchedulePath),
    responses(
        (status = 200, description = "Removed", body = ScheduleRemoved),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue or schedule", body = ErrorBody),
    ))]
pub async fn remove_schedule(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    _: NoBody,
) -> ApiResult<Json<ScheduleRemoved>> {
    remove(&state, &queue, &id).await?;
    Ok(Json(ScheduleRemoved {
        queue,
        id,
        removed: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> ApiResult<Schedule> {
        match v {
            Value::Object(o) => parse_schedule(o),
            _ => panic!("not an object: {v}"),
        }
    }

    #[test]
    fn schedule_bodies_are_checked_naming_the_value() {
        let s = parse(json!({"id": "n", "name": "report", "every": "5m",
                                      "data": {"k": 1}, "opts": {"attempts": 3}}))
        .unwrap();
        assert_eq!(s.repeat, Repeat::Every(Duration::from_secs(300)));
        assert_eq!((s.data["k"].as_i64(), s.opts.attempts), (Some(1), Some(3)));
        let s = parse(json!({"id": "c", "name": "r", "cron": "0 */5 * * * *"})).unwrap();
        assert_eq!(s.repeat, Repeat::Cron("0 */5 * * * *".into()));
        let ms = parse(json!({"id": "m", "name": "r", "every": 1500})).unwrap();
        assert_eq!(ms.repeat, Repeat::Every(Duration::from_millis(1500)));
        for (body, needle) in [
            (json!({"name": "r", "every": "1s"}), "\"id\" is missing"),
            (json!({"id": "x", "every": "1s"}), "\"name\" is missing"),
            (
                json!({"id": "x", "name": "r"}),
                "\"every\" or \"cron\" is missing",
            ),
            (
                json!({"id": "x", "name": "r", "every": "1s", "cron": "* * * * *"}),
                "not both",
            ),
            (
                json!({"id": "x", "name": "r", "cron": "61 * * * * *"}),
                "\"61 * * * * *\"",
            ),
            (json!({"id": "x", "name": "r", "every": "5ms"}), "5ms"),
            (json!({"id": "x", "name": "r", "every": "-1s"}), "negative"),
            (json!({"id": "x", "name": "r", "every": "3651d"}), "3651d"),
            (json!({"id": "x", "name": "r", "every": -5}), "-5"),
            (
                json!({"id": "has space", "name": "r", "every": "1s"}),
                "has space",
            ),
            (json!({"id": 7, "name": "r", "every": "1s"}), "id 7"),
            (
                json!({"id": "x", "name": "r", "every": "1s", "opts": {"jobId": "j"}}),
                "\"j\"",
            ),
            (
                json!({"id": "x", "name": "r", "every": "1s", "opts": {"attempts": 0}}),
                "attempts",
            ),
            (
                json!({"id": "x", "name": "r", "every": "1s", "colour": 1}),
                "colour",
            ),
        ] {
            let e = parse(body.clone()).unwrap_err();
            assert!(matches!(e, AppError::BadRequest(_)), "{body}: {e:?}");
            assert!(e.to_string().contains(needle), "{body}: {needle}: {e}");
        }
    }
}
