//! Spool replay survives being killed: 2,000 jobs spooled while Redis was down, a replay
//! (`jobq spool replay`, paced so it is still running) SIGKILLed midway, then replayed
//! again — every job is stored exactly once under its spooled id, the second replay resumes
//! from the recorded progress instead of starting over, and the spool file is gone.
//! Bad lines do not stop a replay: unreadable ones and jobs Redis refuses go to
//! `<file>.rejected`, the good ones around them are stored; so does a torn last line,
//! unless it decodes as a whole job (then it is stored). A file spooled for another Redis
//! is not replayed into this one, and a file whose header is missing or corrupt into none:
//! it is set aside as `<file>.orphan`. A replay stopped by an error of its file, or by a
//! Redis refusing every write (out of memory), keeps the file, counts what it stored, and
//! fails; a line holding an integer JSON would round is rejected, never stored changed. A
//! Redis out of memory still serves a new process's reads of a queue.
//!
//! Starts its own `redis-server`; runs the `jobq` binary (`cargo build --bins` first).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const N: usize = 2_000;
const CHUNK: usize = 50;

fn replay_command(url: &str, spool: &TempDir, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin_path("jobq"));
    cmd.args(["--json", "spool", "replay"])
        .args(extra)
        .env("REDIS_URL", url)
        .env("JOBQ_SPOOL_DIR", spool.as_str())
        .env_remove("REDIS_HOST")
        .env_remove("JOBQ_PREFIX")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The replay progress recorded for `file`: bytes of it stored so far.
fn progress(file: &std::path::Path) -> u64 {
    let mut done = file.as_os_str().to_owned();
    done.push(".done");
    std::fs::read_to_string(done)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_replay_killed_midway_and_resumed_stores_each_of_2000_jobs_once() {
    let mut server = RedisServer::start(&[]);
    let url = server.url();
    let spool = TempDir::new("replay-kill");
    let mut config = Config::new(&url)
        .and_then(|c| c.with_prefix(fresh_prefix()))
        .unwrap();
    config.fallback = Fallback::Spool;
    config.spool_dir = spool.path().to_path_buf();
    let prefix = config.prefix().to_string();
    server.stop();

    // spool N jobs (one write and one sync for the batch)
    let producer = Producer::new(config);
    let jobs: Vec<NewJob> = (0..N)
        .map(|n| NewJob::new("diag.echo", &json!({ "n": n }), JobOptions::new()).unwrap())
        .collect();
    let produced = producer.add_bulk("bulk", jobs).await.unwrap();
    let ids: BTreeSet<String> = produced.iter().map(|p| p.id().to_string()).collect();
    assert_eq!(ids.len(), N);
    assert!(produced.iter().all(|p| p.mode() == "spooled"));
    // the producer goes away: its file is free for any replayer
    drop(producer);
    let files = spool.files_ending(".jsonl");
    assert_eq!(files.len(), 1, "{files:?}");
    let file = files[0].clone();
    let text = std::fs::read_to_string(&file).unwrap();
    // the header line (which Redis the jobs are for), then the jobs
    assert_eq!(text.lines().count(), 1 + N);
    // byte offset just past job line 2·CHUNK: once progress reaches it, two chunks are
    // stored
    let two_chunks: u64 = text
        .split_inclusive('\n')
        .take(1 + 2 * CHUNK)
        .map(|l| l.len() as u64)
        .sum();

    server.restart();
    let env = TestEnv::on_prefix(&url, &prefix).await;
    let q = env.queue("bulk").await;

    // a paced replay (50 jobs, then 40 ms): over a second and a half for the file; kill it
    // midway
    let mut first = replay_command(
        &url,
        &spool,
        &["--chunk", &CHUNK.to_string(), "--pause", "40ms"],
    )
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while progress(&file) < two_chunks {
        if let Ok(Some(status)) = first.try_wait() {
            panic!("replay ended before it could be killed: {status}");
        }
        assert!(Instant::now() < deadline, "no replay progress in 30 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let recorded = progress(&file);
    let stored_before = q.counts().await.unwrap().waiting;
    eprintln!(
        "killed after {recorded} of {} bytes recorded, {stored_before} of {N} jobs stored",
        text.len()
    );
    assert!(file.exists(), "the interrupted replay deleted the file");
    assert!(
        recorded < text.len() as u64 && (stored_before as usize) < N,
        "the replay finished before it was killed: nothing was interrupted"
    );
    assert!(stored_before >= 2 * CHUNK as u64, "{stored_before}");

    // replay again: it resumes from the recorded progress
    let out = replay_command(&url, &spool, &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("second replay: {report}");
    let stored = report["stored"].as_u64().unwrap();
    let duplicates = report["duplicates"].as_u64().unwrap();
    assert_eq!(stored_before + stored, N as u64, "{report}");
    // only the chunk in flight at the kill (stored, progress not yet recorded) is re-sent;
    // starting over would re-send all `stored_before` jobs
    assert!(duplicates <= CHUNK as u64, "{report}");
    assert!(duplicates < stored_before, "{report}");

    let c = q.counts().await.unwrap();
    assert_eq!(c.waiting, N as u64, "{c:?}");
    let listed: Vec<String> = q
        .list_jobs(JobState::Waiting, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(listed.len(), N, "a job is listed twice");
    let listed: BTreeSet<String> = listed.into_iter().collect();
    assert_eq!(listed, ids, "stored ids differ from the spooled ones");
    assert!(!file.exists(), "spool file left behind");
    assert!(
        spool.files_ending(".done").is_empty(),
        "progress file left behind"
    );
}

/// Spools `jobs` to `queue` through a producer while `server` is stopped (it is started
/// again after), and returns the spool file (free: the producer is gone) and the ids.
async fn spool_while_down(
    server: &mut RedisServer,
    config: &Config,
    queue: &str,
    jobs: Vec<NewJob>,
) -> (std::path::PathBuf, Vec<String>) {
    server.stop();
    let producer = Producer::builder(config.clone()).auto_replay(false).build();
    let produced = producer.add_bulk(queue, jobs).await.unwrap();
    assert!(
        produced.iter().all(|p| p.mode() == "spooled"),
        "{produced:?}"
    );
    let Produced::Spooled { file, .. } = &produced[0] else {
        unreachable!()
    };
    let file = file.clone();
    drop(producer);
    server.restart();
    (file, produced.iter().map(|p| p.id().to_string()).collect())
}

fn spool_config(url: &str, spool: &TempDir) -> Config {
    let mut config = Config::new(url)
        .and_then(|c| c.with_prefix(fresh_prefix()))
        .unwrap();
    config.fallback = Fallback::Spool;
    config.spool_dir = spool.path().to_path_buf();
    config
}

fn echo(n: u32, opts: JobOptions) -> NewJob {
    NewJob::new("diag.echo", &json!({ "n": n }), opts).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_replay_moves_unreadable_and_refused_lines_to_rejected_and_stores_the_good_ones() {
    let mut server = RedisServer::start(&[]);
    let url = server.url();
    let spool = TempDir::new("replay-reject");
    let config = spool_config(&url, &spool);
    let prefix = config.prefix().to_string();
    // job 1 is for a queue whose dedup key is not a string: Redis refuses to add it
    // (WRONGTYPE), an error that is not an outage
    let (file, ids) = spool_while_down(
        &mut server,
        &config,
        "good",
        vec![echo(0, JobOptions::new()), echo(1, JobOptions::new())],
    )
    .await;
    let env = TestEnv::on_prefix(&url, &prefix).await;
    let mut raw = env.raw().await;
    let poison = queue_core::internal::keys::QueueKeys::new(&prefix, "poisoned").dedup("d1");
    let _: i64 = redis::cmd("RPUSH")
        .arg(&poison)
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    // the file as a producer wrote it, then by hand: a job Redis refuses, an unreadable
    // line, a job for an invalid queue name, and a good job again
    let line = |queue: &str, id: &str, opts: Value| {
        json!({"prefix": prefix, "queue": queue, "id": id, "name": "diag.echo",
               "data": {"id": id}, "opts": opts, "at": now_ms()})
        .to_string()
    };
    let refused = line(
        "poisoned",
        "refused-1",
        json!({"dedup": {"id": "d1", "ttl": 60000}}),
    );
    let invalid = line("bad queue!", "invalid-1", json!({}));
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&format!(
        "{refused}\n{{\"prefix\": \"torn-but-complete\n{invalid}\n{}\n",
        line("good", "good-2", json!({}))
    ));
    std::fs::write(&file, &text).unwrap();

    let redis = Redis::connect(&config).await.unwrap();
    let report = producer::replay_dir(&redis, spool.path(), &Default::default(), None)
        .await
        .unwrap();
    assert_eq!(
        (report.files, report.stored, report.skipped),
        (1, 3, 3),
        "{report:?}"
    );
    let q = env.queue("good").await;
    let waiting: BTreeSet<String> = q
        .list_jobs(JobState::Waiting, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    let mut expected: BTreeSet<String> = ids.into_iter().collect();
    expected.insert("good-2".into());
    assert_eq!(waiting, expected);
    assert!(env.queue("poisoned").await.job("refused-1").await.is_err());
    assert!(!file.exists(), "spool file left behind");
    assert!(spool.files_ending(".done").is_empty());
    let mut rejected = file.as_os_str().to_owned();
    rejected.push(".rejected");
    // what `jobq spool status` lists for an operator
    assert_eq!(
        producer::rejected_files(spool.path()).unwrap(),
        [producer::RejectedFile {
            path: rejected.clone().into(),
            lines: 3,
            orphan: false,
        }]
    );
    let rejected = std::fs::read_to_string(&rejected).unwrap();
    // grouped by cause within a chunk, not in file order
    let rejected: BTreeSet<&str> = rejected.lines().collect();
    let expected = BTreeSet::from([
        refused.as_str(),
        "{\"prefix\": \"torn-but-complete",
        invalid.as_str(),
    ]);
    assert_eq!(rejected, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_replay_leaves_a_file_spooled_for_another_redis_alone() {
    let mut server = RedisServer::start(&[]);
    let spool = TempDir::new("replay-target");
    // spooled for db 1 of this server
    let db1 = format!("{}/1", server.url());
    let config = spool_config(&db1, &spool);
    let (file, ids) =
        spool_while_down(&mut server, &config, "q", vec![echo(0, JobOptions::new())]).await;

    // a replayer connected to db 0 (e.g. `jobq --redis-url …/0`) leaves it alone
    let db0 = config
        .clone()
        .with_redis_url(format!("{}/0", server.url()))
        .unwrap();
    let other = Redis::connect(&db0).await.unwrap();
    let report = producer::replay_dir(&other, spool.path(), &Default::default(), None)
        .await
        .unwrap();
    assert_eq!((report.other_redis, report.sent()), (1, 0), "{report:?}");
    assert!(file.exists());
    let q0 = Queue::open(&other, config.prefix(), "q").await.unwrap();
    assert!(q0.job(&ids[0]).await.is_err(), "stored into the wrong db");

    // its own Redis takes it
    let own = Redis::connect(&config).await.unwrap();
    let report = producer::replay_dir(&own, spool.path(), &Default::default(), None)
        .await
        .unwrap();
    assert_eq!((report.files, report.stored), (1, 1), "{report:?}");
    let q1 = Queue::open(&own, config.prefix(), "q").await.unwrap();
    assert_eq!(q1.job(&ids[0]).await.unwrap().data, json!({"n": 0}));
    assert!(!file.exists());
}

/// A spooled job's line as a producer writes it (without its newline).
fn spool_line(prefix: &str, queue: &str, id: &str) -> String {
    json!({"prefix": prefix, "queue": queue, "id": id, "name": "diag.echo",
           "data": {"id": id}, "opts": {}, "at": now_ms()})
    .to_string()
}

/// Writes spool file `file` by hand: a header for any Redis, then `lines`.
fn write_spool(file: &std::path::Path, lines: &[String]) {
    let mut text = String::from("{\"jobq_spool\":1,\"target\":null}\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(file, text).unwrap();
}

/// Runs `jobq --json spool replay` on `spool` into the Redis at `url`, which must exit with
/// `code` → (its report, null when it printed none; its stderr).
fn replay_exiting(url: &str, spool: &TempDir, code: i32) -> (Value, String) {
    let out = replay_command(url, spool, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    let report = match out.stdout.is_empty() {
        true => Value::Null,
        false => serde_json::from_slice(&out.stdout).unwrap(),
    };
    (report, stderr)
}

fn with_suffix(file: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_line_is_stored_when_it_decodes_whole_and_rejected_when_it_does_not() {
    let mut server = RedisServer::start(&[]);
    let url = server.url();
    let spool = TempDir::new("replay-torn");
    let config = spool_config(&url, &spool);
    let prefix = config.prefix().to_string();
    let (whole, mut ids) =
        spool_while_down(&mut server, &config, "q", vec![echo(0, JobOptions::new())]).await;
    let (cut, more) =
        spool_while_down(&mut server, &config, "q", vec![echo(1, JobOptions::new())]).await;
    ids.extend(more);
    assert_ne!(whole, cut);
    // only the newline is missing: the job is all there
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&whole)
        .unwrap();
    f.write_all(spool_line(&prefix, "q", "torn-whole").as_bytes())
        .unwrap();
    // cut short: not a job
    let torn = &spool_line(&prefix, "q", "torn-cut")[..40];
    let mut f = std::fs::OpenOptions::new().append(true).open(&cut).unwrap();
    f.write_all(torn.as_bytes()).unwrap();

    // status counts what a replay would store, and the rest as bad lines
    let status = producer::spool_files(spool.path()).unwrap();
    let counts: Vec<(u64, u64)> = status.iter().map(|f| (f.jobs, f.garbage)).collect();
    let mut expected = vec![(2, 0), (1, 1)];
    if status[0].path != whole {
        expected.reverse();
    }
    assert_eq!(counts, expected, "{status:?}");

    let redis = Redis::connect(&config).await.unwrap();
    let report = producer::replay_dir(&redis, spool.path(), &Default::default(), None)
        .await
        .unwrap();
    assert_eq!(
        (report.files, report.stored, report.skipped),
        (2, 3, 1),
        "{report:?}"
    );
    let q = Queue::open(&redis, &prefix, "q").await.unwrap();
    assert_eq!(
        q.job("torn-whole").await.unwrap().data,
        json!({"id": "torn-whole"})
    );
    for id in &ids {
        q.job(id).await.unwrap();
    }
    assert!(!whole.exists() && !cut.exists());
    assert!(!with_suffix(&whole, ".rejected").exists());
    // the torn line is kept for a human, as a line of its own
    assert_eq!(
        std::fs::read_to_string(with_suffix(&cut, ".rejected")).unwrap(),
        format!("{torn}\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_file_without_a_usable_header_is_set_aside_never_replayed_into_any_redis() {
    let server = RedisServer::start(&[]);
    let url = server.url();
    let spool = TempDir::new("replay-orphan");
    let config = spool_config(&url, &spool);
    let prefix = config.prefix().to_string();
    let job = |id: &str| format!("{}\n", spool_line(&prefix, "q", id));
    // no header at all (jobs from the first line), a corrupt one, a future format, empty
    let files = [
        ("0001-headless.jsonl", job("headless")),
        (
            "0002-corrupt.jsonl",
            format!("{{\"jobq_spool\":1,\"targ\n{}", job("corrupt")),
        ),
        (
            "0003-version.jsonl",
            format!("{{\"jobq_spool\":7,\"target\":null}}\n{}", job("version")),
        ),
        ("0004-empty.jsonl", String::new()),
    ];
    for (name, text) in &files {
        std::fs::write(spool.path().join(name), text).unwrap();
    }
    // beside them a good file, with a header for any Redis (a producer without one
    // configured writes those): replayed as usual
    std::fs::write(
        spool.path().join("0005-good.jsonl"),
        format!("{{\"jobq_spool\":1,\"target\":null}}\n{}", job("good")),
    )
    .unwrap();

    let status = producer::spool_files(spool.path()).unwrap();
    let orphans: Vec<bool> = status.iter().map(|f| f.orphan).collect();
    assert_eq!(orphans, [true, true, true, true, false], "{status:?}");

    let redis = Redis::connect(&config).await.unwrap();
    let report = producer::replay_dir(&redis, spool.path(), &Default::default(), None)
        .await
        .unwrap();
    let set_aside: Vec<std::path::PathBuf> = files
        .iter()
        .map(|(name, _)| with_suffix(&spool.path().join(name), ".orphan"))
        .collect();
    assert_eq!(report.orphaned, set_aside, "{report:?}");
    assert_eq!((report.files, report.stored), (1, 1), "{report:?}");
    let q = Queue::open(&redis, &prefix, "q").await.unwrap();
    q.job("good").await.unwrap();
    for id in ["headless", "corrupt", "version"] {
        assert!(q.job(id).await.is_err(), "{id} was replayed");
    }
    // kept whole for a human, listed beside the rejected files; no longer pending
    for ((_, text), path) in files.iter().zip(&set_aside) {
        assert_eq!(&std::fs::read_to_string(path).unwrap(), text);
    }
    assert!(spool.files_ending(".jsonl").is_empty());
    assert!(producer::spool_files(spool.path()).unwrap().is_empty());
    let listed = producer::rejected_files(spool.path()).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|r| (&r.path, r.orphan))
            .collect::<Vec<_>>(),
        set_aside.iter().map(|p| (p, true)).collect::<Vec<_>>()
    );
    // and a second replay leaves them alone
    let again = producer::replay_dir(&redis, spool.path(), &Default::default(), None)
        .await
        .unwrap();
    assert_eq!(again, Default::default());
}

/// A hand-made spooled line for `queue` under `prefix`, its data a string of `bytes` bytes.
fn big_line(prefix: &str, queue: &str, id: &str, bytes: usize) -> String {
    json!({"prefix": prefix, "queue": queue, "id": id, "name": "diag.echo",
           "data": "x".repeat(bytes), "opts": {}, "at": now_ms()})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_keeps_the_caps_and_call_sizes_of_an_add_and_survives_hostile_spool_entries() {
    let mut server = RedisServer::start(&[]);
    let url = server.url();
    let spool = TempDir::new("replay-hostile");
    let config = spool_config(&url, &spool);
    let prefix = config.prefix().to_string();
    let (file, ids) =
        spool_while_down(&mut server, &config, "q", vec![echo(0, JobOptions::new())]).await;
    // 30 jobs of 600 KB (an add stores them about 1 MiB a call), one over 64 MiB, one under
    // a prefix that would break the key tag
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    for i in 0..30 {
        writeln!(f, "{}", big_line(&prefix, "q", &format!("big{i}"), 600_000)).unwrap();
    }
    // over the replayer's cap, not its producer's (which the replayer does not know): stored
    writeln!(f, "{}", big_line(&prefix, "q", "two-mib", 2 << 20)).unwrap();
    // over the largest caps anyone may set
    writeln!(f, "{}", big_line(&prefix, "q", "over", 65 << 20)).unwrap();
    writeln!(f, "{}", big_line("A}b{c", "q", "tag", 10)).unwrap();
    drop(f);
    // a corrupt progress record, past the file's end: replayed from the start all the same
    std::fs::write(with_suffix(&file, ".done"), "99999999999\n").unwrap();
    // a FIFO named like a spool file: opening it would block the replay for good
    let fifo = spool.path().join("0000000000000-1-fifo.jsonl");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let redis = Redis::connect(&config).await.unwrap();
    let mut raw = redis.conn();
    let calls = script_calls(&mut raw).await;
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        producer::replay_dir(&redis, spool.path(), &Default::default(), None),
    )
    .await
    .expect("the replay hung on the FIFO")
    .unwrap();
    assert_eq!(
        (report.files, report.stored, report.skipped),
        (1, 32, 2),
        "{report:?}"
    );
    let calls = script_calls(&mut raw).await - calls;
    assert!(
        calls >= 15,
        "18 MB of jobs stored in {calls} script calls: a call holds Redis for as long as it \
         writes"
    );
    let q = Queue::open(&redis, &prefix, "q").await.unwrap();
    for id in ids
        .iter()
        .map(String::as_str)
        .chain(["big0", "big29", "two-mib"])
    {
        q.job(id).await.unwrap();
    }
    assert!(q.get_job("over").await.unwrap().is_none());
    let rejected = std::fs::read_to_string(with_suffix(&file, ".rejected")).unwrap();
    assert_eq!(rejected.lines().count(), 2);
    assert!(rejected.contains("\"over\"") && rejected.contains("A}b{c"));
    assert!(!file.exists());
    // the status lists the spool files only
    let status = producer::spool_files(spool.path()).unwrap();
    assert!(status.is_empty(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_stopped_by_its_file_or_by_redis_refusing_writes_keeps_the_file_and_says_so() {
    let server = RedisServer::start(&[]);
    let url = server.url();
    let spool = TempDir::new("replay-stopped");
    let config = spool_config(&url, &spool);
    let prefix = config.prefix().to_string();
    let file = spool.path().join("0001-by-hand.jsonl");
    let big = format!(
        r#"{{"prefix":"{prefix}","queue":"q","id":"big","name":"diag.echo","data":{{"n":123456789012345678901234567890}},"opts":{{}},"at":1}}"#
    );
    let lines = [
        spool_line(&prefix, "q", "good-1"),
        "not json".into(),
        big.clone(),
        spool_line(&prefix, "q", "good-2"),
    ];
    write_spool(&file, &lines);
    // the rejected file cannot be written: a directory stands at its path
    let rejected = with_suffix(&file, ".rejected");
    std::fs::create_dir(&rejected).unwrap();
    let (report, stderr) = replay_exiting(&url, &spool, 1);
    assert!(stderr.contains("not replayed to their end"), "{stderr}");
    assert_eq!(report["stored"], 2, "{report}");
    assert_eq!(report["unfinished"], json!([file]), "{report}");
    assert!(file.exists(), "the spool file is gone");

    // once the rejected file can be written, the next replay finishes it: the good jobs are
    // not stored twice, the integer past 64 bits is rejected, never stored rounded
    std::fs::remove_dir(&rejected).unwrap();
    let (report, _) = replay_exiting(&url, &spool, 0);
    assert_eq!(
        (&report["stored"], &report["duplicates"], &report["skipped"]),
        (&json!(0), &json!(2), &json!(2)),
        "{report}"
    );
    let env = TestEnv::on_prefix(&url, &prefix).await;
    let q = env.queue("q").await;
    assert!(
        q.job("big").await.is_err(),
        "the rounded integer was stored"
    );
    let kept = std::fs::read_to_string(&rejected).unwrap();
    assert!(kept.contains(&big), "{kept}");
    assert!(!file.exists());

    // a Redis out of memory refuses every job: the replay stops, keeping the file whole,
    // rather than moving its good jobs to the rejected file
    let file = spool.path().join("0002-oom.jsonl");
    write_spool(
        &file,
        &[
            spool_line(&prefix, "q", "oom-1"),
            spool_line(&prefix, "q2", "oom-2"),
        ],
    );
    let mut raw = env.raw().await;
    let set_maxmemory = |bytes: &'static str| {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET").arg("maxmemory").arg(bytes);
        cmd
    };
    let _: () = set_maxmemory("1").query_async(&mut raw).await.unwrap();
    let (_, stderr) = replay_exiting(&url, &spool, 1);
    assert!(stderr.contains("OOM"), "{stderr}");
    assert!(file.exists(), "the spool file is gone");
    assert!(
        !with_suffix(&file, ".rejected").exists(),
        "good jobs were rejected"
    );
    let _: () = set_maxmemory("0").query_async(&mut raw).await.unwrap();
    let (report, _) = replay_exiting(&url, &spool, 0);
    assert_eq!(report["stored"], 2, "{report}");
    env.queue("q2").await.job("oom-2").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_out_of_memory_still_lets_a_new_process_read_its_queues() {
    let server = RedisServer::start(&[]);
    let url = server.url();
    let env = TestEnv::on(&url).await;
    let prefix = env.config.prefix().to_string();
    env.queue("full")
        .await
        .add(
            "diag.echo",
            &json!({"x": 1}),
            JobOptions::new().job_id("j1").priority(3),
        )
        .await
        .unwrap();
    let mut raw = env.raw().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query_async(&mut raw)
        .await
        .unwrap();
    // a process that has not read the queue's lanes yet (a CLI, a dashboard just started)
    let fresh = TestEnv::on_prefix(&url, &prefix).await;
    let q = fresh.queue("full").await;
    assert_eq!(q.job("j1").await.unwrap().state, JobState::Waiting);
    assert_eq!(q.counts().await.unwrap().waiting, 1);
    let listed = q.list_jobs(JobState::Waiting, 0, 10).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
}
