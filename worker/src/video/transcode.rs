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
//! The encode goes to a temp file renamed onto `output` on success; the result is read back
//! from the renamed file with ffprobe.

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use queue_core::{Ctx, Job, JobError};

use super::ffmpeg::{file_arg, Program, Tool};
use super::files::{check_input, extension, TempOutput};
use super::probe::inspect;
use super::progress::{ProgressParser, Reporter};
use super::{Preset, TranscodeData, TranscodeResult, VideoConfig};

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
        .cleans_up(temp.path());
    let mut parser = ProgressParser::default();
    while let Some(line) = run.next_line().await? {
        if let Some(out_time_us) = parser.feed(&line) {
            reporter.update(out_time_us).await;
        }
    }
    run.finish().await?;
    let output = temp.commit().await?;

    let written = inspect(&ffprobe, &output, cancel).await?;
    let video = written.require_video(&output)?;
    let size_bytes = check_input(&output).await?;
    let result = TranscodeResult {
        width: video.width,
        height: video.height,
        duration_secs: written.require_duration(&output)?,
        size_bytes,
        elapsed_ms: began.elapsed().as_millis() as u64,
        output,
        preset,
    };
    reporter.finish().await;
    Ok(result)
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
