//! Which `ffmpeg` / `ffprobe` binaries the video handlers run.

use std::path::PathBuf;

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
