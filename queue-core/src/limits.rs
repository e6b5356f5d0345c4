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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    /// At most this many job starts per rate window.
    pub rate_max: Option<u64>,
    /// Length of the rate window in ms (set together with `rate_max`).
    pub rate_window_ms: Option<u64>,
    /// At most this many jobs active at once over all workers.
    pub concurrency: Option<u32>,
    /// Set when a stored limit is corrupt (not a number): which field, and its value. A
    /// corrupt limit limits nothing (the claim reads it as unset, as it is shown here);
    /// setting or clearing that limit writes it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<String>,
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
        // read as the claim reads them (move_to_active.lua `limit_value`)
        let mut bad = Vec::new();
        let rate_max = parse_field("rate_max", rate_max, "no limit", &mut bad);
        // only meaningful beside a max (both are written and removed together)
        let rate_window_ms = rate_max
            .map(|_| parse_field("rate_ms", rate_ms, "read as 1000", &mut bad).unwrap_or(1000));
        let concurrency = parse_field("conc", conc, "no limit", &mut bad)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        Ok(Limits {
            rate_max,
            rate_window_ms,
            concurrency,
            corrupt: (!bad.is_empty()).then(|| bad.join("; ")),
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

/// Stored limit `field` (`None`: unset), read as the claim reads it (Lua's `tonumber`, then
/// `limit_value` in move_to_active.lua: a whole number from 1 to 2^53); one that is not (a
/// corrupt record) is ignored, as the claim ignores it: said in `bad`, with what it reads as.
fn parse_field(
    field: &str,
    v: Option<String>,
    read_as: &str,
    bad: &mut Vec<String>,
) -> Option<u64> {
    let s = v?;
    let n = stored_limit(&s);
    if n.is_none() {
        bad.push(format!(
            "field {field} is {:?}, not a whole number from 1 to 2^53: {read_as}",
            crate::text::clip(&s, 40)
        ));
    }
    n
}

/// A stored limit as the claim reads it (Lua's `tonumber`, then `limit_value` in
/// move_to_active.lua): a whole number from 1 to 2^53, else `None`.
pub(crate) fn stored_limit(s: &str) -> Option<u64> {
    lua_number(s)
        .filter(|n| (1.0..=STORED_MOST).contains(n) && n.fract() == 0.0)
        .map(|n| n as u64)
}

/// The largest stored limit the claim takes (2^53, what the limits allow).
const STORED_MOST: f64 = 9_007_199_254_740_992.0;

/// `s` as Lua 5.1's `tonumber` reads it: a decimal (exponent, fraction, spaces around) or a
/// `0x` hexadecimal number.
fn lua_number(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok().map(|n| n as f64),
        None => t.parse().ok(),
    }
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
        let mut bad = Vec::new();
        assert_eq!(
            parse_field("rate_max", Some("10".into()), "-", &mut bad),
            Some(10)
        );
        assert_eq!(parse_field("conc", None, "-", &mut bad), None);
        assert!(bad.is_empty());
        for v in ["x", "0", "-5", "1e400", "1.5", "inf", "nan", "1e16"] {
            assert_eq!(
                parse_field("conc", Some(v.into()), "no limit", &mut bad),
                None
            );
        }
        assert_eq!(bad.len(), 8);
        assert_eq!(
            bad[0],
            "field conc is \"x\", not a whole number from 1 to 2^53: no limit"
        );
        // as Lua reads them
        for (v, n) in [("1e3", 1000), (" 5 ", 5), ("5.0", 5), ("0x10", 16)] {
            assert_eq!(
                parse_field("conc", Some(v.into()), "-", &mut bad),
                Some(n),
                "{v}"
            );
        }
    }
}
