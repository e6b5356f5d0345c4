//! Replay: moving spooled jobs into Redis once it answers again.
//!
//! Any jobq process with the same spool dir replays: the worker every few seconds
//! ([`replay_loop`], started by `Worker::run`), a [`super::Producer`] when Redis answers
//! again or it (re)connects (its own file included), `jobq add`/`add-bulk` before adding,
//! and `jobq spool replay` on demand.
//!
//! A replayer takes a file only if it can lock it (see `spool.rs`): files of live producers
//! and of other replayers are skipped, and so are files spooled for another Redis than the
//! replayer's (the target in the file's header; logged once per file). It stores the jobs
//! in chunks with the `add_job` script (one round trip per chunk and queue), each job under
//! its spooled id as `job_id`, so storing a job twice is a no-op. After each chunk it
//! writes the byte offset reached to `<file>.done` and syncs it: a replayer killed midway
//! leaves the offset of its last stored chunk, and the next one resumes there — at most
//! that one chunk in flight is sent again, and it is deduplicated by id. When the file is
//! done it is deleted (still locked, so a replayer that opened it meanwhile sees it gone),
//! then its `.done`.
//!
//! Only a connection error (Redis down again) stops a replay, keeping its progress. A line
//! that does not decode as a valid job (a torn last line included, unless it decodes whole:
//! see `spool.rs`), or whose job Redis refuses (a chunk refused for any other reason is
//! retried job by job to find it), is appended to `<file>.rejected` (synced before the
//! progress passes it) with a warning naming the file and job, and the replay carries on.
//! A file whose header is missing or corrupt is never replayed: nothing says which Redis
//! its jobs are for, and storing them into whichever Redis the replayer has could send
//! production jobs to staging. It is renamed `<file>.orphan` with a warning, and listed in
//! [`ReplayReport::orphaned`] and by `jobq spool status`. A file that cannot be read is
//! logged and left; the other files are still replayed.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::spool::{self, decode, done_path, orphan_path, rejected_path, target_of, OpenSpool};
use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::job::NewJob;
use crate::queue::{byte_chunks, checked_data, Queue, BULK_CHUNK};

/// Default jobs per replay chunk (and per progress record).
pub const DEFAULT_REPLAY_CHUNK: usize = 500;
/// How often a worker looks for spool files to replay.
pub const REPLAY_EVERY: Duration = Duration::from_secs(5);

/// How a replay proceeds.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Jobs per chunk: one `add_job` call per queue in it, then one progress record
    /// (1–1,000; default 500).
    pub chunk: usize,
    /// Pause after each chunk, to spare a Redis that has just come back (default none).
    pub pause: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            chunk: DEFAULT_REPLAY_CHUNK,
            pause: Duration::ZERO,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Spool files replayed to their end (and deleted).
    pub files: usize,
    /// Jobs stored in Redis.
    pub stored: u64,
    /// Jobs Redis already had (sent again after an interrupted replay, or stored before a
    /// timeout that made the producer spool them): not stored twice.
    pub duplicates: u64,
    /// Lines that could not be replayed, moved to `<file>.rejected`: unreadable (a torn
    /// last line that does not decode included), an invalid job, or refused by Redis.
    pub skipped: u64,
    /// Files left alone because another process holds them (a live producer or another
    /// replayer).
    pub busy: usize,
    /// Files left alone because they were spooled for another Redis.
    pub other_redis: usize,
    /// Files set aside, not replayed, because their header is missing or corrupt: where
    /// each is now (`<file>.orphan`).
    pub orphaned: Vec<PathBuf>,
    /// Files whose replay stopped at an error of the file itself (a full disk, a file that
    /// cannot be read or written): kept, with the progress recorded so far, for the next
    /// replay. What they stored before the error is counted above.
    pub unfinished: Vec<PathBuf>,
}

impl ReplayReport {
    /// Jobs this replay sent (stored or found already stored).
    pub fn sent(&self) -> u64 {
        self.stored + self.duplicates
    }

    /// Adds the counts of `other` to these.
    pub fn add(&mut self, other: &ReplayReport) {
        self.files += other.files;
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.skipped += other.skipped;
        self.busy += other.busy;
        self.other_redis += other.other_redis;
        self.orphaned.extend(other.orphaned.iter().cloned());
        self.unfinished.extend(other.unfinished.iter().cloned());
    }
}

/// Replays every spool file of `dir` that no other process holds, oldest first, into the
/// Redis of `redis` (each job under the prefix it was spooled with); files spooled for
/// another Redis are left alone. Stops between chunks when `stop` is cancelled, and at the
/// first error that stops every file (Redis unreachable, or refusing writes: progress so
/// far is kept); a file that fails otherwise is logged, listed as unfinished, and the
/// others are replayed.
pub async fn replay_dir(
    redis: &Redis,
    dir: &Path,
    opts: &ReplayOptions,
    stop: Option<&CancellationToken>,
) -> Result<ReplayReport> {
    let dir_owned = dir.to_path_buf();
    let files = blocking(move || spool::pending_files(&dir_owned))
        .await
        .map_err(|source| Error::Spool {
            path: dir.to_path_buf(),
            source,
        })?;
    let mut report = ReplayReport::default();
    for path in files {
        if stop.is_some_and(CancellationToken::is_cancelled) {
            break;
        }
        let p = path.clone();
        let taken = match blocking(move || take(&p)).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e,
                    "spool file cannot be opened: left for later");
                continue;
            }
        };
        let Some(open) = taken else {
            report.busy += 1;
            continue;
        };
        match replay_file(redis, open, opts, stop, &mut report).await {
            Ok(()) => {}
            Err(e) if stops_replay(&e) => return Err(e),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e,
                    "spool file not replayed to its end (kept for the next replay); the others are");
                report.unfinished.push(path);
            }
        }
    }
    Ok(report)
}

/// Opens and locks spool file `path`; None when another process holds it or it is gone.
fn take(path: &Path) -> io::Result<Option<OpenSpool>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(OpenSpool {
            file,
            path: path.to_path_buf(),
        })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// What a locked spool file holds for a replay.
enum Taken {
    /// Deleted meanwhile: the replayer that held it finished it.
    Gone,
    /// No usable header (why), so no known Redis: to be set aside.
    Orphan(OpenSpool, String),
    /// Its unreplayed bytes.
    Rest(Rest),
}

/// What is left of a locked spool file: its unreplayed bytes and where they start.
struct Rest {
    open: OpenSpool,
    /// The Redis its jobs are for (None: any).
    target: Option<String>,
    start: u64,
    bytes: Vec<u8>,
    progress: File,
}

fn read_rest(open: OpenSpool) -> io::Result<Taken> {
    // deleted between our open and our lock: the replayer that held it finished it
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if open.file.metadata()?.nlink() == 0 {
            return Ok(Taken::Gone);
        }
    }
    let (header, first_job) = match spool::read_header(&open.file)? {
        Ok(h) => h,
        Err(why) => return Ok(Taken::Orphan(open, why)),
    };
    let target = header.target;
    let done = done_path(&open.path);
    let mut progress = spool::private_file()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&done)?;
    let mut text = String::new();
    // (a record that is not text is garbled too)
    let _ = progress.read_to_string(&mut text);
    let len = open.file.metadata()?.len();
    let recorded = text.trim().parse::<u64>().ok();
    let start = spool::resume_at(recorded, first_job, len);
    if recorded.is_some_and(|at| at > len) {
        tracing::warn!(file = %open.path.display(), recorded = text.trim(), len,
            "spool replay progress is past the file's end (a corrupt record): replaying it \
             from the start");
    }
    let mut file = &open.file;
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Taken::Rest(Rest {
        open,
        target,
        start,
        bytes,
        progress,
    }))
}

/// Sets aside spool file `open` (header missing or corrupt: `why`) as `<file>.orphan`,
/// still locked, so no replayer takes it; drops its progress file. Its new path, or None
/// when another replayer set it aside first.
fn set_aside(open: OpenSpool) -> io::Result<Option<PathBuf>> {
    let to = orphan_path(&open.path);
    match std::fs::rename(&open.path, &to) {
        Ok(()) => {}
        // a replayer that opened it before another renamed it
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let _ = std::fs::remove_file(done_path(&open.path));
    spool::sync_dir(open.path.parent().unwrap_or(Path::new(".")))?;
    Ok(Some(to))
}

/// Records that the file's bytes up to `offset` are stored, durably.
fn record(progress: &mut File, offset: u64) -> io::Result<()> {
    // fixed width: each record overwrites the previous one whole
    progress.seek(SeekFrom::Start(0))?;
    progress.write_all(format!("{offset:020}\n").as_bytes())?;
    progress.sync_data()
}

/// Replays one locked spool file from its recorded progress to its end, then deletes it;
/// leaves it alone when it was spooled for another Redis than `redis`.
pub(crate) async fn replay_file(
    redis: &Redis,
    open: OpenSpool,
    opts: &ReplayOptions,
    stop: Option<&CancellationToken>,
    report: &mut ReplayReport,
) -> Result<()> {
    let path = open.path.clone();
    let Some(rest) = take_rest(open, report).await? else {
        return Ok(());
    };
    if let Some(target) = &rest.target {
        let ours = target_of(redis.addr());
        if *target != ours {
            skipped_for_target(&path, target, &ours);
            report.other_redis += 1;
            return Ok(());
        }
    }
    let Rest {
        open,
        start,
        bytes,
        progress,
        ..
    } = rest;
    let (lines, torn_end) = split_lines(&bytes, start);
    let mut file = FileReplay::new(redis, &path, torn_end, progress);
    let finished = match file.replay(&lines, start, opts, stop).await {
        Ok(finished) => finished,
        Err(e) => {
            // what was stored before the error counts, whatever stopped it
            report.add(&file.done);
            return Err(e);
        }
    };
    if !finished {
        report.add(&file.done);
        return Ok(());
    }
    let FileReplay {
        mut done, progress, ..
    } = file;
    delete_replayed(&path, progress, open).await?;
    done.files += 1;
    tracing::info!(
        file = %path.display(),
        stored = done.stored,
        duplicates = done.duplicates,
        skipped = done.skipped,
        "replayed spool file into Redis"
    );
    report.add(&done);
    Ok(())
}

/// Whether error `e` of a store stops the whole replay, the file kept: Redis is unreachable,
/// or refuses every write for a reason of its own (out of memory, read-only, unable to
/// persist), which would otherwise send a whole file of good jobs to `.rejected`.
fn stops_replay(e: &Error) -> bool {
    e.is_connection() || e.is_write_refusal()
}

/// The error of a file step, naming the file.
fn spool_err(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Spool {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the unreplayed rest of a locked spool file; `None` when there is nothing to
/// replay: it is gone (another replayer finished it), or it has no usable header and is
/// set aside as an orphan (reported).
async fn take_rest(open: OpenSpool, report: &mut ReplayReport) -> Result<Option<Rest>> {
    let path = open.path.clone();
    match blocking(move || read_rest(open))
        .await
        .map_err(spool_err(&path))?
    {
        Taken::Gone => Ok(None),
        Taken::Orphan(open, why) => {
            if let Some(to) = blocking(move || set_aside(open))
                .await
                .map_err(spool_err(&path))?
            {
                tracing::warn!(file = %path.display(), moved_to = %to.display(), problem = %why,
                    "spool file has no usable header, so which Redis its jobs are for is \
                     unknown: set aside, not replayed");
                report.orphaned.push(to);
            }
            Ok(None)
        }
        Taken::Rest(rest) => Ok(Some(rest)),
    }
}

/// The lines of `bytes` (starting at file offset `start`), each with the offset just past
/// it, and the end offset of a last line without its newline (a torn write, never
/// acknowledged to its producer), which is decoded like the others: stored when it decodes
/// whole, else moved to `.rejected`.
fn split_lines(bytes: &[u8], start: u64) -> (Vec<(u64, &[u8])>, Option<u64>) {
    let mut lines = Vec::new();
    let mut at = 0usize;
    while let Some(n) = bytes[at..].iter().position(|&b| b == b'\n') {
        lines.push((start + (at + n + 1) as u64, &bytes[at..at + n]));
        at += n + 1;
    }
    let torn_end = (at < bytes.len()).then(|| start + bytes.len() as u64);
    if let Some(end) = torn_end {
        lines.push((end, &bytes[at..]));
    }
    (lines, torn_end)
}

/// Deletes a replayed file and its progress record while still holding its lock: whoever
/// opened it meanwhile sees it gone.
async fn delete_replayed(path: &Path, progress: File, open: OpenSpool) -> Result<()> {
    let done = done_path(path);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let p = path.to_path_buf();
    blocking(move || {
        std::fs::remove_file(&p)?;
        let _ = std::fs::remove_file(&done);
        drop(progress);
        drop(open);
        spool::sync_dir(&dir)
    })
    .await
    .map_err(spool_err(path))
}

/// One spool file's replay in progress: chunk by chunk, each chunk's jobs stored with one
/// `add_job` call per queue, its unusable lines moved to `.rejected`, then its end recorded
/// as the file's progress.
struct FileReplay<'a> {
    redis: &'a Redis,
    path: &'a Path,
    rejected: PathBuf,
    /// End offset of a torn last line, if any.
    torn_end: Option<u64>,
    /// The progress record, kept open between chunks.
    progress: File,
    /// Queue handles by (prefix, queue).
    queues: HashMap<(String, String), Queue>,
    /// What this file's replay did so far.
    done: ReplayReport,
    /// The current chunk's lines to move to `.rejected`, each with its newline.
    rejects: Vec<u8>,
}

impl<'a> FileReplay<'a> {
    fn new(redis: &'a Redis, path: &'a Path, torn_end: Option<u64>, progress: File) -> Self {
        FileReplay {
            redis,
            path,
            rejected: rejected_path(path),
            torn_end,
            progress,
            queues: HashMap::new(),
            done: ReplayReport::default(),
            rejects: Vec::new(),
        }
    }

    /// Replays `lines` chunk by chunk; `false` when `stop` fired first.
    async fn replay(
        &mut self,
        lines: &[(u64, &[u8])],
        start: u64,
        opts: &ReplayOptions,
        stop: Option<&CancellationToken>,
    ) -> Result<bool> {
        let chunk = opts.chunk.clamp(1, BULK_CHUNK);
        let now = crate::clock::now_ms();
        for part in lines.chunks(chunk) {
            if stop.is_some_and(CancellationToken::is_cancelled) {
                return Ok(false);
            }
            for group in self.group(part, now) {
                self.store(group).await?;
            }
            self.flush_rejects().await?;
            let end = part.last().map_or(start, |(end, _)| *end);
            self.record_progress(end).await;
            if !opts.pause.is_zero() {
                tokio::time::sleep(opts.pause).await;
            }
        }
        Ok(true)
    }

    /// Decodes a chunk's lines into one group per queue, each in file order; unusable
    /// lines go to the rejects.
    fn group<'l>(&mut self, part: &[(u64, &'l [u8])], now: u64) -> Vec<Group<'l>> {
        let mut groups: Vec<Group> = Vec::new();
        for (end, text) in part {
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let (key, job) = match decode(text, now) {
                Ok(decoded) => decoded,
                Err(e) => {
                    let torn = Some(*end) == self.torn_end;
                    tracing::warn!(file = %self.path.display(), offset = end, error = %e, torn,
                        rejected = %self.rejected.display(),
                        "unusable spool line: moved to the rejected file");
                    self.reject(text);
                    continue;
                }
            };
            match groups.iter_mut().find(|g| g.key == key) {
                Some(g) => {
                    g.jobs.push(job);
                    g.lines.push(text);
                }
                None => groups.push(Group {
                    key,
                    jobs: vec![job],
                    lines: vec![text],
                }),
            }
        }
        groups
    }

    /// Stores one queue's jobs of a chunk, in calls of about 1 MiB at most as online adds
    /// are (a job over that alone: no call makes Redis store much at once); a job over the
    /// largest caps anyone may configure (64 MiB) is rejected. When Redis refuses a call for a reason of its own, finds the
    /// jobs it refuses one by one (any of the call it stored before failing come back as
    /// duplicates) and rejects those. Only an unreachable Redis is an error.
    async fn store(&mut self, g: Group<'_>) -> Result<()> {
        let Some(q) = self.queue(&g).await? else {
            return Ok(());
        };
        // The caps of the producer that spooled a job are unknown here (the replayer's may
        // be lower: a `jobq add` with default caps replaying a worker's spool), so a job is
        // held to the largest caps anyone may set: one stored job never blocks Redis past
        // what those allow, and no job its producer took is refused for the replayer's.
        let caps = crate::config::JobCaps {
            max_data_bytes: crate::config::JobCaps::MAX_BYTES,
            max_opts_bytes: crate::config::JobCaps::MAX_BYTES,
        };
        let (mut jobs, mut lines, mut data) = (Vec::new(), Vec::new(), Vec::new());
        for (job, text) in g.jobs.into_iter().zip(g.lines) {
            match checked_data(&job, caps) {
                Ok(d) => {
                    jobs.push(job);
                    lines.push(text);
                    data.push(d);
                }
                Err(e) => {
                    tracing::warn!(file = %self.path.display(), id = job_id(&job),
                        queue = %g.key.1, error = %e, rejected = %self.rejected.display(),
                        "spooled job over the largest size caps: moved to the rejected file");
                    self.reject(text);
                }
            }
        }
        for range in byte_chunks(&data) {
            let (jobs, lines, data) = (&jobs[range.clone()], &lines[range.clone()], &data[range]);
            let e = match q.add_encoded(jobs, data).await {
                Ok(added) => {
                    self.done.count(&added);
                    continue;
                }
                Err(e) if stops_replay(&e) => return Err(e),
                Err(e) => e,
            };
            tracing::debug!(file = %self.path.display(), queue = %g.key.1, error = %e,
                "spooled chunk refused: retrying its jobs one by one");
            for ((job, text), d) in jobs.iter().zip(lines).zip(data) {
                match q
                    .add_encoded(std::slice::from_ref(job), std::slice::from_ref(d))
                    .await
                {
                    Ok(added) => self.done.count(&added),
                    Err(e) if stops_replay(&e) => return Err(e),
                    Err(e) => {
                        tracing::warn!(file = %self.path.display(), id = job_id(job),
                            queue = %g.key.1, error = %e, rejected = %self.rejected.display(),
                            "Redis refused a spooled job: moved to the rejected file");
                        self.reject(text);
                    }
                }
            }
        }
        Ok(())
    }

    /// The group's queue; `None` (its jobs rejected) when its name is invalid.
    async fn queue(&mut self, g: &Group<'_>) -> Result<Option<Queue>> {
        if let Some(q) = self.queues.get(&g.key) {
            return Ok(Some(q.clone()));
        }
        match Queue::open(self.redis, &g.key.0, &g.key.1).await {
            Ok(q) => {
                self.queues.insert(g.key.clone(), q.clone());
                Ok(Some(q))
            }
            Err(e) if stops_replay(&e) => Err(e),
            Err(e) => {
                for (job, text) in g.jobs.iter().zip(&g.lines) {
                    tracing::warn!(file = %self.path.display(), id = job_id(job),
                        queue = %g.key.1, error = %e, rejected = %self.rejected.display(),
                        "spooled job for an invalid queue: moved to the rejected file");
                    self.reject(text);
                }
                Ok(None)
            }
        }
    }

    fn reject(&mut self, line: &[u8]) {
        self.rejects.extend_from_slice(line);
        self.rejects.push(b'\n');
    }

    /// Appends the chunk's rejected lines to the rejected file, durably.
    async fn flush_rejects(&mut self) -> Result<()> {
        if self.rejects.is_empty() {
            return Ok(());
        }
        let rejects = std::mem::take(&mut self.rejects);
        self.done.skipped += rejects.iter().filter(|&&b| b == b'\n').count() as u64;
        let r = self.rejected.clone();
        blocking(move || append_rejected(&r, &rejects))
            .await
            .map_err(spool_err(self.path))
    }

    /// Records that the file's bytes up to `end` are stored, durably. A record that cannot
    /// be written (a full disk) does not stop the replay: the jobs are stored, and stopping
    /// would leave the file to be sent again, its jobs stored twice once the first ones are
    /// gone from Redis. The replay goes on to the file's end and deletes it; only a replayer
    /// killed before that resumes from an older record (the jobs sent again deduplicated by
    /// id while Redis still has them).
    async fn record_progress(&mut self, end: u64) {
        let recorded = match self.progress.try_clone() {
            Ok(mut p) => blocking(move || record(&mut p, end)).await,
            Err(e) => Err(e),
        };
        match recorded {
            Ok(()) => {
                tracing::debug!(file = %self.path.display(), offset = end, "spool replay progress")
            }
            Err(e) => tracing::warn!(file = %self.path.display(), offset = end, error = %e,
                "spool replay progress not recorded: replaying on to the file's end"),
        }
    }
}

/// The spooled jobs of one queue in a chunk, with their lines (for the rejected file).
struct Group<'a> {
    /// (prefix, queue)
    key: (String, String),
    jobs: Vec<NewJob>,
    lines: Vec<&'a [u8]>,
}

impl ReplayReport {
    /// Logs a replay of spool dir `dir` that did anything.
    pub(crate) fn log(&self, dir: &Path) {
        if self.sent() + self.skipped > 0 {
            tracing::info!(
                dir = %dir.display(),
                files = self.files,
                stored = self.stored,
                duplicates = self.duplicates,
                skipped = self.skipped,
                "replayed spooled jobs into Redis"
            );
        }
    }

    fn count(&mut self, added: &[crate::job::Added]) {
        for a in added {
            if a.duplicate {
                self.duplicates += 1;
            } else {
                self.stored += 1;
            }
        }
    }
}

pub(super) fn job_id(job: &NewJob) -> &str {
    job.opts.job_id.as_deref().unwrap_or("")
}

/// Appends whole `lines` to the rejected file `path`, durably.
fn append_rejected(path: &Path, lines: &[u8]) -> io::Result<()> {
    let mut f = spool::private_file().append(true).create(true).open(path)?;
    f.write_all(lines)?;
    f.sync_data()?;
    spool::sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Logs, once per file and process, that `path` is left to a replayer of its own Redis.
fn skipped_for_target(path: &Path, target: &str, ours: &str) {
    static TOLD: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let mut told = TOLD
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if told.insert(path.to_path_buf()) {
        tracing::info!(file = %path.display(), spooled_for = target, replaying_into = ours,
            "spool file is for another Redis: left for a replayer connected to it");
    }
}

/// Looks for spool files in `dir` every `every` and replays them through `redis`, until
/// `stop`. What a worker runs beside its queues; any long-running process with a
/// connection (e.g. a dashboard) may run it too.
pub async fn replay_loop(redis: Redis, dir: PathBuf, every: Duration, stop: CancellationToken) {
    let opts = ReplayOptions::default();
    loop {
        if spool::has_pending(&dir) {
            match replay_dir(&redis, &dir, &opts, Some(&stop)).await {
                Ok(r) => r.log(&dir),
                // the outage is reported by whoever else uses the connection
                Err(e) if e.is_connection() => {
                    tracing::debug!(error = %e, "spool replay waits for Redis")
                }
                Err(e) => tracing::warn!(error = %e, "spool replay failed; retrying later"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("spool task failed: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobOptions;
    use crate::producer::spool::{to_job, SpoolLine};

    #[test]
    fn delay_counts_from_the_spool_time() {
        let line = |delay: Option<u64>| SpoolLine {
            prefix: "p".into(),
            queue: "q".into(),
            id: "abc".into(),
            name: "n".into(),
            data: serde_json::Value::Null,
            opts: JobOptions {
                delay_ms: delay,
                ..JobOptions::default()
            },
            at: 1_000,
        };
        let (key, job) = to_job(line(Some(5_000)), 3_000);
        assert_eq!(key, ("p".to_string(), "q".to_string()));
        assert_eq!(job.opts.job_id.as_deref(), Some("abc"));
        assert_eq!(job.opts.delay_ms, Some(3_000));
        let (_, job) = to_job(line(Some(5_000)), 60_000);
        assert_eq!(job.opts.delay_ms, None, "overdue: runs at once");
        let (_, job) = to_job(line(None), 60_000);
        assert_eq!(job.opts.delay_ms, None);
    }

    #[test]
    fn progress_records_overwrite_each_other() {
        let path = std::env::temp_dir().join(format!(
            "jobq-replay-unit-{}-{:x}.done",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        record(&mut f, 123_456).unwrap();
        record(&mut f, 7).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().parse::<u64>().unwrap(), 7);
        std::fs::remove_file(&path).unwrap();
    }
}
