//! The `video.*` handlers against a real ffmpeg and a real Redis: probe, transcode (with
//! progress taken from ffmpeg's own output) and thumbnail on short clips each test makes
//! with ffmpeg's `lavfi` test sources; and the failures — missing input, missing ffmpeg,
//! bad requests, a timeout that must kill ffmpeg and leave no partial output.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jobq_handlers::diag;
use jobq_handlers::video::{self, VideoConfig};
use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::{json, Value};

/// A directory of its own for one test's files, removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("jobq-video-{}", fresh_prefix()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Names of the files in the directory, sorted.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .expect("read scratch dir")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a command to completion off the async threads; panics with its stderr on failure.
async fn run(program: &str, args: Vec<String>) -> Vec<u8> {
    let program = program.to_string();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(&program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test installs it): {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    })
    .await
    .unwrap()
}

/// Makes an H.264 + AAC clip of `size` (e.g. `1280x720`) lasting `secs`: ffmpeg's test
/// pattern with a 440 Hz tone.
pub(crate) async fn make_clip(path: &Path, size: &str, secs: u32) {
    make_av(path, size, secs, secs).await;
}

/// Makes an H.264 + AAC file of `size` with `video_secs` of video and `audio_secs` of
/// sound: the container lasts as long as the longer.
async fn make_av(path: &Path, size: &str, video_secs: u32, audio_secs: u32) {
    let video = format!("testsrc=size={size}:rate=25:duration={video_secs}");
    let audio = format!("sine=frequency=440:duration={audio_secs}");
    let args = [
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        &video,
        "-f",
        "lavfi",
        "-i",
        &audio,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
    ];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if video_secs == audio_secs {
        args.push("-shortest".into());
    }
    args.push(path.display().to_string());
    run("ffmpeg", args).await;
}

/// ffprobe's JSON about `path`, read independently of the handlers.
async fn ffprobe(path: &Path) -> Value {
    let args = [
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
    ];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.push(path.display().to_string());
    serde_json::from_slice(&run("ffprobe", args).await).expect("ffprobe JSON")
}

/// The first video stream of ffprobe's JSON.
fn video_stream(probe: &Value) -> &Value {
    probe["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .unwrap_or_else(|| panic!("no video stream in {probe}"))
}

/// A worker on `queue` running the video handlers with `config`, and the diag ones.
fn video_worker(env: &TestEnv, queue: &str, config: VideoConfig) -> WorkerGuard {
    let builder = env.worker().queues([queue]).concurrency(2);
    let builder = diag::register(video::register_with(builder, config));
    spawn_worker(builder.build().unwrap())
}

/// The progress values the events stream announced for job `id`, in order.
async fn progress_events(env: &TestEnv, queue: &str, id: &str) -> Vec<Value> {
    let keys = QueueKeys::new(env.config.prefix(), queue);
    let mut raw = env.raw().await;
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(keys.events())
        .arg("-")
        .arg("+")
        .query_async(&mut raw)
        .await
        .unwrap();
    entries
        .into_iter()
        .filter_map(|(_, fields)| {
            let pairs: Vec<(&str, &str)> = fields
                .chunks(2)
                .map(|p| (p[0].as_str(), p[1].as_str()))
                .collect();
            let is_ours = pairs.contains(&("event", "progress")) && pairs.contains(&("ids", id));
            let value = pairs
                .iter()
                .rev()
                .find(|(k, _)| *k == "progress")
                .map(|(_, v)| serde_json::from_str(v).unwrap())?;
            is_ours.then_some(value)
        })
        .collect()
}

/// Whether a process whose command line matches `pattern` is running.
fn process_matching(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_probe_reports_duration_size_and_codecs() {
    let scratch = Scratch::new();
    let clip = scratch.path("clip.mp4");
    make_clip(&clip, "1280x720", 3).await;
    let env = TestEnv::new().await;
    let q = env.queue("video").await;
    let guard = video_worker(&env, "video", VideoConfig::default());

    let added = q
        .add("video.probe", &json!({"input": clip}), JobOptions::new())
        .await
        .unwrap();
    let info = wait_job_done(&q, &added.id, Duration::from_secs(20)).await;
    assert_eq!(info.state, JobState::Completed, "{:?}", info.failed_reason);
    let r = info.return_value.unwrap();
    let duration = r["duration_secs"].as_f64().unwrap();
    assert!((duration - 3.0).abs() <= 0.2, "duration {duration}: {r}");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(r["video_codec"], "h264");
    assert_eq!(r["audio_codec"], "aac");
    assert!(r["format"].as_str().unwrap().contains("mp4"), "{r}");
    let size = std::fs::metadata(&clip).unwrap().len();
    assert_eq!(r["size_bytes"].as_u64(), Some(size));
    assert!(r["bit_rate"].as_u64().unwrap() > 0, "{r}");
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_transcode_to_480p_reports_progress_from_ffmpeg() {
    let scratch = Scratch::new();
    let clip = scratch.path("clip.mp4");
    // long enough to encode for several progress periods (100 ms) even on a fast machine
    make_clip(&clip, "1280x720", 6).await;
    let out = scratch.path("clip-480p.mp4");
    let env = TestEnv::new().await;
    let q = env.queue("video").await;
    let guard = video_worker(&env, "video", VideoConfig::default());

    let added = q
        .add(
            "video.transcode",
            &json!({"input": clip, "output": out, "preset": "480p"}),
            JobOptions::new(),
        )
        .await
        .unwrap();
    let info = wait_job_done(&q, &added.id, Duration::from_secs(60)).await;
    assert_eq!(info.state, JobState::Completed, "{:?}", info.failed_reason);

    // the file, as ffprobe reads it
    let probe = ffprobe(&out).await;
    let v = video_stream(&probe);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(854), Some(480))
    );
    assert_eq!(v["codec_name"], "h264");
    let audio = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("an audio stream");
    assert_eq!(audio["codec_name"], "aac");

    // the result describes it
    let r = info.return_value.unwrap();
    assert_eq!(r["output"], json!(out));
    assert_eq!(r["preset"], "480p");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(854), Some(480))
    );
    assert!(
        (r["duration_secs"].as_f64().unwrap() - 6.0).abs() <= 0.2,
        "{r}"
    );
    assert_eq!(
        r["size_bytes"].as_u64(),
        Some(std::fs::metadata(&out).unwrap().len())
    );
    // only the input and the output are left: no temp file
    assert_eq!(scratch.files(), ["clip-480p.mp4", "clip.mp4"]);

    // every progress report, as announced on the events stream
    let reports = progress_events(&env, "video", &added.id).await;
    let values: Vec<u64> = reports.iter().map(|v| v.as_u64().unwrap()).collect();
    eprintln!("progress reports: {values:?}");
    assert_eq!(values.first(), Some(&0), "{values:?}");
    assert_eq!(values.last(), Some(&100), "{values:?}");
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
    // 0 and 100 come from the handler itself; what ffmpeg reported lies between
    let from_ffmpeg: BTreeSet<u64> = values
        .iter()
        .copied()
        .filter(|v| (1..100).contains(v))
        .collect();
    assert!(
        from_ffmpeg.len() >= 2,
        "fewer than 2 progress values from ffmpeg's own output: {values:?}"
    );
    assert_eq!(info.progress, Some(json!(100)));
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_thumbnail_writes_a_decodable_image_of_the_asked_width() {
    let scratch = Scratch::new();
    let clip = scratch.path("clip.mp4");
    make_clip(&clip, "1280x720", 3).await;
    let env = TestEnv::new().await;
    let q = env.queue("video").await;
    let guard = video_worker(&env, "video", VideoConfig::default());

    for (name, codec, width) in [("thumb.jpg", "mjpeg", 320), ("thumb.png", "png", 640)] {
        let out = scratch.path(name);
        let added = q
            .add(
                "video.thumbnail",
                &json!({"input": clip, "output": out, "at_secs": 1.5, "width": width}),
                JobOptions::new(),
            )
            .await
            .unwrap();
        let info = wait_job_done(&q, &added.id, Duration::from_secs(20)).await;
        assert_eq!(info.state, JobState::Completed, "{:?}", info.failed_reason);
        // ffprobe decodes it as an image of the asked width, aspect kept
        let probe = ffprobe(&out).await;
        let v = video_stream(&probe);
        assert_eq!(v["codec_name"], codec, "{probe}");
        assert_eq!(v["width"].as_u64(), Some(width));
        assert_eq!(v["height"].as_u64(), Some(width * 9 / 16));
        let r = info.return_value.unwrap();
        assert_eq!(
            (r["width"].as_u64(), r["height"].as_u64()),
            (Some(width), Some(width * 9 / 16))
        );
        assert_eq!(
            r["size_bytes"].as_u64(),
            Some(std::fs::metadata(&out).unwrap().len())
        );
    }
    // the default time (1 s) and the video's own size
    let out = scratch.path("full.jpg");
    let added = q
        .add(
            "video.thumbnail",
            &json!({"input": clip, "output": out}),
            JobOptions::new(),
        )
        .await
        .unwrap();
    let info = wait_job_done(&q, &added.id, Duration::from_secs(20)).await;
    let r = info.return_value.expect("a result");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(
        scratch.files(),
        ["clip.mp4", "full.jpg", "thumb.jpg", "thumb.png"]
    );
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_missing_input_fails_once_naming_the_path() {
    let scratch = Scratch::new();
    let missing = scratch.path("no-such-clip.mp4");
    let env = TestEnv::new().await;
    let q = env.queue("video").await;
    let guard = video_worker(&env, "video", VideoConfig::default());

    let jobs = [
        ("video.probe", json!({"input": missing})),
        (
            "video.transcode",
            json!({"input": missing, "output": scratch.path("o.mp4"), "preset": "720p"}),
        ),
        (
            "video.thumbnail",
            json!({"input": missing, "output": scratch.path("t.jpg")}),
        ),
    ];
    for (name, data) in jobs {
        let added = q
            .add(name, &data, JobOptions::new().attempts(3))
            .await
            .unwrap();
        let info = wait_job_done(&q, &added.id, Duration::from_secs(10)).await;
        assert_eq!(info.state, JobState::Failed, "{name}");
        let reason = info.failed_reason.unwrap_or_default();
        assert!(
            reason.contains(&missing.display().to_string()) && reason.contains("does not exist"),
            "{name}: {reason}"
        );
        // retrying cannot make the file appear: one attempt only
        assert_eq!(info.attempts_made, 1, "{name}");
    }
    assert!(scratch.files().is_empty(), "{:?}", scratch.files());
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_missing_ffmpeg_fails_jobs_clearly_and_the_worker_keeps_running() {
    let scratch = Scratch::new();
    let env = TestEnv::new().await;
    let q = env.queue("video").await;
    let config = VideoConfig {
        ffmpeg: scratch.path("bin/ffmpeg"),
        ffprobe: "jobq-no-such-ffprobe".into(),
    };
    let guard = video_worker(&env, "video", config);

    let transcode = q
        .add(
            "video.transcode",
            &json!({"input": scratch.path("a.mp4"), "output": scratch.path("b.mp4"),
                    "preset": "480p"}),
            JobOptions::new().attempts(3),
        )
        .await
        .unwrap();
    let info = wait_job_done(&q, &transcode.id, Duration::from_secs(10)).await;
    assert_eq!((info.state, info.attempts_made), (JobState::Failed, 1));
    let reason = info.failed_reason.unwrap_or_default();
    assert!(reason.starts_with("ffmpeg not found"), "{reason}");
    assert!(
        reason.contains(&scratch.path("bin/ffmpeg").display().to_string())
            && reason.contains("apt-get install ffmpeg")
            && reason.contains("JOBQ_FFMPEG"),
        "{reason}"
    );

    let probe = q
        .add(
            "video.probe",
            &json!({"input": scratch.path("a.mp4")}),
            JobOptions::new(),
        )
        .await
        .unwrap();
    let info = wait_job_done(&q, &probe.id, Duration::from_secs(10)).await;
    let reason = info.failed_reason.unwrap_or_default();
    assert!(
        reason.starts_with("ffprobe not found (looked for 'jobq-no-such-ffprobe' on PATH"),
        "{reason}"
    );

    // the worker is still there
    let noop = q
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let info = wait_job_done(&q, &noop.id, Duration::from_secs(10)).await;
    assert_eq!(info.state, JobState::Completed);
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_bad_requests_fail_once_naming_the_bad_value() {
    let scratch = Scratch::new();
    let clip = scratch.path("clip.mp4");
    make_clip(&clip, "320x240", 1).await;
    let taken = scratch.path("taken.mp4");
    std::fs::write(&taken, b"keep me").unwrap();
    // a second of video in three of sound: the container lasts longer than its video
    let short_video = scratch.path("short-video.mp4");
    make_av(&short_video, "320x240", 1, 3).await;
    let env = TestEnv::new().await;
    let q = env.queue("video").await;
    let guard = video_worker(&env, "video", VideoConfig::default());

    let cases = [
        (
            "video.transcode",
            json!({"input": clip, "output": taken, "preset": "480p"}),
            vec![
                taken.display().to_string(),
                "already exists".into(),
                "overwrite".into(),
            ],
        ),
        (
            "video.transcode",
            json!({"input": clip, "output": scratch.path("o.mp4"), "preset": "900p"}),
            vec!["unknown variant `900p`".into()],
        ),
        (
            "video.transcode",
            json!({"input": clip, "output": scratch.path("o.mkv"), "preset": "480p"}),
            vec!["o.mkv".into(), ".mp4".into()],
        ),
        (
            "video.thumbnail",
            json!({"input": clip, "output": scratch.path("t.jpg"), "at_secs": 10.0}),
            vec![
                "at_secs 10".into(),
                clip.display().to_string(),
                "1.0".into(),
            ],
        ),
        (
            "video.thumbnail",
            json!({"input": clip, "output": scratch.path("t.gif")}),
            vec!["t.gif".into(), "'.gif'".into()],
        ),
        (
            "video.thumbnail",
            json!({"input": clip, "output": scratch.path("t.jpg"), "width": 16000}),
            vec!["width must be 16 to 7680 pixels, got 16000".into()],
        ),
        (
            "video.thumbnail",
            json!({"input": clip, "output": scratch.path("t.jpg"), "width": 1}),
            vec!["got 1".into()],
        ),
        (
            "video.thumbnail",
            json!({"input": short_video, "output": scratch.path("t.jpg"), "at_secs": 2.0}),
            vec!["at_secs 2".into(), "no video frame there".into()],
        ),
        (
            "video.probe",
            json!({"inptu": clip}),
            vec!["unknown field `inptu`".into()],
        ),
    ];
    for (name, data, wanted) in cases {
        let added = q
            .add(name, &data, JobOptions::new().attempts(3))
            .await
            .unwrap();
        let info = wait_job_done(&q, &added.id, Duration::from_secs(10)).await;
        assert_eq!(
            (info.state, info.attempts_made),
            (JobState::Failed, 1),
            "{data}"
        );
        let reason = info.failed_reason.unwrap_or_default();
        for w in wanted {
            assert!(
                reason.contains(&w),
                "{data}: {reason:?} does not mention {w:?}"
            );
        }
    }
    assert_eq!(std::fs::read(&taken).unwrap(), b"keep me");
    assert_eq!(
        scratch.files(),
        ["clip.mp4", "short-video.mp4", "taken.mp4"]
    );
    guard.stop().await.unwrap();
}

/// A minute of 720p in `scratch` (`clip.mp4` looped into `long.mp4`, streams copied, so
/// not encoded for a minute): a transcode of it runs long enough to be stopped.
async fn long_clip(scratch: &Scratch) -> PathBuf {
    let clip = scratch.path("clip.mp4");
    make_clip(&clip, "1280x720", 3).await;
    let long = scratch.path("long.mp4");
    let args = ["-v", "error", "-y", "-stream_loop", "19", "-i"];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.extend([clip.display().to_string(), "-c".into(), "copy".into()]);
    args.push(long.display().to_string());
    run("ffmpeg", args).await;
    long
}

/// Waits until the stopped transcode's ffmpeg (matching `child_pattern`) is gone and
/// `scratch` holds only the inputs of [`long_clip`]: no output, no temp file.
async fn stopped_cleanly(scratch: &Scratch, child_pattern: &str) {
    eventually(Duration::from_secs(5), "ffmpeg to be gone", || async {
        (!process_matching(child_pattern)).then_some(())
    })
    .await;
    eventually(Duration::from_secs(5), "only the inputs left", || async {
        (scratch.files() == ["clip.mp4", "long.mp4"]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_transcode_cancelled_kills_ffmpeg_and_ends_cancelled() {
    let scratch = Scratch::new();
    let long = long_clip(&scratch).await;
    let env = TestEnv::new().await;
    let q = env.queue("video").await;
    let guard = video_worker(&env, "video", VideoConfig::default());
    let out = scratch.path("out.mp4");
    let child_pattern = format!("{}/\\.out\\.mp4\\.jobq-", scratch.dir.display());
    let added = q
        .add(
            "video.transcode",
            &json!({"input": long, "output": out, "preset": "720p"}),
            JobOptions::new().attempts(3),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "ffmpeg to start", || async {
        process_matching(&child_pattern).then_some(())
    })
    .await;
    let asked = Instant::now();
    assert_eq!(q.cancel(&added.id).await.unwrap(), Cancelled::Requested);
    let info = wait_job_done(&q, &added.id, Duration::from_secs(10)).await;
    assert_eq!(info.state, JobState::Cancelled, "{info:?}");
    assert!(
        asked.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        asked.elapsed()
    );
    stopped_cleanly(&scratch, &child_pattern).await;
    // not retried
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!process_matching(&child_pattern));
    assert_eq!(q.job(&added.id).await.unwrap().state, JobState::Cancelled);
    guard.stop().await.unwrap();
}

/// A worker killed with SIGKILL runs no destructor: its ffmpeg must die with it (the kernel's
/// parent-death signal), or it would go on writing beside the run another worker starts
/// once the lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_transcode_ffmpeg_dies_with_a_killed_worker() {
    let scratch = Scratch::new();
    let long = long_clip(&scratch).await;
    let env = TestEnv::new().await;
    let q = env.queue("video").await;
    let url = env.config.redis_url().expect("a test URL").to_string();
    let worker = WorkerProcess::start(&url, env.config.prefix(), &["--queues", "video"]);
    let out = scratch.path("out.mp4");
    let child_pattern = format!("{}/\\.out\\.mp4\\.jobq-", scratch.dir.display());
    q.add(
        "video.transcode",
        &json!({"input": long, "output": out, "preset": "720p"}),
        JobOptions::new(),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(20), "ffmpeg to start", || async {
        process_matching(&child_pattern).then_some(())
    })
    .await;
    worker.signal("KILL");
    eventually(
        Duration::from_secs(5),
        "ffmpeg to die with its worker",
        || async { (!process_matching(&child_pattern)).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_transcode_timeout_kills_ffmpeg_and_leaves_no_output() {
    let scratch = Scratch::new();
    let long = long_clip(&scratch).await;

    let env = TestEnv::new().await;
    let q = env.queue("video").await;
    let guard = video_worker(&env, "video", VideoConfig::default());
    let out = scratch.path("out.mp4");
    // the temp output's name: only the transcoding ffmpeg has it on its command line
    let child_pattern = format!("{}/\\.out\\.mp4\\.jobq-", scratch.dir.display());
    let started = Instant::now();
    let added = q
        .add(
            "video.transcode",
            &json!({"input": long, "output": out, "preset": "720p"}),
            JobOptions::new().timeout(Duration::from_millis(1_500)),
        )
        .await
        .unwrap();
    // ffmpeg runs...
    eventually(Duration::from_secs(10), "ffmpeg to start", || async {
        process_matching(&child_pattern).then_some(())
    })
    .await;
    // ...until the timeout
    let info = wait_job_done(&q, &added.id, Duration::from_secs(20)).await;
    let took = started.elapsed();
    assert_eq!(info.state, JobState::Failed);
    let reason = info.failed_reason.unwrap_or_default();
    assert!(reason.starts_with("timed out after"), "{reason}");
    assert!(took < Duration::from_secs(8), "not cut short: {took:?}");
    stopped_cleanly(&scratch, &child_pattern).await;
    // the worker is still there
    let noop = q
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let info = wait_job_done(&q, &noop.id, Duration::from_secs(10)).await;
    assert_eq!(info.state, JobState::Completed);
    guard.stop().await.unwrap();
}
