//! The built-in handlers run through `queue_core::testing`, as a user would test their own:
//! registered the way `jobq-worker` registers them, run in-process without Redis.

use std::path::PathBuf;
use std::time::Duration;

use queue_core::testing::TestWorker;
use queue_core::{Config, Worker};
use serde_json::{json, Value};

fn worker() -> TestWorker {
    let builder = crate::diag::register(Worker::builder(Config::default()));
    let builder = crate::moderation::register_with(builder, Default::default());
    TestWorker::new(crate::video::register(builder).handlers())
}

#[tokio::test]
async fn diag_handlers_do_what_their_docs_say() {
    let w = worker();
    let data = json!({"a": [1, "two"]});
    assert_eq!(
        w.job("diag.echo", &data).run().await.output::<Value>(),
        data
    );

    let failing = json!({"times": 2});
    let second = w.job("diag.fail", &failing).attempt(2).run().await;
    assert!(second.error().is_retryable());
    assert_eq!(
        second.error().message(),
        "diag.fail: attempt 2 of the 2 that fail"
    );
    assert_eq!(
        w.job("diag.fail", &failing)
            .attempt(3)
            .run()
            .await
            .output::<u32>(),
        3
    );

    let panicked = w.job("diag.panic", &()).run().await;
    assert_eq!(
        panicked.error().message(),
        "handler panicked: diag.panic: deliberate panic"
    );

    let cancelled = w
        .job("diag.sleep", &json!({"ms": 60_000}))
        .cancel_after(Duration::from_millis(10))
        .run()
        .await;
    assert_eq!(cancelled.error().message(), "cancelled");
    let bad = w.job("diag.sleep", &json!({"ms": "soon"})).run().await;
    assert!(!bad.error().is_retryable(), "{:?}", bad.error());
}

#[tokio::test]
async fn moderation_refuses_bad_input_before_any_lookup() {
    let w = worker();
    let long = "x".repeat(crate::moderation::MAX_TEXT + 1);
    let run = w
        .job("moderation.text", &json!({ "text": long }))
        .run()
        .await;
    assert!(!run.error().is_retryable());
    assert!(run.error().message().contains("bytes"), "{}", run.error());
    let extra = w
        .job("moderation.text", &json!({"text": "hi", "lang": "en"}))
        .run()
        .await;
    assert!(
        extra.error().message().contains("lang"),
        "{}",
        extra.error()
    );
}

/// A unique scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "jobq-handler-test-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn video_transcode_reports_progress_and_probe_reads_the_result() {
    let dir = Scratch::new("video");
    let input = dir.0.join("in.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc=duration=3:size=160x120:rate=25")
        .args(["-pix_fmt", "yuv420p"])
        .arg(&input)
        .status()
        .expect("ffmpeg (scripts/test installs it)");
    assert!(made.success());

    let w = worker();
    let output = dir.0.join("out.mp4");
    let run = w
        .job(
            "video.transcode",
            &json!({"input": input, "output": output, "preset": "480p"}),
        )
        .run()
        .await;
    let result = run.output::<crate::video::TranscodeResult>();
    assert_eq!(result.height, 480);
    assert!(!run.progress.is_empty(), "no progress reported");
    let pcts: Vec<u64> = run.progress.iter().filter_map(Value::as_u64).collect();
    assert!(pcts.windows(2).all(|w| w[0] < w[1]), "{pcts:?}");

    let probed = w
        .job("video.probe", &json!({ "input": output }))
        .run()
        .await;
    assert_eq!(probed.output::<crate::video::ProbeResult>().height, 480);

    let again = w
        .job(
            "video.transcode",
            &json!({"input": input, "output": output, "preset": "480p"}),
        )
        .run()
        .await;
    assert!(!again.error().is_retryable(), "{}", again.error());
}
