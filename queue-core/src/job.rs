//! The job model: states, options, and what a stored job looks like when read back.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::backoff::{Backoff, BackoffKind};
use crate::duration::check_ms;
use crate::error::{Error, Result};
use crate::validate::{is_key_id, validate_job_id};

/// Where a job is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobState {
    /// Ready to run, in its priority lane.
    Waiting,
    /// A flow's parent waiting for its children to finish (see [`crate::flow`]).
    #[serde(rename = "waiting_children")]
    WaitingChildren,
    /// Held by a worker.
    Active,
    /// Due later: a delay, or a retry waiting for its backoff.
    Delayed,
    /// Finished successfully.
    Completed,
    /// Failed with no attempts left, or with a non-retryable error.
    Failed,
    /// Waiting while its queue is paused.
    Paused,
    /// Cancelled by an operator ([`Queue::cancel`](crate::Queue::cancel)): it will not run
    /// (again) unless retried.
    Cancelled,
}

impl JobState {
    /// Every state, in display order.
    pub const ALL: [JobState; 8] = [
        JobState::Waiting,
        JobState::WaitingChildren,
        JobState::Active,
        JobState::Delayed,
        JobState::Completed,
        JobState::Failed,
        JobState::Paused,
        JobState::Cancelled,
    ];

    /// Whether the job has finished: completed, failed or cancelled.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }

    /// Lower-case name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::WaitingChildren => "waiting_children",
            JobState::Active => "active",
            JobState::Delayed => "delayed",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Paused => "paused",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "state",
                    format!(
                        "{s:?}: use waiting, waiting_children, active, delayed, completed, \
                         failed, paused or cancelled"
                    ),
                )
            })
    }
}

/// How long finished jobs are kept (`remove_on_complete` / `remove_on_fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Retention {
    /// Keep at most this many jobs of the state (0 = remove at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Keep jobs at most this long after they finished, in milliseconds.
    #[serde(default, rename = "age", skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
}

impl Retention {
    /// Remove the job as soon as it finishes.
    pub const REMOVE: Retention = Retention {
        count: Some(0),
        age_ms: None,
    };
    /// Default for completed jobs: 1 hour or 1,000 jobs, whichever is smaller.
    pub const DEFAULT_COMPLETED: Retention = Retention {
        count: Some(1_000),
        age_ms: Some(3_600_000),
    };
    /// Default for failed jobs: 7 days or 10,000 jobs.
    pub const DEFAULT_FAILED: Retention = Retention {
        count: Some(10_000),
        age_ms: Some(7 * 86_400_000),
    };

    /// Keep the newest `n` jobs.
    pub fn keep_last(n: u64) -> Self {
        Retention {
            count: Some(n),
            age_ms: None,
        }
    }

    /// Keep jobs for `age` after they finish.
    pub fn keep_for(age: Duration) -> Self {
        Retention {
            count: None,
            // saturated, never truncated: an absurd age is refused by `validate`
            age_ms: Some(crate::duration::saturating_ms(age)),
        }
    }

    /// (count, age) as script arguments; -1 = unbounded, age 0 = no age limit.
    pub(crate) fn as_args(&self) -> (i64, u64) {
        (
            self.count
                .map(|c| c.min(i64::MAX as u64) as i64)
                .unwrap_or(-1),
            self.age_ms.unwrap_or(0),
        )
    }
}

/// Throttle: while a job added with this dedup id is remembered (for `ttl` after its add),
/// further adds with the same dedup id are dropped and report that job instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dedup {
    /// The deduplication key (e.g. `user:42:welcome-mail`).
    pub id: String,
    /// How long duplicates are dropped, in milliseconds.
    #[serde(rename = "ttl")]
    pub ttl_ms: u64,
}

/// Debounce ("extend + replace"): while the job last added with this debounce id has not
/// started (it is delayed or waiting) and the id was used within `ttl`, a further add with
/// the same id stores no new job. It replaces the kept job's name and data and moves its due
/// time to now + the new add's delay, and reports the kept job with `debounced: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Debounce {
    /// The debounce key (e.g. `reindex:doc-7`).
    pub id: String,
    /// How long after the last add with this id a further add still replaces the job, in
    /// milliseconds.
    #[serde(rename = "ttl")]
    pub ttl_ms: u64,
}

/// Lowest and highest priority a job may have.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -1_000..=1_000;

/// Options of one job. Build with [`JobOptions::new`] and the chained setters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobOptions {
    /// Run no earlier than this many milliseconds after the add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Higher runs first; equal priority is FIFO. Default 0.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub priority: i32,
    /// Total attempts (default 1: no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Delay between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Idempotency key: a second add with the same id while the first is stored is a no-op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Per-attempt time limit in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retention once completed (default [`Retention::DEFAULT_COMPLETED`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_on_complete: Option<Retention>,
    /// Retention once failed (default [`Retention::DEFAULT_FAILED`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_on_fail: Option<Retention>,
    /// Throttle duplicates by a dedup id for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<Dedup>,
    /// Debounce by a debounce id: a later add replaces the job while it has not started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce: Option<Debounce>,
    /// A flow parent's answer to a child that failed for good (default
    /// [`OnChildFailure::Fail`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_child_failure: Option<OnChildFailure>,
    /// The group (tenant) the job belongs to in its queue: workers take ready jobs
    /// round-robin across groups, and per-group limits apply ([`crate::GroupLimits`]).
    /// 1-128 characters of `[A-Za-z0-9._:-]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The producer's W3C trace context (`00-<trace id>-<span id>-<flags>`): the worker's
    /// span for each attempt is its child ([`crate::trace`]). When not given, an add takes
    /// the caller's (its current `tracing` span's, with a tracing-opentelemetry layer).
    /// Stored apart from the other options: a stored job reads it back as
    /// [`JobInfo::traceparent`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// What a flow's parent does when one of its children fails for good (or is removed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OnChildFailure {
    /// The parent fails without running, with the reason
    /// `child <queue>/<id> failed: <reason>`.
    #[default]
    Fail,
    /// The parent runs once every child finished; the failure is in its
    /// [`crate::Ctx::children`].
    Ignore,
}

impl OnChildFailure {
    /// `fail` or `ignore`, as written in a flow file.
    pub fn as_str(self) -> &'static str {
        match self {
            OnChildFailure::Fail => "fail",
            OnChildFailure::Ignore => "ignore",
        }
    }
}

impl std::str::FromStr for OnChildFailure {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fail" => Ok(OnChildFailure::Fail),
            "ignore" => Ok(OnChildFailure::Ignore),
            _ => Err(Error::invalid(
                "on_child_failure",
                format!("{s:?}: use fail or ignore"),
            )),
        }
    }
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

impl JobOptions {
    /// Defaults: no delay, priority 0, one attempt, bounded retention.
    pub fn new() -> Self {
        Self::default()
    }
    /// Do not start before `delay` has passed.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_ms = Some(crate::duration::saturating_ms(delay));
        self
    }
    /// Higher-priority waiting jobs start first (range −1000..=1000).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
    /// Total attempts, the first included.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = Some(attempts);
        self
    }
    /// Delay between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }
    /// Use this id; adding it again while stored returns the existing job.
    pub fn job_id(mut self, id: impl Into<String>) -> Self {
        self.job_id = Some(id.into());
        self
    }
    /// Cancel an attempt that runs longer than this.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(crate::duration::saturating_ms(timeout));
        self
    }
    /// Retention once completed.
    pub fn remove_on_complete(mut self, r: Retention) -> Self {
        self.remove_on_complete = Some(r);
        self
    }
    /// Retention once failed.
    pub fn remove_on_fail(mut self, r: Retention) -> Self {
        self.remove_on_fail = Some(r);
        self
    }
    /// Puts the job in `group` of its queue (a tenant): groups take turns at the workers,
    /// and per-group limits apply. Checked by the add (1-128 characters of
    /// `[A-Za-z0-9._:-]`).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }
    /// As a flow's parent, what to do when a child fails for good.
    pub fn on_child_failure(mut self, policy: OnChildFailure) -> Self {
        self.on_child_failure = Some(policy);
        self
    }
    /// Drop further adds with the same `dedup_id` for `ttl` after this one.
    pub fn dedup(mut self, dedup_id: impl Into<String>, ttl: Duration) -> Self {
        self.dedup = Some(Dedup {
            id: dedup_id.into(),
            ttl_ms: crate::duration::saturating_ms(ttl),
        });
        self
    }

    /// Debounce by `debounce_id`: an add with the same id within `ttl` of the last one, while
    /// the job it made has not started, replaces that job's name and data and moves its due
    /// time to now + this add's delay instead of adding a job ([`Debounce`]).
    pub fn debounce(mut self, debounce_id: impl Into<String>, ttl: Duration) -> Self {
        self.debounce = Some(Debounce {
            id: debounce_id.into(),
            ttl_ms: crate::duration::saturating_ms(ttl),
        });
        self
    }

    /// Records `traceparent` (a W3C `traceparent` header value) as the job's trace
    /// context, rather than the caller's. Checked by the add ([`crate::trace::parse_traceparent`]).
    pub fn traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    /// Total attempts allowed.
    pub fn max_attempts(&self) -> u32 {
        self.attempts.unwrap_or(1)
    }

    /// Checks every value, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        if !PRIORITY_RANGE.contains(&self.priority) {
            return Err(Error::invalid(
                "priority",
                format!("{}: must be between -1000 and 1000", self.priority),
            ));
        }
        if let Some(a) = self.attempts {
            if a == 0 {
                return Err(Error::invalid("attempts", "0: must be at least 1"));
            }
        }
        if let Some(id) = &self.job_id {
            validate_job_id(id)?;
            // (read anywhere, a job id can be found: one spelled so would name a lean job's
            // lane entry, or be taken for one)
            if id.starts_with(LEAN_MARK) {
                return Err(Error::invalid(
                    "job id",
                    format!("{id:?}: ids starting with ~ are the ids jobq gives lean jobs"),
                ));
            }
        }
        if let Some(g) = &self.group {
            crate::validate::validate_group(g)?;
        }
        if let Some(tp) = &self.traceparent {
            crate::trace::parse_traceparent(tp)?;
        }
        if let Some(b) = &self.backoff {
            b.validate()?;
        }
        // a dedup or debounce id is part of a key, checked as job ids are
        let keyed = [
            (
                "dedup id",
                "dedup ttl",
                self.dedup.as_ref().map(|d| (&d.id, d.ttl_ms)),
            ),
            (
                "debounce id",
                "debounce ttl",
                self.debounce.as_ref().map(|d| (&d.id, d.ttl_ms)),
            ),
        ];
        for (what_id, what_ttl, key) in keyed {
            let Some((id, ttl_ms)) = key else { continue };
            if !is_key_id(id) {
                return Err(Error::invalid(
                    what_id,
                    format!("{id:?}: use 1-256 printable ASCII characters without spaces"),
                ));
            }
            if ttl_ms == 0 {
                return Err(Error::invalid(what_ttl, "0ms: must be positive"));
            }
            check_ms(what_ttl, ttl_ms)?;
        }
        if self.dedup.is_some() && self.debounce.is_some() {
            return Err(Error::invalid(
                "options dedup and debounce",
                "use one: dedup keeps the first add, debounce the last",
            ));
        }
        if self.timeout_ms == Some(0) {
            return Err(Error::invalid("timeout", "0ms: must be positive"));
        }
        // no duration past 3650d: due times and cutoffs are computed without overflow
        check_ms("delay", self.delay_ms.unwrap_or(0))?;
        check_ms("timeout", self.timeout_ms.unwrap_or(0))?;
        for (what, r) in [
            ("remove_on_complete age", &self.remove_on_complete),
            ("remove_on_fail age", &self.remove_on_fail),
        ] {
            check_ms(what, r.and_then(|r| r.age_ms).unwrap_or(0))?;
        }
        Ok(())
    }

    /// The JSON stored with the job (empty options store nothing).
    pub(crate) fn stored(&self) -> Result<String> {
        // delay and job id are not needed once the job exists; keep the rest.
        let mut copy = self.clone();
        copy.delay_ms = None;
        copy.job_id = None;
        copy.dedup = None;
        copy.debounce = None;
        copy.priority = 0;
        // in a field of its own (`tp`)
        copy.traceparent = None;
        if copy == JobOptions::default() {
            return Ok(String::new());
        }
        Ok(serde_json::to_string(&copy)?)
    }

    pub(crate) fn from_stored(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Ok(JobOptions::default());
        }
        serde_json::from_str(s)
            .map_err(|e| Error::Protocol(format!("stored job options {s:?}: {e}")))
    }
}

/// A job to add in bulk.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewJob {
    /// Handler name, e.g. `video.transcode`.
    pub name: String,
    /// JSON payload.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub data: Value,
    /// Options.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub opts: JobOptions,
}

impl NewJob {
    /// A job with `name`, serialisable `data` and `opts`.
    pub fn new(name: impl Into<String>, data: &impl Serialize, opts: JobOptions) -> Result<Self> {
        Ok(NewJob {
            name: name.into(),
            data: serde_json::to_value(data)?,
            opts,
        })
    }
}

/// What an add returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Added {
    /// The job's id (generated, or the one given); for a duplicate, the existing job's id.
    pub id: String,
    /// True when nothing was stored: a job with this id already existed, or the dedup id
    /// was still throttled (then `id` is the job that holds it), or this add was sent
    /// again after its first sending was debounced (then `debounced` is true too, and `id`
    /// is the job that took it).
    pub duplicate: bool,
    /// True when the add was debounced ([`JobOptions::debounce`]): no job was added, the
    /// job `id` (which has not started) took this add's name and data and due time.
    pub debounced: bool,
}

/// Where a job lives: its queue and id (a flow's parent, a child).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobRef {
    /// Queue name.
    pub queue: String,
    /// Job id.
    pub id: String,
}

impl JobRef {
    /// `<queue>/<id>`, as stored (queue names have no `/`).
    pub fn to_text(&self) -> String {
        format!("{}/{}", self.queue, self.id)
    }

    /// Reads `<queue>/<id>`.
    pub fn from_text(s: &str) -> Option<JobRef> {
        let (queue, id) = s.split_once('/')?;
        (!queue.is_empty() && !id.is_empty()).then(|| JobRef {
            queue: queue.to_string(),
            id: id.to_string(),
        })
    }
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.queue, self.id)
    }
}

/// A stored job as read back by [`crate::Queue::get_job`].
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobInfo {
    /// Queue name.
    pub queue: String,
    /// Job id.
    pub id: String,
    /// Handler name.
    pub name: String,
    /// Payload.
    pub data: Value,
    /// Options.
    pub opts: JobOptions,
    /// Current state.
    pub state: JobState,
    /// Priority lane.
    pub priority: i32,
    /// Attempts started so far.
    pub attempts_made: u32,
    /// Last progress reported (number or JSON).
    pub progress: Option<Value>,
    /// Log lines written by the handler.
    pub logs: Vec<String>,
    /// Return value of the successful attempt.
    pub return_value: Option<Value>,
    /// Error of the last failed attempt.
    pub failed_reason: Option<String>,
    /// Backtrace or detail of the last failed attempt.
    pub stacktrace: Option<String>,
    /// When added (ms since the epoch, Redis clock).
    pub created_at: u64,
    /// When the last attempt started.
    pub started_at: Option<u64>,
    /// When it completed or finally failed.
    pub finished_at: Option<u64>,
    /// When a delayed job is due.
    pub due_at: Option<u64>,
    /// The flow parent this job is a child of (its queue and id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<JobRef>,
    /// For a flow's parent: how many of its children have not finished yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children_pending: Option<u64>,
    /// For an active job: the worker holding it, by the consumer name
    /// [`list_workers`](crate::list_workers) lists it under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The W3C trace context recorded at add (`00-<trace id>-<span id>-<flags>`; see
    /// [`crate::trace`]); null when there was none.
    pub traceparent: Option<String>,
    /// Set when some stored field is corrupt: which, and how. The other fields are shown
    /// as far as they can be read (a listing marks the job instead of failing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<String>,
    /// True while the job belongs to a flow whose add did not finish (cut off mid-way):
    /// it is not counted nor listed yet; its queue's workers commit it (its flow's
    /// safety net), and then it runs as its flow says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub staged: bool,
}

/// The longest job name an add takes, in bytes (`queue.rs` `validate_new_job`).
pub const MAX_NAME_BYTES: usize = 256;

impl JobInfo {
    /// Job `id` of `queue`, listed in `state`, whose record could not be read at all (its
    /// key is not a hash: a corrupt record): shown with `corrupt` saying why, never failing
    /// the listing it is in.
    pub(crate) fn unreadable(queue: &str, id: &str, state: JobState, why: &str) -> Self {
        let h = HashMap::from([("state".to_string(), state.as_str().to_string())]);
        // (a one-field hash always reads)
        let mut info =
            JobInfo::from_hash(queue, id, h, Vec::new(), false).expect("a hash with a state reads");
        info.state = state;
        info.corrupt = Some(why.to_string());
        info
    }

    pub(crate) fn from_hash(
        queue: &str,
        id: &str,
        mut h: HashMap<String, String>,
        logs: Vec<String>,
        paused: bool,
    ) -> Result<Self> {
        // every field is read leniently: one corrupt value is reported, never fatal
        let mut bad: Vec<String> = Vec::new();
        let mut num = |h: &HashMap<String, String>, k: &str| -> Option<u64> {
            let v = h.get(k)?;
            let n = v.parse::<u64>().ok();
            if n.is_none() {
                bad.push(format!(
                    "field {k} is {:?}, not a number",
                    crate::text::clip(v, 40)
                ));
            }
            n
        };
        // a lean job's kept record leaves out what its id says (`prelude.lua` *Lean jobs*):
        // its add time, its entry's, and its one attempt
        let lean_sid = lean_place(id).map(|(_, sid)| sid);
        let kept_lean = lean_sid.is_some() && h.get("state").is_some_and(|s| s == "completed");
        let attempts_made = match num(&h, "att") {
            Some(a) => u32::try_from(a).unwrap_or(u32::MAX),
            None if kept_lean && !h.contains_key("att") => 1,
            None => 0,
        };
        let created_at = match (num(&h, "ts"), lean_sid) {
            (Some(ts), _) => ts,
            (None, Some(sid)) if !h.contains_key("ts") => entry_time(sid).parse().unwrap_or(0),
            (None, _) => 0,
        };
        let started_at = num(&h, "started");
        let finished_at = num(&h, "finished");
        let due_at = num(&h, "due");
        let children_pending = num(&h, "kp");
        let json =
            |v: Option<String>| v.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)));
        if h.is_empty() {
            return Err(Error::Protocol(format!("job {id} has no fields")));
        }
        let state_text = match stored_state(&h) {
            Some(s) => s,
            None => {
                // neither a state nor a lane entry: waiting on an entry it lost track of
                bad.push("fields state and sid are missing".into());
                "waiting"
            }
        };
        let mut state: JobState = match state_text.parse() {
            Ok(s) => s,
            Err(_) => {
                bad.push(format!(
                    "field state is {:?}, not a state",
                    crate::text::clip(state_text, 40)
                ));
                JobState::Failed
            }
        };
        if paused && state == JobState::Waiting {
            state = JobState::Paused;
        }
        let opts = match JobOptions::from_stored(take_long(&mut h, "opts").as_deref().unwrap_or(""))
        {
            Ok(o) => o,
            Err(e) => {
                bad.push(format!("field opts does not decode: {e}"));
                JobOptions::default()
            }
        };
        let mut name = h.remove("name").unwrap_or_default();
        if name.is_empty() {
            bad.push("field name is missing".into());
        } else if name.len() > MAX_NAME_BYTES {
            // as the claim says (move_to_active.lua NAME_MAX), and never shown whole
            bad.push(format!(
                "field name is {} bytes, over the {MAX_NAME_BYTES} bytes a job name may have",
                name.len()
            ));
            name = crate::text::clip(&name, 64);
        }
        let parent = h.get("par").and_then(|p| {
            let r = JobRef::from_text(p);
            if r.is_none() {
                bad.push(format!(
                    "field par is {:?}, not <queue>/<id>",
                    crate::text::clip(p, 40)
                ));
            }
            r
        });
        let priority = match h.get("prio") {
            None => 0,
            Some(p) => p.parse().unwrap_or_else(|_| {
                bad.push(format!(
                    "field prio is {:?}, not a priority",
                    crate::text::clip(p, 40)
                ));
                0
            }),
        };
        Ok(JobInfo {
            queue: queue.to_string(),
            id: id.to_string(),
            name,
            data: json(take_long(&mut h, "data")).unwrap_or(Value::Null),
            opts,
            state,
            priority,
            attempts_made,
            progress: json(h.remove("progress")),
            logs,
            return_value: json(h.remove("result")),
            failed_reason: h.remove("error"),
            stacktrace: h.remove("stack").filter(|s| !s.is_empty()),
            created_at,
            started_at,
            finished_at,
            due_at,
            parent,
            children_pending,
            worker: None,
            traceparent: h.remove("tp"),
            corrupt: (!bad.is_empty()).then(|| bad.join("; ")),
            staged: h.contains_key("stg"),
        })
    }
}

/// The state a job hash records: its `state` field, or `waiting` when it has none but has a
/// lane entry (`sid`): the scripts leave `state` out of waiting jobs (`job_state` in their
/// prelude). None for an empty hash (no such job).
pub(crate) fn stored_state<K>(h: &HashMap<K, String>) -> Option<&str>
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
{
    match h.get("state") {
        Some(s) => Some(s),
        None => h.contains_key("sid").then_some("waiting"),
    }
}

/// Longest value a job hash stores in one field: Redis keeps a hash whose values all fit in
/// 64 bytes (hash-max-listpack-value) as a compact listpack, and one longer value turns the
/// whole hash into a hashtable, about twice the memory.
pub(crate) const PIECE: usize = 64;

/// Longest value cut into [`PIECE`]-byte pieces (4 KiB). Past it small pieces gain nothing
/// (a hash of over 128 fields is a hashtable whatever its values) and cost a field each: a
/// 1 MiB value would be 16,000 fields, an add of it tens of milliseconds of Redis time.
pub(crate) const SMALL_VALUE_MAX: usize = 64 * PIECE;
/// Pieces of a value past [`SMALL_VALUE_MAX`], after its first [`SMALL_HEAD`] ones of
/// [`PIECE`] bytes (which the claim reads with the job's other fields; the rest is read
/// apart, by the worker).
pub(crate) const BIG_PIECE: usize = 64 * 1024;
/// How many [`PIECE`]-byte pieces a value past [`SMALL_VALUE_MAX`] starts with.
pub(crate) const SMALL_HEAD: usize = 3;

/// `value` cut into pieces at UTF-8 character boundaries: of at most [`PIECE`] bytes (one
/// piece, maybe empty, when it fits), or past [`SMALL_VALUE_MAX`] [`SMALL_HEAD`] of them
/// then pieces of at most [`BIG_PIECE`].
pub(crate) fn pieces(value: &str) -> Vec<&str> {
    let big = value.len() > SMALL_VALUE_MAX;
    let mut out = Vec::with_capacity(if big {
        value.len() / BIG_PIECE + SMALL_HEAD + 1
    } else {
        value.len() / PIECE + 1
    });
    let mut rest = value;
    let mut size = PIECE;
    while rest.len() > size {
        let mut cut = size;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
        if big && out.len() == SMALL_HEAD {
            size = BIG_PIECE;
        }
    }
    out.push(rest);
    out
}

/// Appends to `out` the hash field/value pairs storing `value` under `field`: whole when it
/// fits in [`PIECE`] bytes, else cut by [`pieces`] into `field`, `field:2` … `field:n` plus
/// `field:n` = n (read back by [`take_long`] and the scripts' `long_value`). The scripts
/// store such pairs as they are.
pub(crate) fn push_long<'a>(out: &mut Vec<Cow<'a, str>>, field: &'static str, value: &'a str) {
    let cut = pieces(value);
    let n = cut.len();
    out.push(Cow::Borrowed(field));
    out.push(Cow::Borrowed(cut[0]));
    if n > 1 {
        for (k, piece) in cut.into_iter().enumerate().skip(1) {
            out.push(Cow::Owned(format!("{field}:{}", k + 1)));
            out.push(Cow::Borrowed(piece));
        }
        out.push(Cow::Owned(format!("{field}:n")));
        out.push(Cow::Owned(n.to_string()));
    }
}

/// Removes a value stored in pieces (`f`, `f:2` … `f:n`, and `f:n` = n; see
/// [`push_long`]) from a job hash, whole.
fn take_long(h: &mut HashMap<String, String>, field: &str) -> Option<String> {
    let mut value = h.remove(field)?;
    if let Some(n) = h
        .remove(&format!("{field}:n"))
        .and_then(|n| n.parse::<usize>().ok())
    {
        // a corrupt count never makes this loop past the pieces the hash can hold
        let n = n.min(h.len() + 1);
        for k in 2..=n {
            value.push_str(&h.remove(&format!("{field}:{k}")).unwrap_or_default());
        }
    }
    Some(value)
}

/// Most bytes of data plus options a lean job carries (stored as its lane entry alone, see
/// [`lean_id`]): a claim of 500 of them reads at most 2 MiB, and a record made from one
/// needs at most 64 pieces of [`PIECE`] bytes.
pub(crate) const LEAN_MAX_BYTES: usize = SMALL_VALUE_MAX;

/// The first character of a lean job's id: ids given by users may not start with it.
pub(crate) const LEAN_MARK: char = '~';

/// Whether a job is stored lean: as its lane entry alone, no hash (`prelude.lua` *Lean
/// jobs*). Only a ready job whose options need no record at add: no delay, given id,
/// dedup, debounce or group, and whose data and stored options fit [`LEAN_MAX_BYTES`].
pub(crate) fn is_lean(job: &NewJob, data: &str, stored_opts: &str) -> bool {
    let o = &job.opts;
    o.delay_ms.unwrap_or(0) == 0
        && o.job_id.is_none()
        && o.dedup.is_none()
        && o.debounce.is_none()
        && o.group.is_none()
        && data.len() + stored_opts.len() <= LEAN_MAX_BYTES
}

/// The id of the lean job stored as entry `sid` of the lane of priority `prio`:
/// `~<prio>.<sid>`, so its place is read from the id alone.
pub(crate) fn lean_id(prio: i32, sid: &str) -> String {
    format!("{LEAN_MARK}{prio}.{sid}")
}

/// The lane priority and entry id a lean job id names; None for any other id. Only the
/// spelling [`lean_id`] writes names one (no sign but `-`, no leading zero, no `-0`), as
/// in the scripts' `lean_place`: `~0.01-0` is no job's id.
pub(crate) fn lean_place(id: &str) -> Option<(i32, &str)> {
    let rest = id.strip_prefix(LEAN_MARK)?;
    let (prio_text, sid) = rest.split_once('.')?;
    let (ms, seq) = sid.split_once('-')?;
    // a whole number as Rust and Redis print it
    let number = |s: &str| {
        !s.is_empty()
            && s.len() <= 20
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'))
    };
    let magnitude = prio_text.strip_prefix('-').unwrap_or(prio_text);
    if !(number(ms) && number(seq) && number(magnitude)) || prio_text == "-0" {
        return None;
    }
    let prio: i32 = prio_text.parse().ok()?;
    (-1000..=1000).contains(&prio).then_some((prio, sid))
}

/// A lean job's add time: the time (ms, as text) of its entry `sid` (`prelude.lua`
/// `entry_time`).
pub(crate) fn entry_time(sid: &str) -> &str {
    sid.split_once('-').map_or(sid, |(ms, _)| ms)
}

/// Digits of generated ids: base 62 keeps them short (an id is in the job's key, its lane
/// entry and its events, so its length is paid several times over per job).
const ID_DIGITS: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Random digits per process: 62^10 ≈ 2^59.5, so even a million producer processes over a
/// queue's life share a prefix with odds of about one in a million.
const ID_NONCE_DIGITS: usize = 10;

/// A fresh job id: a random prefix drawn once per process (fixed length, so no separator is
/// needed), then a per-process counter, both in base 62 (e.g. `Q3kZ0pL7aX2f`).
pub(crate) fn new_job_id() -> String {
    static NONCE: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = NONCE.get_or_init(|| {
        (0..ID_NONCE_DIGITS)
            .map(|_| ID_DIGITS[rand::random_range(0..ID_DIGITS.len())] as char)
            .collect()
    });
    let mut n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut digits = Vec::with_capacity(11);
    loop {
        digits.push(ID_DIGITS[(n % 62) as usize]);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    let mut id = String::with_capacity(nonce.len() + digits.len());
    id.push_str(nonce);
    id.extend(digits.iter().rev().map(|&d| d as char));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lean_ids_name_their_place_in_one_spelling_only() {
        assert_eq!(lean_place(&lean_id(0, "17-0")), Some((0, "17-0")));
        assert_eq!(lean_place(&lean_id(-5, "1-20")), Some((-5, "1-20")));
        for bad in [
            "~00.1-0",
            "~-0.1-0",
            "~+5.1-0",
            "~0.01-0",
            "~0.1-01",
            "~1001.1-0",
            "~0.1",
            "0.1-0",
            "~0.1-0-0",
            "~a.1-0",
        ] {
            assert_eq!(lean_place(bad), None, "{bad}");
        }
    }

    #[test]
    fn exponential_backoff_doubles() {
        let b = Backoff::exponential(Duration::from_millis(100));
        let got: Vec<u128> = (1..=4).map(|a| b.delay_after(a).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800]);
        let f = Backoff::fixed(Duration::from_millis(250));
        assert_eq!(f.delay_after(7), Duration::from_millis(250));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let b = Backoff::fixed(Duration::from_millis(1000)).with_jitter(0.5);
        for _ in 0..200 {
            let d = b.delay_after(1).as_millis();
            assert!((500..=1000).contains(&d), "{d}");
        }
    }

    #[test]
    fn backoff_parses_cli_form() {
        assert_eq!(
            Backoff::parse("exp:1s").unwrap(),
            Backoff::exponential(Duration::from_secs(1))
        );
        assert_eq!(
            Backoff::parse("fixed:500ms").unwrap(),
            Backoff::fixed(Duration::from_millis(500))
        );
        assert_eq!(Backoff::parse("exp:1s:0.25").unwrap().jitter, 0.25);
        for bad in [
            "exp",
            "linear:1s",
            "exp:10parsecs",
            "exp:1s:2",
            "fixed:1s:0.1:x",
        ] {
            let e = Backoff::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn options_validate_and_name_bad_values() {
        JobOptions::new()
            .priority(1000)
            .attempts(3)
            .validate()
            .unwrap();
        let e = JobOptions::new()
            .priority(5000)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("5000"), "{e}");
        let e = JobOptions::new()
            .attempts(0)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("attempts"), "{e}");
    }

    #[test]
    fn stored_options_round_trip_and_default_is_empty() {
        assert_eq!(
            JobOptions::new()
                .delay(Duration::from_secs(1))
                .stored()
                .unwrap(),
            ""
        );
        let o = JobOptions::new()
            .attempts(3)
            .backoff(Backoff::exponential(Duration::from_secs(1)))
            .timeout(Duration::from_secs(5))
            .remove_on_complete(Retention::REMOVE);
        let back = JobOptions::from_stored(&o.stored().unwrap()).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn states_parse_and_print() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
        }
        assert!("done"
            .parse::<JobState>()
            .unwrap_err()
            .to_string()
            .contains("done"));
    }

    #[test]
    fn long_values_are_cut_at_char_boundaries() {
        assert_eq!(pieces(""), vec![""]);
        let short = "x".repeat(64);
        assert_eq!(pieces(&short), vec![short.as_str()]);
        // 63 ASCII bytes then a 2-byte character: the cut falls before the character
        let text = format!("{}é{}", "a".repeat(63), "b".repeat(70));
        let cut = pieces(&text);
        assert_eq!(cut[0].len(), 63);
        assert!(cut.iter().all(|p| p.len() <= PIECE));
        assert_eq!(cut.concat(), text);
        let mut pairs = Vec::new();
        push_long(&mut pairs, "data", &short);
        assert_eq!(pairs, vec!["data", short.as_str()]);
        pairs.clear();
        push_long(&mut pairs, "data", &text);
        let n = cut.len();
        assert_eq!(pairs.len(), 2 * n + 2);
        assert_eq!((&*pairs[2], &*pairs[3]), ("data:2", cut[1]));
        assert_eq!(
            (&*pairs[2 * n], &*pairs[2 * n + 1]),
            ("data:n", &*n.to_string())
        );
        // past 4 KiB: three small pieces, then big ones
        let big = "€".repeat(349_000);
        let cut = pieces(&big);
        assert_eq!(cut.concat(), big);
        assert!(cut[..SMALL_HEAD].iter().all(|p| p.len() <= PIECE));
        assert!(cut[SMALL_HEAD].len() > PIECE);
        assert!(cut.iter().all(|p| p.len() <= BIG_PIECE));
        assert!(cut.len() < 20, "{}", cut.len());
        let edge = "x".repeat(SMALL_VALUE_MAX);
        assert!(pieces(&edge).iter().all(|p| p.len() == PIECE));
    }

    #[test]
    fn job_ids_are_unique_and_short() {
        let ids: Vec<String> = (0..5000).map(|_| new_job_id()).collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let nonce = &ids[0][..ID_NONCE_DIGITS];
        for id in &ids {
            assert!(id.starts_with(nonce), "{id}");
            assert!(id.len() <= ID_NONCE_DIGITS + 3, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
    }
}
