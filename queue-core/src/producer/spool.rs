//! Spool files: where a producer whose fallback is `spool` keeps jobs while Redis is down.
//!
//! Layout of `JOBQ_SPOOL_DIR` (default `./.jobq-spool`, created `0700`; files `0600`, as
//! job data may be private):
//! - `<ms>-<pid>-<random>.jsonl`: one file per producer outage (per [`super::Producer`],
//!   shared by its clones; a new one after each outage), a header line naming the Redis
//!   the jobs are for ([`SpoolHeader`]), then one job per line ([`SpoolLine`]). Names sort
//!   by creation time, so replay takes older files first.
//! - `<file>.jsonl.done`: replay progress, the byte offset up to which the file's jobs are
//!   stored in Redis (see `replay.rs`).
//! - `<file>.jsonl.rejected`: lines the replay could not store (unreadable, torn, or
//!   refused by Redis), kept for a human to look at.
//! - `<file>.jsonl.orphan`: a whole spool file whose header is missing or corrupt, set aside
//!   by the first replayer that takes it: which Redis its jobs are for is unknown, so no
//!   replayer may store them. Kept for a human (who can put a header back and rename it).
//! - `.<name>.tmp`: a file being created; renamed to its `.jsonl` name once locked.
//!
//! Target: the header records the Redis the producer was configured with, as
//! [`target_of`] its URL (scheme, host, port, db; no user or password). A replayer stores
//! a file's jobs only into that Redis, so a `jobq` pointed at another Redis (staging, say)
//! from the same directory leaves them alone. A producer with no Redis configured records
//! none: its jobs go to whichever Redis replays them first.
//!
//! Durability: an add that returns `Spooled` has had its line written and `sync_data`-ed;
//! a new file's directory entry is synced too. A line is written whole with one `write`
//! and ends with `\n`. A last line without one (a torn write) was never acknowledged: when
//! it still decodes as a whole job (only the newline is missing, and a JSON object cannot
//! be cut short and stay whole) it is replayed like the others, its id keeping it from
//! being stored twice; otherwise it goes to `.rejected` like any other unreadable line.
//!
//! Locking: the producer holds an exclusive `flock` (`File::try_lock`) on its file until
//! Redis answers again (or the producer is dropped): then it seals the file, releasing the
//! lock, so any replayer can take it even if the producer stays idle. Replayers take only files they can lock, so they never read a file
//! that is still being appended to; a file is created under a temporary name and renamed
//! once locked, so no replayer can take (and delete) it in between.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::job::JobOptions;
use crate::job::NewJob;
use crate::queue::validate_new_job;
use crate::validate::{validate_prefix, validate_queue_name};

/// Extension of spool files.
pub(crate) const SPOOL_EXT: &str = "jsonl";
/// Suffix of a spool file's progress sidecar (`x.jsonl.done`).
pub(crate) const DONE_SUFFIX: &str = ".done";
/// Suffix of the file beside a spool file that keeps the lines its replay could not store.
pub(crate) const REJECTED_SUFFIX: &str = ".rejected";
/// Suffix a spool file without a usable header is renamed with (`x.jsonl.orphan`).
pub(crate) const ORPHAN_SUFFIX: &str = ".orphan";

/// First line of a spool file: which Redis its jobs are for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SpoolHeader {
    /// Format version (1).
    pub jobq_spool: u32,
    /// [`target_of`] the producer's Redis URL; None when no Redis was configured.
    pub target: Option<String>,
}

/// Which Redis `url` designates, for matching spool files to replayers:
/// `redis://host:port/db` (or `rediss://…`, `unix://path?db=N`), without user or password,
/// with the default port and db filled in. Works on masked URLs too (`***` passwords).
pub(crate) fn target_of(url: &str) -> String {
    let seeds = crate::config::seed_urls(url);
    if let [one] = &seeds[..] {
        return server_of(one);
    }
    // a cluster: its seeds, each as one server, in one order
    let mut targets: Vec<String> = seeds.iter().map(|s| server_of(s)).collect();
    targets.sort();
    targets.dedup();
    targets.join(",")
}

/// [`target_of`] one server's URL.
fn server_of(url: &str) -> String {
    use redis::ConnectionAddr;
    let Ok(client) = redis::Client::open(url) else {
        return crate::config::mask_url(url);
    };
    let info = client.get_connection_info();
    let db = info.redis_settings().db();
    match info.addr() {
        // host names are case-insensitive
        ConnectionAddr::Tcp(host, port) => {
            format!("redis://{}:{port}/{db}", host.to_ascii_lowercase())
        }
        ConnectionAddr::TcpTls { host, port, .. } => {
            format!("rediss://{}:{port}/{db}", host.to_ascii_lowercase())
        }
        ConnectionAddr::Unix(path) => format!("unix://{}?db={db}", path.display()),
        _ => crate::config::mask_url(url),
    }
}

/// Reads the header of spool `file`: the header and the offset of its first job line, or
/// (inner `Err`) why there is no usable header. Every file this module creates has one
/// (written before the file gets its `.jsonl` name), so a file without one was damaged or
/// put there by hand.
pub(crate) fn read_header(
    file: &File,
) -> io::Result<std::result::Result<(SpoolHeader, u64), String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(0))?;
    let mut head = Vec::with_capacity(256);
    f.take(4096).read_to_end(&mut head)?;
    let Some(n) = head.iter().position(|&b| b == b'\n') else {
        return Ok(Err("no header line".into()));
    };
    Ok(match serde_json::from_slice::<SpoolHeader>(&head[..n]) {
        Ok(h) if h.jobq_spool == 1 => Ok((h, n as u64 + 1)),
        Ok(h) => Err(format!("unknown spool format version {}", h.jobq_spool)),
        Err(e) => Err(format!("first line is not a spool header: {e}")),
    })
}

/// Creates `dir` (and its parents) readable by this user only.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir)
}

/// Options that create files readable by this user only.
pub(crate) fn private_file() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    o.mode(0o600);
    o
}

/// One spooled job, as a line of a spool file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SpoolLine {
    /// Key prefix the job was added under.
    pub prefix: String,
    /// Queue name.
    pub queue: String,
    /// Job id: given at spool time and stored as `job_id`, so a replay that runs twice
    /// stores the job once.
    pub id: String,
    /// Handler name.
    pub name: String,
    /// Payload.
    #[serde(default)]
    pub data: Value,
    /// Options (with `jobId` = `id`).
    #[serde(default)]
    pub opts: JobOptions,
    /// When it was spooled, ms since the epoch: a delay counts from then, not from the
    /// replay.
    pub at: u64,
}

/// [`SpoolLine`] by reference, for writing without copying the job.
#[derive(Serialize)]
pub(crate) struct SpoolLineRef<'a> {
    pub prefix: &'a str,
    pub queue: &'a str,
    pub id: &'a str,
    pub name: &'a str,
    pub data: &'a Value,
    pub opts: &'a JobOptions,
    pub at: u64,
}

/// A spool file open for appending, with its lock held.
#[derive(Debug)]
pub(crate) struct OpenSpool {
    pub file: File,
    pub path: PathBuf,
}

/// A producer's spool file: created on its first spooled job, appended to (with fsync)
/// under a mutex, and locked until the producer is dropped or [`SpoolWriter::seal`]s it.
#[derive(Debug)]
pub(crate) struct SpoolWriter {
    dir: PathBuf,
    /// The Redis the jobs are for, written in each file's header.
    target: Option<String>,
    open: Mutex<Option<OpenSpool>>,
}

impl SpoolWriter {
    pub fn new(dir: PathBuf, target: Option<String>) -> Self {
        SpoolWriter {
            dir,
            target,
            open: Mutex::new(None),
        }
    }

    /// Whether a file is open (and locked) for appending.
    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<OpenSpool>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `lines` (whole lines, each ending in `\n`) and syncs them to disk before
    /// returning the file's path. Blocking: call it from `spawn_blocking`.
    pub fn append(&self, lines: &[u8]) -> Result<PathBuf> {
        let mut open = self.lock();
        if open.is_none() {
            *open =
                Some(
                    create(&self.dir, self.target.as_deref()).map_err(|source| Error::Spool {
                        path: self.dir.clone(),
                        source,
                    })?,
                );
        }
        let spool = open.as_mut().expect("opened above");
        let before = spool.file.metadata().map(|m| m.len());
        let written = spool
            .file
            .write_all(lines)
            .and_then(|()| spool.file.sync_data());
        match written {
            Ok(()) => Ok(spool.path.clone()),
            Err(source) => {
                // part of the lines may be on disk (a full disk takes what fits): cut them
                // off, so the caller, told that nothing was spooled, never sees them
                // replayed beside the jobs it sends again. (Truncating frees space, so it
                // works on a full disk; if it fails anyway, a torn last line is left, which
                // replay rejects.) Then leave this file and start a new one for the next job.
                let cut = before.and_then(|len| {
                    spool.file.set_len(len)?;
                    spool.file.sync_data()
                });
                if let Err(e) = cut {
                    tracing::warn!(file = %spool.path.display(), error = %e,
                        "a failed spool write could not be cut off: its whole lines will be replayed");
                }
                let path = spool.path.clone();
                *open = None;
                Err(Error::Spool { path, source })
            }
        }
    }

    /// Takes the current file out (lock still held by the returned handle), so it can be
    /// replayed while later jobs go to a new file.
    pub fn seal(&self) -> Option<OpenSpool> {
        self.lock().take()
    }
}

/// Creates, locks, heads (with `target`) and names a new spool file in `dir`.
fn create(dir: &Path, target: Option<&str>) -> io::Result<OpenSpool> {
    create_private_dir(dir)?;
    let name = format!(
        "{:013}-{}-{:08x}",
        crate::clock::now_ms(),
        std::process::id(),
        rand::random::<u32>()
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = private_file()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&tmp)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "a new spool file is locked by someone else",
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    let mut header = serde_json::to_vec(&SpoolHeader {
        jobq_spool: 1,
        target: target.map(str::to_string),
    })?;
    header.push(b'\n');
    file.write_all(&header)?;
    file.sync_data()?;
    let path = dir.join(format!("{name}.{SPOOL_EXT}"));
    std::fs::rename(&tmp, &path)?;
    sync_dir(dir)?;
    Ok(OpenSpool { file, path })
}

/// Makes renames and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The spool files in `dir`, oldest first (none when `dir` does not exist). Leftovers of
/// crashed processes are tidied on the way: progress files whose spool file is gone, and
/// temporary files nobody holds (a producer that died before its first line).
pub(crate) fn pending_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(&format!(".{SPOOL_EXT}")) {
            // only regular files (a link to one included): opening a FIFO or a device
            // named like a spool file would block, or read what is not ours
            if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                files.push(path);
            } else {
                tracing::warn!(file = %path.display(),
                    "not a regular file, though named like a spool file: left alone");
            }
        } else if let Some(spool) = name.strip_suffix(DONE_SUFFIX) {
            if !dir.join(spool).exists() {
                let _ = std::fs::remove_file(&path);
            }
        } else if name.starts_with('.') && name.ends_with(".tmp") && is_stale(&path) {
            if let Ok(f) = File::open(&path) {
                if f.try_lock().is_ok() {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A temporary file older than a minute: its creator would have renamed it long ago (a
/// younger one may be between its creation and its lock).
fn is_stale(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(60))
}

/// Whether `dir` holds any spool file: the cheap check before connecting to replay.
pub fn has_pending(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(&format!(".{SPOOL_EXT}")))
            && std::fs::metadata(e.path()).is_ok_and(|m| m.is_file())
    })
}

/// A spool file waiting to be replayed, as `jobq spool status` and `jobq health` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpoolFile {
    /// Where it is.
    pub path: PathBuf,
    /// Jobs in it not replayed yet: the lines past the recorded replay progress that decode
    /// as jobs a Redis would take.
    pub jobs: u64,
    /// Lines past the progress that do not (unreadable, torn, or an invalid job): a replay
    /// moves them to `<file>.rejected`.
    pub garbage: u64,
    /// Whether a live process holds it: its producer (still running), or a replayer.
    pub held: bool,
    /// Its header is missing or corrupt, so which Redis its jobs are for is unknown: no
    /// replay stores them, the next one renames it `<file>.orphan`.
    pub orphan: bool,
}

/// Where a replay of a spool file of `len` bytes whose jobs start at `first_job` resumes,
/// from its recorded progress: a record that is garbled or past the file's end (a corrupt
/// progress file) means from the start, as jobs' ids make a second store a no-op.
pub(crate) fn resume_at(recorded: Option<u64>, first_job: u64, len: u64) -> u64 {
    recorded.filter(|&at| at <= len).unwrap_or(0).max(first_job)
}

/// The spool files of `dir`, oldest first, with their pending job counts. Reads and decodes
/// each file whole: for status displays, not for hot paths.
pub fn spool_files(dir: &Path) -> Result<Vec<SpoolFile>> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Spool { path, source }
    };
    let mut out = Vec::new();
    for path in pending_files(dir).map_err(err(dir))? {
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(&path)(e)),
        };
        // a lock we get is released at once when `file` is dropped below
        let held = matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock));
        let header = read_header(&file).map_err(err(&path))?;
        let orphan = header.is_err();
        let first_job = header.map_or(0, |(_, first)| first);
        let bytes = std::fs::read(&path).map_err(err(&path))?;
        let recorded = std::fs::read_to_string(done_path(&path))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        let start = resume_at(recorded, first_job, bytes.len() as u64) as usize;
        let rest = bytes.get(start..).unwrap_or_default();
        let (mut jobs, mut garbage) = (0, 0);
        let mut lines = rest.split_inclusive(|&b| b == b'\n').peekable();
        while let Some(line) = lines.next() {
            let whole = line.ends_with(b"\n");
            // the unterminated tail of a file a live producer holds is a line being written
            if !whole && held && lines.peek().is_none() {
                break;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match decode(text, 0) {
                Ok(_) => jobs += 1,
                Err(_) => garbage += 1,
            }
        }
        out.push(SpoolFile {
            path,
            jobs,
            garbage,
            held,
            orphan,
        });
    }
    Ok(out)
}

/// A file set aside in the spool dir for an operator to read: the lines of a spool file
/// its replay could not store (`<file>.jsonl.rejected`, each line the job as it was
/// spooled), or a whole spool file without a usable header (`<file>.jsonl.orphan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedFile {
    /// Where it is.
    pub path: PathBuf,
    /// How many lines it holds.
    pub lines: u64,
    /// A whole spool file set aside because its header is missing or corrupt (false: lines
    /// a replay could not store).
    pub orphan: bool,
}

/// The rejected and orphaned files of `dir`, by name (so oldest first).
pub fn rejected_files(dir: &Path) -> Result<Vec<RejectedFile>> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Spool { path, source }
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(err(dir))?.path();
        let name = path.to_string_lossy();
        let orphan = name.ends_with(ORPHAN_SUFFIX);
        if !orphan && !name.ends_with(REJECTED_SUFFIX) {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(err(&path))?;
        let lines = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
        out.push(RejectedFile {
            path,
            lines,
            orphan,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Where spool file `path` goes when its header is missing or corrupt.
pub(crate) fn orphan_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(ORPHAN_SUFFIX);
    PathBuf::from(p)
}

/// Where the lines of spool file `path` that could not be replayed go.
pub(crate) fn rejected_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(REJECTED_SUFFIX);
    PathBuf::from(p)
}

/// The progress file of spool file `path`.
pub(crate) fn done_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(DONE_SUFFIX);
    PathBuf::from(p)
}

/// A spooled line as the job to add, keyed by (prefix, queue); or why no Redis would take
/// it: not a spooled job (unreadable, torn), or an invalid queue name, job name or option.
/// Shared with `jobq spool status`, which counts what a replay would send.
pub(crate) fn decode(
    text: &[u8],
    now_ms: u64,
) -> std::result::Result<((String, String), NewJob), String> {
    let line: SpoolLine =
        serde_json::from_slice(text).map_err(|e| format!("not a spooled job: {e}"))?;
    // (a line edited by hand may hold an integer the decoding just rounded)
    crate::internal::json_numbers::check(text).map_err(|e| format!("not a spooled job: {e}"))?;
    let (key, job) = to_job(line, now_ms);
    // (a prefix that breaks the key tag would store the job where no jobq reaches it)
    validate_prefix(&key.0).map_err(|e| e.to_string())?;
    validate_queue_name(&key.1).map_err(|e| e.to_string())?;
    validate_new_job(&job)
        .map_err(|e| format!("job {}: {e}", job.opts.job_id.as_deref().unwrap_or("")))?;
    Ok((key, job))
}

/// A spooled line as the job to add: its id as `job_id`, its delay shortened by the time
/// it spent in the spool. Keyed by (prefix, queue).
pub(super) fn to_job(line: SpoolLine, now_ms: u64) -> ((String, String), NewJob) {
    let mut opts = line.opts;
    opts.job_id = Some(line.id);
    if let Some(d) = opts.delay_ms {
        let left = d.saturating_sub(now_ms.saturating_sub(line.at));
        opts.delay_ms = (left > 0).then_some(left);
    }
    (
        (line.prefix, line.queue),
        NewJob {
            name: line.name,
            data: line.data,
            opts,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "jobq-spool-unit-{tag}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writer_creates_one_locked_file_and_appends_whole_lines() {
        let dir = temp_dir("writer");
        let w = SpoolWriter::new(dir.clone(), Some("redis://h:6379/0".into()));
        let a = w.append(b"{\"a\":1}\n").unwrap();
        let b = w.append(b"{\"b\":2}\n").unwrap();
        assert_eq!(a, b, "one file per producer");
        assert_eq!(
            std::fs::read_to_string(&a).unwrap(),
            "{\"jobq_spool\":1,\"target\":\"redis://h:6379/0\"}\n{\"a\":1}\n{\"b\":2}\n"
        );
        let (header, first) = read_header(&File::open(&a).unwrap()).unwrap().unwrap();
        assert_eq!(header.target.as_deref(), Some("redis://h:6379/0"));
        assert_eq!(first, 45);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&a), 0o600, "job data is for this user only");
        }
        // another handle cannot take it while the producer lives
        let other = File::open(&a).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        assert_eq!(pending_files(&dir).unwrap(), vec![a.clone()]);
        assert!(has_pending(&dir));
        // sealed: the next job goes to a new file
        let sealed = w.seal().unwrap();
        assert_eq!(sealed.path, a);
        let c = w.append(b"{\"c\":3}\n").unwrap();
        assert_ne!(c, a);
        drop(sealed);
        assert!(other.try_lock().is_ok(), "lock released with the handle");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn targets_name_the_server_and_db_without_credentials() {
        assert_eq!(target_of("redis://127.0.0.1"), "redis://127.0.0.1:6379/0");
        assert_eq!(
            target_of("redis://user:secret@Cache.Example:6380/3"),
            "redis://cache.example:6380/3"
        );
        assert_eq!(
            target_of("redis://user:***@cache.example:6380/3"),
            target_of("redis://user:other@cache.example:6380/3"),
            "masked and unmasked URLs designate the same Redis"
        );
        assert_ne!(target_of("redis://h/1"), target_of("redis://h/2"));
        // a cluster's seeds: no credentials, in one order, however they were written
        assert_eq!(
            target_of("redis://u:pw@B:2,a:1"),
            "redis://a:1/0,redis://b:2/0"
        );
        assert_eq!(
            target_of("redis://u:***@a:1,redis://u:***@b:2"),
            target_of("redis://u:pw@b:2,a:1")
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_spool_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let base = temp_dir("private");
        let dir = base.join("a/b");
        SpoolWriter::new(dir.clone(), None).append(b"{}\n").unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn leftovers_are_tidied_and_a_missing_dir_has_nothing() {
        let dir = temp_dir("tidy");
        std::fs::write(dir.join("x.jsonl.done"), "12\n").unwrap();
        std::fs::write(dir.join(".y.tmp"), "").unwrap();
        std::fs::write(dir.join(".z.tmp"), "").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        File::options()
            .write(true)
            .open(dir.join(".y.tmp"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::write(dir.join("b.jsonl"), "").unwrap();
        std::fs::write(dir.join("a.jsonl"), "").unwrap();
        let files = pending_files(&dir).unwrap();
        assert_eq!(files, vec![dir.join("a.jsonl"), dir.join("b.jsonl")]);
        assert!(!dir.join("x.jsonl.done").exists());
        assert!(!dir.join(".y.tmp").exists());
        assert!(
            dir.join(".z.tmp").exists(),
            "a young temporary file may be in use"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(pending_files(&dir).unwrap().is_empty());
        assert!(!has_pending(&dir));
    }
}
