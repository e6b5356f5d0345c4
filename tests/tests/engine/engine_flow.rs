//! Flows: parents that wait for their children, across queues.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// A worker of `queues` whose `work` jobs sleep `data.ms` then return `data` (or fail with
/// `data.fail` when set), and whose `collect` jobs return their children's outcomes;
/// `collected` counts the runs of `collect`.
fn flow_worker(env: &TestEnv, queues: &[&str], collected: Arc<AtomicU32>) -> Worker {
    env.worker()
        .queues(queues.iter().copied())
        .concurrency(20)
        .handler("work", |job: Job<Value>, _ctx: Ctx| async move {
            let ms = job.data["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if let Some(e) = job.data["fail"].as_str() {
                return Err(JobError::new(e));
            }
            Ok::<_, JobError>(job.data)
        })
        .handler("collect", move |_job: Job<Value>, ctx: Ctx| {
            let collected = collected.clone();
            async move {
                collected.fetch_add(1, Ordering::SeqCst);
                let children = ctx.children().await?;
                Ok::<_, JobError>(json!({ "children": children }))
            }
        })
        .build()
        .unwrap()
}

fn work(queue: &str, data: Value) -> FlowJob {
    FlowJob::new(queue, "work", &data).unwrap()
}

#[tokio::test]
async fn a_parent_runs_after_its_last_child_across_three_queues() {
    let env = TestEnv::new().await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let tree = flows
        .add(
            FlowJob::new("fp", "collect", &json!({}))
                .unwrap()
                .child(work("fa", json!({"ms": 50, "n": 1})))
                .child(work("fb", json!({"ms": 150, "n": 2})))
                .child(work("fc", json!({"ms": 0, "n": 3}))),
        )
        .await
        .unwrap();
    assert_eq!(tree.children.len(), 3);
    let parent_q = env.queue("fp").await;
    let parent = parent_q.job(&tree.id).await.unwrap();
    assert_eq!(parent.state, JobState::WaitingChildren);
    assert_eq!(parent.children_pending, Some(3));
    assert_eq!(parent_q.counts().await.unwrap().waiting_children, 1);
    let child = env
        .queue("fb")
        .await
        .job(&tree.children[1].id)
        .await
        .unwrap();
    assert_eq!(
        child.parent,
        Some(JobRef {
            queue: "fp".into(),
            id: tree.id.clone()
        })
    );

    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(
        &env,
        &["fp", "fa", "fb", "fc"],
        collected.clone(),
    ));
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    assert_eq!(collected.load(Ordering::SeqCst), 1);
    let started = done.started_at.unwrap();
    for (i, c) in tree.children.iter().enumerate() {
        let child = env.queue(&c.queue).await.job(&c.id).await.unwrap();
        assert!(
            child.finished_at.unwrap() <= started,
            "child {i} finished at {:?}, after the parent started at {started}",
            child.finished_at
        );
    }
    let seen = &done.return_value.unwrap()["children"];
    let seen = seen.as_array().unwrap();
    assert_eq!(seen.len(), 3);
    for (i, c) in seen.iter().enumerate() {
        assert_eq!(c["queue"], tree.children[i].queue);
        assert_eq!(c["id"], tree.children[i].id);
        assert_eq!(c["name"], "work");
        assert_eq!(c["state"], "completed");
        assert_eq!(c["return_value"]["n"], i + 1);
    }
    assert_eq!(parent_q.counts().await.unwrap().waiting_children, 0);
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_child_fails_its_parent_unrun_by_default() {
    let env = TestEnv::new().await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let tree = flows
        .add(
            FlowJob::new("fp", "collect", &json!({}))
                .unwrap()
                .child(work("fa", json!({"ms": 300})))
                .child(work("fb", json!({"fail": "boom"}))),
        )
        .await
        .unwrap();
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(&env, &["fp", "fa", "fb"], collected.clone()));
    let parent_q = env.queue("fp").await;
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Failed);
    assert_eq!(
        done.failed_reason.as_deref(),
        Some(format!("child fb/{} failed: boom", tree.children[1].id).as_str())
    );
    // the other child still runs; the parent never does
    wait_job_done(
        &env.queue("fa").await,
        &tree.children[0].id,
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(collected.load(Ordering::SeqCst), 0);
    let kids = parent_q.children(&tree.id).await.unwrap();
    assert_eq!(kids[0].state, ChildState::Completed);
    assert_eq!(kids[1].state, ChildState::Failed);
    assert_eq!(kids[1].failed_reason.as_deref(), Some("boom"));
    guard.stop().await.unwrap();
}

#[tokio::test]
async fn an_ignoring_parent_runs_and_sees_the_failure_after_retries() {
    let env = TestEnv::new().await;
    let flows = FlowProducer::new(&env.redis, env.config.prefix());
    let tree = flows
        .add(
            FlowJob::new("fp", "collect", &json!({}))
                .unwrap()
                .opts(JobOptions::new().on_child_failure(OnChildFailure::Ignore))
                .child(work("fa", json!({"ms": 10})))
                .child(
                    work("fb", json!({"fail": "still broken"})).opts(JobOptions::new().attempts(3)),
                ),
        )
        .await
        .unwrap();
    let collected = Arc::new(AtomicU32::new(0));
    let guard = spawn_worker(flow_worker(&env, &["fp", "fa", "fb"], collected.clone()));
    let parent_q = env.queue("fp").await;
    let done = wait_job_done(&parent_q, &tree.id, Duration::from_secs(10)).await;
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    assert_eq!(collected.load(Ordering::SeqCst), 1);
    let failed = env
        .queue("fb")
        .await
        .job(&tree.children[1].id)
        .await
        .unwrap();
    assert_eq!(
        failed.attempts_made, 3,
        "retries come before the child counts"
    );
    let seen = &done.return_value.unwrap()["children"];
    assert_eq!(seen[0]["state"], "completed");
    assert_eq!(seen[1]["state"], "failed");
    assert_eq!(seen[1]["failed_reason"], "still broken");
    guard.stop().await.unwrap();
}
