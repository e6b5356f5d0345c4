//! The command line: every command, flag and help text of `jobq`, in one place.
//!
//! Values are checked while parsing (queue names, durations, JSON, numbers), so a bad one is
//! a usage error (exit 2) whose message names it and its option, before anything touches
//! Redis. Every number and duration has a range (see the parsers at the end): a value out
//! of it is refused, never wrapped or saturated. Options that take a value accept one
//! starting with `-` (`--delay -5s`), so it is refused as the bad value it is rather than
//! mistaken for a flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use queue_core::internal::args::{concurrency, duration, ranged, rate, Rate};
use queue_core::{Backoff, JobState, SearchFilter};
use serde_json::Value;

const AFTER_HELP: &str = "\
Durations are written with a unit: 500ms, 10s, 5m, 1h, 2d (or 1m30s), at most 3650d.

When Redis is down (or not configured), add and add-bulk apply JOBQ_FALLBACK: inline (the
default: run the job's handler here and print its result), spool (append it to a file in
JOBQ_SPOOL_DIR, stored in Redis once it answers) or error (exit 1). A notice on stderr says
which.

Exit codes: 0 ok, 1 runtime failure (queue or job not found, Redis unreachable or not
configured, operation refused), 2 usage or bad input (invalid JSON, duration, number, queue
name, bulk line, data over JOBQ_MAX_DATA_BYTES); the message names the bad value.";

const LIMITS_HELP: &str = "\
Examples:
  jobq limits video                                     show every limit
  jobq limits video --rate 100/1s --concurrency 20      cap the whole queue
  jobq limits video --group-concurrency 2               every group: at most 2 active
  jobq limits video --group-rate 10/1s --group vip      group vip: 10 starts a second
  jobq limits video --clear-group-rate --group vip      vip back to the default rate

MAX is 1 to 2^53, WINDOW 1ms to 365d; N is 1 to 4294967295.";

/// Enqueue jobs and inspect and steer jobq queues.
///
/// Redis comes from --redis-url, else REDIS_URL, else REDIS_HOST/REDIS_PORT/REDIS_USERNAME/
/// REDIS_PASSWORD/REDIS_TLS; keys live under --prefix (JOBQ_PREFIX, default "jobq").
/// Every command takes --json for machine-readable output (one JSON object per line).
#[derive(Debug, Parser)]
#[command(name = "jobq", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Redis URL (redis://[user:pass@]host:port[/db], rediss:// for TLS).
    #[arg(
        long,
        global = true,
        env = "REDIS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub redis_url: Option<String>,
    /// Key prefix: every key of a queue is {<prefix>:<queue>}:…
    #[arg(long, global = true, env = "JOBQ_PREFIX", value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Print machine-readable JSON (one object per line) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of the stats line
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add one job; prints its id.
    Add(AddArgs),
    /// Add many jobs from a JSONL file (or `-` for stdin), one job per line:
    /// {"name": "...", "data": {...}, "opts": {...}}.
    ///
    /// Every line is checked before anything is stored: a bad line is reported as
    /// `line N: …` and nothing is added. opts takes delay (ms or "10s"), priority,
    /// attempts, backoff ("exp:1s", "fixed:500ms" or {"type":"fixed","delay":500}), jobId,
    /// timeout (ms or "30s"), removeOnComplete / removeOnFail (true, a count, or
    /// {"count":N,"age":MS}), group, dedup / debounce ({"id": "..", "ttl": "5s"}, as
    /// `jobq add --dedup-id/--debounce-id`). Jobs are sent in chunks of 1,000, several in flight, in file
    /// order; a progress bar shows on a terminal.
    #[command(name = "add-bulk")]
    AddBulk {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// JSONL file, or `-` to read standard input.
        file: PathBuf,
    },
    /// Job counts per state for every queue (or one).
    ///
    /// `waiting` counts the jobs not started yet, also while the queue is paused (then
    /// `paused` is yes); `waiting_children` the flow parents whose children have not all
    /// finished. completed_total / failed_total never shrink with retention.
    Stats {
        /// Only this queue.
        #[arg(value_parser = queue_name)]
        queue: Option<String>,
        /// Refresh in place until Ctrl-C, like `top`.
        #[arg(long)]
        watch: bool,
        /// Time between refreshes with --watch (at least 100ms).
        #[arg(long, default_value = "1s", value_parser = interval, allow_hyphen_values = true,
              value_name = "DURATION")]
        interval: Duration,
    },
    /// List the jobs of a queue in one state, a page at a time.
    ///
    /// completed, failed and cancelled: newest first; delayed: next due first; waiting: in the order
    /// workers take them (highest priority first, FIFO within); active: longest running
    /// first; waiting_children: flow parents whose children have not all finished.
    /// `waiting` also lists the waiting jobs of a paused queue.
    List {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// waiting, waiting_children, active, delayed, completed, failed, paused or
        /// cancelled.
        #[arg(long, value_parser = job_state)]
        state: JobState,
        /// At most this many jobs (1-10000).
        #[arg(long, default_value_t = 20, value_parser = list_limit,
              allow_negative_numbers = true, value_name = "N")]
        limit: u64,
        /// Skip this many jobs first (at most 1000000000).
        #[arg(long, default_value_t = 0, value_parser = offset,
              allow_negative_numbers = true, value_name = "N")]
        offset: u64,
    },
    /// Find jobs by name, data, failure reason, state and age, newest first, a page at a
    /// time.
    ///
    /// --name matches the job name exactly; --data and --error match text anywhere in the
    /// job's stored JSON data (its first 4 KiB) and in its failure reason (of a failed job,
    /// or of the last failed attempt of one being retried), case-sensitive. Filters
    /// combine. Without --state every state is searched, one after the other; within a
    /// state the newest jobs come first. Jobs are read in short bounded steps, so a search
    /// of a big queue never holds Redis up. When more jobs may match, the last line gives
    /// the --cursor of the next page; with --json, one object: {"jobs": [...], "next":
    /// cursor or null}.
    Search(SearchArgs),
    /// One job: state, data, options, attempts, progress, logs, return value or error.
    ///
    /// A job of a flow also shows its parent (queue/id); a flow's parent shows its
    /// children: each one's queue/id, name, state, and its return value or failure reason
    /// (clipped; `--json` has them whole, under "children").
    Show {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Job id.
        #[arg(value_parser = lookup_id)]
        id: String,
    },
    /// Run a failed or cancelled job again (its attempts and error cleared), or every
    /// failed job.
    #[command(group(ArgGroup::new("which").required(true).args(["id", "all_failed"])))]
    Retry {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Job id.
        #[arg(value_parser = lookup_id)]
        id: Option<String>,
        /// Retry every failed job of the queue.
        #[arg(long)]
        all_failed: bool,
    },
    /// Cancel a job: one not running (waiting, paused, delayed, waiting for its children)
    /// is cancelled at once, with its flow's unfinished children; a running one is stopped
    /// by its worker within a second (the handler's cancellation token fires, ffmpeg is
    /// killed) and ends cancelled, not retried. A finished job is left as it is (exit 1).
    /// `jobq retry` brings a cancelled job back.
    Cancel {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Job id.
        #[arg(value_parser = lookup_id)]
        id: String,
    },
    /// Change the priority of a waiting or delayed job (-1000..=1000, higher first); a
    /// waiting job moves to the back of its new priority. A running or finished job is
    /// refused (exit 1).
    Priority {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Job id.
        #[arg(value_parser = lookup_id)]
        id: String,
        /// The new priority.
        #[arg(value_parser = priority, allow_negative_numbers = true)]
        priority: i32,
    },
    /// Replace a job's data (--data JSON or --data-file F). A running attempt keeps the
    /// data it started with; data over JOBQ_MAX_DATA_BYTES is refused (exit 2).
    Update(UpdateArgs),
    /// Delete a job that is not running (and its logs).
    Remove {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Job id.
        #[arg(value_parser = lookup_id)]
        id: String,
    },
    /// Start a delayed job now, or every delayed job.
    #[command(group(ArgGroup::new("which").required(true).args(["id", "all_delayed"])))]
    Promote {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Job id.
        #[arg(value_parser = lookup_id)]
        id: Option<String>,
        /// Promote every delayed job of the queue.
        #[arg(long)]
        all_delayed: bool,
    },
    /// Stop workers from starting jobs of a queue (running jobs finish).
    Pause {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
    },
    /// Let workers start jobs of a paused queue again.
    Resume {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
    },
    /// Delete finished jobs, oldest first.
    Clean {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Which finished jobs.
        #[arg(long, value_enum)]
        state: CleanState,
        /// Only jobs that finished longer ago than this.
        #[arg(long, default_value = "0s", value_parser = duration, allow_hyphen_values = true,
              value_name = "DURATION")]
        older_than: Duration,
        /// Delete at most this many, 1-1000000000 (default: all that match).
        #[arg(long, value_parser = clean_limit, allow_negative_numbers = true,
              value_name = "N")]
        limit: Option<u64>,
    },
    /// Delete every job that has not started (waiting and delayed); running jobs stay.
    Drain {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
    },
    /// Delete a queue entirely: every job, schedule, setting and counter.
    ///
    /// Jobs running at that moment are dropped: their outcome is not recorded.
    Obliterate {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Required: confirms that everything in the queue is to be deleted.
        #[arg(long)]
        force: bool,
    },
    /// Show or change a queue's limits: its rate limit and global concurrency, and the
    /// per-group limits (a default for every group, and overrides for some groups).
    ///
    /// Without a change flag, prints the limits. With change flags, applies them, then
    /// prints the limits as they now are. Limits are stored in Redis and enforced where
    /// jobs are claimed, so they hold over all workers, without restarting them.
    ///
    /// Group limits apply to each group (the jobs added with `--group KEY`) on its own: a
    /// group at its limit waits while the other groups go on. The --group-* flags change
    /// the default every group gets; with --group KEY they change that group's override
    /// instead (an override replaces the default of its kind only, and clearing it falls
    /// back to the default).
    #[command(after_help = LIMITS_HELP)]
    Limits(LimitsArgs),
    /// A queue's groups (tenants): the busiest, with their waiting and active jobs and
    /// what holds them back.
    ///
    /// Lists the groups with the most waiting jobs first, then groups with active jobs
    /// only, at most --limit; LIMITED says "concurrency" for a group at its concurrency
    /// limit (back in turn when one of its jobs finishes), "rate until <time>" for one out
    /// of starts in its rate window, "-" otherwise. A last line counts the groups with
    /// waiting jobs, with active jobs, and limited. With --json, one object: with_waiting,
    /// with_active, limited and groups: [{group, waiting, active, limited?: {"by":
    /// "concurrency"} or {"by": "rate", "until_ms": ...}}].
    Groups {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Show at most this many groups (1-10000).
        #[arg(long, default_value_t = 50, value_parser = groups_limit,
              allow_negative_numbers = true, value_name = "N")]
        limit: usize,
    },
    /// Repeatable jobs: add, list and remove schedules (every N, or cron with seconds).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Flows: trees of jobs, possibly across queues, where a parent waits for its children.
    ///
    /// A parent stays waiting_children until every child has finished (completed, failed
    /// for good, or removed), then runs; its handler reads the children's outcomes.
    /// `jobq show` of a parent lists its children.
    #[command(subcommand)]
    Flow(FlowCommand),
    /// The live workers: id, host, pid, version, queues, concurrency, jobs held, started,
    /// last heartbeat.
    ///
    /// Workers heartbeat every 5s (jobq-worker --heartbeat) and drop out three heartbeats
    /// after their last one when killed; a graceful stop removes a worker at once. With
    /// --json, one object per worker: id, host, pid, version, queues, queue_count,
    /// concurrency, running ([{queue, id}], the first 100), running_count, started_at,
    /// last_seen, expires_at, heartbeat_ms (times in ms since the epoch), and corrupt (why,
    /// when its record cannot be read).
    Workers,
    /// Whether Redis answers (connected, disconnected, not_configured), latency, server
    /// settings and warnings; the fallback mode and the spooled jobs waiting. Exits 1 when
    /// Redis is disconnected or not configured.
    Health,
    /// Jobs spooled to local files while Redis was down (JOBQ_FALLBACK=spool, files in
    /// JOBQ_SPOOL_DIR, default ./.jobq-spool).
    ///
    /// Workers and `jobq add`/`add-bulk` replay them on their own (each only the files
    /// spooled for the Redis it uses); these commands show them and replay them on demand.
    #[command(subcommand)]
    Spool(SpoolCommand),
}

/// `jobq spool …`.
#[derive(Debug, Subcommand)]
pub enum SpoolCommand {
    /// The spool files waiting, with their job counts and bad lines, and the files set
    /// aside.
    ///
    /// JOBS counts the lines that decode as jobs, BAD LINES the others (a replay moves them
    /// to <file>.rejected); HELD: a live process holds the file (its producer, or a replay
    /// in progress). Set aside, for an operator to read: <file>.rejected (lines a replay
    /// could not store) and <file>.orphan (spool files whose header is missing or corrupt:
    /// no replay stores them, since which Redis they are for is unknown).
    Status,
    /// Store the spooled jobs in Redis now, each once under its spooled id; files other
    /// processes hold are left to them. An interrupted replay resumes where it stopped.
    Replay {
        /// Jobs per chunk (one round trip per queue, then progress is recorded): 1-1000.
        #[arg(long, default_value_t = 500, value_parser = chunk, allow_negative_numbers = true,
              value_name = "N")]
        chunk: u16,
        /// Pause after each chunk, to spare a Redis that has just come back (at most 1h).
        #[arg(long, default_value = "0s", value_parser = replay_pause,
              allow_hyphen_values = true, value_name = "DURATION")]
        pause: Duration,
    },
}

/// `jobq flow …`.
#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Add a flow from a JSON file (or `-` for stdin); prints every job of it with its id.
    ///
    /// The file holds one node: {"queue": "...", "name": "...", "data": {...}, "opts":
    /// {...}, "children": [nodes]}, where each child is a node of the same form (queue and
    /// name required; opts as in add-bulk, plus onChildFailure: "fail", the default, fails
    /// the parent when a child fails for good; "ignore" runs it anyway). Example:
    ///
    ///   {"queue": "publish", "name": "video.publish", "data": {"video": "v1"},
    ///    "children": [{"queue": "transcode", "name": "video.transcode", "data": {"height": 720}},
    ///                 {"queue": "transcode", "name": "video.transcode", "data": {"height": 360}}]}
    ///
    /// The whole flow is checked before anything is stored: a bad node (a missing name, a
    /// bad queue name, data over JOBQ_MAX_DATA_BYTES, two nodes with one jobId in one
    /// queue, more than 10,000 children on a node) is reported as `flow node
    /// root.children[2]: …` and nothing is added. All or nothing: no job of the flow
    /// starts before the whole flow is stored. Prints the tree, one line per job
    /// (`queue/id name`, children indented under their parent); with --json the tree as
    /// {"queue", "name", "id", "children": [...]}. A file over 64 MiB is refused before
    /// it is read.
    #[command(
        verbatim_doc_comment,
        about = "Add a flow from a JSON file (or `-` for stdin); prints every job of it with its id"
    )]
    Add {
        /// JSON file, or `-` to read standard input.
        file: PathBuf,
    },
}

/// `jobq add`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("payload").args(["data", "data_file"])))]
pub struct AddArgs {
    /// Queue name.
    #[arg(value_parser = queue_name)]
    pub queue: String,
    /// Job name: selects the handler, e.g. video.transcode.
    pub name: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Start no earlier than this from now.
    #[arg(long, value_parser = duration, allow_hyphen_values = true, value_name = "DURATION")]
    pub delay: Option<Duration>,
    /// Idempotency key: adding the same id again while it is stored adds nothing.
    #[arg(long, value_name = "ID")]
    pub job_id: Option<String>,
    /// Put the job in this group (tenant) of its queue: groups take turns at the workers
    /// and per-group limits apply (see `jobq limits`). 1-128 characters of A-Z a-z 0-9 . _ : -
    #[arg(long, value_parser = group_key, allow_hyphen_values = true, value_name = "KEY")]
    pub group: Option<String>,
    /// Throttle: while the job added with this dedup id is remembered (--dedup-ttl after
    /// that add), further adds with it store nothing and print that job's id.
    #[arg(long, value_parser = key_id, allow_hyphen_values = true, value_name = "ID",
          requires = "dedup_ttl", conflicts_with = "debounce_id")]
    pub dedup_id: Option<String>,
    /// How long after its add a dedup id drops further adds (1ms to 3650d).
    #[arg(long, value_parser = positive_duration, allow_hyphen_values = true,
          value_name = "DURATION", requires = "dedup_id")]
    pub dedup_ttl: Option<Duration>,
    /// Debounce: while the job last added with this debounce id has not started (it is
    /// delayed or waiting) and the id was used within --debounce-ttl, an add with it adds no
    /// job: that job takes this add's name and data and is due after this add's --delay.
    /// Prints the kept job's id.
    #[arg(long, value_parser = key_id, allow_hyphen_values = true, value_name = "ID",
          requires = "debounce_ttl")]
    pub debounce_id: Option<String>,
    /// How long after the last add with a debounce id a further add still replaces its job
    /// (1ms to 3650d; each debounced add starts it again).
    #[arg(long, value_parser = positive_duration, allow_hyphen_values = true,
          value_name = "DURATION", requires = "debounce_id")]
    pub debounce_ttl: Option<Duration>,
    #[command(flatten)]
    pub opts: JobOptArgs,
}

/// `jobq update`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("payload").required(true).args(["data", "data_file"])))]
pub struct UpdateArgs {
    /// Queue name.
    #[arg(value_parser = queue_name)]
    pub queue: String,
    /// Job id.
    #[arg(value_parser = lookup_id)]
    pub id: String,
    #[command(flatten)]
    pub data: DataArgs,
}

/// A job's data: `--data JSON` or `--data-file F` (`add` and `update`).
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Job data as JSON (add: default null).
    #[arg(long, value_parser = json_value, value_name = "JSON")]
    pub data: Option<Value>,
    /// Read the job data (JSON) from this file.
    #[arg(long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,
}

/// `jobq limits`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("group_change").multiple(true)
    .args(["group_concurrency", "group_rate", "clear_group_concurrency", "clear_group_rate"])))]
pub struct LimitsArgs {
    /// Queue name.
    #[arg(value_parser = queue_name)]
    pub queue: String,
    /// Queue rate limit: at most MAX job starts of the queue per WINDOW, e.g. 100/1s, 5/1m.
    #[arg(long, value_parser = rate, allow_hyphen_values = true, value_name = "MAX/WINDOW",
          conflicts_with = "clear_rate")]
    pub rate: Option<Rate>,
    /// Remove the queue's rate limit.
    #[arg(long)]
    pub clear_rate: bool,
    /// Global concurrency: at most N jobs of the queue active at once over all workers.
    #[arg(long, value_parser = concurrency, allow_negative_numbers = true, value_name = "N",
          conflicts_with = "clear_concurrency")]
    pub concurrency: Option<u32>,
    /// Remove the queue's global concurrency limit.
    #[arg(long)]
    pub clear_concurrency: bool,
    /// Group concurrency: at most N active jobs per group, over all workers.
    #[arg(long, value_parser = concurrency, allow_negative_numbers = true, value_name = "N",
          conflicts_with = "clear_group_concurrency")]
    pub group_concurrency: Option<u32>,
    /// Group rate limit: at most MAX job starts per group per WINDOW, e.g. 10/1s.
    #[arg(long, value_parser = rate, allow_hyphen_values = true, value_name = "MAX/WINDOW",
          conflicts_with = "clear_group_rate")]
    pub group_rate: Option<Rate>,
    /// Remove the group concurrency limit (of the default, or of --group's override, which
    /// then falls back to the default).
    #[arg(long)]
    pub clear_group_concurrency: bool,
    /// Remove the group rate limit (of the default, or of --group's override, which then
    /// falls back to the default).
    #[arg(long)]
    pub clear_group_rate: bool,
    /// Apply the --group-* flags to this group's override instead of the default of every
    /// group.
    #[arg(long, value_parser = group_key, allow_hyphen_values = true, value_name = "KEY",
          requires = "group_change")]
    pub group: Option<String>,
}

impl LimitsArgs {
    /// True when a flag asks for a change (else the limits are only shown).
    pub fn changes_anything(&self) -> bool {
        self.rate.is_some()
            || self.clear_rate
            || self.concurrency.is_some()
            || self.clear_concurrency
            || self.group_concurrency.is_some()
            || self.group_rate.is_some()
            || self.clear_group_concurrency
            || self.clear_group_rate
    }
}

/// `jobq search`'s queue and filters.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Queue name.
    #[arg(value_parser = queue_name)]
    pub queue: String,
    /// Only jobs in this state: waiting, waiting_children, active, delayed, completed,
    /// failed, paused or cancelled.
    #[arg(long, value_parser = job_state)]
    pub state: Option<JobState>,
    /// Only jobs with exactly this name.
    #[arg(long, allow_hyphen_values = true, value_name = "NAME")]
    pub name: Option<String>,
    /// Only jobs whose JSON data contains this text, e.g. user42@example.com.
    #[arg(long, allow_hyphen_values = true, value_name = "TEXT")]
    pub data: Option<String>,
    /// Only jobs whose failure reason contains this text.
    #[arg(long, allow_hyphen_values = true, value_name = "TEXT")]
    pub error: Option<String>,
    /// Only jobs created within this long, e.g. 1h.
    #[arg(long, value_parser = positive_duration, allow_hyphen_values = true,
          value_name = "DURATION")]
    pub since: Option<Duration>,
    /// At most this many jobs (1-1000).
    #[arg(long, default_value_t = queue_core::search::DEFAULT_SEARCH_LIMIT,
          value_parser = search_limit, allow_negative_numbers = true, value_name = "N")]
    pub limit: u64,
    /// Go on where a previous page stopped (the cursor it printed).
    #[arg(long, allow_hyphen_values = true, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

impl SearchArgs {
    /// The search the flags ask for.
    pub fn filter(&self) -> SearchFilter {
        SearchFilter {
            state: self.state,
            name: self.name.clone(),
            data: self.data.clone(),
            error: self.error.clone(),
            since: self.since,
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// Options a job (or each job of a schedule) can carry.
#[derive(Debug, Args)]
pub struct JobOptArgs {
    /// Higher runs first (-1000..=1000); equal priority is FIFO.
    #[arg(long, value_parser = priority, allow_negative_numbers = true, value_name = "N")]
    pub priority: Option<i32>,
    /// Total attempts, the first included (default 1).
    #[arg(long, value_parser = attempts, allow_negative_numbers = true, value_name = "N")]
    pub attempts: Option<u32>,
    /// Delay between attempts: exp:1s (doubling), fixed:500ms, optionally :JITTER (0-1).
    #[arg(long, value_parser = backoff, allow_hyphen_values = true, value_name = "KIND:DURATION")]
    pub backoff: Option<Backoff>,
    /// Cancel an attempt that runs longer than this (it fails).
    #[arg(long, value_parser = positive_duration, allow_hyphen_values = true,
          value_name = "DURATION")]
    pub timeout: Option<Duration>,
}

/// `jobq clean --state`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CleanState {
    /// Completed jobs.
    Completed,
    /// Failed jobs.
    Failed,
    /// Cancelled jobs.
    Cancelled,
}

/// `jobq schedule …`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add (or replace) a schedule that adds job <name> on every tick.
    #[command(group(ArgGroup::new("repeat").required(true).args(["every", "cron"])))]
    Add {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Schedule id; adding the same id again replaces the schedule.
        schedule_id: String,
        /// Job name of the jobs it adds.
        name: String,
        /// Tick every interval (on multiples of it since the epoch), e.g. 1s, 5m.
        #[arg(long, value_parser = duration, allow_hyphen_values = true, value_name = "DURATION")]
        every: Option<Duration>,
        /// Tick on a cron expression in UTC: 5 fields, or 6 with seconds first ("0 */5 * * * *"), or 7 with a year last.
        #[arg(long, value_name = "EXPR")]
        cron: Option<String>,
        /// Data of the jobs it adds, as JSON.
        #[arg(long, value_parser = json_value, value_name = "JSON")]
        data: Option<Value>,
        #[command(flatten)]
        opts: JobOptArgs,
    },
    /// List the schedules of every queue (or one), with their next run.
    List {
        /// Only this queue.
        #[arg(value_parser = queue_name)]
        queue: Option<String>,
    },
    /// Remove a schedule (jobs it already added stay).
    Remove {
        /// Queue name.
        #[arg(value_parser = queue_name)]
        queue: String,
        /// Schedule id.
        schedule_id: String,
    },
}

fn queue_name(s: &str) -> Result<String, String> {
    queue_core::internal::validate::validate_queue_name(s).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

/// A duration of at least 1ms (a zero timeout would fail every attempt at once).
fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: must be longer than 0")),
        d => Ok(d),
    }
}

/// The id of a job to look up or steer: any stored id, but never empty (an empty one
/// names no job: a usage error, not "not found").
fn lookup_id(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("empty: give the id of a job".into());
    }
    Ok(s.to_string())
}

/// A dedup or debounce id: 1-256 printable ASCII characters without spaces, as job ids.
fn key_id(s: &str) -> Result<String, String> {
    if queue_core::internal::validate::validate_job_id(s).is_err() {
        return Err(format!(
            "{s:?}: use 1-256 printable ASCII characters without spaces (not . or ..)"
        ));
    }
    Ok(s.to_string())
}

/// The `stats --watch` period: at least 100ms, so a watch cannot hammer Redis.
fn interval(s: &str) -> Result<Duration, String> {
    queue_core::internal::args::duration_at_least(s, Duration::from_millis(100))
}

/// The `spool replay --pause` between chunks: at most an hour.
fn replay_pause(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d > Duration::from_secs(3600) => Err(format!("{s:?}: use at most 1h")),
        d => Ok(d),
    }
}

/// Most jobs a listing returns at once (queue-core's own limit).
const MAX_LIST_LIMIT: i128 = queue_core::listing::MAX_LIST_LIMIT as i128;
/// Deepest offset a listing takes: far past any real queue, and small enough that offset +
/// limit fits every index type on the way to Redis.
const MAX_OFFSET: i128 = 1_000_000_000;

fn list_limit(s: &str) -> Result<u64, String> {
    ranged(s, 1..=MAX_LIST_LIMIT)
}

fn search_limit(s: &str) -> Result<u64, String> {
    ranged(s, 1..=i128::from(queue_core::search::MAX_SEARCH_LIMIT))
}

fn offset(s: &str) -> Result<u64, String> {
    ranged(s, 0..=MAX_OFFSET)
}

fn clean_limit(s: &str) -> Result<u64, String> {
    ranged(s, 1..=MAX_OFFSET)
}

fn chunk(s: &str) -> Result<u16, String> {
    ranged(s, 1..=1000)
}

fn groups_limit(s: &str) -> Result<usize, String> {
    ranged(s, 1..=10_000)
}

/// A group key: 1-128 characters of `A-Z a-z 0-9 . _ : -` (queue-core's own check).
fn group_key(s: &str) -> Result<String, String> {
    queue_core::internal::validate::validate_group(s).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

fn json_value(s: &str) -> Result<Value, String> {
    queue_core::internal::json_numbers::parse(s)
}

fn job_state(s: &str) -> Result<JobState, String> {
    s.parse().map_err(|e: queue_core::Error| e.to_string())
}

fn backoff(s: &str) -> Result<Backoff, String> {
    Backoff::parse(s).map_err(|e| e.to_string())
}

fn attempts(s: &str) -> Result<u32, String> {
    ranged(s, 1..=i128::from(u32::MAX))
}

fn priority(s: &str) -> Result<i32, String> {
    let r = queue_core::job::PRIORITY_RANGE;
    ranged(s, i128::from(*r.start())..=i128::from(*r.end()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_values_are_named() {
        for (args, bad) in [
            (vec!["jobq", "add", "q", "n", "--attempts", "-3"], "-3"),
            (
                vec!["jobq", "add", "q", "n", "--delay", "10parsecs"],
                "10parsecs",
            ),
            (vec!["jobq", "add", "bad name!", "n"], "bad name!"),
            (vec!["jobq", "add", "q", "n", "--data", "{nope"], "{nope"),
            (vec!["jobq", "list", "q", "--state", "done"], "done"),
        ] {
            let e = Cli::try_parse_from(&args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(bad), "{args:?}: {e}");
        }
    }

    /// Each command line (after `jobq`) exits 2 with a message naming its option and value.
    fn refused_naming_option_and_value(cases: &[(Vec<&str>, &str, &str)]) {
        for (args, option, bad) in cases {
            let e = Cli::try_parse_from(std::iter::once("jobq").chain(args.clone())).unwrap_err();
            let msg = e.to_string();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(msg.contains(option) && msg.contains(bad), "{args:?}: {msg}");
        }
    }

    #[test]
    fn out_of_range_numbers_and_durations_are_named_with_their_option() {
        refused_naming_option_and_value(&[
            (vec!["add", "q", "n", "--delay", "-5s"], "--delay", "-5s"),
            (vec!["add", "q", "n", "--delay=-5s"], "--delay", "-5s"),
            (
                vec!["add", "q", "n", "--timeout", "-1s"],
                "--timeout",
                "-1s",
            ),
            (vec!["add", "q", "n", "--timeout", "0s"], "--timeout", "0s"),
            (
                vec!["add", "q", "n", "--delay", "9223372036854775808ms"],
                "--delay",
                "9223372036854775808ms",
            ),
            (
                vec![
                    "clean",
                    "q",
                    "--state",
                    "failed",
                    "--older-than",
                    "200000000000d",
                ],
                "--older-than",
                "200000000000d",
            ),
            (
                vec!["clean", "q", "--state", "failed", "--limit", "-1"],
                "--limit",
                "-1",
            ),
            (
                vec![
                    "list",
                    "q",
                    "--state",
                    "failed",
                    "--limit",
                    "99999999999999999999999",
                ],
                "--limit",
                "99999999999999999999999",
            ),
            (
                vec!["list", "q", "--state", "failed", "--limit", "10001"],
                "--limit",
                "10001",
            ),
            (
                vec![
                    "list",
                    "q",
                    "--state",
                    "failed",
                    "--offset",
                    "18446744073709551615",
                ],
                "--offset",
                "18446744073709551615",
            ),
            (
                vec!["add", "q", "n", "--attempts", "4294967296"],
                "--attempts",
                "4294967296",
            ),
            (
                vec!["add", "q", "n", "--priority", "-1001"],
                "--priority",
                "-1001",
            ),
            (
                vec![
                    "add",
                    "q",
                    "n",
                    "--debounce-id",
                    "d",
                    "--debounce-ttl",
                    "0s",
                ],
                "--debounce-ttl",
                "0s",
            ),
            (
                vec![
                    "add",
                    "q",
                    "n",
                    "--debounce-id",
                    "d",
                    "--debounce-ttl",
                    "200000000000d",
                ],
                "--debounce-ttl",
                "200000000000d",
            ),
            (
                vec!["add", "q", "n", "--dedup-id", "d", "--dedup-ttl", "-1s"],
                "--dedup-ttl",
                "-1s",
            ),
            (vec!["priority", "q", "j", "1001"], "PRIORITY", "1001"),
            (
                vec!["stats", "--watch", "--interval", "0s"],
                "--interval",
                "0s",
            ),
            (vec!["spool", "replay", "--chunk", "-5"], "--chunk", "-5"),
            (vec!["search", "q", "--state", "done"], "--state", "done"),
            (
                vec!["search", "q", "--since", "200000000000d"],
                "--since",
                "200000000000d",
            ),
            (vec!["search", "q", "--since", "abc"], "--since", "abc"),
            (vec!["search", "q", "--since", "0s"], "--since", "0s"),
            (vec!["search", "q", "--limit", "0"], "--limit", "0"),
            (vec!["search", "q", "--limit", "1001"], "--limit", "1001"),
            (vec!["spool", "replay", "--pause", "2h"], "--pause", "2h"),
            (
                vec!["schedule", "add", "q", "s", "n", "--every", "-1m"],
                "--every",
                "-1m",
            ),
        ]);
        // the largest values in range are taken
        let cli = Cli::try_parse_from([
            "jobq",
            "list",
            "q",
            "--state",
            "failed",
            "--limit",
            "10000",
            "--offset",
            "1000000000",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::List {
                limit: 10_000,
                offset: 1_000_000_000,
                ..
            }
        ));
    }

    #[test]
    fn group_flags_are_checked_and_named() {
        refused_naming_option_and_value(&[
            (vec!["add", "q", "n", "--group", "a b"], "--group", "a b"),
            (vec!["add", "q", "n", "--group", "-x/y"], "--group", "-x/y"),
            (vec!["limits", "q", "--rate", "10"], "--rate", "10"),
            (vec!["limits", "q", "--rate", "0/1s"], "--rate", "0/1s"),
            (
                vec!["limits", "q", "--group-rate", "5/0s"],
                "--group-rate",
                "5/0s",
            ),
            (
                vec!["limits", "q", "--group-rate", "5/366d"],
                "--group-rate",
                "5/366d",
            ),
            (
                vec!["limits", "q", "--group-rate", "x/1s"],
                "--group-rate",
                "x/1s",
            ),
            (
                vec!["limits", "q", "--group-concurrency", "0"],
                "--group-concurrency",
                "0",
            ),
            (
                vec!["limits", "q", "--group-concurrency", "1", "--group", "{x}"],
                "--group",
                "{x}",
            ),
            (vec!["groups", "q", "--limit", "0"], "--limit", "0"),
            // --group alone changes nothing: it says which group the --group-* flags change
            (vec!["limits", "q", "--group", "vip"], "--group", "group-"),
            (
                vec!["limits", "q", "--group-rate", "1/1s", "--clear-group-rate"],
                "--group-rate",
                "--clear-group-rate",
            ),
        ]);
        let cli = Cli::try_parse_from([
            "jobq",
            "limits",
            "q",
            "--group-rate",
            "10/1m",
            "--group-concurrency",
            "3",
            "--group",
            "tenant:42",
        ])
        .unwrap();
        let Command::Limits(l) = cli.command else {
            panic!("not limits")
        };
        assert_eq!(
            l.group_rate,
            Some(Rate {
                max: 10,
                window: Duration::from_secs(60)
            })
        );
        assert_eq!(
            (l.group_concurrency, l.group.as_deref()),
            (Some(3), Some("tenant:42"))
        );
        assert!(l.changes_anything());
        let cli = Cli::try_parse_from(["jobq", "groups", "q"]).unwrap();
        assert!(matches!(cli.command, Command::Groups { limit: 50, .. }));
    }

    #[test]
    fn negative_priority_is_a_value() {
        let cli = Cli::try_parse_from(["jobq", "add", "q", "n", "--priority", "-5"]).unwrap();
        let Command::Add(a) = cli.command else {
            panic!("not add")
        };
        assert_eq!(a.opts.priority, Some(-5));
        let cli = Cli::try_parse_from(["jobq", "priority", "q", "j", "-5"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Priority { priority: -5, .. }
        ));
    }
}
