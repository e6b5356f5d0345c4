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
}
