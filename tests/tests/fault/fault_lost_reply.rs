//! Guarantees 1 and 2 when the network drops a reply: the worker's batch of outcomes reaches
//! Redis and is recorded, the reply never comes back, the connection breaks, and the worker
//! sends the same batch again once it reconnects. Each attempt must be recorded once: no
//! completion or failure counted twice, no retry scheduled twice.
//!
//! A proxy between the worker and a private Redis swallows replies, then cuts connections.

use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_a_batch_resent_after_its_reply_was_lost_is_recorded_once() {
    const Q: &str = "lostreply";
    let server = RedisServer::start(&[]);
    let proxy = Proxy::start(&server.addr()).await;
    let direct = TestEnv::on(&server.url()).await;
    let prefix = direct.config.prefix().to_string();
    let via_proxy = TestEnv::on_prefix(&proxy.url(), &prefix).await;
    let q = direct.queue(Q).await;

    // handlers wait at a gate each: one outcome is recorded at a time
    let (open_ok, gate_ok) = watch::channel(false);
    let (open_bad, gate_bad) = watch::channel(false);
    let (open_flaky, gate_flaky) = watch::channel(false);
    let wait = |mut gate: watch::Receiver<bool>| async move {
        let _ = gate.wait_for(|open| *open).await;
    };
    let worker = via_proxy
        .worker()
        .queues([Q])
        .concurrency(3)
        .handler("ok", move |_j: Job<Value>, _c: Ctx| {
            let gate = gate_ok.clone();
            async move {
                wait(gate).await;
                Ok::<_, JobError>("done")
            }
        })
        .handler("bad", move |_j: Job<Value>, _c: Ctx| {
            let gate = gate_bad.clone();
            async move {
                wait(gate).await;
                Err::<(), _>(JobError::new("bad for good"))
            }
        })
        .handler("flaky", move |j: Job<Value>, _c: Ctx| {
            let gate = gate_flaky.clone();
            async move {
                if j.attempt == 1 {
                    wait(gate).await;
                    return Err(JobError::new("first attempt fails"));
                }
                Ok("second attempt")
            }
        })
        .handler("warm.ok", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .handler("warm.bad", |_j: Job<Value>, _c: Ctx| async {
            Err::<(), _>(JobError::new("warm-up failure"))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    // one success and one failure first, so the worker has loaded the scripts: a lost
    // NOSCRIPT reply would stop it from ever sending the script itself
    q.add("warm.ok", &json!({}), JobOptions::new())
        .await
        .unwrap();
    q.add("warm.bad", &json!({}), JobOptions::new())
        .await
        .unwrap();
    wait_finished(&q, 2, Duration::from_secs(5)).await;

    let ok = q.add("ok", &json!({}), JobOptions::new()).await.unwrap();
    let bad = q.add("bad", &json!({}), JobOptions::new()).await.unwrap();
    let flaky = q
        .add(
            "flaky",
            &json!({}),
            JobOptions::new()
                .attempts(2)
                .backoff(Backoff::fixed(Duration::from_millis(1500))),
        )
        .await
        .unwrap();
    wait_active(&q, 3, Duration::from_secs(5)).await;

    // Each round: an outcome reaches Redis, its reply does not reach the worker, which is
    // still waiting for it when its connections break, so it sends it again. A later
    // outcome being recorded shows the resend is behind us (one finisher, in order).
    lose_replies_of(&proxy, &open_ok, &q, "the success", |c| {
        c.completed_total == 2
    })
    .await;
    q.add("warm.ok", &json!({}), JobOptions::new())
        .await
        .unwrap();
    wait_finished(&q, 4, Duration::from_secs(10)).await;
    lose_replies_of(&proxy, &open_bad, &q, "the failure", |c| {
        c.failed_total == 2
    })
    .await;
    q.add("warm.ok", &json!({}), JobOptions::new())
        .await
        .unwrap();
    wait_finished(&q, 6, Duration::from_secs(10)).await;
    lose_replies_of(&proxy, &open_flaky, &q, "the retry", |c| c.delayed == 1).await;
    // the flaky job's second attempt (after its 1.5 s backoff) completes it
    let c = wait_finished(&q, 7, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c2 = q.counts().await.unwrap();
    assert_eq!(c, c2, "counts moved after every job had finished");
    assert_eq!(
        (c.completed_total, c.failed_total, c.completed, c.failed),
        (5, 2, 5, 2),
        "an outcome was recorded twice: {c:?}"
    );
    assert_eq!((c.waiting, c.active, c.delayed), (0, 0, 0), "{c:?}");
    for (job, state, attempts) in [
        (&ok.id, JobState::Completed, 1),
        (&bad.id, JobState::Failed, 1),
        (&flaky.id, JobState::Completed, 2),
    ] {
        let info = q.get_job(job).await.unwrap().expect("job kept");
        assert_eq!(
            (info.state, info.attempts_made),
            (state, attempts),
            "{info:?}"
        );
    }
    guard.stop().await.unwrap();
}

/// Opens `gate` with replies dropped, waits until Redis has recorded what it let through,
/// then restores replies and cuts the worker's connections.
async fn lose_replies_of(
    proxy: &Proxy,
    gate: &watch::Sender<bool>,
    q: &Queue,
    what: &str,
    recorded: fn(&Counts) -> bool,
) {
    // the reply to the last call may still be on its way: let it reach the worker, or the
    // worker waits for it and sends nothing new
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.drop_replies(true);
    gate.send_replace(true);
    eventually(
        Duration::from_secs(5),
        &format!("{what} recorded in Redis"),
        || async { q.counts().await.ok().filter(recorded) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.drop_replies(false);
    proxy.cut();
}

/// A worker on `lease` behind a proxy whose claim of 5 jobs ran in Redis while the proxy
/// threw its reply away (replies flow again on return): the jobs are pending to a worker
/// that never saw them.
struct LostClaim {
    _server: RedisServer,
    proxy: Proxy,
    direct: TestEnv,
    q: Queue,
    guard: WorkerGuard,
    ids: Vec<String>,
}

async fn lost_claim(queue: &str, lease: Duration) -> LostClaim {
    let server = RedisServer::start(&[]);
    let proxy = Proxy::start(&server.addr()).await;
    let direct = TestEnv::on(&server.url()).await;
    let prefix = direct.config.prefix().to_string();
    let via_proxy = TestEnv::on_prefix(&proxy.url(), &prefix).await;
    let q = direct.queue(queue).await;
    let worker = via_proxy
        .worker()
        .queues([queue])
        .concurrency(8)
        .lease(lease)
        .max_stalls(0)
        .handler("work", |_j: Job<Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    // a first job makes the lane the worker knows (a new lane would cost it a round trip
    // before the claim), then the worker goes idle, its replies still arriving
    let first = q.add("work", &json!({}), JobOptions::new()).await.unwrap();
    wait_job_done(&q, &first.id, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.drop_replies(true);
    let mut ids = Vec::new();
    for i in 0..5 {
        let added = q.add("work", &json!({ "i": i }), JobOptions::new()).await;
        ids.push(added.unwrap().id);
    }
    // the worker's next claim runs in Redis; its reply is thrown away
    eventually(Duration::from_secs(5), "the jobs claimed", || async {
        q.counts().await.ok().filter(|c| c.active == 5)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.drop_replies(false);
    LostClaim {
        _server: server,
        proxy,
        direct,
        q,
        guard,
        ids,
    }
}

/// A claim whose reply is lost: Redis ran it, so its jobs are pending to the worker, which
/// never saw them. Once Redis answers again the worker gives them back (the queue's front
/// lane) and runs them: no stall is counted and no job waits for a lease to expire. Before,
/// a reclaim took them a lease later, counting a stall (with `max_stalls` 0: failed unrun).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_jobs_of_a_claim_whose_reply_was_lost_are_given_back_without_a_stall() {
    let lost = lost_claim("lostclaim", Duration::from_secs(2)).await;
    lost.proxy.cut();
    let c = wait_finished(&lost.q, 6, Duration::from_secs(10)).await;
    assert_eq!((c.completed_total, c.failed_total), (6, 0), "{c:?}");
    let prefix = lost.direct.config.prefix();
    let keys = queue_core::internal::keys::QueueKeys::new(prefix, "lostclaim");
    let mut raw = lost.direct.raw().await;
    for id in &lost.ids {
        let stalls: Option<u64> = redis::cmd("HGET")
            .arg(keys.job(id))
            .arg("stalls")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(stalls, None, "job {id} was reclaimed as stalled");
    }
    lost.guard.stop().await.unwrap();
}

/// As above, on a short lease (1 s) and after a longer outage: the claim's reply is lost,
/// then Redis looks down to the worker for 4 s, so its retries have backed off.
/// Its fetch loop retries at least every third of a lease, so it gives the jobs back
/// before its own reclaimer (a whole lease after Redis is back) takes them: with 2 s
/// between retries the reclaim came first, and a job that never ran failed as stalled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_a_lost_claim_is_given_back_before_a_short_lease_expires_after_an_outage() {
    let lost = lost_claim("lostclaim-short", Duration::from_secs(1)).await;
    lost.proxy.down(true);
    tokio::time::sleep(Duration::from_secs(4)).await;
    lost.proxy.down(false);
    let c = wait_finished(&lost.q, 6, Duration::from_secs(15)).await;
    assert_eq!((c.completed_total, c.failed_total), (6, 0), "{c:?}");
    lost.guard.stop().await.unwrap();
}

/// Was: `jobq --json add` read the stored job back in a second call, and Redis lost right
/// after the add's reply made it exit 1 ("cannot reach Redis") for a job it had stored: a
/// caller retrying on that exit stored it twice. The add is done once its reply came: exit
/// 0 with the id, the read-back's failure said on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobq_json_add_whose_read_back_fails_still_exits_0_with_the_id() {
    let server = RedisServer::start(&[]);
    let proxy = Proxy::start(&server.addr()).await;
    let direct = TestEnv::on(&server.url()).await;
    let q = direct.queue("readback").await;
    let add = |name: &str| {
        std::process::Command::new(bin_path("jobq"))
            .args([
                "--redis-url",
                &proxy.url(),
                "--prefix",
                direct.config.prefix(),
            ])
            .args(["--json", "add", "readback", name])
            .env("JOBQ_FALLBACK", "error")
            .output()
            .unwrap()
    };
    // a first add loads the add script into Redis: the second's call is then answered at
    // once (not with NOSCRIPT, whose reply would take the proxy down before the add ran)
    assert!(add("job.first").status.success());
    proxy.down_after_reply_to("job.readback.trigger");
    let out = add("job.readback.trigger");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let printed: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let id = printed["id"].as_str().expect("the id").to_string();
    assert!(err.contains("stored"), "{err}");
    let stored = q.job(&id).await.unwrap();
    assert_eq!(stored.name, "job.readback.trigger");
    assert_eq!(q.counts().await.unwrap().waiting, 2);
}
