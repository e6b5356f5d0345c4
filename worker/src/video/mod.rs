//! `video.*`: probe, transcode and thumbnail video files by running `ffmpeg` / `ffprobe` as
//! child processes.
//!
//! | name | data | returns |
//! |---|---|---|
//! | `video.probe` | [`ProbeData`] | [`ProbeResult`] |
//! | `video.transcode` | [`TranscodeData`] | [`TranscodeResult`] |
//! | `video.thumbnail` | [`ThumbnailData`] | [`ThumbnailResult`] |
//!
//! The shapes of every job's data and result live here, so what a producer may send can be
//! read in one place; each handler lives in its own file.
//!
//! How failures look:
//! - `ffmpeg` / `ffprobe` missing, input missing, bad data (unknown fields are rejected, so
//!   typos are errors), an output that exists without `overwrite`: non-retryable errors
//!   ([`JobError::fatal`](queue_core::JobError::fatal)) naming the binary, path or value.
//!   The worker keeps running.
//! - the child exits non-zero: a retryable `ffmpeg exited with status N: <last stderr line>`
//!   whose detail is the tail of its stderr.
//! - timeout, shutdown or cancellation: the child is killed and reaped, and the half-written
//!   temp output is removed (outputs are written beside their target, read back, and moved
//!   into place last, only on success, so a failed run never leaves a partial file and a
//!   run cut short before the move can simply be retried).

pub mod ffmpeg;
mod files;
pub mod probe;
mod progress;
pub mod thumbnail;
pub mod transcode;

use std::path::PathBuf;
use std::sync::Arc;

use queue_core::{Ctx, Job, WorkerBuilder};
use serde::{Deserialize, Serialize};

/// Environment variable naming the `ffmpeg` binary (a path, or a name looked up on `PATH`).
pub const FFMPEG_ENV: &str = "JOBQ_FFMPEG";
/// Environment variable naming the `ffprobe` binary (a path, or a name looked up on `PATH`).
pub const FFPROBE_ENV: &str = "JOBQ_FFPROBE";

/// Which `ffmpeg` / `ffprobe` the video handlers run.
///
/// Each may be a bare name (looked up on `PATH` when a job runs, so installing ffmpeg later
/// needs no restart) or a path. Kept apart from the process environment so tests — which run
/// many workers in one process — can point one worker at a missing binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// The `ffmpeg` binary.
    pub ffmpeg: PathBuf,
    /// The `ffprobe` binary.
    pub ffprobe: PathBuf,
}

impl Default for VideoConfig {
    /// `ffmpeg` and `ffprobe` from `PATH`.
    fn default() -> Self {
        VideoConfig {
            ffmpeg: PathBuf::from("ffmpeg"),
            ffprobe: PathBuf::from("ffprobe"),
        }
    }
}

impl VideoConfig {
    /// [`FFMPEG_ENV`] and [`FFPROBE_ENV`] where set and non-empty, else the defaults.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let default = VideoConfig::default();
        VideoConfig {
            ffmpeg: var(FFMPEG_ENV).unwrap_or(default.ffmpeg),
            ffprobe: var(FFPROBE_ENV).unwrap_or(default.ffprobe),
        }
    }
}

/// Registers `video.probe`, `video.transcode` and `video.thumbnail` with the binaries named
/// by the environment ([`VideoConfig::from_env`]).
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    register_with(builder, VideoConfig::from_env())
}

/// Registers `video.probe`, `video.transcode` and `video.thumbnail` running the binaries of
/// `config`.
pub fn register_with(builder: WorkerBuilder, config: VideoConfig) -> WorkerBuilder {
    let config = Arc::new(config);
    let (c1, c2, c3) = (config.clone(), config.clone(), config);
    builder
        .handler("video.probe", move |job: Job<ProbeData>, ctx: Ctx| {
            let config = c1.clone();
            async move { probe::probe(&config, job, ctx).await }
        })
        .handler(
            "video.transcode",
            move |job: Job<TranscodeData>, ctx: Ctx| {
                let config = c2.clone();
                async move { transcode::transcode(&config, job, ctx).await }
            },
        )
        .handler(
            "video.thumbnail",
            move |job: Job<ThumbnailData>, ctx: Ctx| {
                let config = c3.clone();
                async move { thumbnail::thumbnail(&config, job, ctx).await }
            },
        )
}

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
