//! The shapes of each `video.*` job's data and result.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `video.probe` data: `{"input": "/path/clip.mp4"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeData {
    /// The file to inspect.
    pub input: PathBuf,
}

/// What `video.probe` returns: the container and its first video and audio streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Duration in seconds (the container's, else the video stream's).
    pub duration_secs: f64,
    /// Width of the first video stream, in pixels.
    pub width: u32,
    /// Height of the first video stream, in pixels.
    pub height: u32,
    /// Codec of the first video stream (ffprobe's `codec_name`, e.g. `h264`).
    pub video_codec: String,
    /// Codec of the first audio stream, `null` when there is none.
    pub audio_codec: Option<String>,
    /// Container format (ffprobe's `format_name`, e.g. `mov,mp4,m4a,3gp,3g2,mj2`).
    pub format: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Overall bit rate in bits per second, `null` when ffprobe reports none.
    pub bit_rate: Option<u64>,
}

/// The target size of `video.transcode`: the output is scaled to this height, keeping the
/// aspect ratio (width rounded to an even number), and encoded H.264 + AAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// 1080 lines.
    #[serde(rename = "1080p")]
    P1080,
    /// 720 lines.
    #[serde(rename = "720p")]
    P720,
    /// 480 lines.
    #[serde(rename = "480p")]
    P480,
}

impl Preset {
    /// Output height in pixels.
    pub fn height(self) -> u32 {
        match self {
            Preset::P1080 => 1080,
            Preset::P720 => 720,
            Preset::P480 => 480,
        }
    }
}

/// `video.transcode` data:
/// `{"input": "in.mov", "output": "out.mp4", "preset": "720p", "overwrite": false}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscodeData {
    /// The source file.
    pub input: PathBuf,
    /// Where to write the result: `.mp4`, `.m4v` or `.mov`; its directory must exist.
    pub output: PathBuf,
    /// Target size.
    pub preset: Preset,
    /// Replace `output` if it exists (default: an existing output fails the job).
    #[serde(default)]
    pub overwrite: bool,
}

/// What `video.transcode` returns, read back from the written file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscodeResult {
    /// The written file.
    pub output: PathBuf,
    /// The preset used.
    pub preset: Preset,
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// Output duration in seconds.
    pub duration_secs: f64,
    /// Output size in bytes.
    pub size_bytes: u64,
    /// How long the job took (probe, encode and read-back), in milliseconds.
    pub elapsed_ms: u64,
}

/// `video.thumbnail` data:
/// `{"input": "clip.mp4", "output": "thumb.jpg", "at_secs": 1.0, "width": 320}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailData {
    /// The source video.
    pub input: PathBuf,
    /// Where to write the image: `.jpg` / `.jpeg` (JPEG) or `.png` (PNG); its directory
    /// must exist.
    pub output: PathBuf,
    /// Time of the frame, in seconds from the start (default 1.0); must be before the end.
    #[serde(default = "default_at_secs")]
    pub at_secs: f64,
    /// Image width in pixels, height following the aspect ratio (default: the video's).
    #[serde(default)]
    pub width: Option<u32>,
    /// Replace `output` if it exists (default: an existing output fails the job).
    #[serde(default)]
    pub overwrite: bool,
}

fn default_at_secs() -> f64 {
    1.0
}

/// What `video.thumbnail` returns, read back from the written image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThumbnailResult {
    /// The written image.
    pub output: PathBuf,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Image size in bytes.
    pub size_bytes: u64,
}

/// `video.publish` data: `{"video": "launch-teaser", "output": "manifest.json",
/// "overwrite": false}`. The job is a flow's parent; its children are the `video.transcode`
/// and `video.thumbnail` jobs of the video (and optionally its `video.probe`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishData {
    /// What is published: the video's id or source path, as the caller names it (not read).
    pub video: String,
    /// Where to write the manifest (`.json`; its directory must exist). Without it nothing
    /// is written and the result alone carries the manifest.
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// Replace `output` if it exists with other content (default: that fails the job; the
    /// same content again is fine, so a rerun succeeds).
    #[serde(default)]
    pub overwrite: bool,
}

/// What `video.publish` writes to its manifest file, and the heart of its result: what
/// the video's completed children made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The video, as the job's data named it.
    pub video: String,
    /// What a completed `video.probe` child read of the source, when the flow had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ProbeResult>,
    /// The completed `video.transcode` children's results, lowest height first (then by
    /// output path).
    pub renditions: Vec<TranscodeResult>,
    /// The first completed `video.thumbnail` child's image (in the flow's order), `null`
    /// when none completed.
    pub thumbnail: Option<ThumbnailResult>,
    /// Every completed `video.thumbnail` child's image, in the flow's order.
    pub thumbnails: Vec<ThumbnailResult>,
}

/// What `video.publish` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishResult {
    /// `video`, `source`, `renditions`, `thumbnail`, `thumbnails`: as written to the
    /// manifest.
    #[serde(flatten)]
    pub published: Manifest,
    /// The children that did not complete (with `onChildFailure: "ignore"`), in the flow's
    /// order.
    pub failed: Vec<FailedChild>,
    /// The manifest file written, `null` when the data gave no `output`.
    pub manifest: Option<PathBuf>,
}

/// A child of `video.publish` that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedChild {
    /// The child's queue.
    pub queue: String,
    /// The child's id.
    pub id: String,
    /// The child's handler name.
    pub name: String,
    /// `failed` or `removed` (or, should it not have finished, its state now).
    pub state: String,
    /// Why it did not complete, when known.
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_rejects_unknown_fields_and_presets_by_name() {
        let e = serde_json::from_value::<ProbeData>(json!({"input": "a", "inptu": "b"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `inptu`"), "{e}");
        let e = serde_json::from_value::<TranscodeData>(
            json!({"input": "a", "output": "b.mp4", "preset": "900p"}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("900p") && e.contains("480p"), "{e}");
        let t: TranscodeData =
            serde_json::from_value(json!({"input": "a", "output": "b.mp4", "preset": "480p"}))
                .unwrap();
        assert_eq!((t.preset.height(), t.overwrite), (480, false));
        let th: ThumbnailData =
            serde_json::from_value(json!({"input": "a", "output": "b.jpg"})).unwrap();
        assert_eq!((th.at_secs, th.width), (1.0, None));
    }
}
