//! Listing waiting jobs in run order (`jobq list`) and newest first (the dashboard), across
//! priority lanes and pages.

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_jobs_list_in_run_order_or_newest_first_across_lanes_and_pages() {
    let env = TestEnv::new().await;
    let q = env.queue("listing").await;
    // added in this order: lane 0 gets a, b, c; lane 5 gets x, y
    let mut ids = std::collections::HashMap::new();
    for (tag, prio) in [("a", 0), ("x", 5), ("b", 0), ("y", 5), ("c", 0)] {
        let added = q
            .add(
                "t",
                &json!({ "tag": tag }),
                JobOptions::new().priority(prio),
            )
            .await
            .unwrap();
        ids.insert(added.id, tag);
    }
    let tags = |jobs: Vec<JobInfo>| -> Vec<&str> { jobs.iter().map(|j| ids[&j.id]).collect() };

    let run = q.list_jobs(JobState::Waiting, 0, 10).await.unwrap();
    assert_eq!(tags(run), ["x", "y", "a", "b", "c"]);
    let newest = q
        .list_jobs_in(JobState::Waiting, ListOrder::Newest, 0, 10)
        .await
        .unwrap();
    assert_eq!(tags(newest), ["c", "b", "a", "y", "x"]);
    // pages cut across lanes in both orders
    let page = q
        .list_jobs_in(JobState::Waiting, ListOrder::Newest, 2, 2)
        .await
        .unwrap();
    assert_eq!(tags(page), ["a", "y"]);
    let page = q.list_jobs(JobState::Waiting, 1, 3).await.unwrap();
    assert_eq!(tags(page), ["y", "a", "b"]);

    // delivered entries are no longer waiting, in either order
    let worker = env
        .worker()
        .queues(["listing"])
        .concurrency(1)
        .handler("t", |_j: Job<serde_json::Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 5, std::time::Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    for order in [ListOrder::Run, ListOrder::Newest] {
        let left = q
            .list_jobs_in(JobState::Waiting, order, 0, 10)
            .await
            .unwrap();
        assert!(left.is_empty(), "{order:?}: {left:?}");
    }
}
