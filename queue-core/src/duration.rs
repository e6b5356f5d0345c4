//! One way to read durations everywhere: `500ms`, `10s`, `5m`, `1h`, `2d`, and combinations
//! such as `1m30s`. A bare number is refused: a unit is always required.

use std::time::Duration;

use crate::error::{Error, Result};

/// Longest duration a user may give anywhere (delays, timeouts, backoffs, retention ages,
/// `--older-than`, TTLs): 3650 days. Longer values are refused rather than wrapped or
/// saturated, so `--older-than 200000000000d` is an error, never "everything".
pub const MAX_DURATION: Duration = Duration::from_millis(MAX_DURATION_MS);
/// [`MAX_DURATION`] in milliseconds.
pub const MAX_DURATION_MS: u64 = 3650 * 86_400_000;

/// `d` in whole milliseconds, saturated (never truncated) at `u64::MAX`: a value past
/// [`MAX_DURATION`] stays past it, for the range check to refuse.
pub fn saturating_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Checks a duration given in milliseconds against [`MAX_DURATION`], naming `what`.
pub fn check_ms(what: &'static str, ms: u64) -> Result<u64> {
    if ms > MAX_DURATION_MS {
        return Err(Error::invalid(
            what,
            format!("{ms}ms: at most {MAX_DURATION_MS}ms (3650d)"),
        ));
    }
    Ok(ms)
}

/// A duration rounded for tables and pages, to its largest unit: `950ms`, `12.3s`, `3m`,
/// `2h`, `4d`.
pub fn short_duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m", ms / 60_000),
        3_600_000..=86_399_999 => format!("{}h", ms / 3_600_000),
        _ => format!("{}d", ms / 86_400_000),
    }
}

/// `12.3s ago` / `in 3m` for a time in ms since the epoch, from this machine's clock.
pub fn relative(at_ms: u64) -> String {
    let now = crate::clock::now_ms();
    if at_ms <= now {
        format!("{} ago", short_duration(now - at_ms))
    } else {
        format!("in {}", short_duration(at_ms - now))
    }
}

/// Parses a human duration such as `500ms`, `10s`, `1h`, `1m30s`, or a bare `0` (zero in
/// any unit); at most [`MAX_DURATION`].
pub fn parse_duration(input: &str) -> Result<Duration> {
    let bad = || Error::InvalidDuration(input.to_string());
    let s = input.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u128 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = total
            .checked_add(n.checked_mul(unit_ms).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if total > u128::from(MAX_DURATION_MS) {
        return Err(Error::DurationTooLong(input.to_string()));
    }
    Ok(Duration::from_millis(total as u64))
}

/// Formats a duration the way [`parse_duration`] reads it (`1500ms` → `1.5s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = d.as_secs_f64();
        if ms % 1_000 == 0 {
            format!("{}s", ms / 1_000)
        } else {
            format!("{s:.1}s")
        }
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_durations_keep_one_unit() {
        assert_eq!(short_duration(500), "500ms");
        assert_eq!(short_duration(10_500), "10.5s");
        assert_eq!(short_duration(3_600_000), "1h");
        assert_eq!(short_duration(3 * 86_400_000), "3d");
    }

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration(" 0s ").unwrap(), Duration::ZERO);
        // zero needs no unit
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn refuses_durations_past_the_maximum() {
        assert_eq!(parse_duration("3650d").unwrap(), MAX_DURATION);
        for long in [
            "3651d",
            "200000000000d",
            "9223372036854775808ms",
            "99999999999999999999999h",
        ] {
            let err = parse_duration(long).unwrap_err().to_string();
            assert!(err.contains(long) && err.contains("3650d"), "{err}");
        }
        assert!(check_ms("delay", MAX_DURATION_MS + 1).is_err());
    }

    #[test]
    fn refuses_bad_input_naming_it() {
        for bad in [
            "",
            "10",
            "10parsecs",
            "s",
            "-1s",
            "1.5s",
            "10 s",
            "99999999999999999999d",
        ] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for ms in [0u64, 5, 999, 1_000, 1_500, 60_000, 90_000, 3_600_000] {
            let d = Duration::from_millis(ms);
            let text = format_duration(d);
            if !text.contains('.') {
                assert_eq!(parse_duration(&text).unwrap(), d, "{text}");
            }
        }
    }
}
