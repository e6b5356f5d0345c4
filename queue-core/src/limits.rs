//! Queue-wide limits stored in Redis, shared by every worker of a queue:
//!
//! - a **rate limit**: at most `max` job starts per `window` (a fixed window counted in the
//!   queue's limiter key, which the first start of a window creates with the window as TTL);
//! - a **global concurrency** cap: at most `n` jobs of the queue active at once over all
//!   workers (active = pending in the queue's lanes).
//!
//! Both live in the queue's meta hash (`rate_max`, `rate_ms`, `conc`) and are enforced where
//! jobs are claimed (`move_to_active.lua`), so they hold however many workers run and take
//! effect without restarting them. A worker held back by a limit waits until the rate window
//! resets (or polls briefly for a free concurrency slot) instead of spinning; raising or
//! clearing a limit wakes waiting workers at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::format_duration;
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::scripts::{self};

/// Longest rate-limit window accepted (a year).
pub const MAX_RATE_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);

/// A queue's limits as stored in Redis; `None` means no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    /// At most this many job starts per rate window.
    pub rate_max: Option<u64>,
    /// Length of the rate window in ms (set together with `rate_max`).
    pub rate_window_ms: Option<u64>,
    /// At most this many jobs active at once over all workers.
    pub concurrency: Option<u32>,
}

impl Limits {
    /// The rate window as a duration.
    pub fn rate_window(&self) -> Option<Duration> {
        self.rate_window_ms.map(Duration::from_millis)
    }

    /// True when neither limit is set.
    pub fn is_unlimited(&self) -> bool {
        self.rate_max.is_none() && self.concurrency.is_none()
    }
}

impl Queue {
    /// Limits job starts of this queue to `max` per `window`, over all workers (replaces any
    /// rate limit set before; a window in progress never outlasts the new length).
    pub async fn set_rate_limit(&self, max: u64, window: Duration) -> Result<()> {
        let window_ms = validate_rate_limit("rate limit", max, window)?;
        self.set_limit("rate", &max.to_string(), window_ms).await
    }

    /// Removes the rate limit; waiting workers start jobs again at once.
    pub async fn clear_rate_limit(&self) -> Result<()> {
        self.set_limit("rate", "", 0).await
    }

    /// Limits this queue to `n` active jobs at once over all workers (each worker's own
    /// concurrency still applies too).
    pub async fn set_global_concurrency(&self, n: u32) -> Result<()> {
        validate_concurrency("global concurrency", n)?;
        self.set_limit("conc", &n.to_string(), 0).await
    }

    /// Removes the global concurrency cap; waiting workers start jobs again at once.
    pub async fn clear_global_concurrency(&self) -> Result<()> {
        self.set_limit("conc", "", 0).await
    }

    /// The limits currently stored for this queue.
    pub async fn limits(&self) -> Result<Limits> {
        let names = ["rate_max", "rate_ms", "conc"].map(String::from);
        let (rate_max, rate_ms, conc): (Option<String>, Option<String>, Option<String>) =
            scripts::meta::fields(&self.inner, &names).await?;
        let rate_max = parse_field("rate_max", rate_max)?;
        Ok(Limits {
            rate_max,
            // only meaningful beside a max (both are written and removed together)
            rate_window_ms: rate_max.and(parse_field("rate_ms", rate_ms)?),
            concurrency: parse_field("conc", conc)?,
        })
    }

    /// One `set_limits` call: `kind` is `rate` or `conc`; an empty `max` clears it.
    async fn set_limit(&self, kind: &str, max: &str, window_ms: u64) -> Result<()> {
        scripts::set_limits::set_limits(&self.inner, kind, max, window_ms).await
    }
}

/// Checks a rate limit (`what`: "rate limit", "group rate limit"); returns the window in
/// whole ms.
pub(crate) fn validate_rate_limit(what: &'static str, max: u64, window: Duration) -> Result<u64> {
    let (max_name, window_name) = match what {
        "group rate limit" => ("group rate limit max", "group rate limit window"),
        _ => ("rate limit max", "rate limit window"),
    };
    if max == 0 {
        return Err(Error::invalid(
            max_name,
            "0: must be at least 1 job per window",
        ));
    }
    // Lua numbers are doubles: keep the count exact
    if max > 1 << 53 {
        return Err(Error::invalid(
            max_name,
            format!("{max}: must be at most 2^53"),
        ));
    }
    // whole ms as the CLI writes them (`0ms`, `2h`), anything finer as Rust shows it
    let shown = || {
        if window.subsec_nanos() % 1_000_000 == 0 {
            format_duration(window)
        } else {
            format!("{window:?}")
        }
    };
    if window < Duration::from_millis(1) {
        return Err(Error::invalid(
            window_name,
            format!("{}: must be at least 1ms", shown()),
        ));
    }
    if window > MAX_RATE_WINDOW {
        return Err(Error::invalid(
            window_name,
            format!("{}: must be at most 365 days", shown()),
        ));
    }
    Ok(window.as_millis() as u64)
}

/// Checks a concurrency cap (`what`: "global concurrency", "group concurrency").
pub(crate) fn validate_concurrency(what: &'static str, n: u32) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid(
            what,
            "0: must be at least 1 (pause the queue to stop it)",
        ));
    }
    Ok(())
}

fn parse_field<T: std::str::FromStr>(field: &str, v: Option<String>) -> Result<Option<T>> {
    v.map(|s| {
        s.parse()
            .map_err(|_| Error::Protocol(format!("queue limit {field} is not a number: {s:?}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_limits_name_the_value() {
        let e = validate_rate_limit("rate limit", 0, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("rate limit max: 0"), "{e}");
        let e = validate_rate_limit("rate limit", 10, Duration::ZERO).unwrap_err();
        assert!(e.to_string().contains("rate limit window: 0ms"), "{e}");
        let e = validate_rate_limit("rate limit", 10, Duration::from_micros(500)).unwrap_err();
        assert!(e.to_string().contains("500µs"), "{e}");
        let e = validate_rate_limit("rate limit", 10, MAX_RATE_WINDOW * 2).unwrap_err();
        assert!(e.to_string().contains("rate limit window"), "{e}");
        let e = validate_concurrency("global concurrency", 0).unwrap_err();
        assert!(e.to_string().contains("global concurrency: 0"), "{e}");
        assert_eq!(
            validate_rate_limit("rate limit", 10, Duration::from_secs(1)).unwrap(),
            1000
        );
        assert!(validate_concurrency("global concurrency", 1).is_ok());
    }

    #[test]
    fn stored_fields_parse() {
        assert_eq!(
            parse_field::<u64>("rate_max", Some("10".into())).unwrap(),
            Some(10)
        );
        assert_eq!(parse_field::<u32>("conc", None).unwrap(), None);
        assert!(parse_field::<u32>("conc", Some("x".into())).is_err());
    }
}
