//! Adds share script calls: single adds made at the same time are stored by batched
//! `add_job` calls, each caller still getting its own result (or the batch's error), and
//! `add_bulk` keeps its chunks in order while it sends the next one early.

use std::collections::BTreeSet;

use jobq_tests::*;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_adds_share_script_calls_and_each_gets_its_own_result() {
    // a private server: the call count must be this test's alone
    let server = RedisServer::start(&[]);
    let env = TestEnv::on_prefix(&server.url(), &fresh_prefix()).await;
    let q = env.queue("many").await;
    q.add("warm.up", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let mut raw = env.raw().await;
    let before = script_calls(&mut raw).await;

    // 600 adds at once: 400 distinct ids, each of the first 200 given twice
    let tasks: Vec<_> = (0..600)
        .map(|i| {
            let q = q.clone();
            let id = format!("k{}", i % 400);
            tokio::spawn(async move {
                let added = q
                    .add("n", &json!({ "i": i }), JobOptions::new().job_id(&id))
                    .await
                    .unwrap();
                (i, id, added)
            })
        })
        .collect();
    let mut stored = BTreeSet::new();
    let mut duplicates = 0;
    for t in tasks {
        let (_, id, added) = t.await.unwrap();
        assert_eq!(added.id, id, "each add gets its own job's result");
        if added.duplicate {
            duplicates += 1;
        } else {
            assert!(stored.insert(id), "an id stored twice");
        }
    }
    assert_eq!((stored.len(), duplicates), (400, 200));
    assert_eq!(q.counts().await.unwrap().waiting, 401);
    // the stored job of each id is whichever add came first; its data names one of them
    let j = q.job("k7").await.unwrap();
    assert!(
        [7, 407].contains(&j.data["i"].as_i64().unwrap()),
        "{:?}",
        j.data
    );

    let calls = script_calls(&mut raw).await - before;
    assert!(calls < 300, "600 adds at once took {calls} script calls");
    eprintln!("600 concurrent adds: {calls} add_job calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_awaited_one_after_another_are_stored_in_order() {
    let env = TestEnv::new().await;
    let q = env.queue("seq").await;
    for i in 0..50 {
        q.add("n", &json!({ "i": i }), JobOptions::new())
            .await
            .unwrap();
    }
    let order: Vec<i64> = q
        .list_jobs(JobState::Waiting, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|j| j.data["i"].as_i64().unwrap())
        .collect();
    assert_eq!(order, (0..50).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_of_several_chunks_is_stored_in_order() {
    let env = TestEnv::new().await;
    let q = env.queue("chunks").await;
    let n = BULK_CHUNK * 3 + 250;
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| NewJob::new("n", &json!({ "i": i }), JobOptions::new()).unwrap())
        .collect();
    let added = q.add_bulk(jobs).await.unwrap();
    assert_eq!(added.len(), n);
    let waiting = q.list_jobs(JobState::Waiting, 0, n as u64).await.unwrap();
    let order: Vec<i64> = waiting
        .iter()
        .map(|j| j.data["i"].as_i64().unwrap())
        .collect();
    assert_eq!(
        order,
        (0..n as i64).collect::<Vec<_>>(),
        "run order is add order"
    );
    let ids: Vec<&str> = waiting.iter().map(|j| j.id.as_str()).collect();
    let returned: Vec<&str> = added.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, returned, "results come back in input order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_sharing_a_batch_while_redis_is_down_each_get_a_connection_error() {
    let mut server = RedisServer::start(&[]);
    let env = TestEnv::on_prefix(&server.url(), &fresh_prefix()).await;
    let q = env.queue("down").await;
    q.add("n", &json!({}), JobOptions::new()).await.unwrap();
    server.stop();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move { q.add("n", &json!({ "i": i }), JobOptions::new()).await })
        })
        .collect();
    for t in tasks {
        let e = t.await.unwrap().expect_err("Redis is down");
        assert!(e.is_connection(), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_made_at_once_in_order_are_stored_in_that_order() {
    let env = TestEnv::new().await;
    for round in 0..5 {
        let q = env.queue(&format!("at-once-{round}")).await;
        // polled in order, as `join_all` does: each joins the pending list in turn
        let adds = (0..400).map(|i| {
            let q = q.clone();
            async move { q.add("n", &json!({ "i": i }), JobOptions::new()).await }
        });
        for added in futures_util::future::join_all(adds).await {
            added.unwrap();
        }
        let order: Vec<i64> = q
            .list_jobs(JobState::Waiting, 0, 1_000)
            .await
            .unwrap()
            .iter()
            .map(|j| j.data["i"].as_i64().unwrap())
            .collect();
        assert_eq!(order, (0..400).collect::<Vec<_>>(), "round {round}");
    }
}
