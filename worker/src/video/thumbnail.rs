//! `video.thumbnail`: one frame of a video as a JPEG or PNG image.
//!
//! The format follows the output's extension (`.jpg`/`.jpeg` or `.png`; anything else is a
//! non-retryable error naming it). The input is probed first so a time past its end is a
//! clear error naming both, rather than an ffmpeg run that writes nothing. Then:
//!
//! ```text
//! ffmpeg -ss <at_secs> -i file:<input> -map 0:v:0 -frames:v 1 [-vf scale=<width>:-2]
//!        -f image2 -update 1 -c:v mjpeg -q:v 2 <temp>        (or -c:v png)
//! ```
//!
//! Seeking before `-i` is fast (from the nearest keyframe) and still frame-accurate. The
//! image is written to a temp file, read back from it with ffprobe for its size, and moved
//! onto `output` last.

use std::ffi::OsString;
use std::path::Path;

use queue_core::{Ctx, Job, JobError};

use super::config::VideoConfig;
use super::ffmpeg::{file_arg, Program, Tool};
use super::files::{check_input, extension, TempOutput};
use super::probe::inspect;
use super::types::{ThumbnailData, ThumbnailResult};

/// Handles `video.thumbnail`.
pub async fn thumbnail(
    config: &VideoConfig,
    job: Job<ThumbnailData>,
    ctx: Ctx,
) -> Result<ThumbnailResult, JobError> {
    let ffmpeg = Program::locate(Tool::Ffmpeg, &config.ffmpeg)?;
    let ffprobe = Program::locate(Tool::Ffprobe, &config.ffprobe)?;
    let ThumbnailData {
        input,
        output,
        at_secs,
        width,
        overwrite,
    } = job.data;
    let codec = codec_for(&output)?;
    if !at_secs.is_finite() || at_secs < 0.0 {
        return Err(JobError::fatal(format!(
            "at_secs must be a number of seconds from 0 up, got {at_secs}"
        )));
    }
    if let Some(w) = width.filter(|w| !WIDTHS.contains(w)) {
        // (1 made ffmpeg fail with its own words, 16000 a 16000x12000 frame of 1.8 GB)
        return Err(JobError::fatal(format!(
            "width must be {} to {} pixels, got {w}",
            WIDTHS.start(),
            WIDTHS.end()
        )));
    }
    check_input(&input).await?;
    let temp = TempOutput::prepare(&output, &input, overwrite).await?;
    let cancel = ctx.cancellation_token();

    let source = inspect(&ffprobe, &input, cancel).await?;
    source.require_video(&input)?;
    let duration = source.require_duration(&input)?;
    if at_secs >= duration {
        return Err(JobError::fatal(format!(
            "at_secs {at_secs} is beyond the end of '{}', which lasts {duration:.3} s",
            input.display()
        )));
    }

    let temp = ffmpeg
        .spawn(args(&input, temp.path(), at_secs, width, codec), cancel)?
        .writing(temp)
        .finish_writing()
        .await?;

    // read back before it is moved into place (see transcode.rs)
    let size_bytes = temp.written().await.map_err(|_| {
        // (the container may last longer than its video: no frame there)
        JobError::fatal(format!(
            "at_secs {at_secs}: '{}' has no video frame there (its video ends sooner)",
            input.display()
        ))
    })?;
    let image = inspect(&ffprobe, temp.path(), cancel).await?;
    let frame = image.require_video(&output)?;
    let (width, height) = (frame.width, frame.height);
    Ok(ThumbnailResult {
        width,
        height,
        size_bytes,
        output: temp.commit().await?,
    })
}

/// The thumbnail widths taken, in pixels: up to 8K.
const WIDTHS: std::ops::RangeInclusive<u32> = 16..=7680;

/// ffmpeg's image encoder for the output's extension.
fn codec_for(output: &Path) -> Result<&'static str, JobError> {
    match extension(output).as_deref() {
        Some("jpg" | "jpeg") => Ok("mjpeg"),
        Some("png") => Ok("png"),
        other => Err(JobError::fatal(format!(
            "thumbnail output '{}' must end in .jpg, .jpeg or .png; {}",
            output.display(),
            other.map_or("it has no extension".to_string(), |e| format!("got '.{e}'"))
        ))),
    }
}

/// The ffmpeg command line (see the module docs).
fn args(input: &Path, temp: &Path, at_secs: f64, width: Option<u32>, codec: &str) -> Vec<OsString> {
    let at = format!("{at_secs}");
    let mut args: Vec<OsString> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "warning",
        "-y",
        "-ss",
        &at,
        "-i",
    ]
    .map(OsString::from)
    .into();
    args.push(file_arg(input));
    args.extend(["-map", "0:v:0", "-frames:v", "1"].map(OsString::from));
    if let Some(w) = width {
        // -2: the height follows the aspect ratio, rounded to even (friendly to every codec)
        args.extend(["-vf".into(), format!("scale={w}:-2").into()]);
    }
    args.extend(["-f", "image2", "-update", "1", "-c:v", codec].map(OsString::from));
    if codec == "mjpeg" {
        // near-best JPEG quality (scale 2–31, lower is better)
        args.extend(["-q:v", "2"].map(OsString::from));
    }
    args.push(file_arg(temp));
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_format_follows_the_extension() {
        assert_eq!(codec_for(Path::new("t.JPG")).unwrap(), "mjpeg");
        assert_eq!(codec_for(Path::new("t.jpeg")).unwrap(), "mjpeg");
        assert_eq!(codec_for(Path::new("t.png")).unwrap(), "png");
        let e = codec_for(Path::new("t.gif")).unwrap_err();
        assert!(!e.is_retryable());
        assert!(
            e.message().contains("'t.gif'") && e.message().contains("'.gif'"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn the_command_seeks_before_the_input_and_writes_one_frame() {
        let a = args(
            Path::new("in.mp4"),
            Path::new("t.png"),
            1.5,
            Some(320),
            "png",
        );
        let a: Vec<String> = a.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        let ss = a.iter().position(|s| s == "-ss").unwrap();
        let i = a.iter().position(|s| s == "-i").unwrap();
        assert!(ss < i && a[ss + 1] == "1.5");
        assert!(a.windows(2).any(|w| w == ["-vf", "scale=320:-2"]));
        assert!(a.windows(2).any(|w| w == ["-frames:v", "1"]));
        assert!(!a.contains(&"-q:v".to_string()));
    }
}
