//! `video.*`: probe, transcode and thumbnail video files by running `ffmpeg` / `ffprobe` as
//! child processes, and publish a video's renditions once a flow has made them.
//!
//! | name | data | returns |
//! |---|---|---|
//! | `video.probe` | [`ProbeData`] | [`ProbeResult`] |
//! | `video.transcode` | [`TranscodeData`] | [`TranscodeResult`] |
//! | `video.thumbnail` | [`ThumbnailData`] | [`ThumbnailResult`] |
//! | `video.publish` | [`PublishData`] | [`PublishResult`] |
//!
//! `video.publish` is a flow's parent: it runs no ffmpeg, it gathers what its
//! `video.transcode` and `video.thumbnail` children made into a manifest (`publish.rs`).
//!
//! The shapes of every job's data and result live in `types.rs`, so what a producer may send
//! can be read in one place; each handler lives in its own file.
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

mod config;
pub mod ffmpeg;
mod files;
pub mod probe;
mod progress;
pub mod publish;
pub mod thumbnail;
pub mod transcode;
mod types;

use std::sync::Arc;

use queue_core::{Ctx, Job, WorkerBuilder};

pub use self::config::{VideoConfig, FFMPEG_ENV, FFPROBE_ENV};
pub use self::types::{
    FailedChild, Manifest, Preset, ProbeData, ProbeResult, PublishData, PublishResult,
    ThumbnailData, ThumbnailResult, TranscodeData, TranscodeResult,
};

/// Registers `video.probe`, `video.transcode`, `video.thumbnail` and `video.publish` with
/// the binaries named by the environment ([`VideoConfig::from_env`]).
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    register_with(builder, VideoConfig::from_env())
}

/// Registers `video.probe`, `video.transcode` and `video.thumbnail` running the binaries of
/// `config`, and `video.publish`.
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
        .handler("video.publish", publish::publish)
}
