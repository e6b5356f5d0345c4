//! The overview's throughput chart: the last hour of completed (green) and failed (red)
//! jobs per minute as two filled areas in a small inline SVG. The path data is computed
//! here once, for the page and for the live updates (which send new paths, so the browser
//! needs no charting code).

use maud::{html, Markup};
use serde::Serialize;

use crate::stats::Throughput;

/// Chart width in SVG units.
pub const WIDTH: f64 = 180.0;
/// Chart height in SVG units.
pub const HEIGHT: f64 = 32.0;

/// The two areas of a chart, and the busiest minute they are scaled to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartPaths {
    /// SVG path of completed jobs per minute.
    pub completed: String,
    /// SVG path of failed jobs per minute.
    pub failed: String,
    /// The highest per-minute count (the top of the chart).
    pub peak: u64,
    /// A one-line description (`1,200 completed, 3 failed in the last hour`).
    pub title: String,
}

impl ChartPaths {
    /// Paths of one queue's last hour.
    pub fn of(t: &Throughput) -> Self {
        let peak = t
            .completed
            .iter()
            .chain(&t.failed)
            .copied()
            .max()
            .unwrap_or(0);
        ChartPaths {
            completed: area(&t.completed, peak),
            failed: area(&t.failed, peak),
            peak,
            title: format!(
                "{} completed, {} failed in the last hour (busiest minute: {peak})",
                t.completed_sum(),
                t.failed_sum()
            ),
        }
    }

    /// The chart as inline SVG. The paths are numbers this module wrote; the title is
    /// escaped like any value.
    pub fn svg(&self) -> Markup {
        // `{}` bodies, not `;`: an SVG `<path>` needs its end tag in HTML
        html! {
            svg class="chart" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width=(WIDTH)
                height=(HEIGHT) role="img" aria-label=(self.title) {
                title { (self.title) }
                path class="completed" d=(self.completed) {}
                path class="failed" d=(self.failed) {}
            }
        }
    }
}

/// A filled area under `values` (oldest first), scaled so `peak` touches the top.
fn area(values: &[u64], peak: u64) -> String {
    // nothing to draw for an idle series (a line along the floor would read as activity)
    if values.iter().all(|v| *v == 0) {
        return String::new();
    }
    let step = if values.len() > 1 {
        WIDTH / (values.len() - 1) as f64
    } else {
        WIDTH
    };
    let y = |v: u64| {
        if peak == 0 {
            HEIGHT
        } else {
            HEIGHT - (v as f64 / peak as f64) * (HEIGHT - 1.0)
        }
    };
    let mut d = format!("M0,{HEIGHT}");
    for (i, v) in values.iter().enumerate() {
        d.push_str(&format!("L{:.1},{:.1}", i as f64 * step, y(*v)));
    }
    d.push_str(&format!(
        "L{:.1},{HEIGHT}Z",
        (values.len() - 1) as f64 * step
    ));
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_minute_touches_the_top_and_idle_ones_the_floor() {
        let t = Throughput {
            completed: vec![0, 10, 5],
            failed: vec![0, 0, 1],
        };
        let c = ChartPaths::of(&t);
        assert_eq!(c.peak, 10);
        assert_eq!(c.completed, "M0,32L0.0,32.0L90.0,1.0L180.0,16.5L180.0,32Z");
        assert!(c.title.starts_with("15 completed, 1 failed"));
        assert!(c.svg().0.contains("<path class=\"failed\""));
        assert_eq!(c.failed, "M0,32L0.0,32.0L90.0,32.0L180.0,28.9L180.0,32Z");
        let idle = ChartPaths::of(&Throughput {
            completed: vec![0; 3],
            failed: vec![0; 3],
        });
        assert_eq!((idle.completed.as_str(), idle.failed.as_str()), ("", ""));
    }
}
