//! Groups under attack: corrupt records, wrong-type keys, garbage limits, hostile sizes and
//! the other commands of a queue, each against a real Redis. Each test whose comment says
//! "Was:" failed before the mend it names (on a178542, the review's base).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

fn job(group: Option<&str>, i: usize) -> NewJob {
    let mut opts = JobOptions::new();
    if let Some(g) = group {
        opts = opts.group(g);
    }
    NewJob::new("work", &json!({ "i": i }), opts).unwrap()
}

/// A worker that completes `work` jobs at once, sweeping often (so the sweep's repairs get
/// their chance too).
fn worker(env: &TestEnv, queue: &str, concurrency: usize) -> Worker {
    env.worker()
        .queues([queue])
        .concurrency(concurrency)
        .sweep_interval(Duration::from_millis(100))
        .handler("work", |_j: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap()
}

fn keys(env: &TestEnv, q: &str) -> QueueKeys {
    QueueKeys::new(env.config.prefix(), q)
}

/// Runs one raw command behind jobq's back.
async fn raw(env: &TestEnv, args: &[&str]) -> redis::Value {
    let mut conn = env.raw().await;
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(&mut conn).await.unwrap()
}

async fn zcard(env: &TestEnv, key: &str) -> i64 {
    let mut conn = env.raw().await;
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Whether job `id` finished (completed or failed).
async fn finished(q: &Queue, id: &str) -> bool {
    match q.job(id).await {
        Ok(j) => matches!(j.state, JobState::Completed | JobState::Failed),
        Err(_) => false,
    }
}

/// Polls until all of `ids` finished or `within` passed; the ones not finished.
async fn unfinished_after(q: &Queue, ids: &[String], within: Duration) -> Vec<String> {
    let until = Instant::now() + within;
    loop {
        let mut left = Vec::new();
        for id in ids {
            if !finished(q, id).await {
                left.push(id.clone());
            }
        }
        if left.is_empty() || Instant::now() > until {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Was: A waiting grouped job whose `grp` field is lost (HDEL, a partial restore) is still
/// claimed from its group's queue: the claim counts it active in the group it popped it
/// from (`gact`), but hands the worker the job's own `grp` field (nil → ''), so the
/// outcome never calls `group_done` for that group. With a concurrency cap the group stays
/// parked at `inf` forever, and the sweep (repair_groups.lua) does not help: it only
/// unparks a group with no active count at all.
/// Cause: move_to_active.lua line 271-273 counts `g`, line 387 returns `f[11]` (the hash's
/// `grp`); complete.lua:121 / fail_or_retry.lua:195 trust what the worker sends back.
/// Mended as suggested: the claim checks each popped job (`HMGET state sid grp`: no state, sid == 'g',
/// grp == g), drops (and uncounts) one that does not match, and returns `g` itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_job_whose_grp_field_is_lost_does_not_park_its_group_forever() {
    let env = TestEnv::new().await;
    let name = "h-grp-lost";
    let q = env.queue(name).await;
    q.set_group_limit(None, GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    let ids = add_all(&q, (0..3).map(|i| job(Some("t"), i)).collect()).await;
    let k = keys(&env, name);
    raw(&env, &["HDEL", &k.job(&ids[0]), "grp"]).await;
    let guard = spawn_worker(worker(&env, name, 4));
    let left = unfinished_after(&q, &ids[1..], Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    let view = q.groups(5).await.unwrap();
    assert!(
        left.is_empty(),
        "group t never ran {left:?} after one of its jobs lost its grp field: {view:?}"
    );
}

/// Was: A grouped job's hash deleted while it waits in its group (by hand, an eviction):
/// an ungrouped job's orphan lane entry is dropped at claim, but the claim writes `sid` and
/// `ln` into the missing hash (move_to_active.lua:307), creating a junk job with no name,
/// which the worker fails with group '' (the half hash has no `grp`): a failed job that
/// never existed appears, and `gact` of the group keeps the slot, so with a cap the group is
/// parked forever (same cause as above).
/// Mended as suggested: as above; a popped id whose hash does not exist is dropped (gw/waiting uncounted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_hash_deleted_while_in_its_group_is_dropped_not_resurrected() {
    let env = TestEnv::new().await;
    let name = "h-hash-gone";
    let q = env.queue(name).await;
    q.set_group_limit(None, GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    let ids = add_all(&q, (0..3).map(|i| job(Some("t"), i)).collect()).await;
    let k = keys(&env, name);
    raw(&env, &["DEL", &k.job(&ids[0])]).await;
    let guard = spawn_worker(worker(&env, name, 4));
    let left = unfinished_after(&q, &ids[1..], Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    let ghost = q.job(&ids[0]).await.ok().map(|j| j.state);
    let view = q.groups(5).await.unwrap();
    assert!(
        left.is_empty() && ghost.is_none(),
        "deleted job came back as {ghost:?}; group t never ran {left:?}: {view:?}"
    );
}

/// Was (gring, gpark, glimits): One group key of the wrong type (a stray SET, a bad
/// restore) makes every claim of the queue error, so nothing runs, not even the jobs
/// without a group: move_to_active.lua:125 (ZRANGEBYSCORE park) and :202 (ZCARD ring) run
/// on every claim, :212-213 (HMGET/HLEN limits) whenever a group has a turn, all with
/// `redis.call`. The queue's own rate limiter key is read with pcall and restarted when
/// corrupt; the group keys are not. (The sweep's repair_groups.lua errors on them too.)
/// Mended as suggested: read these keys with pcall and treat a wrong-type one as empty (delete it, as the
/// limiter is), or at least skip the groups' part of the claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_type_group_key_does_not_stop_the_whole_queue() {
    let mut stuck = Vec::new();
    for (n, which) in ["gring", "gpark", "glimits", "gwait"].iter().enumerate() {
        let env = TestEnv::new().await;
        let name = format!("h-wrongtype-{n}");
        let q = env.queue(&name).await;
        let plain = add_all(&q, (0..5).map(|i| job(None, i)).collect()).await;
        add_all(&q, (0..5).map(|i| job(Some(&format!("g{i}")), i)).collect()).await;
        let k = keys(&env, &name);
        let key = match *which {
            "gring" => k.group_ring(),
            "gpark" => k.group_parked(),
            "glimits" => k.group_limits(),
            _ => k.group_waiting(),
        };
        raw(&env, &["DEL", &key]).await;
        raw(&env, &["SET", &key, "junk"]).await;
        let guard = spawn_worker(worker(&env, &name, 4));
        let left = unfinished_after(&q, &plain, Duration::from_secs(3)).await;
        guard.stop().await.unwrap();
        if !left.is_empty() {
            stuck.push(format!(
                "{which}: {} of 5 ungrouped jobs never ran",
                left.len()
            ));
        }
    }
    assert!(
        stuck.is_empty(),
        "a wrong-type group key stopped the queue: {stuck:?}"
    );
}

/// Was: one group's queue key of the wrong type (`gq:gA` a string) failed every claim of
/// the queue, so every other tenant's jobs stayed waiting for ever. Now that group alone
/// comes out empty (its key, holding no job of ours, is deleted) and the others run; its
/// jobs still wait by their records, for the sweep to put back in its queue (when its walk
/// of the keyspace reaches them: not within this test on the suite's shared Redis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_groups_queue_of_the_wrong_type_stops_no_other_group() {
    let env = TestEnv::new().await;
    let name = "h-gq";
    let q = env.queue(name).await;
    let a = add_all(&q, (0..3).map(|i| job(Some("gA"), i)).collect()).await;
    let b = add_all(&q, (0..5).map(|i| job(Some("gB"), i)).collect()).await;
    let k = keys(&env, name);
    raw(&env, &["DEL", &k.group_queue("gA")]).await;
    raw(&env, &["SET", &k.group_queue("gA"), "junk"]).await;
    let guard = spawn_worker(worker(&env, name, 4));
    let left_b = unfinished_after(&q, &b, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert!(left_b.is_empty(), "group gB stuck: {left_b:?}");
    for id in &a {
        let job = q.job(id).await.unwrap();
        assert!(
            matches!(job.state, JobState::Waiting | JobState::Completed),
            "{job:?}"
        );
    }
}

/// Was: a group's active count above its running jobs (a corrupt record: `ZADD gact 5 gA`)
/// held the group at its concurrency cap for ever: none of its jobs ran again. The sweep
/// now sets the counts to the group lane's pending entries (exact, in one script), and the
/// group, parked at its cap, returns to the ring; its cap still holds after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_count_above_its_running_jobs_is_set_right_by_the_sweep() {
    let env = TestEnv::new().await;
    let name = "h-gact-drift";
    let q = env.queue(name).await;
    q.set_group_limit(Some("gA"), GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    let a = add_all(&q, (0..3).map(|i| job(Some("gA"), i)).collect()).await;
    let b = add_all(&q, (0..2).map(|i| job(Some("gB"), i)).collect()).await;
    let k = keys(&env, name);
    raw(&env, &["ZADD", &k.group_active(), "5", "gA"]).await;
    let guard = spawn_worker(worker(&env, name, 4));
    let left_b = unfinished_after(&q, &b, Duration::from_secs(5)).await;
    let left_a = unfinished_after(&q, &a, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert!(left_b.is_empty(), "group gB stuck: {left_b:?}");
    assert!(left_a.is_empty(), "group gA held at its cap: {left_a:?}");
    assert_eq!(zcard(&env, &k.group_active()).await, 0);
}

/// Was: The claim is not atomic on error: a Lua error after writes keeps the writes. With
/// `gact` of the wrong type, each claim pops a group from the ring and its best job from
/// the group's queue (and decrements `gwait`), then errors at `ZINCRBY gact`
/// (move_to_active.lua:273): the job is in no structure any more (its hash still says it
/// waits in its group) and the group is out of the ring. The sweep (repair.lua:39-45) puts
/// the job back, the next claim pops it and errors again: grouped jobs never run, while
/// `gw`/`waiting` say they wait. Any error inside the turn loop (a wrong-type job key at
/// :307 too) has this effect. (The test checks, after the worker stops, that each
/// unfinished job is back in its group's queue: it is, thanks to the sweep; the failure is
/// that none ran.)
/// Mended as suggested: do every check (types, values) before the first write of a turn, with pcall for
/// the group keys (a wrong-type count key deleted and rebuilt by the sweep).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_type_active_counts_key_loses_no_grouped_job() {
    let env = TestEnv::new().await;
    let name = "h-gact";
    let q = env.queue(name).await;
    let grouped = add_all(&q, (0..5).map(|i| job(Some(&format!("g{i}")), i)).collect()).await;
    let k = keys(&env, name);
    raw(&env, &["SET", &k.group_active(), "junk"]).await;
    let guard = spawn_worker(worker(&env, name, 4));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    guard.stop().await.unwrap();
    // a job that did not finish must still wait in its group's queue
    let mut lost = Vec::new();
    for (i, id) in grouped.iter().enumerate() {
        if finished(&q, id).await {
            continue;
        }
        let mut conn = env.raw().await;
        let there: Option<f64> = redis::cmd("ZSCORE")
            .arg(k.group_queue(&format!("g{i}")))
            .arg(id)
            .query_async(&mut conn)
            .await
            .unwrap();
        if there.is_none() {
            lost.push(id.clone());
        }
    }
    let left = unfinished_after(&q, &grouped, Duration::from_millis(10)).await;
    assert!(
        lost.is_empty() && left.is_empty(),
        "with gact of the wrong type: {} grouped jobs never ran, {} of them in no group \
         queue at all",
        left.len(),
        lost.len()
    );
}

/// Handled: garbage in the group limits hash (non-numbers, negative, a rate with no window)
/// is ignored by the claim (move_to_active.lua:235-237), so the groups keep running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_group_limits_are_ignored_by_the_claim() {
    let env = TestEnv::new().await;
    let name = "h-garbage-limits";
    let q = env.queue(name).await;
    let k = keys(&env, name);
    let limits = k.group_limits();
    raw(
        &env,
        &[
            "HSET", &limits, "c", "abc", "r", "x/y", "c:t", "-1", "r:t", "5", "c:u", "1e400",
            "r:u", "0/0",
        ],
    )
    .await;
    let mut jobs: Vec<NewJob> = (0..10).map(|i| job(Some("t"), i)).collect();
    jobs.extend((0..10).map(|i| job(Some("u"), i)));
    let ids = add_all(&q, jobs).await;
    let guard = spawn_worker(worker(&env, name, 4));
    let left = unfinished_after(&q, &ids, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert!(left.is_empty(), "{} jobs never ran", left.len());
}

/// Was (minor): One unreadable field in the group limits hash makes `group_limits()` (so
/// `jobq groups` and the dashboard's limits) an error for the whole queue, hiding every
/// good override, though the claim ignores the bad field (groups.rs:179-180).
/// Mended as suggested: skip (and report) the bad field instead of failing the view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_garbage_limit_field_does_not_break_the_whole_limits_view() {
    let env = TestEnv::new().await;
    let name = "h-garbage-view";
    let q = env.queue(name).await;
    q.set_group_limit(Some("vip"), GroupLimitChange::Concurrency(5))
        .await
        .unwrap();
    raw(
        &env,
        &["HSET", &keys(&env, name).group_limits(), "c:t", "abc"],
    )
    .await;
    let view = q.group_limits().await;
    assert!(
        view.as_ref()
            .map(|v| v.effective("vip").concurrency == Some(5))
            .unwrap_or(false),
        "{view:?}"
    );
}

/// Handled: a group's rate counter of the wrong type (or a non-number) is restarted by the
/// claim (pcall GET, then SET), not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_group_rate_counter_is_restarted() {
    let env = TestEnv::new().await;
    let name = "h-rate-counter";
    let q = env.queue(name).await;
    q.set_group_limit(
        None,
        GroupLimitChange::Rate {
            max: 1000,
            window: Duration::from_secs(1),
        },
    )
    .await
    .unwrap();
    let k = keys(&env, name);
    raw(&env, &["HSET", &k.group_rate("t"), "a", "b"]).await;
    raw(&env, &["SET", &k.group_rate("u"), "not-a-number"]).await;
    let mut jobs: Vec<NewJob> = (0..10).map(|i| job(Some("t"), i)).collect();
    jobs.extend((0..10).map(|i| job(Some("u"), i)));
    let ids = add_all(&q, jobs).await;
    let guard = spawn_worker(worker(&env, name, 4));
    let left = unfinished_after(&q, &ids, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert!(left.is_empty(), "{} jobs never ran", left.len());
}

/// Was: Clearing (or raising) the queue's default concurrency cap releases at most
/// RELEASE_MAX = 1000 parked groups (set_group_limits.lua:12, :34). The others stay parked
/// at `inf` though no limit holds them any more, until one of their active jobs ends, which
/// for a long job can be hours. The state below is what 1,500 groups at a cap of 1 with one
/// long job each look like (built by hand to avoid running 1,500 jobs).
/// Mended as suggested: release in pages from the worker (loop the script with a cursor until the park is
/// empty of `inf` members), or have the claim re-judge `inf`-parked groups lazily: store
/// a limits version in meta, and unpark `inf` members parked under an older version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_the_default_cap_releases_every_parked_group() {
    let env = TestEnv::new().await;
    let name = "h-release";
    let q = env.queue(name).await;
    q.set_group_limit(None, GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    const N: usize = 1500;
    add_all(
        &q,
        (0..N).map(|i| job(Some(&format!("g{i:04}")), i)).collect(),
    )
    .await;
    let k = keys(&env, name);
    let mut conn = env.raw().await;
    let mut pipe = redis::pipe();
    pipe.cmd("DEL").arg(k.group_ring());
    for i in 0..N {
        let g = format!("g{i:04}");
        pipe.cmd("ZADD").arg(k.group_parked()).arg("inf").arg(&g);
        pipe.cmd("ZADD").arg(k.group_active()).arg(1).arg(&g);
    }
    let _: () = pipe.query_async(&mut conn).await.unwrap();
    q.set_group_limit(None, GroupLimitChange::ClearConcurrency)
        .await
        .unwrap();
    let still = zcard(&env, &k.group_parked()).await;
    let ring = zcard(&env, &k.group_ring()).await;
    assert_eq!(
        (still, ring),
        (0, N as i64),
        "after the cap was cleared, {still} groups stay parked"
    );
}

/// Handled: the counts stay exact through the other commands on grouped jobs: priority
/// change (of a job in a parked group too), remove, promote, retry of failed jobs, drain:
/// meta `gw` = the groups' `gwait` sum = their queues' sizes, and a group is in the ring
/// exactly while it has waiting jobs and is not parked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_the_ring_stay_exact_through_every_command() {
    let env = TestEnv::new().await;
    let name = "h-commands";
    let q = env.queue(name).await;
    let k = keys(&env, name);
    // a: 3 waiting; b: 1 waiting; c: 2 delayed; d: 1 waiting
    let a = add_all(&q, (0..3).map(|i| job(Some("a"), i)).collect()).await;
    let b = add_all(&q, vec![job(Some("b"), 0)]).await;
    let c: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..2 {
            let added = q
                .add(
                    "work",
                    &json!({ "i": i }),
                    JobOptions::new()
                        .group("c")
                        .delay(Duration::from_secs(3600)),
                )
                .await
                .unwrap();
            v.push(added.id);
        }
        v
    };
    add_all(&q, vec![job(Some("d"), 0)]).await;
    // priority changes: b's only job (its group leaves the ring and comes back), a's first
    q.change_priority(&b[0], 7).await.unwrap();
    q.change_priority(&a[0], -3).await.unwrap();
    q.remove_job(&a[1]).await.unwrap();
    q.promote_job(&c[0]).await.unwrap();
    check_groups(&env, &q, &k, "after priority, remove, promote").await;
    // fail one of d's jobs for good, then retry it
    let fail_worker = env
        .worker()
        .queues([name])
        .handler("work", |_j: Job<Value>, _c: Ctx| async move {
            Err::<(), _>(JobError::fatal("no"))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(fail_worker);
    let cnt = wait_finished(&q, 5, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!(cnt.failed_total, 5, "{cnt:?}");
    check_groups(&env, &q, &k, "after failing").await;
    assert_eq!(q.retry_all_failed().await.unwrap(), 5);
    check_groups(&env, &q, &k, "after retry").await;
    let drained = q.drain().await.unwrap();
    assert_eq!(drained, 6, "5 retried + c's delayed one");
    check_groups(&env, &q, &k, "after drain").await;
    let cnt = q.counts().await.unwrap();
    assert_eq!((cnt.waiting, cnt.delayed, cnt.active), (0, 0, 0), "{cnt:?}");
}

/// gw == Σ gwait == Σ |gq:g|, and ring = {g: gwait > 0, not parked}.
async fn check_groups(env: &TestEnv, q: &Queue, k: &QueueKeys, when: &str) {
    let mut conn = env.raw().await;
    let gw: Option<i64> = redis::cmd("HGET")
        .arg(k.meta())
        .arg("gw")
        .query_async(&mut conn)
        .await
        .unwrap();
    let gwait: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(k.group_waiting())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .unwrap();
    let ring: Vec<String> = redis::cmd("ZRANGE")
        .arg(k.group_ring())
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let park: Vec<String> = redis::cmd("ZRANGE")
        .arg(k.group_parked())
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut sum = 0i64;
    let mut want_ring = Vec::new();
    for (g, n) in &gwait {
        let size = zcard(env, &k.group_queue(g)).await;
        assert_eq!(
            size, *n as i64,
            "{when}: gwait of {g} is {n}, its queue holds {size}"
        );
        sum += size;
        if size > 0 && !park.contains(g) {
            want_ring.push(g.clone());
        }
    }
    let mut ring = ring;
    ring.sort();
    want_ring.sort();
    assert_eq!(
        gw.unwrap_or(0),
        sum,
        "{when}: meta gw vs the groups' waiting"
    );
    assert_eq!(ring, want_ring, "{when}: the ring");
    let cnt = q.counts().await.unwrap();
    assert!(
        cnt.waiting as i64 >= sum,
        "{when}: waiting {} < grouped waiting {sum}",
        cnt.waiting
    );
}

/// Handled: pause holds grouped jobs back like any other, and resume lets them run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_grouped_jobs_and_resume_runs_them() {
    let env = TestEnv::new().await;
    let name = "h-pause";
    let q = env.queue(name).await;
    q.pause().await.unwrap();
    let ids = add_all(
        &q,
        (0..6)
            .map(|i| job(Some(&format!("g{}", i % 2)), i))
            .collect(),
    )
    .await;
    let guard = spawn_worker(worker(&env, name, 4));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in &ids {
        assert!(
            !finished(&q, id).await,
            "{id} ran while the queue was paused"
        );
    }
    q.resume().await.unwrap();
    let left = unfinished_after(&q, &ids, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// Handled, but borderline (timing): the claim and every other script stay short with 100k
/// groups, 100k per-group overrides and 20k groups parked by their rate limit all reopening
/// at once: no call of 50 ms or more in the slowlog of a private server. A claim's cost
/// grows with the groups it looks at (~15 calls each): with up to 500 of them per call
/// (worker/fetch.rs MAX_BATCH) the slowest claim took 15-33 ms on one machine and 51-55 ms
/// on a slower one; a claim now looks at no more than 128 groups and reopens no more than
/// 200 (move_to_active.lua GROUPS_PER_CALL, REOPEN_MAX): 18-20 ms on the slower machine.
/// Under CPU contention the slowlog inflates every script, ungrouped ones too, so it runs
/// alone (its name has `slowlog`: .config/nextest.toml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowlog_claims_stay_short_with_100k_groups_overrides_and_parked_groups() {
    let server = RedisServer::start_logging_slow_calls();
    let env = TestEnv::on(&server.url()).await;
    let name = "h-huge";
    let q = env.queue(name).await;
    let k = keys(&env, name);
    const G: usize = 100_000;
    let t0 = Instant::now();
    for chunk in (0..G).collect::<Vec<_>>().chunks(10_000) {
        add_all(
            &q,
            chunk
                .iter()
                .map(|i| job(Some(&format!("g{i}")), *i))
                .collect(),
        )
        .await;
    }
    eprintln!("added {G} groups in {:?}", t0.elapsed());
    // 100k overrides (as set_group_limit stores them) and 20k groups parked by their rate
    // limit, all reopening in 1 s
    let mut conn = env.raw().await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for part in 0..10 {
        let mut pipe = redis::pipe();
        for i in part * (G / 10)..(part + 1) * (G / 10) {
            let g = format!("g{i}");
            pipe.cmd("HSET")
                .arg(k.group_limits())
                .arg(format!("c:{g}"))
                .arg(3)
                .arg(format!("r:{g}"))
                .arg("1000/1000");
            if i % 5 == 0 {
                pipe.cmd("ZREM").arg(k.group_ring()).arg(&g);
                pipe.cmd("ZADD")
                    .arg(k.group_parked())
                    .arg(now_ms + 1000)
                    .arg(&g);
            }
        }
        let _: () = pipe.query_async(&mut conn).await.unwrap();
    }
    reset_slowlog(&mut conn).await;
    let guard = spawn_worker(worker(&env, name, 64));
    tokio::time::sleep(Duration::from_secs(6)).await;
    // and a change of the default with many parked groups
    q.set_group_limit(None, GroupLimitChange::Concurrency(2))
        .await
        .unwrap();
    let _ = q.groups(20).await.unwrap();
    guard.stop().await.unwrap();
    let done = q.counts().await.unwrap().completed_total;
    // the slowest calls, with the keys they named (which script)
    let slow: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut rows: Vec<(i64, String)> = slow
        .iter()
        .filter_map(|e| match e {
            redis::Value::Array(f) => {
                let us = match f.get(2) {
                    Some(redis::Value::Int(us)) => *us,
                    _ => 0,
                };
                let args = match f.get(3) {
                    Some(redis::Value::Array(a)) => a
                        .iter()
                        .skip(3)
                        .take(3)
                        .map(|v| match v {
                            redis::Value::BulkString(b) => String::from_utf8_lossy(b)
                                .chars()
                                .take(50)
                                .collect::<String>(),
                            o => format!("{o:?}"),
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                    _ => String::new(),
                };
                Some((us, args))
            }
            _ => None,
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (us, args) in rows.iter().take(8) {
        eprintln!("slow: {us} µs {args}");
    }
    let (n, (us, cmd)) = slowest_call(&mut conn).await;
    eprintln!("{done} jobs ran; slowlog: {n} entries, slowest {us} µs: {cmd}");
    assert!(done > 0);
    assert!(us < 50_000, "a call took {us} µs: {cmd}");
}

/// Was: Groups over a cap while in the ring (the cap was tightened while each of 3,000
/// groups had a job running) are parked 200 per claim (GROUP_MISSES); a claim that hits
/// that bound with nothing taken returns no job and no `next_due`, so the worker blocks for
/// MAX_IDLE (1 s) before claiming again, and `upos` only reaches `ring_n` after ~N/400
/// claims: the jobs without a group, and a group under its cap at the back of the ring,
/// waited 14 s here although they were ready.
/// Cause: move_to_active.lua:219 stops at GROUP_MISSES and returns as if idle (no wake, no
/// next_due); set_group_limits.lua:34 releases up to 1000 more over-the-cap groups into the
/// ring when a default is tightened.
/// Mended as suggested: when the loop stops at GROUP_MISSES, return `next_due = now` (or wake the marker) so
/// the worker claims again at once; optionally release parked groups only when a limit is
/// loosened. (GROUP_MISSES is gone since: the bound on the groups a claim looks at,
/// GROUPS_PER_CALL, is lower, and stopping there returns `next_due = now` the same way.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tightening_a_cap_over_many_groups_does_not_stall_other_work() {
    let env = TestEnv::new().await;
    let name = "h-tighten";
    let q = env.queue(name).await;
    const N: usize = 3000;
    add_all(
        &q,
        (0..N).map(|i| job(Some(&format!("g{i:04}")), i)).collect(),
    )
    .await;
    // each of these groups has one job running elsewhere
    let k = keys(&env, name);
    let mut conn = env.raw().await;
    let mut pipe = redis::pipe();
    for i in 0..N {
        pipe.cmd("ZADD")
            .arg(k.group_active())
            .arg(1)
            .arg(format!("g{i:04}"));
    }
    let _: () = pipe.query_async(&mut conn).await.unwrap();
    q.set_group_limit(None, GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    let mut ready = add_all(&q, (0..10).map(|i| job(None, i)).collect()).await;
    ready.extend(add_all(&q, (0..5).map(|i| job(Some("free"), i)).collect()).await);
    let t0 = Instant::now();
    let guard = spawn_worker(worker(&env, name, 4));
    let left = unfinished_after(&q, &ready, Duration::from_secs(20)).await;
    let took = t0.elapsed();
    guard.stop().await.unwrap();
    assert!(
        left.is_empty() && took < Duration::from_secs(3),
        "15 ready jobs took {took:?} to run ({} never ran) behind {N} groups at their cap",
        left.len()
    );
}

/// Was (minor): Raising the priority of a group's only waiting job sends the group to the
/// back of the ring: update_job.lua:32-33 does group_unwait (its count drops to 0, so
/// ZREM from the ring) then group_wait (ring_add at the tail). An operator bumping a
/// tenant's urgent job makes that tenant wait a whole round more.
/// Mended as suggested: re-score the job in place (`ZADD gq:<g> XX <score>`, with a new sequence number)
/// without touching the counts or the ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_a_jobs_priority_does_not_cost_its_group_its_turn() {
    let env = TestEnv::new().await;
    let name = "h-prio-turn";
    let q = env.queue(name).await;
    let a = add_all(&q, vec![job(Some("a"), 0)]).await;
    add_all(&q, (1..6).map(|i| job(Some(&format!("b{i}")), i)).collect()).await;
    q.change_priority(&a[0], 10).await.unwrap();
    let k = keys(&env, name);
    let mut conn = env.raw().await;
    let first: Vec<String> = redis::cmd("ZRANGE")
        .arg(k.group_ring())
        .arg(0)
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        first,
        vec!["a".to_string()],
        "group a had the first turn; after its job's priority went up it is last"
    );
}

/// Handled: a repeatable schedule whose job options name a group fires its jobs into that
/// group (they are claimed through the group lane), under the group's cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeatable_schedule_fires_into_its_group() {
    let env = TestEnv::new().await;
    let name = "h-sched";
    let q = env.queue(name).await;
    q.set_group_limit(Some("sched"), GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    let every = Schedule::new(
        "tick",
        "work",
        Repeat::every(Duration::from_millis(200)).unwrap(),
    )
    .data(&json!({}))
    .unwrap()
    .opts(JobOptions::new().group("sched"));
    q.upsert_schedule(every).await.unwrap();
    let guard = spawn_worker(worker(&env, name, 4));
    let c = wait_finished(&q, 3, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert!(c.completed_total >= 3, "{c:?}");
    let k = keys(&env, name);
    let mut conn = env.raw().await;
    let done: Vec<String> = redis::cmd("ZRANGE")
        .arg(k.completed())
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    for id in &done {
        let f: (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(k.job(id))
            .arg("grp")
            .arg("ln")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            f,
            (Some("sched".into()), Some("1002".into())),
            "job {id} did not go through its group"
        );
    }
}

/// Was: a group set of the wrong type failed the script that met it half-way, its earlier
/// writes kept (Lua does not roll back): an `add_bulk` stored the jobs before the bad group
/// and said it failed, with the queue's waiting count left behind; a flow parent released
/// into its group by its last child's outcome stayed waiting for children for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_set_of_the_wrong_type_fails_no_add_and_strands_no_flow_parent() {
    let env = TestEnv::new().await;
    let q = env.queue("h-wt").await;
    raw(
        &env,
        &["SET", &keys(&env, "h-wt").group_queue("gx"), "garbage"],
    )
    .await;
    let added = q
        .add_bulk(vec![
            job(Some("a"), 0),
            job(None, 1),
            job(Some("gx"), 2),
            job(Some("b"), 3),
        ])
        .await
        .unwrap();
    assert_eq!(added.len(), 4);
    assert_eq!(q.counts().await.unwrap().waiting, 4);
    // a parent in a group whose waiting counts are corrupt when its child ends (the
    // worker's sweep is the default one, 10 s: not what mends it)
    let parents = env.queue("h-wtp").await;
    raw(
        &env,
        &["SET", &keys(&env, "h-wtp").group_waiting(), "garbage"],
    )
    .await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let tree = flows
        .add(
            FlowJob::new("h-wtp", "work", &json!({}))
                .unwrap()
                .opts(JobOptions::new().group("p"))
                .children([FlowJob::new("h-wtc", "work", &json!({})).unwrap()]),
        )
        .await
        .unwrap();
    let guard = spawn_worker(
        env.worker()
            .queues(["h-wt", "h-wtp", "h-wtc"])
            .concurrency(4)
            .handler("work", |_j: Job<Value>, _c: Ctx| async move {
                Ok::<_, JobError>(())
            })
            .build()
            .unwrap(),
    );
    let left = unfinished_after(
        &parents,
        std::slice::from_ref(&tree.id),
        Duration::from_secs(5),
    )
    .await;
    let c = wait_finished(&q, 4, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    assert!(left.is_empty(), "the parent never ran");
    assert_eq!((c.waiting, c.completed_total), (0, 4), "{c:?}");
}

/// Was: reading a queue's group limits searched the list of overrides for each stored field:
/// 35 s for 100,000 overrides (a release build), the dashboard's limits page, its API and
/// `jobq limits` with it, while one request held a thread of the dashboard's two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_hundred_thousand_group_overrides_takes_no_longer_than_their_read() {
    let env = TestEnv::new().await;
    let q = env.queue("h-over").await;
    q.add("work", &json!(1), JobOptions::new().group("g0"))
        .await
        .unwrap();
    let limits = keys(&env, "h-over").group_limits();
    let mut conn = env.raw().await;
    const N: usize = 100_000;
    for part in (0..N).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for i in part {
            pipe.cmd("HSET")
                .arg(&limits)
                .arg(format!("c:g{i}"))
                .arg(3)
                .arg(format!("r:g{i}"))
                .arg("10/1000");
        }
        let () = pipe.query_async(&mut conn).await.unwrap();
    }
    let t0 = Instant::now();
    let view = q.group_limits().await.unwrap();
    let took = t0.elapsed();
    assert_eq!(view.overrides.len(), N);
    assert!(
        view.overrides
            .iter()
            .all(|(_, l)| l.concurrency == Some(3) && l.rate_max == Some(10)),
        "an override lost a limit"
    );
    // (a few hundred ms here, debug build; the search took minutes)
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// Was: a groups' active counts set of the wrong type was deleted by the next claim, and
/// every group then counted none running: a group at its cap of 2 started a third job
/// beside its two (the sweep's recount, up to 10 s later, came too late). Now no grouped
/// job starts until the counts are made again from the group lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_active_count_never_lets_a_group_past_its_cap() {
    let env = TestEnv::new().await;
    let q = env.queue("h-gact").await;
    q.set_group_limit(None, GroupLimitChange::Concurrency(2))
        .await
        .unwrap();
    let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (r, m) = (running.clone(), most.clone());
    let guard = spawn_worker(
        env.worker()
            .queues(["h-gact"])
            .concurrency(8)
            .handler("work", move |_j: Job<Value>, _c: Ctx| {
                let (r, m) = (r.clone(), m.clone());
                async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = r.fetch_add(1, SeqCst) + 1;
                    m.fetch_max(now, SeqCst);
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    r.fetch_sub(1, SeqCst);
                    Ok::<_, JobError>(())
                }
            })
            .build()
            .unwrap(),
    );
    q.add_bulk((0..8).map(|i| job(Some("solo"), i)).collect())
        .await
        .unwrap();
    wait_active(&q, 2, Duration::from_secs(5)).await;
    raw(
        &env,
        &["SET", &keys(&env, "h-gact").group_active(), "garbage"],
    )
    .await;
    let c = wait_finished(&q, 8, Duration::from_secs(20)).await;
    guard.stop().await.unwrap();
    assert_eq!(c.completed_total, 8, "{c:?}");
    assert!(
        most.load(std::sync::atomic::Ordering::SeqCst) <= 2,
        "{} jobs of a group capped at 2 ran at once",
        most.load(std::sync::atomic::Ordering::SeqCst)
    );
}

/// Was: the claim shares its turns out by the queue's `waiting` counter: minus the jobs in
/// groups, what is left waits without a group. A counter set too low (a corrupt record, a
/// partial restore) gave those jobs no turn at all while any group had one: 20 jobs without
/// a group waited behind all 2,000 of group `big`. Mended: when the counters say no job
/// waits without a group, the claim asks the lanes, and sets the counter right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_counter_set_too_low_keeps_no_ungrouped_job_behind_the_groups() {
    let env = TestEnv::new().await;
    let name = "h-waiting-low";
    let q = env.queue(name).await;
    add_all(&q, (0..2_000).map(|i| job(Some("big"), i)).collect()).await;
    let plain = add_all(&q, (0..21).map(|i| job(None, 1_000_000 + i)).collect()).await;
    // one removed before it ran: its entry deleted undelivered (which leaves Redis 7.0's
    // `lag` of the lane one too high for good: the count must not come from it)
    q.remove_job(&plain[20]).await.unwrap();
    let k = keys(&env, name);
    raw(&env, &["HSET", &k.meta(), "waiting", "0"]).await;
    // the order the jobs ran in: true for a job without a group
    let ran = Arc::new(Mutex::new(Vec::new()));
    let r = ran.clone();
    let worker = env
        .worker()
        .queues([name])
        .concurrency(4)
        .handler("work", move |j: Job<Value>, _c: Ctx| {
            let r = r.clone();
            async move {
                r.lock()
                    .unwrap()
                    .push(j.data["i"].as_u64() >= Some(1_000_000));
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 2_020, Duration::from_secs(60)).await;
    guard.stop().await.unwrap();
    // the counter was set right on the way: nothing is left counted waiting (read raw:
    // the counts show a negative counter as 0)
    let left = raw(&env, &["HGET", &k.meta(), "waiting"]).await;
    assert_eq!(
        left,
        redis::Value::BulkString(b"0".to_vec()),
        "waiting counter"
    );
    let ran = ran.lock().unwrap();
    let last_plain = ran
        .iter()
        .rposition(|&plain| plain)
        .expect("no ungrouped job ran");
    let big_before = ran[..last_plain].iter().filter(|&&plain| !plain).count();
    assert!(
        big_before < 300,
        "the 20 jobs without a group waited for {big_before} of group big's"
    );
}

/// Was: the group lane's consumer group deleted (by hand) while two of its jobs ran. The
/// next claim made the group again from the lane's start, so it read the old entries of the
/// running jobs in place of the ones it had just added: those stayed unread, their jobs
/// counted nowhere and never ran (and every later grouped add ran one of them and left
/// itself stuck instead). Now the group starts just before the claim's own entries, and the
/// sweep gives a job whose group lane entry is no longer pending back to its group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_lane_that_lost_its_consumer_group_strands_no_job() {
    let env = TestEnv::new().await;
    let name = "h-lane-nogroup";
    let q = env.queue(name).await;
    let k = keys(&env, name);
    let worker = env
        .worker()
        .queues([name])
        .concurrency(2)
        .sweep_interval(Duration::from_millis(100))
        .handler("work", |_j: Job<Value>, _c: Ctx| async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let mut ids = add_all(&q, (0..2).map(|i| job(Some("a"), i)).collect()).await;
    let guard = spawn_worker(worker);
    // both run (their entries pending) when the lane's group goes
    tokio::time::sleep(Duration::from_millis(150)).await;
    raw(&env, &["XGROUP", "DESTROY", &k.lane(1002), "jobq"]).await;
    ids.extend(add_all(&q, (2..6).map(|i| job(Some("a"), i)).collect()).await);
    let left = unfinished_after(&q, &ids, Duration::from_secs(15)).await;
    let stats = q.counts().await.unwrap();
    guard.stop().await.unwrap();
    assert!(
        left.is_empty(),
        "{} of 6 grouped jobs never ran: {left:?}",
        left.len()
    );
    assert_eq!((stats.waiting, stats.active), (0, 0), "{stats:?}");
}

/// Was: the group lane made a string (a corrupt record): every claim failed on its `XADD`
/// after it had taken jobs off their groups' queues and counted them active, so no grouped
/// job ran again. Now the lane is made again, and the sweep puts back the jobs it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_lane_of_the_wrong_type_is_made_again() {
    let env = TestEnv::new().await;
    let name = "h-lane-type";
    let q = env.queue(name).await;
    let k = keys(&env, name);
    // the lane exists (a first grouped job ran), then is overwritten
    let first = add_all(&q, vec![job(Some("a"), 0)]).await;
    let guard = spawn_worker(worker(&env, name, 4));
    assert!(unfinished_after(&q, &first, Duration::from_secs(10))
        .await
        .is_empty());
    guard.stop().await.unwrap();
    raw(&env, &["SET", &k.lane(1002), "x"]).await;
    let ids = add_all(
        &q,
        (1..21).map(|i| job(Some(["a", "b"][i % 2]), i)).collect(),
    )
    .await;
    let guard = spawn_worker(worker(&env, name, 4));
    let left = unfinished_after(&q, &ids, Duration::from_secs(15)).await;
    guard.stop().await.unwrap();
    assert!(
        left.is_empty(),
        "{} of 20 grouped jobs never ran",
        left.len()
    );
}

/// Was: a rate window counter holding `nan` (or `-inf`, or a negative count), a corrupt
/// record, lifted the rate limit for good: Lua reads `nan` as a number, every start got
/// through, and the counter, never incremented nor given an expiry, stayed. Now such a
/// counter starts the window again, for a group's rate as for the queue's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nan_rate_counter_still_limits_starts() {
    let env = TestEnv::new().await;
    for (name, corrupt) in [
        ("h-nan-group", "nan"),
        ("h-ninf-group", "-inf"),
        ("h-nan-queue", "nan"),
    ] {
        let q = env.queue(name).await;
        let k = keys(&env, name);
        let window = Duration::from_secs(30);
        let grouped = name.ends_with("group");
        if grouped {
            q.set_group_limit(None, GroupLimitChange::Rate { max: 2, window })
                .await
                .unwrap();
            raw(&env, &["SET", &k.group_rate("t"), corrupt]).await;
        } else {
            q.set_rate_limit(2, window).await.unwrap();
            raw(&env, &["SET", &k.rate_limiter(), corrupt]).await;
        }
        let group = grouped.then_some("t");
        add_all(&q, (0..6).map(|i| job(group, i)).collect()).await;
        let guard = spawn_worker(worker(&env, name, 4));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let c = q.counts().await.unwrap();
        guard.stop().await.unwrap();
        assert_eq!(c.completed, 2, "{name} (counter {corrupt}): {c:?}");
    }
}

/// Was: a queue's group sequence counter (`gseq` in its meta) that is not a whole number (a
/// corrupt record) failed every grouped add with Redis's bare error, after the job's hash
/// was written: a job shown as waiting that nothing counted or ran. Now the count goes on
/// from the clock, and the group's jobs still run in the order they were added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_group_sequence_fails_no_add_and_keeps_the_order() {
    let env = TestEnv::new().await;
    let name = "h-gseq";
    let q = env.queue(name).await;
    let k = keys(&env, name);
    let mut ids = add_all(&q, vec![job(Some("a"), 0)]).await;
    raw(&env, &["HSET", &k.meta(), "gseq", "abc"]).await;
    for i in 1..4 {
        let added = q.add_bulk(vec![job(Some("a"), i)]).await;
        ids.push(added.expect("a grouped add").remove(0).id);
    }
    let ran: Arc<Mutex<Vec<u64>>> = Arc::default();
    let seen = ran.clone();
    let worker = env
        .worker()
        .queues([name])
        .concurrency(1)
        .handler("work", move |j: Job<Value>, _c: Ctx| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(j.data["i"].as_u64().unwrap());
                Ok::<_, JobError>(())
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let left = unfinished_after(&q, &ids, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert!(left.is_empty(), "{} of 4 jobs never ran", left.len());
    assert_eq!(*ran.lock().unwrap(), vec![0, 1, 2, 3]);
}
