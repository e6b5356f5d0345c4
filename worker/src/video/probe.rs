//! `video.probe`: what a media file holds, as ffprobe reads it.
//!
//! Runs `ffprobe -v error -print_format json -show_format -show_streams <input>` and keeps
//! the container's format, duration, size and bit rate and the first video and audio
//! streams' codecs (the video's size too). The transcode and thumbnail handlers use the same
//! reading ([`inspect`]) for the input's duration and to read back what they wrote.

use std::ffi::OsString;
use std::path::Path;

use queue_core::worker::CancellationToken;
use queue_core::{Ctx, Job, JobError};
use serde::Deserialize;

use super::config::VideoConfig;
use super::ffmpeg::{file_arg, Program, Tool};
use super::files::check_input;
use super::types::{ProbeData, ProbeResult};

/// Handles `video.probe`.
pub async fn probe(
    config: &VideoConfig,
    job: Job<ProbeData>,
    ctx: Ctx,
) -> Result<ProbeResult, JobError> {
    let ffprobe = Program::locate(Tool::Ffprobe, &config.ffprobe)?;
    let input = &job.data.input;
    check_input(input).await?;
    inspect(&ffprobe, input, ctx.cancellation_token())
        .await?
        .summary(input)
}

/// What ffprobe says about a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// Container duration, else the first video stream's, in seconds.
    pub duration_secs: Option<f64>,
    /// The first video stream (cover art excluded).
    pub video: Option<VideoStream>,
    /// The first audio stream's codec.
    pub audio_codec: Option<String>,
    /// Container format name.
    pub format: String,
    /// File size in bytes, as the container reports it.
    pub size_bytes: Option<u64>,
    /// Overall bit rate, bits per second.
    pub bit_rate: Option<u64>,
}

/// A video stream's codec and frame size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoStream {
    /// ffprobe's `codec_name`.
    pub codec: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Media {
    /// The video stream, or a non-retryable error naming `path`.
    pub fn require_video(&self, path: &Path) -> Result<&VideoStream, JobError> {
        self.video
            .as_ref()
            .ok_or_else(|| JobError::fatal(format!("'{}' has no video stream", path.display())))
    }

    /// The duration, or a non-retryable error naming `path`.
    pub fn require_duration(&self, path: &Path) -> Result<f64, JobError> {
        self.duration_secs.ok_or_else(|| {
            JobError::fatal(format!(
                "ffprobe reports no duration for '{}'",
                path.display()
            ))
        })
    }

    /// The `video.probe` result for the file at `path`.
    pub fn summary(self, path: &Path) -> Result<ProbeResult, JobError> {
        let video = self.require_video(path)?.clone();
        let duration_secs = self.require_duration(path)?;
        let size_bytes = match self.size_bytes {
            Some(n) => n,
            None => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        };
        Ok(ProbeResult {
            duration_secs,
            width: video.width,
            height: video.height,
            video_codec: video.codec,
            audio_codec: self.audio_codec,
            format: self.format,
            size_bytes,
            bit_rate: self.bit_rate,
        })
    }
}

/// Runs ffprobe on `path` (which must exist) and reads its JSON.
pub async fn inspect(
    ffprobe: &Program,
    path: &Path,
    cancel: &CancellationToken,
) -> Result<Media, JobError> {
    let mut args: Vec<OsString> = [
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
    ]
    .map(OsString::from)
    .into();
    args.push(file_arg(path));
    let mut run = ffprobe.spawn(args, cancel)?;
    let json = run.read_to_end().await?;
    run.finish().await?;
    parse(&json).map_err(|e| {
        JobError::new(format!(
            "cannot read ffprobe's description of '{}': {e}",
            path.display()
        ))
    })
}

/// ffprobe's JSON, the parts used here (numbers arrive as strings).
#[derive(Debug, Deserialize)]
struct Output {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Debug, Deserialize)]
struct Stream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    duration: Option<String>,
    #[serde(default)]
    disposition: Disposition,
}

#[derive(Debug, Default, Deserialize)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Debug, Deserialize)]
struct Format {
    format_name: Option<String>,
    duration: Option<String>,
    size: Option<String>,
    bit_rate: Option<String>,
}

fn parse(json: &str) -> Result<Media, serde_json::Error> {
    let out: Output = serde_json::from_str(json)?;
    let video = out
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0);
    let audio = out
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"));
    let format = out.format.as_ref();
    let number = |v: Option<&String>| v.and_then(|s| s.parse::<f64>().ok());
    let duration_secs = number(format.and_then(|f| f.duration.as_ref()))
        .or_else(|| number(video.and_then(|v| v.duration.as_ref())))
        .filter(|d| d.is_finite() && *d >= 0.0);
    Ok(Media {
        duration_secs,
        video: video.and_then(|v| {
            Some(VideoStream {
                codec: v.codec_name.clone().unwrap_or_else(|| "unknown".into()),
                width: v.width?,
                height: v.height?,
            })
        }),
        audio_codec: audio.and_then(|a| a.codec_name.clone()),
        format: format
            .and_then(|f| f.format_name.clone())
            .unwrap_or_else(|| "unknown".into()),
        size_bytes: format.and_then(|f| f.size.as_ref()?.parse().ok()),
        bit_rate: format.and_then(|f| f.bit_rate.as_ref()?.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffprobe_json_is_read_into_the_first_streams() {
        let json = r#"{
            "streams": [
                {"index": 0, "codec_name": "mjpeg", "codec_type": "video", "width": 600,
                 "height": 600, "disposition": {"attached_pic": 1}},
                {"index": 1, "codec_name": "h264", "codec_type": "video", "width": 1280,
                 "height": 720, "duration": "3.000000", "disposition": {"attached_pic": 0}},
                {"index": 2, "codec_name": "aac", "codec_type": "audio"}
            ],
            "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "3.023220",
                       "size": "123456", "bit_rate": "326690"}
        }"#;
        let m = parse(json).unwrap();
        assert_eq!(
            m.video,
            Some(VideoStream {
                codec: "h264".into(),
                width: 1280,
                height: 720
            })
        );
        assert_eq!(m.audio_codec.as_deref(), Some("aac"));
        assert_eq!(m.duration_secs, Some(3.02322));
        assert_eq!((m.size_bytes, m.bit_rate), (Some(123456), Some(326690)));

        let none = parse(r#"{"streams": [{"codec_type": "audio", "codec_name": "mp3"}]}"#).unwrap();
        let e = none.summary(Path::new("song.mp3")).unwrap_err();
        assert_eq!(e.message(), "'song.mp3' has no video stream");
        assert!(!e.is_retryable());
    }
}
