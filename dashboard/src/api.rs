//! The JSON API under `/api`, for scripts and for services in any language.
//!
//! Reads: `GET /api/queues` (what `jobq stats --json` prints, as an array),
//! `GET /api/queues/{q}` (the same plus its last hour), `GET /api/queues/{q}/jobs?state=
//! &limit=&offset=` (a search with `name=&data=&error=&since=&cursor=`, as `jobq search
//! --json`), `GET /api/queues/{q}/jobs/{id}` (what `jobq show --json` prints),
//! `GET /api/queues/{q}/groups?limit=` (the queue's groups: how many have waiting jobs, have
//! active jobs, are held back by a limit, and the `limit` busiest, default 50, at most 1,000).
//!
//! Writes: `POST /api/queues/{q}/jobs` enqueues `{"name":..,"data":..,"opts":{..}}` (the form
//! of a `jobq add-bulk` line; an array adds many, all checked first) → 201 with the id; while
//! Redis is down, 202 `"spooled": true` with `JOBQ_FALLBACK=spool`, else 503 (`enqueue.rs`).
//! `POST /api/flows` adds a flow (a tree of jobs across queues, `{"queue","name","data",
//! "opts","children":[..]}`) all or nothing → 201 with the tree and every node's id; flows
//! are never spooled (503 while Redis is down).
//! `POST …/{q}/retry|promote|pause|resume|clean|drain`; `POST …/jobs/{id}/retry|promote`;
//! `DELETE …/jobs/{id}`. A queue's schedules and limits (`…/{q}/schedules`, `…/{q}/limits`)
//! are in `schedules.rs` and `limits.rs`.
//!
//! Errors are `{"error": "..."}` naming the bad value: 400 bad input (nothing stored), 401 /
//! 403 refused (see `auth.rs`), 404 unknown queue or job, 409 a job in the wrong state,
//! 413 over a size cap, 503 Redis unreachable (an enqueue: unless `JOBQ_FALLBACK=spool`). A
//! flow's errors name the node by its path in the tree (`flow node root.children[2]: …`).
//!
//! Every handler answers a typed body and carries its `#[utoipa::path]`: the OpenAPI
//! document (`openapi.rs`) is generated from them.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{Method, StatusCode, Uri};
use axum::Json;
use queue_core::internal::job_spec::{parse_flow_value, parse_job_value};
use queue_core::search::DEFAULT_SEARCH_LIMIT;
use queue_core::{
    Cancelled, ChildOutcome, Fallback, FlowJob, FlowTree, GroupsView, JobInfo, JobState, ListOrder,
    NewJob, Produced, SearchFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::backend::{deadline, CancelDone};
use crate::enqueue::{spooled_reason, Traceparent};
use crate::error::{ApiResult, AppError, ErrorBody};
use crate::no_body::NoBody;
use crate::query::{only_known, NoQuery};
use crate::state::AppState;
use crate::stats::{self, QueueStats, THROUGHPUT_MINUTES};

/// Jobs listed per request when `limit` is not given.
pub const DEFAULT_LIMIT: u64 = 20;
/// Most jobs one listing request returns.
pub const MAX_LIMIT: u64 = 1_000;
/// Largest offset of a listing: far past any queue a Redis can hold, and far from where
/// offset + limit could overflow on the way to Redis's signed 64-bit ranges.
pub const MAX_OFFSET: u64 = 1_000_000_000_000;
/// Groups listed per request when `limit` is not given (and on the queue page).
pub const DEFAULT_GROUPS: u64 = 50;
/// Most groups one request lists.
pub const MAX_GROUPS: u64 = 1_000;

/// A job as `jobq show --json` prints it: every field of [`JobInfo`] plus `attempts` (made
/// so far) and `max_attempts`; a flow's parent read on its own also has its `children`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    /// The stored job.
    #[serde(flatten)]
    pub job: JobInfo,
    /// Attempts made so far (the same as `attempts_made`).
    pub attempts: u32,
    /// Attempts it may make in all.
    pub max_attempts: u32,
    /// A flow's parent: each child's queue, id, name, state (`completed`, `failed`,
    /// `removed`, `cancelled`, or its state while unfinished), return value or failure reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<ChildOutcome>>,
}

impl From<JobInfo> for JobView {
    fn from(job: JobInfo) -> Self {
        JobView {
            attempts: job.attempts_made,
            max_attempts: job.opts.max_attempts(),
            job,
            children: None,
        }
    }
}

/// A job as `jobq show --json` prints it (a [`JobView`]), as JSON.
pub fn job_json(job: &JobInfo) -> Value {
    serde_json::to_value(JobView::from(job.clone())).unwrap_or(Value::Null)
}

/// `GET /api/queues`: the counts of every queue, sorted by name.
#[utoipa::path(get, path = "/api/queues", operation_id = "listQueues", tag = "queues",
    responses(
        (status = 200, description = "Every queue's counts (what `jobq stats --json` prints)",
            body = Vec<QueueStats>),
    ))]
pub async fn list_queues(
    State(state): State<AppState>,
    _: NoQuery,
) -> ApiResult<Json<Vec<QueueStats>>> {
    Ok(Json(stats::all_stats(state.backend()).await?))
}

/// A queue's counts and its last hour.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueDetail {
    /// Its counts.
    #[serde(flatten)]
    pub stats: QueueStats,
    /// Jobs finished per minute over the last hour.
    pub throughput: ThroughputView,
}

/// Jobs finished per minute, oldest minute first (the last is the current minute).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ThroughputView {
    /// Minutes covered.
    pub minutes: usize,
    /// Completed per minute.
    pub completed: Vec<u64>,
    /// Failed for good per minute.
    pub failed: Vec<u64>,
}

/// `GET /api/queues/{q}`: one queue's counts, and jobs finished per minute over the last
/// hour (oldest minute first).
#[utoipa::path(get, path = "/api/queues/{queue}", operation_id = "getQueue", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "The queue's counts and last hour", body = QueueDetail),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn get_queue(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<QueueDetail>> {
    let q = state.backend().existing_queue(&queue).await?;
    let (counts, throughput) = tokio::try_join!(stats::queue_stats(&q), stats::throughput(&q))?;
    Ok(Json(QueueDetail {
        stats: counts,
        throughput: ThroughputView {
            minutes: THROUGHPUT_MINUTES,
            completed: throughput.completed,
            failed: throughput.failed,
        },
    }))
}

/// The path of a queue's endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct QueuePath {
    /// Queue name: 1–128 characters of `A-Z a-z 0-9 . _ -`.
    pub queue: String,
}

/// The path of a job's endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// Queue name.
    pub queue: String,
    /// Job id.
    pub id: String,
}

/// The parameters a job listing or search takes ([`ListQuery`]).
const LIST_PARAMS: [&str; 8] = [
    "state", "limit", "offset", "name", "data", "error", "since", "cursor",
];

/// Query of a job listing or search; checked by hand so errors name the bad value.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// The state listed (default waiting), or searched (default every state).
    pub state: Option<String>,
    /// Jobs per page.
    pub limit: Option<String>,
    /// Jobs skipped first (a listing only).
    pub offset: Option<String>,
    /// What to search for, if anything.
    #[serde(flatten)]
    pub search: SearchQuery,
}

/// The search parameters of a query (the API's job listing, the queue page); empty ones
/// are not given (a form sends its empty fields).
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    /// The job name, exactly.
    pub name: Option<String>,
    /// Text in the job's data.
    pub data: Option<String>,
    /// Text in the failure reason.
    pub error: Option<String>,
    /// Created within this long (`1h`).
    pub since: Option<String>,
    /// Where the previous page stopped.
    pub cursor: Option<String>,
}

impl SearchQuery {
    /// The search asked for, in `state` (default every state), `limit` at a time (default
    /// 50), checked (a bad value is a 400 naming it); `None` without a search parameter.
    /// A search is paged by its cursor: an `offset` with it is refused.
    pub fn filter(
        &self,
        state: Option<&str>,
        limit: Option<&str>,
        offset: Option<&str>,
    ) -> ApiResult<Option<SearchFilter>> {
        let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let (name, data, error, cursor) = (
            given(&self.name),
            given(&self.data),
            given(&self.error),
            given(&self.cursor),
        );
        let since = match given(&self.since) {
            Some(s) => Some(queue_core::parse_duration(&s)?),
            None => None,
        };
        if name.is_none()
            && data.is_none()
            && error.is_none()
            && since.is_none()
            && cursor.is_none()
        {
            return Ok(None);
        }
        // (`offset=0` is the first page of a search too)
        if offset.is_some_and(|o| !o.is_empty() && o != "0") {
            return Err(AppError::BadRequest(
                "offset does not page a search: pass the \"next\" it returned as cursor".into(),
            ));
        }
        let state = match state {
            None | Some("") => None,
            Some(s) => Some(s.parse::<JobState>()?),
        };
        Ok(Some(SearchFilter {
            state,
            name,
            data,
            error,
            since,
            limit: number("limit", limit, DEFAULT_SEARCH_LIMIT)?,
            cursor,
        }))
    }
}

/// A page of the jobs in one state, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobPage {
    /// Queue name.
    pub queue: String,
    /// The state listed.
    pub state: JobState,
    /// Jobs skipped first.
    pub offset: u64,
    /// Most jobs on the page.
    pub limit: u64,
    /// Jobs in that state in all.
    pub total: u64,
    /// The page.
    pub jobs: Vec<JobView>,
}

/// A page of search results, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResults {
    /// Queue name.
    pub queue: String,
    /// The state searched (null: every state).
    pub state: Option<JobState>,
    /// Most jobs on the page.
    pub limit: u64,
    /// The jobs found.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` (with the same filters) for the next page; null on the last one.
    /// Always present: it tells search results from a listing.
    #[schema(required = true)]
    pub next: Option<String>,
}

/// The answer to a job listing: a page of one state, or (with a search parameter) search
/// results.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum JobList {
    /// A listing (no search parameter).
    Page(JobPage),
    /// A search.
    Search(SearchResults),
}

/// `GET /api/queues/{q}/jobs?state=&limit=&offset=`: a page of the jobs in one state
/// (default `waiting`, which includes the waiting jobs of a paused queue; newest first, and
/// delayed jobs next due first), with the state's total.
///
/// With any of `name`, `data`, `error`, `since` or `cursor`, a search instead
/// (`Queue::search`): the jobs named exactly `name`, whose data or failure reason contains
/// `data` or `error`, created within `since` (e.g. `1h`), in `state` (default: every
/// state), newest first, `limit` at a time (default 50, at most 1,000) →
/// `{"queue", "state", "limit", "jobs": [...], "next": cursor or null}`; pass `next` back
/// as `cursor` (with the same filters) for the next page.
#[utoipa::path(get, path = "/api/queues/{queue}/jobs", operation_id = "listJobs", tag = "jobs",
    params(
        QueuePath,
        ("state" = Option<JobState>, Query,
            description = "The state listed (default waiting) or searched (default every state)"),
        ("limit" = Option<u64>, Query, maximum = 1000,
            description = "Jobs per page: default 20 for a listing, 50 for a search; at most 1,000"),
        ("offset" = Option<u64>, Query, description = "Jobs skipped first (a listing only)"),
        ("name" = Option<String>, Query, description = "Search: the job name, exactly"),
        ("data" = Option<String>, Query, description = "Search: text in the job's data"),
        ("error" = Option<String>, Query, description = "Search: text in the failure reason"),
        ("since" = Option<String>, Query, example = "1h",
            description = "Search: created within this long (`500ms`, `10s`, `5m`, `1h`, `2d`)"),
        ("cursor" = Option<String>, Query,
            description = "Search: the `next` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of jobs, or search results", body = JobList),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn list_jobs(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    RawQuery(raw): RawQuery,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<JobList>> {
    only_known(raw.as_deref(), &LIST_PARAMS)?;
    let search = query.search.filter(
        query.state.as_deref(),
        query.limit.as_deref(),
        query.offset.as_deref(),
    )?;
    if let Some(filter) = search {
        let q = state.backend().existing_queue(&queue).await?;
        let page = deadline(q.search(&filter)).await?;
        return Ok(Json(JobList::Search(SearchResults {
            queue,
            state: filter.state,
            limit: filter.limit,
            jobs: page.jobs.into_iter().map(JobView::from).collect(),
            next: page.next,
        })));
    }
    let job_state: JobState = match query.state.as_deref() {
        None | Some("") => JobState::Waiting,
        Some(s) => s.parse()?,
    };
    let limit = number("limit", query.limit.as_deref(), DEFAULT_LIMIT)?;
    if limit > MAX_LIMIT {
        return Err(AppError::BadRequest(format!(
            "limit {limit}: list at most {MAX_LIMIT} jobs per request"
        )));
    }
    let offset = number("offset", query.offset.as_deref(), 0)?;
    if offset > MAX_OFFSET {
        return Err(AppError::BadRequest(format!(
            "offset {offset}: at most {MAX_OFFSET}"
        )));
    }
    let q = state.backend().existing_queue(&queue).await?;
    let (jobs, counts) = tokio::try_join!(
        list_page(&q, job_state, offset, limit),
        stats::queue_stats(&q)
    )?;
    Ok(Json(JobList::Page(JobPage {
        queue,
        state: job_state,
        offset,
        limit,
        total: counts.listed_in(job_state),
        jobs: jobs.into_iter().map(JobView::from).collect(),
    })))
}

/// A page of jobs in `state`, newest first (waiting jobs too: the reverse of the order
/// workers take them); `waiting` shows the waiting jobs of a paused queue too (as `jobq list`
/// does), so the page matches the `waiting` count.
pub async fn list_page(
    q: &queue_core::Queue,
    state: JobState,
    offset: u64,
    limit: u64,
) -> ApiResult<Vec<JobInfo>> {
    let jobs = deadline(q.list_jobs_in(state, ListOrder::Newest, offset, limit)).await?;
    if state == JobState::Waiting && jobs.is_empty() {
        return deadline(q.list_jobs_in(JobState::Paused, ListOrder::Newest, offset, limit)).await;
    }
    Ok(jobs)
}

/// Query of a groups listing; checked by hand so errors name the bad value.
#[derive(Debug, Deserialize)]
pub struct GroupsQuery {
    limit: Option<String>,
}

/// `GET /api/queues/{q}/groups?limit=`: the queue's groups: how many have waiting jobs,
/// have active jobs and are held back by a limit now, and the `limit` busiest (most
/// waiting first, then those with active jobs only), each with its counts and what holds
/// it back (`{"by": "concurrency"}` or `{"by": "rate", "until_ms": ..}`).
#[utoipa::path(get, path = "/api/queues/{queue}/groups", operation_id = "listGroups",
    tag = "queues",
    params(
        QueuePath,
        ("limit" = Option<u64>, Query, maximum = 1000,
            description = "Groups listed, busiest first (default 50, at most 1,000)"),
    ),
    responses(
        (status = 200, description = "The queue's groups", body = GroupsView),
        (status = 400, description = "A bad limit or queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn list_groups(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    RawQuery(raw): RawQuery,
    Query(query): Query<GroupsQuery>,
) -> ApiResult<Json<GroupsView>> {
    only_known(raw.as_deref(), &["limit"])?;
    let limit = number("limit", query.limit.as_deref(), DEFAULT_GROUPS)?;
    if limit > MAX_GROUPS {
        return Err(AppError::BadRequest(format!(
            "limit {limit}: list at most {MAX_GROUPS} groups per request"
        )));
    }
    let q = state.backend().existing_queue(&queue).await?;
    Ok(Json(groups(&q, limit).await?))
}

/// The groups of `q`: the counts and at most `limit` of the busiest.
pub async fn groups(q: &queue_core::Queue, limit: u64) -> ApiResult<GroupsView> {
    // `limit` is at most MAX_GROUPS here, so it fits any usize
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut view = deadline(q.groups(limit)).await?;
    // queue-core reads at least one group even for a limit of 0
    view.groups.truncate(limit);
    Ok(view)
}

fn number(what: &str, given: Option<&str>, default: u64) -> ApiResult<u64> {
    match given {
        None | Some("") => Ok(default),
        Some(s) => s.parse().map_err(|_| {
            let shown = queue_core::internal::text::clip(s, 40);
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
                AppError::BadRequest(format!("{what} {shown}: too large"))
            } else {
                AppError::BadRequest(format!(
                    "{what} {shown:?}: use a whole number of at least 0"
                ))
            }
        }),
    }
}

/// `GET /api/queues/{q}/jobs/{id}`: one job with its logs; a flow's parent with its
/// `children` too (each one's queue, id, name, state, and return value or failure reason).
#[utoipa::path(get, path = "/api/queues/{queue}/jobs/{id}", operation_id = "getJob", tag = "jobs",
    params(JobPath),
    responses(
        (status = 200, description = "The job (what `jobq show --json` prints)", body = JobView),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue or job", body = ErrorBody),
    ))]
pub async fn get_job(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    _: NoQuery,
) -> ApiResult<Json<JobView>> {
    let q = state.backend().existing_queue(&queue).await?;
    let job = deadline(q.job(&id)).await?;
    let parent = is_parent(&job);
    let mut view = JobView::from(job);
    if parent {
        view.children = Some(deadline(q.children(&id)).await?);
    }
    Ok(Json(view))
}

/// Whether `job` is a flow's parent (it has children to read).
pub fn is_parent(job: &JobInfo) -> bool {
    job.children_pending.is_some()
}

/// Parses an enqueue body: one job object, or an array of them (every one checked before
/// any is stored).
pub fn parse_enqueue_body(body: &[u8]) -> ApiResult<Vec<NewJob>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::BadRequest(
            "request body is empty: send {\"name\": .., \"data\": .., \"opts\": {..}}".into(),
        ));
    }
    let value: Value = crate::strict_json::parse(body)
        .map_err(|e| AppError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(AppError::BadRequest(
                    "request body is an empty array: send at least one job".into(),
                ));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    parse_job_value(item).map_err(|e| AppError::BadRequest(format!("job {i}: {e}")))
                })
                .collect()
        }
        one => Ok(vec![
            parse_job_value(one).map_err(|e| AppError::BadRequest(e.to_string()))?
        ]),
    }
}

/// The body of an enqueue: one job, or an array of jobs (every one checked before any is
/// stored).
#[derive(Debug, Clone, ToSchema)]
#[serde(untagged)]
pub enum EnqueueRequest {
    /// One job.
    One(Box<NewJob>),
    /// Many jobs, added in one go.
    Many(Vec<NewJob>),
}

/// What an enqueue of one job did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Enqueued {
    /// Stored in Redis (201), or nothing stored because the job was there already or the add
    /// was debounced into it (200).
    Stored {
        /// Queue name.
        queue: String,
        /// The job's id (of the job already stored, for a duplicate or a debounced add).
        id: String,
        /// True when a job with its `jobId` or dedup id was stored already.
        duplicate: bool,
        /// True when the add was debounced into the job `id`.
        debounced: bool,
    },
    /// Redis is down and `JOBQ_FALLBACK=spool`: kept on disk, added once Redis is back
    /// (202).
    Spooled {
        /// Queue name.
        queue: String,
        /// The id the job will have.
        id: String,
        /// Always true.
        spooled: bool,
        /// Why Redis was not used.
        reason: Option<String>,
    },
}

/// What an enqueue of an array of jobs did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BulkEnqueued {
    /// Queue name.
    pub queue: String,
    /// Jobs stored (not counting duplicates, debounced adds and spooled jobs).
    pub added: usize,
    /// One entry per job, in the order sent.
    pub jobs: Vec<BulkEntry>,
    /// Jobs spooled (only while Redis is down, with `JOBQ_FALLBACK=spool`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spooled: Option<usize>,
    /// Why Redis was not used (with `spooled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One job of an array enqueue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BulkEntry {
    /// Stored (or a duplicate, or debounced).
    Stored {
        /// The job's id.
        id: String,
        /// True when a job with its `jobId` or dedup id was stored already.
        duplicate: bool,
        /// True when the add was debounced into the job `id`.
        debounced: bool,
    },
    /// Spooled.
    Spooled {
        /// The id the job will have.
        id: String,
        /// Always true.
        spooled: bool,
    },
}

/// The answer to an enqueue: [`Enqueued`] for one job, [`BulkEnqueued`] for an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EnqueueResponse {
    /// One job sent.
    One(Enqueued),
    /// An array sent.
    Many(BulkEnqueued),
}

/// `POST /api/queues/{q}/jobs`: enqueues one job (201 `{"queue", "id", "duplicate",
/// "debounced"}`; 200 when a job with its `jobId` or dedup id was already stored, or the
/// add was debounced into the job `id`) or an array of jobs (201 with `added`, the jobs
/// stored, and `jobs`). When Redis is down and `JOBQ_FALLBACK=spool`, 202 with `"spooled": true`
/// (an array: `spooled`, the count, and `{"id", "spooled": true}` per spooled job); with
/// `error` or `inline`, 503 naming the address (see `enqueue.rs`).
///
/// `opts` also takes BullMQ's spellings: `delay` and `timeout` (ms or `"10s"`), `backoff`
/// as `"exp:1s"` or `"fixed:500ms"`, `removeOnComplete` / `removeOnFail` as `true` or a
/// count, and snake_case names.
#[utoipa::path(post, path = "/api/queues/{queue}/jobs", operation_id = "addJobs", tag = "jobs",
    params(QueuePath, ("traceparent" = Option<String>, Header,
            description = "W3C trace context (`00-<trace id>-<span id>-<flags>`) stored with \
            the job(s); the worker's span for each attempt is its child. Malformed: 400")),
    request_body(content = EnqueueRequest, description = "One job, or an array of jobs",
        example = json!({"name": "diag.echo", "data": {"hello": "world"}, "opts": {"attempts": 3}})),
    responses(
        (status = 201, description = "Added (one job, or an array)", body = EnqueueResponse),
        (status = 200, description = "One job: stored already (`duplicate`) or debounced",
            body = Enqueued),
        (status = 202, description = "Redis is down: spooled to disk (`JOBQ_FALLBACK=spool`)",
            body = EnqueueResponse),
        (status = 400, description = "Bad JSON, job, option or queue name, named; nothing stored",
            body = ErrorBody),
        (status = 413, description = "Data or options over the size caps", body = ErrorBody),
    ))]
pub async fn add_jobs(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    traceparent: Traceparent,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<EnqueueResponse>)> {
    queue_core::internal::validate::validate_queue_name(&queue)?;
    let array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let mut jobs = parse_enqueue_body(&body)?;
    traceparent.apply(&mut jobs);
    let produced = state.enqueuer().add(&queue, jobs).await?;
    let reason = spooled_reason(&produced).map(str::to_string);
    if array {
        let mut stored = 0;
        let mut spooled = 0;
        let entries: Vec<BulkEntry> = produced
            .iter()
            .map(|p| match p {
                Produced::Stored(a) => {
                    stored += usize::from(!a.duplicate && !a.debounced);
                    BulkEntry::Stored {
                        id: a.id.clone(),
                        duplicate: a.duplicate,
                        debounced: a.debounced,
                    }
                }
                other => {
                    spooled += 1;
                    BulkEntry::Spooled {
                        id: other.id().to_string(),
                        spooled: true,
                    }
                }
            })
            .collect();
        let mut body = BulkEnqueued {
            queue,
            added: stored,
            jobs: entries,
            spooled: None,
            reason: None,
        };
        let code = match reason {
            None => StatusCode::CREATED,
            Some(reason) => {
                body.spooled = Some(spooled);
                body.reason = Some(reason);
                StatusCode::ACCEPTED
            }
        };
        return Ok((code, Json(EnqueueResponse::Many(body))));
    }
    let one = produced
        .into_iter()
        .next()
        .ok_or_else(|| AppError::Internal("add returned nothing".into()))?;
    let (code, answer) = match one {
        Produced::Stored(a) => (
            if a.duplicate || a.debounced {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            Enqueued::Stored {
                queue,
                id: a.id,
                duplicate: a.duplicate,
                debounced: a.debounced,
            },
        ),
        other => (
            StatusCode::ACCEPTED,
            Enqueued::Spooled {
                queue,
                id: other.id().to_string(),
                spooled: true,
                reason,
            },
        ),
    };
    Ok((code, Json(EnqueueResponse::One(answer))))
}

/// Parses a flow body: one node `{"queue","name","data","opts","children":[nodes]}`. An
/// error names the node by its path in the tree (`flow node root.children[2]: …`).
pub fn parse_flow_body(body: &[u8]) -> ApiResult<FlowJob> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::BadRequest(
            "request body is empty: send a flow {\"queue\": .., \"name\": .., \"data\": .., \
             \"opts\": {..}, \"children\": [..]}"
                .into(),
        ));
    }
    let value: Value = crate::strict_json::parse(body)
        .map_err(|e| AppError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    parse_flow_value(value).map_err(|e| AppError::BadRequest(e.to_string()))
}

/// `POST /api/flows`: adds a flow, all or nothing (every node is checked before any is
/// stored) → 201 with the tree as stored, every node with its id. Flows are never spooled:
/// while Redis is down this is a 503 whatever `JOBQ_FALLBACK` says.
///
/// The add runs to its end in a task of its own, without the request deadline: a large
/// flow takes several calls, and an add cut off half-way (the client went away, a timeout)
/// would answer that it failed while its jobs might still be committed by the workers.
/// Each of its calls is bounded by the connection's response timeout.
#[utoipa::path(post, path = "/api/flows", operation_id = "addFlow", tag = "flows",
    params(("traceparent" = Option<String>, Header,
        description = "W3C trace context (`00-<trace id>-<span id>-<flags>`) stored with every \
        job of the flow. Malformed: 400")),
    request_body(content = FlowJob, description = "The flow's root node; `opts` as in an enqueue",
        example = json!({"queue": "video", "name": "video.publish", "children": [
            {"queue": "video", "name": "video.transcode", "data": {"preset": "720p"}}]})),
    responses(
        (status = 201, description = "Added: the tree with every node's id", body = FlowTree),
        (status = 400, description = "A bad node, named by its path in the tree", body = ErrorBody),
        (status = 409, description = "A node's job id is taken in its queue, named", body = ErrorBody),
        (status = 413, description = "Over the size caps or the flow limits", body = ErrorBody),
    ))]
pub async fn add_flow(
    State(state): State<AppState>,
    traceparent: Traceparent,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<FlowTree>)> {
    let flow = traceparent.apply_flow(parse_flow_body(&body)?);
    // the whole tree is checked before Redis is reached: a bad flow is a 4xx, Redis up or not
    flow.validate(state.config().redis.caps)?;
    let not_spooled = |e: AppError| match e {
        AppError::Unavailable(m) if state.enqueuer().mode() == Fallback::Spool => {
            AppError::Unavailable(format!(
                "{m}; the flow was not added (flows are never spooled: JOBQ_FALLBACK=spool \
                 keeps single jobs only): retry once Redis answers"
            ))
        }
        e => e,
    };
    let flows = state.backend().flows().map_err(not_spooled)?;
    let tree = tokio::spawn(async move { flows.add(flow).await })
        .await
        .map_err(|e| AppError::Internal(format!("adding the flow stopped: {e}")))?
        .map_err(|e| not_spooled(e.into()))?;
    Ok((StatusCode::CREATED, Json(tree)))
}

/// A job removed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRemoved {
    /// Queue name.
    pub queue: String,
    /// Job id.
    pub id: String,
    /// Jobs removed: 1.
    pub removed: u64,
}

/// `DELETE /api/queues/{q}/jobs/{id}`: deletes a job that is not running.
#[utoipa::path(delete, path = "/api/queues/{queue}/jobs/{id}", operation_id = "removeJob",
    tag = "jobs", params(JobPath),
    responses(
        (status = 200, description = "Removed", body = JobRemoved),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue or job", body = ErrorBody),
        (status = 409, description = "The job is running", body = ErrorBody),
    ))]
pub async fn remove_job(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    _: NoBody,
) -> ApiResult<Json<JobRemoved>> {
    let q = state.backend().existing_queue(&queue).await?;
    deadline(q.remove_job(&id)).await?;
    Ok(Json(JobRemoved {
        queue,
        id,
        removed: 1,
    }))
}

/// A job sent back to run again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRetried {
    /// Queue name.
    pub queue: String,
    /// Job id.
    pub id: String,
    /// Jobs retried: 1.
    pub retried: u64,
}

/// `POST /api/queues/{q}/jobs/{id}/retry`: a failed job runs again.
#[utoipa::path(post, path = "/api/queues/{queue}/jobs/{id}/retry", operation_id = "retryJob",
    tag = "jobs", params(JobPath),
    responses(
        (status = 200, description = "Waiting to run again", body = JobRetried),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue or job", body = ErrorBody),
        (status = 409, description = "The job is not failed or cancelled", body = ErrorBody),
    ))]
pub async fn retry_job(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    _: NoBody,
) -> ApiResult<Json<JobRetried>> {
    let q = state.backend().existing_queue(&queue).await?;
    deadline(q.retry_job(&id)).await?;
    Ok(Json(JobRetried {
        queue,
        id,
        retried: 1,
    }))
}

/// How a cancel went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CancelOutcome {
    /// The job was not running: it is cancelled.
    Now,
    /// The job is running: its worker stops it within a second.
    Requested,
}

/// A job cancelled, or asked to stop.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobCancelled {
    /// Queue name.
    pub queue: String,
    /// Job id.
    pub id: String,
    /// `now` or `requested`.
    pub cancelled: CancelOutcome,
    /// With `now`: the flow children (and their children) cancelled with it. Absent while
    /// they are still being cancelled (`walking`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<u64>,
    /// True when the job is cancelled but cancelling its flow's children takes longer than
    /// a request waits (a big flow): that goes on in the background, to the last child.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub walking: bool,
}

/// `POST /api/queues/{q}/jobs/{id}/cancel`: a job that is not running is cancelled at
/// once (`"cancelled": "now"`, with the flow children cancelled with it); a running one is
/// stopped by its worker within a second (`"cancelled": "requested"`). A finished job is a
/// 409, an unknown one a 404.
#[utoipa::path(post, path = "/api/queues/{queue}/jobs/{id}/cancel", operation_id = "cancelJob",
    tag = "jobs", params(JobPath),
    responses(
        (status = 200, description = "Cancelled (`now`), or its worker asked to stop (`requested`)",
            body = JobCancelled),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue or job", body = ErrorBody),
        (status = 409, description = "The job has finished", body = ErrorBody),
    ))]
pub async fn cancel_job(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    _: NoBody,
) -> ApiResult<Json<JobCancelled>> {
    let q = state.backend().existing_queue(&queue).await?;
    let (cancelled, children, walking) = match state.backend().cancel_walking_on(&q, &id).await? {
        CancelDone::Finished(Cancelled::Now { children }) => {
            (CancelOutcome::Now, Some(children), false)
        }
        CancelDone::Finished(Cancelled::Requested) => (CancelOutcome::Requested, None, false),
        CancelDone::Walking => (CancelOutcome::Now, None, true),
    };
    Ok(Json(JobCancelled {
        queue,
        id,
        cancelled,
        children,
        walking,
    }))
}

/// A delayed job started now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobPromoted {
    /// Queue name.
    pub queue: String,
    /// Job id.
    pub id: String,
    /// Jobs promoted: 1.
    pub promoted: u64,
}

/// `POST /api/queues/{q}/jobs/{id}/promote`: a delayed job starts now.
#[utoipa::path(post, path = "/api/queues/{queue}/jobs/{id}/promote", operation_id = "promoteJob",
    tag = "jobs", params(JobPath),
    responses(
        (status = 200, description = "Waiting to run now", body = JobPromoted),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue or job", body = ErrorBody),
        (status = 409, description = "The job is not delayed", body = ErrorBody),
    ))]
pub async fn promote_job(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    _: NoBody,
) -> ApiResult<Json<JobPromoted>> {
    let q = state.backend().existing_queue(&queue).await?;
    deadline(q.promote_job(&id)).await?;
    Ok(Json(JobPromoted {
        queue,
        id,
        promoted: 1,
    }))
}

/// Failed jobs of a queue sent back to run again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueRetried {
    /// Queue name.
    pub queue: String,
    /// Jobs retried.
    pub retried: u64,
}

/// `POST /api/queues/{q}/retry`: every failed job runs again.
#[utoipa::path(post, path = "/api/queues/{queue}/retry", operation_id = "retryFailed",
    tag = "queues", params(QueuePath),
    responses(
        (status = 200, description = "Every failed job waits to run again", body = QueueRetried),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn retry_all(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    _: NoBody,
) -> ApiResult<Json<QueueRetried>> {
    let q = state.backend().existing_queue(&queue).await?;
    let n = deadline(q.retry_all_failed()).await?;
    Ok(Json(QueueRetried { queue, retried: n }))
}

/// Delayed jobs of a queue started now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueuePromoted {
    /// Queue name.
    pub queue: String,
    /// Jobs promoted.
    pub promoted: u64,
}

/// `POST /api/queues/{q}/promote`: every delayed job starts now.
#[utoipa::path(post, path = "/api/queues/{queue}/promote", operation_id = "promoteDelayed",
    tag = "queues", params(QueuePath),
    responses(
        (status = 200, description = "Every delayed job waits to run now", body = QueuePromoted),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn promote_all(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    _: NoBody,
) -> ApiResult<Json<QueuePromoted>> {
    let q = state.backend().existing_queue(&queue).await?;
    let n = deadline(q.promote_all_delayed()).await?;
    Ok(Json(QueuePromoted { queue, promoted: n }))
}

/// Whether a queue is paused now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueuePaused {
    /// Queue name.
    pub queue: String,
    /// True after a pause, false after a resume.
    pub paused: bool,
}

/// `POST /api/queues/{q}/pause`: workers start none of its jobs until resumed.
#[utoipa::path(post, path = "/api/queues/{queue}/pause", operation_id = "pauseQueue",
    tag = "queues", params(QueuePath),
    responses(
        (status = 200, description = "Paused", body = QueuePaused),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn pause(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    _: NoBody,
) -> ApiResult<Json<QueuePaused>> {
    let q = state.backend().existing_queue(&queue).await?;
    deadline(q.pause()).await?;
    Ok(Json(QueuePaused {
        queue,
        paused: true,
    }))
}

/// `POST /api/queues/{q}/resume`.
#[utoipa::path(post, path = "/api/queues/{queue}/resume", operation_id = "resumeQueue",
    tag = "queues", params(QueuePath),
    responses(
        (status = 200, description = "Resumed", body = QueuePaused),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn resume(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    _: NoBody,
) -> ApiResult<Json<QueuePaused>> {
    let q = state.backend().existing_queue(&queue).await?;
    deadline(q.resume()).await?;
    Ok(Json(QueuePaused {
        queue,
        paused: false,
    }))
}

/// A duration as the API takes it: whole milliseconds, or text such as `"500ms"`, `"10s"`,
/// `"5m"`, `"1h"`, `"2d"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum DurationValue {
    /// Text: a number and a unit (`ms`, `s`, `m`, `h`, `d`).
    #[schema(example = "1h")]
    Text(String),
    /// Milliseconds.
    Millis(u64),
}

/// The states clean applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CleanState {
    /// Completed jobs.
    Completed,
    /// Failed jobs.
    Failed,
    /// Cancelled jobs.
    Cancelled,
}

/// The body of a clean, as sent (read by [`CleanRequest::parse`], which names a bad value).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CleanBody {
    /// Which finished jobs.
    pub state: CleanState,
    /// Only jobs that finished longer ago than this (default: every one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub older_than: Option<DurationValue>,
    /// At most this many, oldest first (default: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// What to clean: `{"state": "completed"|"failed", "older_than": "1h" | ms, "limit": N}`.
#[derive(Debug)]
pub struct CleanRequest {
    /// Completed or failed.
    pub state: JobState,
    /// Only jobs that finished longer ago than this.
    pub older_than: Duration,
    /// At most this many (all when `None`).
    pub limit: Option<u64>,
}

impl CleanRequest {
    /// Reads and checks a clean request body.
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        let usage =
            "send {\"state\": \"completed\" or \"failed\", \"older_than\": \"1h\", \"limit\": N}";
        let mut obj = object_body(body, usage)?;
        let state = match obj.remove("state") {
            Some(Value::String(s)) => clean_state(&s)?,
            Some(other) => {
                return Err(AppError::BadRequest(format!(
                    "state {other}: use \"completed\" or \"failed\""
                )))
            }
            None => {
                return Err(AppError::BadRequest(format!(
                    "\"state\" is missing: {usage}"
                )))
            }
        };
        let older_than = match obj.remove("older_than").or_else(|| obj.remove("olderThan")) {
            None | Some(Value::Null) => Duration::ZERO,
            Some(Value::String(s)) => queue_core::parse_duration(&s)?,
            Some(Value::Number(n)) => {
                let ms = n.as_u64().ok_or_else(|| {
                    AppError::BadRequest(format!("older_than {n}: use milliseconds or \"1h\""))
                })?;
                Duration::from_millis(queue_core::duration::check_ms("older_than", ms)?)
            }
            Some(other) => {
                return Err(AppError::BadRequest(format!(
                    "older_than {other}: use milliseconds or a duration such as \"1h\""
                )))
            }
        };
        let limit = match obj.remove("limit") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                AppError::BadRequest(format!("limit {v}: use a whole number of at least 0"))
            })?),
        };
        if let Some(key) = obj.keys().next() {
            return Err(AppError::BadRequest(format!(
                "unknown field {key:?}: use state, older_than, limit"
            )));
        }
        Ok(CleanRequest {
            state,
            older_than,
            limit,
        })
    }
}

/// A request body that must be one JSON object; `usage` (what to send) ends each error.
pub fn object_body(body: &[u8], usage: &str) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::BadRequest(format!(
            "request body is empty: {usage}"
        )));
    }
    let value: Value = crate::strict_json::parse(body)
        .map_err(|e| AppError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(obj) => Ok(obj),
        _ => Err(AppError::BadRequest(format!("expected an object: {usage}"))),
    }
}

/// A JSON value a client sent, as an error quotes it (clipped).
pub fn shown_value(v: &Value) -> String {
    queue_core::internal::text::clip(&v.to_string(), 60)
}

/// `completed`, `failed` or `cancelled`, the states clean applies to.
pub fn clean_state(s: &str) -> ApiResult<JobState> {
    match s {
        "completed" => Ok(JobState::Completed),
        "failed" => Ok(JobState::Failed),
        "cancelled" => Ok(JobState::Cancelled),
        other => Err(AppError::BadRequest(format!(
            "state {other:?}: clean takes \"completed\", \"failed\" or \"cancelled\""
        ))),
    }
}

/// Finished jobs deleted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueCleaned {
    /// Queue name.
    pub queue: String,
    /// The state cleaned.
    pub state: JobState,
    /// Jobs deleted.
    pub removed: u64,
}

/// `POST /api/queues/{q}/clean`: deletes finished jobs, oldest first.
#[utoipa::path(post, path = "/api/queues/{queue}/clean", operation_id = "cleanQueue",
    tag = "queues", params(QueuePath),
    request_body(content = CleanBody,
        example = json!({"state": "completed", "older_than": "1h", "limit": 1000})),
    responses(
        (status = 200, description = "Deleted", body = QueueCleaned),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn clean(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    body: Bytes,
) -> ApiResult<Json<QueueCleaned>> {
    let req = CleanRequest::parse(&body)?;
    let q = state.backend().existing_queue(&queue).await?;
    let n = deadline(q.clean(req.state, req.older_than, req.limit)).await?;
    Ok(Json(QueueCleaned {
        queue,
        state: req.state,
        removed: n,
    }))
}

/// Jobs that had not started, deleted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueDrained {
    /// Queue name.
    pub queue: String,
    /// Jobs deleted.
    pub removed: u64,
}

/// `POST /api/queues/{q}/drain`: deletes every waiting and delayed job.
#[utoipa::path(post, path = "/api/queues/{queue}/drain", operation_id = "drainQueue",
    tag = "queues", params(QueuePath),
    responses(
        (status = 200, description = "Deleted", body = QueueDrained),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
    ))]
pub async fn drain(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    _: NoBody,
) -> ApiResult<Json<QueueDrained>> {
    let q = state.backend().existing_queue(&queue).await?;
    let n = deadline(q.drain()).await?;
    Ok(Json(QueueDrained { queue, removed: n }))
}

/// Any other `/api` path.
pub async fn not_found(method: Method, uri: Uri) -> AppError {
    // the path as seen under the `/api` nest
    let path = uri.path().trim_end_matches('/');
    AppError::NotFound(format!("no API endpoint {method} /api{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enqueue_bodies_are_checked_and_errors_name_the_problem() {
        let one =
            parse_enqueue_body(br#"{"name":"a","data":{"x":1},"opts":{"attempts":2}}"#).unwrap();
        assert_eq!((one.len(), one[0].opts.attempts), (1, Some(2)));
        assert_eq!(
            parse_enqueue_body(br#"[{"name":"a"},{"name":"b"}]"#)
                .unwrap()
                .len(),
            2
        );
        for (body, needle) in [
            (&b""[..], "empty"),
            (b"{nope", "not valid JSON"),
            (b"[]", "empty array"),
            (br#"{"data":1}"#, "\"name\" is missing"),
            (br#"[{"name":"a"},{"nam":"b"}]"#, "job 1: "),
            (br#"{"name":"a","opts":{"delay":"soon"}}"#, "soon"),
            (b"42", "expected an object"),
        ] {
            let e = parse_enqueue_body(body).unwrap_err();
            assert!(matches!(e, AppError::BadRequest(_)), "{e:?}");
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn flow_bodies_are_checked_and_errors_name_the_node() {
        let flow = parse_flow_body(
            br#"{"queue":"p","name":"publish","children":[{"queue":"c","name":"x"}]}"#,
        )
        .unwrap();
        assert_eq!((flow.queue.as_str(), flow.children.len()), ("p", 1));
        for (body, needle) in [
            (&b" "[..], "empty"),
            (b"{nope", "not valid JSON"),
            (br#"{"queue":"p"}"#, "flow node root: \"name\" is missing"),
            (
                br#"{"queue":"p","name":"x","children":[{"queue":"c"}]}"#,
                "flow node root.children[0]: \"name\" is missing",
            ),
            (b"[]", "flow node root: expected an object"),
        ] {
            let e = parse_flow_body(body).unwrap_err();
            assert!(matches!(e, AppError::BadRequest(_)), "{e:?}");
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn clean_requests_are_checked() {
        let r = CleanRequest::parse(br#"{"state":"failed","older_than":"1h","limit":5}"#).unwrap();
        assert_eq!(
            (r.state, r.older_than, r.limit),
            (JobState::Failed, Duration::from_secs(3600), Some(5))
        );
        for (body, needle) in [
            (&b""[..], "empty"),
            (br#"{"state":"waiting"}"#, "waiting"),
            (br#"{}"#, "\"state\" is missing"),
            (br#"{"state":"failed","older_than":"ages"}"#, "ages"),
            (br#"{"state":"failed","limt":1}"#, "limt"),
            (
                br#"{"state":"failed","older_than":"200000000000d"}"#,
                "200000000000d",
            ),
            (br#"{"state":"failed","older_than":"3651d"}"#, "3651d"),
            (
                br#"{"state":"failed","older_than":18446744073709551615}"#,
                "18446744073709551615",
            ),
            (br#"{"state":"failed","older_than":1e300}"#, "older_than"),
        ] {
            let e = CleanRequest::parse(body).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
