//! `video.publish`: the finishing parent of a video's flow. Its children transcode the
//! video (`video.transcode`, one per rendition) and take its thumbnail (`video.thumbnail`);
//! once they have all finished it gathers what they made into one manifest — renditions
//! lowest first, the thumbnail, and (with a `video.probe` child) the source's description —
//! returns it, and writes it to `output` when the data names one.
//!
//! With the default `onChildFailure: "fail"` a child that fails for good fails the parent
//! before it runs, so publish only ever sees every child completed. With `"ignore"` it runs
//! anyway and publishes what there is: any completed rendition is enough. The children that
//! did not complete are listed in the result's `failed` (not in the manifest); a missing
//! thumbnail is `null`. Only when no `video.transcode` child completed — or there was none,
//! as for a publish added as a plain job — does it fail, for good (a retry cannot change
//! its children), naming each transcode and why it did not complete.
//!
//! The manifest is written as the other video outputs are (a temp file beside it, moved
//! into place last). Writing the same manifest again is not an error even without
//! `overwrite`, so a rerun of a publish that had written it (a lost reply, a reclaimed
//! lease) succeeds.

use std::path::{Path, PathBuf};

use queue_core::internal::text::clip;
use queue_core::{ChildOutcome, ChildState, Ctx, Job, JobError};
use serde::de::DeserializeOwned;

use super::files::{extension, TempOutput};
use super::types::{
    FailedChild, Manifest, ProbeResult, PublishData, PublishResult, ThumbnailResult,
    TranscodeResult,
};

const TRANSCODE: &str = "video.transcode";
const THUMBNAIL: &str = "video.thumbnail";
const PROBE: &str = "video.probe";

/// Handles `video.publish`.
pub async fn publish(job: Job<PublishData>, ctx: Ctx) -> Result<PublishResult, JobError> {
    let PublishData {
        video,
        output,
        overwrite,
    } = job.data;
    check_data(&video, output.as_deref())?;
    let children = ctx.children().await?;
    let (published, failed) = collect(&video, &children)?;
    ctx.log(summary(&published, &failed)).await?;
    let manifest = match output {
        Some(target) => Some(write_manifest(&target, &published, overwrite).await?),
        None => None,
    };
    Ok(PublishResult {
        published,
        failed,
        manifest,
    })
}

/// Refuses, for good, data no run can publish: an empty `video`, an `output` not `.json`.
fn check_data(video: &str, output: Option<&Path>) -> Result<(), JobError> {
    if video.trim().is_empty() {
        return Err(JobError::fatal(format!(
            "video must name the video published (an id or its source path), got {video:?}"
        )));
    }
    if let Some(output) = output {
        if extension(output).as_deref() != Some("json") {
            return Err(JobError::fatal(format!(
                "manifest output '{}' must end in .json",
                output.display()
            )));
        }
    }
    Ok(())
}

/// Gathers the children's results, in the flow's order, into the manifest of `video` and
/// the list of children that did not complete; fails (for good) when no rendition
/// completed, or a completed child's result is not what its handler returns.
pub fn collect(
    video: &str,
    children: &[ChildOutcome],
) -> Result<(Manifest, Vec<FailedChild>), JobError> {
    let mut manifest = Manifest {
        video: video.to_string(),
        source: None,
        renditions: Vec::new(),
        thumbnail: None,
        thumbnails: Vec::new(),
    };
    let mut failed = Vec::new();
    for child in children {
        if child.state != ChildState::Completed {
            failed.push(FailedChild {
                queue: child.queue.clone(),
                id: child.id.clone(),
                name: child.name.clone(),
                state: child.state.to_string(),
                reason: child.failed_reason.clone(),
            });
            continue;
        }
        // other children (a step the flow needed first) have nothing to publish
        match child.name.as_str() {
            TRANSCODE => manifest
                .renditions
                .push(result_of::<TranscodeResult>(child)?),
            THUMBNAIL => manifest
                .thumbnails
                .push(result_of::<ThumbnailResult>(child)?),
            PROBE if manifest.source.is_none() => {
                manifest.source = Some(result_of::<ProbeResult>(child)?)
            }
            _ => {}
        }
    }
    if manifest.renditions.is_empty() {
        return Err(no_rendition(video, &failed));
    }
    manifest.renditions.sort_by(|a, b| {
        a.height
            .cmp(&b.height)
            .then_with(|| a.output.cmp(&b.output))
    });
    manifest.thumbnail = manifest.thumbnails.first().cloned();
    Ok((manifest, failed))
}

/// A completed child's return value as its handler's result type.
fn result_of<T: DeserializeOwned>(child: &ChildOutcome) -> Result<T, JobError> {
    let bad = |why: String| {
        JobError::fatal(format!(
            "child {}/{} ({}) completed with {why}",
            child.queue, child.id, child.name
        ))
    };
    let value = child
        .return_value
        .clone()
        .ok_or_else(|| bad("no return value".into()))?;
    serde_json::from_value(value)
        .map_err(|e| bad(format!("a result {} does not return: {e}", child.name)))
}

/// The error when no `video.transcode` child completed.
fn no_rendition(video: &str, failed: &[FailedChild]) -> JobError {
    let video = clip(video, 80);
    let transcodes: Vec<String> = failed
        .iter()
        .filter(|c| c.name == TRANSCODE)
        .map(|c| {
            let why = c
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {}", clip(r, 200)));
            format!("{}/{} {}{why}", c.queue, c.id, c.state)
        })
        .collect();
    if transcodes.is_empty() {
        return JobError::fatal(format!(
            "video.publish of '{video}' has no {TRANSCODE} child to publish: add it as the \
             parent of a flow whose children transcode the video (jobq flow add)"
        ));
    }
    JobError::fatal(format!(
        "video.publish of '{video}': none of its {} {TRANSCODE} children completed ({})",
        transcodes.len(),
        transcodes.join("; ")
    ))
}

/// The job's log line: what was published, and what was not.
fn summary(m: &Manifest, failed: &[FailedChild]) -> String {
    let heights: Vec<String> = m
        .renditions
        .iter()
        .map(|r| format!("{}p", r.height))
        .collect();
    let mut line = format!(
        "publishing '{}': {} rendition(s) ({}), {} thumbnail(s)",
        clip(&m.video, 80),
        m.renditions.len(),
        heights.join(", "),
        m.thumbnails.len()
    );
    if !failed.is_empty() {
        let names: Vec<String> = failed
            .iter()
            .map(|c| format!("{}/{} ({}) {}", c.queue, c.id, c.name, c.state))
            .collect();
        line.push_str(&format!("; left out: {}", names.join(", ")));
    }
    line
}

/// Whether `target` is a regular file holding exactly `bytes`. Read only when its size says
/// it may: a FIFO (which would hold the job, and the worker's shutdown, until someone
/// writes to it), a device or a file of gigabytes is never read into the worker.
async fn holds(target: &Path, bytes: &[u8]) -> bool {
    match tokio::fs::metadata(target).await {
        Ok(m) if m.is_file() && m.len() == bytes.len() as u64 => {
            tokio::fs::read(target).await.is_ok_and(|old| old == bytes)
        }
        _ => false,
    }
}

/// Writes `manifest` as pretty JSON to `target` (see the module docs); returns the path.
async fn write_manifest(
    target: &Path,
    manifest: &Manifest,
    overwrite: bool,
) -> Result<PathBuf, JobError> {
    let mut bytes = serde_json::to_vec_pretty(manifest)
        .map_err(|e| JobError::fatal(format!("the manifest does not encode as JSON: {e}")))?;
    bytes.push(b'\n');
    if !overwrite && holds(target, &bytes).await {
        // written by an earlier run of this job: nothing to do
        return Ok(target.to_path_buf());
    }
    let temp = TempOutput::prepare_new(target, overwrite).await?;
    tokio::fs::write(temp.path(), &bytes).await.map_err(|e| {
        JobError::new(format!(
            "cannot write the manifest '{}': {e}",
            target.display()
        ))
    })?;
    temp.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue_core::JobState;
    use serde_json::{json, Value};

    fn child(id: &str, name: &str, state: ChildState, value: Option<Value>) -> ChildOutcome {
        let failed = !matches!(state, ChildState::Completed);
        ChildOutcome {
            queue: "video".into(),
            id: id.into(),
            name: name.into(),
            state,
            return_value: value,
            failed_reason: failed.then(|| format!("{name} {id} broke")),
        }
    }

    fn rendition(height: u32, output: &str) -> Value {
        let preset = format!("{height}p");
        json!({"output": output, "preset": preset, "width": height * 16 / 9,
               "height": height, "duration_secs": 4.0, "size_bytes": height * 100,
               "elapsed_ms": 900})
    }

    fn thumb(output: &str) -> Value {
        json!({"output": output, "width": 320, "height": 180, "size_bytes": 4000})
    }

    #[test]
    fn renditions_come_lowest_first_with_the_thumbnail() {
        let children = [
            child(
                "1",
                TRANSCODE,
                ChildState::Completed,
                Some(rendition(720, "/v/720.mp4")),
            ),
            child(
                "2",
                THUMBNAIL,
                ChildState::Completed,
                Some(thumb("/v/t.jpg")),
            ),
            child(
                "3",
                TRANSCODE,
                ChildState::Completed,
                Some(rendition(480, "/v/480.mp4")),
            ),
            child("4", "diag.noop", ChildState::Completed, Some(Value::Null)),
        ];
        let (m, failed) = collect("teaser", &children).unwrap();
        assert_eq!(m.video, "teaser");
        let heights: Vec<u32> = m.renditions.iter().map(|r| r.height).collect();
        assert_eq!(heights, [480, 720]);
        assert_eq!(m.renditions[0].output, PathBuf::from("/v/480.mp4"));
        assert_eq!(
            m.thumbnail.as_ref().unwrap().output,
            PathBuf::from("/v/t.jpg")
        );
        assert_eq!(m.thumbnails.len(), 1);
        assert_eq!(m.source, None);
        assert!(failed.is_empty());
        let out = serde_json::to_value(&m).unwrap();
        assert_eq!(out["renditions"][1]["preset"], "720p");
        assert!(out.get("source").is_none(), "{out}");
    }

    #[test]
    fn a_partial_failure_publishes_what_completed_and_lists_the_rest() {
        let probe = json!({"duration_secs": 4.0, "width": 1280, "height": 720,
            "video_codec": "h264", "audio_codec": "aac", "format": "mov,mp4",
            "size_bytes": 1000, "bit_rate": 2000});
        let children = [
            child("p", PROBE, ChildState::Completed, Some(probe)),
            child("1", TRANSCODE, ChildState::Failed, None),
            child(
                "2",
                TRANSCODE,
                ChildState::Completed,
                Some(rendition(480, "/v/480.mp4")),
            ),
            child("3", THUMBNAIL, ChildState::Removed, None),
            child(
                "4",
                THUMBNAIL,
                ChildState::Completed,
                Some(thumb("/v/b.jpg")),
            ),
        ];
        let (m, failed) = collect("teaser", &children).unwrap();
        assert_eq!(m.renditions.len(), 1);
        assert_eq!(m.source.as_ref().unwrap().height, 720);
        // the first thumbnail failed: the one that completed is the thumbnail
        assert_eq!(
            m.thumbnail.as_ref().unwrap().output,
            PathBuf::from("/v/b.jpg")
        );
        let ids: Vec<(&str, &str)> = failed
            .iter()
            .map(|c| (c.id.as_str(), c.state.as_str()))
            .collect();
        assert_eq!(ids, [("1", "failed"), ("3", "removed")]);
        assert_eq!(failed[0].reason.as_deref(), Some("video.transcode 1 broke"));
        // the result carries the manifest's fields and the failures
        let result = PublishResult {
            published: m,
            failed,
            manifest: None,
        };
        let v = serde_json::to_value(&result).unwrap();
        assert_eq!(v["video"], "teaser");
        assert_eq!(v["failed"][1]["name"], THUMBNAIL);
        assert_eq!(v["manifest"], Value::Null);
        assert_eq!(serde_json::from_value::<PublishResult>(v).unwrap(), result);
    }

    #[test]
    fn no_completed_rendition_fails_for_good_naming_each_transcode() {
        let children = [
            child("7", TRANSCODE, ChildState::Failed, None),
            child(
                "8",
                THUMBNAIL,
                ChildState::Completed,
                Some(thumb("/v/t.jpg")),
            ),
            child(
                "9",
                TRANSCODE,
                ChildState::Unfinished(JobState::Active),
                None,
            ),
        ];
        let e = collect("teaser", &children).unwrap_err();
        assert!(!e.is_retryable());
        let m = e.message();
        assert!(
            m.contains("'teaser'") && m.contains("none of its 2 video.transcode"),
            "{m}"
        );
        assert!(m.contains("video/7 failed: video.transcode 7 broke"), "{m}");
        assert!(m.contains("video/9 active"), "{m}");
        assert!(!m.contains("video/8"), "{m}");

        // a publish that is no flow's parent
        let e = collect("teaser", &[]).unwrap_err();
        assert!(
            e.message().contains("has no video.transcode child"),
            "{}",
            e.message()
        );
        let only_thumb = [child(
            "8",
            THUMBNAIL,
            ChildState::Completed,
            Some(thumb("t.jpg")),
        )];
        let e = collect("teaser", &only_thumb).unwrap_err();
        assert!(
            e.message().contains("has no video.transcode child"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn a_completed_child_with_a_foreign_result_is_named() {
        let children = [child(
            "5",
            TRANSCODE,
            ChildState::Completed,
            Some(json!({"ok": true})),
        )];
        let e = collect("teaser", &children).unwrap_err();
        assert!(!e.is_retryable());
        let m = e.message();
        assert!(
            m.starts_with("child video/5 (video.transcode) completed with a result"),
            "{m}"
        );
        assert!(m.contains("missing field"), "{m}");
        let children = [child("5", TRANSCODE, ChildState::Completed, None)];
        let e = collect("teaser", &children).unwrap_err();
        assert!(e.message().contains("no return value"), "{}", e.message());
    }

    #[test]
    fn data_names_what_is_wrong() {
        let e = check_data("  ", None).unwrap_err();
        assert!(
            !e.is_retryable() && e.message().contains("\"  \""),
            "{}",
            e.message()
        );
        let e = check_data("v", Some(Path::new("out/m.txt"))).unwrap_err();
        assert!(e.message().contains("'out/m.txt'") && e.message().contains(".json"));
        check_data("v", Some(Path::new("m.JSON"))).unwrap();
        let e = serde_json::from_value::<PublishData>(json!({"video": "v", "ouptut": "m.json"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `ouptut`"), "{e}");
        let e = serde_json::from_value::<PublishData>(json!({"output": "m.json"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `video`"), "{e}");
    }

    #[tokio::test]
    async fn the_manifest_is_written_once_and_rewritten_only_with_overwrite() {
        let dir = std::env::temp_dir().join(format!("jobq-publish-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("manifest.json");
        let children = [child(
            "1",
            TRANSCODE,
            ChildState::Completed,
            Some(rendition(480, "a.mp4")),
        )];
        let (m, _) = collect("teaser", &children).unwrap();
        assert_eq!(write_manifest(&target, &m, false).await.unwrap(), target);
        let written: Manifest = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
        assert_eq!(written, m);
        // the same manifest again (a rerun): fine
        write_manifest(&target, &m, false).await.unwrap();
        // another one: refused without overwrite, naming the file
        let mut other = m.clone();
        other.video = "other".into();
        let e = write_manifest(&target, &other, false).await.unwrap_err();
        assert!(!e.is_retryable() && e.message().contains("already exists"));
        write_manifest(&target, &other, true).await.unwrap();
        let written: Manifest = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
        assert_eq!(written.video, "other");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temp files left: {names:?}");

        // a FIFO or a file of gigabytes where the manifest goes is never read: refused as
        // there, at once (a FIFO held the job and the worker's shutdown for good, a sparse
        // 3 GB file took 3 GB of the worker's memory)
        let fifo = dir.join("fifo.json");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let huge = dir.join("huge.json");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(3 << 30)
            .unwrap();
        for target in [&fifo, &huge] {
            let e = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                write_manifest(target, &m, false),
            )
            .await
            .expect("the manifest's target was read")
            .unwrap_err();
            assert!(e.message().contains("already exists"), "{}", e.message());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
