//! Every Redis key jobq uses is built here, and nowhere else.
//!
//! All keys of one queue share the hash tag `{<prefix>:<queue>}` so that they live in one
//! Redis Cluster slot and every Lua script touching a queue is single-slot. Scripts that
//! need a per-job key they could not be given in KEYS (ids fetched inside the script)
//! derive it from [`QueueKeys::job_prefix`], which carries the same hash tag.

/// Key names of one queue.
#[derive(Debug, Clone)]
pub struct QueueKeys {
    base: String,
}

impl QueueKeys {
    /// Keys of `queue` under `prefix` (the queue name must already be validated).
    pub fn new(prefix: &str, queue: &str) -> Self {
        Self {
            base: format!("{{{prefix}:{queue}}}"),
        }
    }

    /// The hash-tagged base, `{prefix:queue}`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.base)
    }

    /// Hash of queue-wide settings and counters (paused flag, monotonic totals, lane version).
    pub fn meta(&self) -> String {
        self.key("meta")
    }

    /// Sorted set of the priority lanes that exist (member and score = priority).
    pub fn lanes(&self) -> String {
        self.key("lanes")
    }

    /// Ready stream of one priority lane: an entry carries a job id (`i`), or is a lean
    /// job itself (`job.rs` `lean_id`).
    pub fn lane(&self, priority: i32) -> String {
        format!("{}{priority}", self.lane_prefix())
    }

    /// What every lane's key starts with, its priority following (a scan of the lanes).
    pub fn lane_prefix(&self) -> String {
        format!("{}:ready:", self.base)
    }

    /// Set of the lean jobs (stored as their lane entry alone, `job.rs` `lean_id`) that
    /// were given a record (a hash) while their entry is still theirs.
    pub fn lean_records(&self) -> String {
        self.key("lr")
    }

    /// A fast claim's note of where its lane's consumer group stood (`claim_fast.lua`):
    /// written and deleted within one transaction, so never seen holding anything.
    pub fn claim_scratch(&self) -> String {
        self.key("fast")
    }

    /// The front lane: reclaimed jobs, read before every priority lane (see
    /// [`FRONT_LANE`]).
    pub fn front_lane(&self) -> String {
        self.lane(FRONT_LANE)
    }

    /// Delayed (and retry-pending) jobs, scored by due time in ms.
    pub fn delayed(&self) -> String {
        self.key("delayed")
    }

    /// Completed jobs kept for retention, scored by finish time in ms.
    pub fn completed(&self) -> String {
        self.key("completed")
    }

    /// Failed jobs kept for retention, scored by finish time in ms.
    pub fn failed(&self) -> String {
        self.key("failed")
    }

    /// Cancelled jobs kept for retention (as failed ones), scored by cancel time in ms.
    pub fn cancelled(&self) -> String {
        self.key("cancelled")
    }

    /// Cancel requests for running attempts (sorted set, `<entry id> <job id>` → request
    /// time in ms): each worker holding jobs of the queue looks up its attempts here and
    /// stops those named. Answered when the attempt ends cancelled; a stale one (its attempt
    /// completed anyway) is removed by a later cancel (scripts/cancel.rs).
    pub fn cancels(&self) -> String {
        self.key("cancels")
    }

    /// Wake-up marker: workers block on it (BZPOPMIN); adds and retries touch it.
    pub fn marker(&self) -> String {
        self.key("marker")
    }

    /// Short lock so concurrent reclaimers of a queue do not repeat each other's work.
    pub fn reclaim_lock(&self) -> String {
        self.key("reclaim-lock")
    }

    /// Repeatable-job schedules: hash of schedule id → stored definition (JSON).
    pub fn schedules(&self) -> String {
        self.key("schedules")
    }

    /// Schedules by next due tick (sorted set, score = ms).
    pub fn schedules_due(&self) -> String {
        self.key("schedules:due")
    }

    /// Wake-up marker of the workers' schedule loops (sorted set, touched by upserts).
    pub fn schedules_wake(&self) -> String {
        self.key("schedules:wake")
    }

    /// Queue rate-limit window counter (string with a TTL of one window).
    pub fn rate_limiter(&self) -> String {
        self.key("limiter")
    }

    /// Throttle key of a deduplication id (string with a TTL; holds the job id).
    pub fn dedup(&self, dedup_id: &str) -> String {
        format!("{}:dedup:{dedup_id}", self.base)
    }

    /// Key of a debounce id (string with a TTL; holds the id of the job that later adds
    /// with the id replace while it has not started).
    pub fn debounce(&self, debounce_id: &str) -> String {
        format!("{}:debounce:{debounce_id}", self.base)
    }

    /// The adds a debounce id's job took (hash: the id each add was sent with → the job
    /// that took it; the key's TTL, at most 1,000 fields): an add sent again (its
    /// reply lost, then replayed from the spool) finds it was applied already.
    pub fn debounce_merged(&self, debounce_id: &str) -> String {
        format!("{}:dbm:{debounce_id}", self.base)
    }

    /// Event stream (trimmed).
    pub fn events(&self) -> String {
        self.key("events")
    }

    /// Per-minute completed counts, newest first (bounded list).
    pub fn metrics_completed(&self) -> String {
        self.key("metrics:completed")
    }

    /// Per-minute failed counts, newest first (bounded list).
    pub fn metrics_failed(&self) -> String {
        self.key("metrics:failed")
    }

    /// Flow parents waiting for their children (sorted set, score = when to look up their
    /// children in case a notification was lost, ms).
    pub fn waiting_children(&self) -> String {
        self.key("wc")
    }

    /// Flow jobs stored but not yet committed by their flow's add (sorted set, score = when
    /// staged, ms): not runnable until committed, taken back if the add never finishes.
    pub fn staged(&self) -> String {
        self.key("staged")
    }

    /// Outbox of finished flow children (stream): each entry carries a child's outcome to
    /// its parent, whose queue may live on another Cluster node, and is deleted once
    /// delivered.
    pub fn outbox(&self) -> String {
        self.key("outbox")
    }

    /// Groups ([`crate::GroupInfo`]): the groups whose turn it is to have a job claimed,
    /// a sorted set scored by turn (the claim pops the lowest and puts it back last). A
    /// group is in it exactly while it has waiting jobs and is not parked.
    pub fn group_ring(&self) -> String {
        self.key("gring")
    }

    /// Groups held back by a limit (sorted set): score = when a rate window reopens (ms),
    /// or `inf` for a group at its concurrency cap (put back in the ring when one of its
    /// jobs finishes).
    pub fn group_parked(&self) -> String {
        self.key("gpark")
    }

    /// Waiting jobs per group (sorted set, group → count; groups with none are absent).
    pub fn group_waiting(&self) -> String {
        self.key("gwait")
    }

    /// Active jobs per group (sorted set, group → count; groups with none are absent).
    pub fn group_active(&self) -> String {
        self.key("gact")
    }

    /// Per-group limits (hash): `c` and `r` the queue's defaults, `c:<group>` and
    /// `r:<group>` one group's overrides; `c` values are a concurrency, `r` values
    /// `<max>/<window ms>`.
    pub fn group_limits(&self) -> String {
        self.key("glimits")
    }

    /// The waiting jobs of one group (sorted set, score = −priority·2⁴² + a sequence
    /// number, so the lowest is the highest priority, first in). Scripts derive it from
    /// [`QueueKeys::job_prefix`] (`group_keys` in the prelude).
    pub fn group_queue(&self, group: &str) -> String {
        format!("{}:gq:{group}", self.base)
    }

    /// One group's rate window counter (string with the window as TTL), derived by the
    /// scripts as [`QueueKeys::group_queue`] is.
    pub fn group_rate(&self, group: &str) -> String {
        format!("{}:grl:{group}", self.base)
    }

    /// The prefix of per-job keys; scripts append the job id (`…:j:<id>`). One letter, not
    /// `job:`: the job hash is the one key per job, and a key of up to 28 bytes fits Redis's
    /// 32-byte allocation (a longer one takes 48).
    pub fn job_prefix(&self) -> String {
        self.key("j:")
    }

    /// Hash of one job.
    pub fn job(&self, id: &str) -> String {
        format!("{}:j:{id}", self.base)
    }

    /// Hash of a flow parent's children: `<queue>/<id>` → `p<position> <name>` while the
    /// child has not finished, then `<c|f|r|x><position> <name>\n<return value | reason>`
    /// (`c` completed, `f` failed, `r` removed, `x` cancelled; the position keeps the
    /// flow's order). Scripts derive it from [`QueueKeys::job_prefix`] as they do the logs
    /// key (`kids_key` in the prelude).
    pub fn job_kids(&self, id: &str) -> String {
        format!("{}:kids:{id}", self.base)
    }

    /// List of one job's log lines. A namespace of its own, so no job id can collide with
    /// it; scripts derive it from [`QueueKeys::job_prefix`] by swapping the final `j:` for
    /// `logs:` (see `logs_key` in the scripts' prelude).
    pub fn job_logs(&self, id: &str) -> String {
        format!("{}:logs:{id}", self.base)
    }
}

/// The lane number of a queue's front lane, above every job priority (at most 1000): a job
/// reclaimed from a dead worker goes there, so it runs before the jobs that were still
/// waiting when it first started, in the order it was reclaimed, instead of joining the
/// back of its lane. Its hash keeps its own priority (`prio`) and records the lane it waits
/// in (`ln`) until it gets an entry in its own lane again (a retry, a new priority).
pub const FRONT_LANE: i32 = 1_001;

/// The lane number of a queue's group lane: a claim gives each grouped job it takes an
/// entry there, so an active grouped job is pending in a stream like any other (leases,
/// reclaim and acknowledgement are the same). Waiting grouped jobs are in their group's
/// queue ([`QueueKeys::group_queue`]), never in a stream; the claim reads no entry of this
/// lane but those it has just added.
pub const GROUP_LANE: i32 = 1_002;

/// Registry of known queue names under a prefix (a set; the one key outside any queue's slot).
pub fn queue_registry(prefix: &str) -> String {
    format!("{prefix}:queues")
}

/// Consumer group every worker joins on every lane stream.
pub const GROUP: &str = "jobq";

/// Key names of the worker registry under a prefix: which workers are alive, and what each
/// says about itself. All share the hash tag `{<prefix>/workers}`, so the registry and the
/// records are one Cluster slot and each script on them is single-slot; the `/` cannot occur
/// in a queue name, so no queue's keys share the tag.
#[derive(Debug, Clone)]
pub struct WorkerKeys {
    base: String,
}

impl WorkerKeys {
    /// The registry keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            base: format!("{{{prefix}/workers}}"),
        }
    }

    /// Sorted set of live workers: member = worker id (its consumer name), score = when its
    /// record expires (ms, Redis clock) unless it heartbeats again.
    pub fn registry(&self) -> String {
        format!("{}:all", self.base)
    }

    /// The prefix of the worker records; scripts append the worker id.
    pub fn record_prefix(&self) -> String {
        format!("{}:w:", self.base)
    }

    /// One worker's record (hash with a TTL): `info` (its identity and running jobs, JSON)
    /// and `seen` (its last heartbeat, ms, Redis clock).
    pub fn record(&self, id: &str) -> String {
        format!("{}:w:{id}", self.base)
    }
}

/// A value of the handler cache: `{prefix}:cache:{namespace}:{key}`. The handler primitives
/// (cache, lock, rate limiter) add no hash tag of their own: each of their operations
/// touches one key, so any Cluster slot will do, and they stay out of the queues' slots.
pub fn cache_key(prefix: &str, namespace: &str, key: &str) -> String {
    format!("{prefix}:cache:{namespace}:{key}")
}

/// SCAN pattern of the cache keys of `namespace` whose key starts with `key_prefix`. Every
/// glob character (`* ? [ ] \`) of the literal part is escaped, so `a*` matches only keys
/// that start with `a*`.
pub fn cache_key_pattern(prefix: &str, namespace: &str, key_prefix: &str) -> String {
    let literal = cache_key(prefix, namespace, key_prefix);
    format!("{}*", escape_glob(&literal))
}

/// Stampede lock of one cache key while a caller computes its value:
/// `{prefix}:cache-fill:{namespace}:{key}`. Outside `…:cache:…`, so invalidating a prefix
/// never removes a computation in progress.
pub fn cache_fill_key(prefix: &str, namespace: &str, key: &str) -> String {
    format!("{prefix}:cache-fill:{namespace}:{key}")
}

/// A named handler lock: `{prefix}:lock:{name}` (a string holding the owner's token).
pub fn lock_key(prefix: &str, name: &str) -> String {
    format!("{prefix}:lock:{name}")
}

/// The call log of one rate-limited key: `{prefix}:rate:{name}` (a sorted set scored by
/// call time).
pub fn rate_key(prefix: &str, name: &str) -> String {
    format!("{prefix}:rate:{name}")
}

/// `s` with the characters Redis glob patterns treat specially escaped by a backslash.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Redis Cluster slot of `key`: CRC16 (XMODEM) of its hash tag — the part between the
/// first `{` and the next `}`, when not empty — or of the whole key, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    let mut crc: u16 = 0;
    for &byte in tagged.unwrap_or(key) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let k = QueueKeys::new("jobq", "video");
        for key in [
            k.meta(),
            k.lanes(),
            k.lane(5),
            k.delayed(),
            k.completed(),
            k.failed(),
            k.cancelled(),
            k.cancels(),
            k.marker(),
            k.reclaim_lock(),
            k.schedules(),
            k.schedules_due(),
            k.schedules_wake(),
            k.rate_limiter(),
            k.dedup("x"),
            k.debounce("x"),
            k.events(),
            k.job("abc"),
            k.job_logs("abc"),
            k.job_kids("abc"),
            k.waiting_children(),
            k.staged(),
            k.outbox(),
        ] {
            assert!(key.starts_with("{jobq:video}:"), "{key}");
        }
        assert_eq!(k.job("abc"), format!("{}abc", k.job_prefix()));
        // the scripts' logs_key: job prefix minus "j:" plus "logs:"
        let p = k.job_prefix();
        assert_eq!(
            k.job_logs("a:logs"),
            format!("{}logs:a:logs", &p[..p.len() - 2])
        );
        assert_ne!(k.job("a:logs"), k.job_logs("a"));
        assert_eq!(k.lane(-3), "{jobq:video}:ready:-3");
    }

    #[test]
    fn slots_are_those_redis_computes() {
        // CRC16/XMODEM check value of "123456789" is 0x31C3 = 12739
        assert_eq!(key_slot(b"123456789"), 12_739);
        // values from `redis-cli CLUSTER KEYSLOT`
        assert_eq!(key_slot(b"foo"), 12_182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // an empty tag hashes the whole key (`CLUSTER KEYSLOT {}x` is 10595)
        assert_eq!(key_slot(b"{}x"), 10_595);
        assert_ne!(key_slot(b"{}x"), key_slot(b"x"));
        let k = QueueKeys::new("jobq", "video");
        assert_eq!(
            key_slot(k.meta().as_bytes()),
            key_slot(k.job("1").as_bytes())
        );
    }

    #[test]
    fn primitive_keys_have_no_hash_tag_and_escape_globs() {
        assert_eq!(cache_key("jobq", "t", "user:1"), "jobq:cache:t:user:1");
        assert_eq!(cache_fill_key("jobq", "t", "k"), "jobq:cache-fill:t:k");
        assert_eq!(lock_key("jobq", "nightly"), "jobq:lock:nightly");
        assert_eq!(rate_key("jobq", "api"), "jobq:rate:api");
        assert_eq!(cache_key_pattern("jobq", "t", ""), "jobq:cache:t:*");
        assert_eq!(
            cache_key_pattern("jobq", "t", r"a*b?[c]\"),
            r"jobq:cache:t:a\*b\?\[c\]\\*"
        );
    }

    #[test]
    fn the_worker_registry_and_records_share_one_slot() {
        let w = WorkerKeys::new("jobq");
        assert_eq!(w.registry(), "{jobq/workers}:all");
        assert_eq!(w.record("h:1"), format!("{}h:1", w.record_prefix()));
        assert_eq!(
            key_slot(w.registry().as_bytes()),
            key_slot(w.record("any").as_bytes())
        );
        // a queue named "workers" has a tag of its own
        assert_ne!(QueueKeys::new("jobq", "workers").base(), "{jobq/workers}");
    }
}
