//! Groups under SIGKILL: a job reclaimed from a dead worker frees its group's slot and runs
//! first in its group again, so a group at its concurrency cap is never left blocked by the
//! attempt of a worker that is gone.

use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaimed_job_frees_its_group_slot_and_runs_first_in_its_group() {
    const Q: &str = "gkill";
    let server = RedisServer::start(&[]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue(Q).await;
    let prefix = env.config.prefix().to_string();
    q.set_group_limit(None, GroupLimitChange::Concurrency(1))
        .await
        .unwrap();
    let args = ["--queues", Q, "--concurrency", "4", "--lease", "1s"];
    let mut first = WorkerProcess::start(&server.url(), &prefix, &args);
    let long = q
        .add(
            "diag.sleep",
            &json!({"ms": 2000}),
            JobOptions::new().group("t"),
        )
        .await
        .unwrap()
        .id;
    wait_active(&q, 1, Duration::from_secs(10)).await;
    let rest: Vec<String> = add_all(
        &q,
        (0..3)
            .map(|_| {
                NewJob::new(
                    "diag.sleep",
                    &json!({"ms": 10}),
                    JobOptions::new().group("t"),
                )
                .unwrap()
            })
            .collect(),
    )
    .await;
    // the group is at its cap: the others wait while the first runs
    tokio::time::sleep(Duration::from_millis(300)).await;
    let view = q.groups(5).await.unwrap();
    assert_eq!(
        (view.groups[0].waiting, view.groups[0].active),
        (3, 1),
        "{view:?}"
    );
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(5));
    let _second = WorkerProcess::start(&server.url(), &prefix, &args);
    let c = wait_finished(&q, 4, Duration::from_secs(20)).await;
    assert_eq!((c.completed_total, c.failed_total), (4, 0), "{c:?}");
    // the reclaimed job ran again before the group's other jobs
    let again = q.job(&long).await.unwrap();
    for id in &rest {
        let other = q.job(id).await.unwrap();
        assert!(
            other.started_at >= again.started_at,
            "job {id} started before the reclaimed one"
        );
    }
    let view = q.groups(5).await.unwrap();
    assert_eq!(
        (view.with_waiting, view.with_active, view.limited),
        (0, 0, 0),
        "{view:?}"
    );
}

/// The ring (whose groups have a turn) deleted by hand, and a group's waiting count with
/// it: the sweep gives every group with waiting jobs its turn back, with the right count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_gives_groups_lost_from_the_ring_their_turn_back() {
    let env = TestEnv::new().await;
    let q = env.queue("gsweep").await;
    let jobs = (0..40)
        .map(|i| {
            let g = format!("t{}", i % 4);
            NewJob::new("work", &serde_json::json!({}), JobOptions::new().group(g)).unwrap()
        })
        .collect();
    q.add_bulk(jobs).await.unwrap();
    let base = format!("{{{}:gsweep}}", env.config.prefix());
    let mut conn = env.raw().await;
    let _: () = redis::cmd("DEL")
        .arg(format!("{base}:gring"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg(format!("{base}:gwait"))
        .arg(3)
        .arg("t1")
        .query_async(&mut conn)
        .await
        .unwrap();
    let worker = env
        .worker()
        .queues(["gsweep"])
        .sweep_interval(Duration::from_millis(100))
        .handler("work", |_job: Job<serde_json::Value>, _ctx: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let c = wait_finished(&q, 40, Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    assert_eq!((c.completed_total, c.waiting), (40, 0), "{c:?}");
    let view = q.groups(10).await.unwrap();
    assert_eq!((view.with_waiting, view.with_active), (0, 0), "{view:?}");
}
