//! `video.transcode`: re-encode a video to a [`Preset`] size as H.264 + AAC in MP4.
//!
//! The input is probed first (it must exist and have a video stream; its duration is what
//! progress is measured against). Then, roughly:
//!
//! ```text
//! ffmpeg -i file:<input> -map 0:v:0 -map 0:a:0? -vf scale=-2:<height>
//!        -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -c:a aac -b:a 128k
//!        -movflags +faststart -f mp4 -progress pipe:1 -nostats -stats_period 0.1 <temp>
//! ```
//!
//! `scale=-2:H` keeps the aspect ratio with an even width (H.264 needs one); smaller inputs
//! are scaled up, so the output height is always the preset's. `+faststart` puts the index
//! first so players can start before the download ends. `-stats_period` needs ffmpeg ≥ 4.4.
//! The encode goes to a temp file beside `output`; the result is read back from it with
//! ffprobe, and only then is it moved onto `output` — the last step, so a run cut short
//! before it leaves no output and the retry starts afresh.

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use queue_core::{Ctx, Job, JobError};

use super::config::VideoConfig;
use super::ffmpeg::{file_arg, Program, Tool};
use super::files::{check_input, extension, TempOutput};
use super::probe::inspect;
use super::progress::{ProgressParser, Reporter};
use super::types::{Preset, TranscodeData, TranscodeResult};

/// Handles `video.transcode`.
pub async fn transcode(
    config: &VideoConfig,
    job: Job<TranscodeData>,
    ctx: Ctx,
) -> Result<TranscodeResult, JobError> {
    let began = Instant::now();
    let ffmpeg = Program::locate(Tool::Ffmpeg, &config.ffmpeg)?;
    let ffprobe = Program::locate(Tool::Ffprobe, &config.ffprobe)?;
    let TranscodeData {
        input,
        output,
        preset,
        overwrite,
    } = job.data;
    let container = container_for(&output)?;
    check_input(&input).await?;
    let temp = TempOutput::prepare(&output, &input, overwrite).await?;
    let cancel = ctx.cancellation_token();

    let source = inspect(&ffprobe, &input, cancel).await?;
    source.require_video(&input)?;
    let duration = source.require_duration(&input)?;

    let mut reporter = Reporter::start(&ctx, duration).await;
    let mut run = ffmpeg
        .spawn(args(&input, temp.path(), preset, container), cancel)?
        .writing(temp);
    let mut parser = ProgressParser::default();
    while let Some(line) = run.next_line().await? {
        if let Some(out_time_us) = parser.feed(&line) {
            reporter.update(out_time_us).await;
        }
    }
    let temp = run.finish_writing().await?;

    // read back before it is moved into place: past the move nothing may fail, or a retry
    // would find the (good) output there and fail for good
    let size_bytes = temp.written().await?;
    let written = inspect(&ffprobe, temp.path(), cancel).await?;
    let video = written.require_video(&output)?;
    let (width, height) = (video.width, video.height);
    let duration_secs = written.require_duration(&output)?;
    let output = temp.commit().await?;
    reporter.finish().await;
    Ok(TranscodeResult {
        width,
        height,
        duration_secs,
        size_bytes,
        elapsed_ms: began.elapsed().as_millis() as u64,
        output,
        preset,
    })
}

/// ffmpeg's `-f` for the output's extension: MP4 (`.mp4`, `.m4v`) or QuickTime (`.mov`).
fn container_for(output: &Path) -> Result<&'static str, JobError> {
    match extension(output).as_deref() {
        Some("mp4" | "m4v") => Ok("mp4"),
        Some("mov") => Ok("mov"),
        other => Err(JobError::fatal(format!(
            "output '{}' must end in .mp4, .m4v or .mov (video.transcode writes H.264 + AAC); {}",
            output.display(),
            other.map_or("it has no extension".to_string(), |e| format!("got '.{e}'"))
        ))),
    }
}

/// The ffmpeg command line (see the module docs).
fn args(input: &Path, temp: &Path, preset: Preset, container: &str) -> Vec<OsString> {
    let scale = format!("scale=-2:{}", preset.height());
    let mut args: Vec<OsString> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "warning",
        "-y",
        "-i",
    ]
    .map(OsString::from)
    .into();
    args.push(file_arg(input));
    args.extend(
        [
            "-map",
            "0:v:0",
            "-map",
            "0:a:0?",
            "-vf",
            &scale,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+faststart",
            "-f",
            container,
            "-progress",
            "pipe:1",
            "-nostats",
            "-stats_period",
            "0.1",
        ]
        .map(OsString::from),
    );
    args.push(file_arg(temp));
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_must_be_mp4_or_mov() {
        assert_eq!(container_for(Path::new("a/b.MP4")).unwrap(), "mp4");
        assert_eq!(container_for(Path::new("b.mov")).unwrap(), "mov");
        let e = container_for(Path::new("out.mkv")).unwrap_err();
        assert!(!e.is_retryable());
        assert!(
            e.message().contains("'out.mkv'") && e.message().contains("'.mkv'"),
            "{}",
            e.message()
        );
        let e = container_for(Path::new("out")).unwrap_err();
        assert!(
            e.message().ends_with("it has no extension"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn the_command_scales_to_the_preset_and_reports_progress() {
        let a = args(
            Path::new("-in.mov"),
            Path::new("/t/.o.part.mp4"),
            Preset::P480,
            "mp4",
        );
        let a: Vec<String> = a.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        let i = a.iter().position(|s| s == "-i").unwrap();
        assert_eq!(a[i + 1], "file:-in.mov");
        assert!(a.windows(2).any(|w| w == ["-vf", "scale=-2:480"]));
        assert!(a.windows(2).any(|w| w == ["-progress", "pipe:1"]));
        assert_eq!(a.last().unwrap(), "file:/t/.o.part.mp4");
    }
}
