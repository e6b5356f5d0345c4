//! The built-in handlers that are flows' parents, against a real Redis (and a real ffmpeg
//! for the video ones): `video.publish` over its transcodes and thumbnail — all completed,
//! some failed under `onChildFailure: "ignore"`, none completed — and `diag.collect`, which
//! returns every child's outcome.

use std::path::Path;
use std::time::Duration;

use jobq_handlers::diag;
use jobq_handlers::video::{self, VideoConfig};
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

use crate::handlers_video::make_clip;

/// A worker on `queues` running the video and diag handlers.
fn flow_worker(env: &TestEnv, queues: &[&str]) -> WorkerGuard {
    let builder = env.worker().queues(queues.iter().copied()).concurrency(3);
    let builder = diag::register(video::register_with(builder, VideoConfig::default()));
    spawn_worker(builder.build().unwrap())
}

fn flows(env: &TestEnv) -> FlowProducer {
    FlowProducer::new(&env.redis, env.config.prefix())
}

fn transcode(input: &Path, output: &Path, preset: &str) -> FlowJob {
    FlowJob::new(
        "video",
        "video.transcode",
        &json!({"input": input, "output": output, "preset": preset}),
    )
    .unwrap()
}

fn thumbnail(queue: &str, input: &Path, output: &Path) -> FlowJob {
    FlowJob::new(
        queue,
        "video.thumbnail",
        &json!({"input": input, "output": output, "at_secs": 1.0, "width": 160}),
    )
    .unwrap()
}

fn heights(result: &Value) -> Vec<u64> {
    result["renditions"]
        .as_array()
        .unwrap_or_else(|| panic!("no renditions in {result}"))
        .iter()
        .map(|r| r["height"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_publish_flow_runs_to_the_end_and_lists_the_renditions() {
    let dir = TempDir::new("flow-video");
    let clip = dir.path().join("clip.mp4");
    make_clip(&clip, "640x360", 2).await;
    let (r720, r480) = (dir.path().join("v-720p.mp4"), dir.path().join("v-480p.mp4"));
    let thumb = dir.path().join("poster.jpg");
    let manifest = dir.path().join("manifest.json");
    let env = TestEnv::new().await;
    let video_q = env.queue("video").await;
    // the thumbnail runs on a queue of its own: a flow spans queues
    let guard = flow_worker(&env, &["video", "thumbs"]);

    let flow = FlowJob::new(
        "video",
        "video.publish",
        &json!({"video": "teaser", "output": manifest}),
    )
    .unwrap()
    .child(transcode(&clip, &r720, "720p"))
    .child(transcode(&clip, &r480, "480p"))
    .child(thumbnail("thumbs", &clip, &thumb));
    let tree = flows(&env).add(flow).await.unwrap();
    assert_eq!(tree.children.len(), 3);

    let info = wait_job_done(&video_q, &tree.id, Duration::from_secs(120)).await;
    assert_eq!(info.state, JobState::Completed, "{:?}", info.failed_reason);
    let r = info.return_value.unwrap();
    assert_eq!(r["video"], "teaser");
    // lowest first, whatever the order of the children
    assert_eq!(heights(&r), [480, 720], "{r}");
    assert_eq!(r["renditions"][0]["output"], json!(r480));
    assert_eq!(r["renditions"][1]["output"], json!(r720));
    assert_eq!(r["renditions"][1]["preset"], "720p");
    for rendition in r["renditions"].as_array().unwrap() {
        let path = Path::new(rendition["output"].as_str().unwrap());
        assert_eq!(
            rendition["size_bytes"].as_u64(),
            Some(std::fs::metadata(path).unwrap().len()),
            "{rendition}"
        );
    }
    assert_eq!(r["thumbnail"]["output"], json!(thumb));
    assert_eq!(r["thumbnail"]["width"], 160);
    assert!(thumb.is_file());
    assert_eq!(r["thumbnails"].as_array().unwrap().len(), 1);
    assert_eq!(r["failed"], json!([]));

    // the manifest file: what was published, without the failures or its own path
    assert_eq!(r["manifest"], json!(manifest));
    let written: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let mut expected = r.clone();
    let fields = expected.as_object_mut().unwrap();
    fields.remove("failed");
    fields.remove("manifest");
    assert_eq!(written, expected);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_publish_under_ignore_publishes_what_completed_and_fails_with_no_rendition() {
    let dir = TempDir::new("flow-video-partial");
    let clip = dir.path().join("clip.mp4");
    make_clip(&clip, "640x360", 2).await;
    let missing = dir.path().join("missing.mp4");
    let env = TestEnv::new().await;
    let video_q = env.queue("video").await;
    let guard = flow_worker(&env, &["video"]);
    let ignore = JobOptions::new().on_child_failure(OnChildFailure::Ignore);

    // one transcode of a missing file (fails for good), one good; the thumbnail fails too
    let partial = FlowJob::new("video", "video.publish", &json!({"video": "partial"}))
        .unwrap()
        .opts(ignore.clone())
        .child(transcode(&missing, &dir.path().join("a-720p.mp4"), "720p"))
        .child(transcode(&clip, &dir.path().join("a-480p.mp4"), "480p"))
        .child(thumbnail("video", &missing, &dir.path().join("a.jpg")));
    // every transcode fails
    let hopeless = FlowJob::new("video", "video.publish", &json!({"video": "hopeless"}))
        .unwrap()
        .opts(ignore)
        .child(transcode(&missing, &dir.path().join("b-480p.mp4"), "480p"))
        .child(thumbnail("video", &clip, &dir.path().join("b.jpg")));
    let partial = flows(&env).add(partial).await.unwrap();
    let hopeless = flows(&env).add(hopeless).await.unwrap();

    let info = wait_job_done(&video_q, &partial.id, Duration::from_secs(120)).await;
    assert_eq!(info.state, JobState::Completed, "{:?}", info.failed_reason);
    let r = info.return_value.unwrap();
    assert_eq!(heights(&r), [480], "{r}");
    assert_eq!(r["thumbnail"], Value::Null);
    assert_eq!(r["manifest"], Value::Null);
    let failed = r["failed"].as_array().unwrap();
    let ids: Vec<&str> = failed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [&partial.children[0].id, &partial.children[2].id]);
    assert_eq!(failed[0]["name"], "video.transcode");
    assert_eq!(failed[0]["state"], "failed");
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("missing.mp4") && reason.contains("does not exist"),
        "{reason}"
    );

    let info = wait_job_done(&video_q, &hopeless.id, Duration::from_secs(120)).await;
    assert_eq!(info.state, JobState::Failed);
    let reason = info.failed_reason.unwrap();
    assert!(
        reason.contains("'hopeless'") && reason.contains("none of its 1 video.transcode"),
        "{reason}"
    );
    let child = &hopeless.children[0];
    assert!(
        reason.contains(&format!("{}/{} failed: ", child.queue, child.id)),
        "{reason}"
    );
    // a fatal error: no retry was spent on it
    assert_eq!(info.attempts_made, 1);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diag_collect_returns_every_child_outcome_including_a_failed_one() {
    let env = TestEnv::new().await;
    let diag_q = env.queue("diag").await;
    let guard = flow_worker(&env, &["diag", "other"]);

    let flow = FlowJob::new("diag", "diag.collect", &json!({}))
        .unwrap()
        .opts(JobOptions::new().on_child_failure(OnChildFailure::Ignore))
        .child(FlowJob::new("diag", "diag.echo", &json!({"n": 1})).unwrap())
        .child(FlowJob::new("other", "diag.fail", &json!({"times": 5})).unwrap())
        .child(FlowJob::new("other", "diag.sleep", &json!({"ms": 50})).unwrap());
    let tree = flows(&env).add(flow).await.unwrap();

    let info = wait_job_done(&diag_q, &tree.id, Duration::from_secs(30)).await;
    assert_eq!(info.state, JobState::Completed, "{:?}", info.failed_reason);
    let r = info.return_value.unwrap();
    let children = r["children"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(children.len(), 3, "{r}");
    // in the flow's order, each naming its job
    for (outcome, node) in children.iter().zip(&tree.children) {
        assert_eq!(outcome["queue"], node.queue.as_str(), "{outcome}");
        assert_eq!(outcome["id"], node.id.as_str(), "{outcome}");
        assert_eq!(outcome["name"], node.name.as_str(), "{outcome}");
    }
    assert_eq!(children[0]["state"], "completed");
    assert_eq!(children[0]["return_value"], json!({"n": 1}));
    assert_eq!(children[1]["state"], "failed");
    let reason = children[1]["failed_reason"].as_str().unwrap();
    assert!(reason.contains("diag.fail: attempt 1"), "{reason}");
    assert!(children[1].get("return_value").is_none(), "{r}");
    assert_eq!(children[2]["state"], "completed");
    assert_eq!(children[2]["return_value"], 50);

    // a plain job has no children
    let added = diag_q
        .add("diag.collect", &json!(null), JobOptions::new())
        .await
        .unwrap();
    let info = wait_job_done(&diag_q, &added.id, Duration::from_secs(10)).await;
    assert_eq!(info.state, JobState::Completed, "{:?}", info.failed_reason);
    assert_eq!(info.return_value.unwrap(), json!({"children": []}));
    guard.stop().await.unwrap();
}
