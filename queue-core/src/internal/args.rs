//! Parsers of command-line values shared by the binaries (`jobq`, `jobq-worker`,
//! `jobq-dashboard`), for clap's `value_parser`: each error names the value and the range,
//! and nothing wraps or saturates.

use std::ops::RangeInclusive;
use std::time::Duration;

/// A duration from 0 to 3650d ([`crate::parse_duration`]'s range); a negative one (given
/// as `--delay=-5s` or, with clap's `allow_hyphen_values`, `--delay -5s`) is named as such.
pub fn duration(s: &str) -> Result<Duration, String> {
    if s.trim_start().starts_with('-') {
        return Err(format!("{s:?}: a duration cannot be negative"));
    }
    crate::parse_duration(s).map_err(|e| e.to_string())
}

/// A duration of at least `min`.
pub fn duration_at_least(s: &str, min: Duration) -> Result<Duration, String> {
    match duration(s)? {
        d if d < min => Err(format!(
            "{s:?}: use at least {}",
            crate::format_duration(min)
        )),
        d => Ok(d),
    }
}

/// A whole number in `range`, or a message naming the value and the range. Parsed as i128
/// first, so a huge or negative value is reported as out of range, not as "invalid digit"
/// or "too large for the target type".
pub fn ranged<T: TryFrom<i128>>(s: &str, range: RangeInclusive<i128>) -> Result<T, String> {
    let bad = || {
        format!(
            "{s:?}: use a whole number from {} to {}",
            range.start(),
            range.end()
        )
    };
    match s.trim().parse::<i128>() {
        Ok(n) if range.contains(&n) => T::try_from(n).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// A rate limit as typed: `MAX/WINDOW` (`jobq limits --rate`, the dashboard's limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Starts per window.
    pub max: u64,
    /// The window.
    pub window: Duration,
}

/// Most starts a rate window takes (queue-core keeps counts exact as Lua doubles).
const MAX_RATE: i128 = 1 << 53;

/// `MAX/WINDOW`: 1 to 2^53 starts per 1ms to 365d, e.g. `100/1s`.
pub fn rate(s: &str) -> Result<Rate, String> {
    let Some((max, window)) = s.split_once('/') else {
        return Err(format!("{s:?}: use MAX/WINDOW, e.g. 100/1s"));
    };
    let max = ranged(max, 1..=MAX_RATE).map_err(|e| format!("{s:?}: MAX {e}"))?;
    let window = duration(window).map_err(|e| format!("{s:?}: WINDOW {e}"))?;
    if window < Duration::from_millis(1) {
        return Err(format!("{s:?}: WINDOW must be at least 1ms"));
    }
    if window > crate::limits::MAX_RATE_WINDOW {
        return Err(format!("{s:?}: WINDOW must be at most 365d"));
    }
    Ok(Rate { max, window })
}

/// A concurrency cap: 1 to 4294967295.
pub fn concurrency(s: &str) -> Result<u32, String> {
    ranged(s, 1..=i128::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_out_of_range_are_named_with_the_range() {
        assert_eq!(ranged::<u32>("7", 1..=10), Ok(7));
        for bad in ["0", "-1", "99999999999999999999999999", "x", "1.5"] {
            let e = ranged::<u32>(bad, 1..=10).unwrap_err();
            assert!(e.contains(bad) && e.contains("1 to 10"), "{e}");
        }
        assert!(duration("-5s").unwrap_err().contains("negative"));
        assert!(duration("3651d").unwrap_err().contains("3650d"));
        assert!(duration_at_least("50ms", Duration::from_millis(100))
            .unwrap_err()
            .contains("100ms"));
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rates_name_the_bad_part() {
        assert_eq!(
            rate("10/1m"),
            Ok(Rate {
                max: 10,
                window: Duration::from_secs(60)
            })
        );
        for (bad, needle) in [
            ("10", "MAX/WINDOW"),
            ("0/1s", "MAX"),
            ("9007199254740993/1s", "MAX"),
            ("5/0ms", "at least 1ms"),
            ("5/366d", "at most 365d"),
            ("5/-1s", "negative"),
        ] {
            let e = rate(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains(needle), "{bad}: {e}");
        }
        assert!(concurrency("0").unwrap_err().contains("4294967295"));
    }
}
