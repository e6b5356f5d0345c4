//! ffmpeg's own progress output, turned into job progress from 0 to 100.
//!
//! With `-progress pipe:1` ffmpeg writes blocks of `key=value` lines to stdout, each block
//! ending with `progress=continue` (or `progress=end`); `out_time_us` says how far into the
//! output it has got (`out_time_ms`, despite its name, is also in microseconds and is the
//! fallback for old builds). Against the input's probed duration that is a percentage.
//!
//! Reports go to Redis, so they are thinned: 0 at the start, then at most one per
//! [`MIN_INTERVAL`] and only when the whole percentage has risen (so at most ~100 per job
//! however long it runs), capped at 99 while ffmpeg works, and 100 once the output is in
//! place. With `-stats_period 0.1` even a clip that encodes in half a second yields a few
//! real intermediate values; none are invented.

use std::time::{Duration, Instant};

use queue_core::Ctx;

/// The least time between two progress reports of one job.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Reads ffmpeg's `-progress` lines one at a time.
#[derive(Debug, Default)]
pub struct ProgressParser {
    out_time_us: Option<i64>,
}

impl ProgressParser {
    /// Feeds one line; at the end of a block returns how far ffmpeg has got, in
    /// microseconds of output, if it said.
    pub fn feed(&mut self, line: &str) -> Option<i64> {
        let (key, value) = line.trim().split_once('=')?;
        match key {
            "out_time_us" => self.out_time_us = value.parse().ok().or(self.out_time_us),
            // same unit as out_time_us (a long-standing ffmpeg misnomer)
            "out_time_ms" if self.out_time_us.is_none() => self.out_time_us = value.parse().ok(),
            "progress" => return self.out_time_us.take(),
            _ => {}
        }
        None
    }
}

/// `done_us` of `total_us` as a whole percentage, 0 to 99 (100 means finished, which only
/// the end of the job may say).
pub fn percent(done_us: i64, total_us: f64) -> u8 {
    if total_us <= 0.0 || done_us <= 0 {
        return 0;
    }
    ((done_us as f64 / total_us) * 100.0)
        .floor()
        .clamp(0.0, 99.0) as u8
}

/// Reports a job's progress, thinned as the module docs say.
#[derive(Debug)]
pub struct Reporter<'a> {
    ctx: &'a Ctx,
    total_us: f64,
    last_pct: u8,
    last_at: Instant,
}

impl<'a> Reporter<'a> {
    /// Reports 0 and returns a reporter for an output expected to last `duration_secs`.
    pub async fn start(ctx: &'a Ctx, duration_secs: f64) -> Reporter<'a> {
        let reporter = Reporter {
            ctx,
            total_us: duration_secs * 1e6,
            last_pct: 0,
            last_at: Instant::now(),
        };
        reporter.send(0).await;
        reporter
    }

    /// ffmpeg has written `out_time_us` microseconds of output.
    pub async fn update(&mut self, out_time_us: i64) {
        let pct = percent(out_time_us, self.total_us);
        if pct > self.last_pct && self.last_at.elapsed() >= MIN_INTERVAL {
            self.last_pct = pct;
            self.last_at = Instant::now();
            self.send(pct).await;
        }
    }

    /// Reports 100.
    pub async fn finish(self) {
        self.send(100).await;
    }

    async fn send(&self, pct: u8) {
        // progress is for watching: a Redis hiccup must not fail an hour-long encode
        if let Err(e) = self.ctx.progress(pct).await {
            tracing::warn!(job = %self.ctx.job_id(), error = %e, "cannot store job progress");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_yield_the_output_time_reached() {
        let mut p = ProgressParser::default();
        let block = "frame=10\nout_time_us=N/A\nout_time_ms=N/A\nprogress=continue\n\
                     frame=20\nout_time_us=1500000\nout_time_ms=1500000\nout_time=00:00:01.5\n\
                     progress=continue\nout_time_ms=2000000\nprogress=end\n";
        let seen: Vec<i64> = block.lines().filter_map(|l| p.feed(l)).collect();
        assert_eq!(seen, [1_500_000, 2_000_000]);
    }

    #[test]
    fn percentages_stay_below_100_until_the_end() {
        assert_eq!(percent(0, 3e6), 0);
        assert_eq!(percent(-5, 3e6), 0);
        assert_eq!(percent(1_500_000, 3e6), 50);
        assert_eq!(percent(3_000_000, 3e6), 99);
        assert_eq!(percent(9_000_000, 3e6), 99);
        assert_eq!(percent(1, 0.0), 0);
    }
}
