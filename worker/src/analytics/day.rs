//! UTC calendar days as `YYYY-MM-DD`, the unit analytics are kept in.

use queue_core::internal::clock::{self, utc_day};

/// The UTC day of a Unix timestamp in milliseconds.
pub fn day_of(ms: i64) -> String {
    utc_day(ms)
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    clock::now_ms() as i64
}

/// Checks a `YYYY-MM-DD` day: a real calendar date, zero-padded.
pub fn parse_day(text: &str) -> Option<(i64, u32, u32)> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = &text[r];
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days_in_month)
        .contains(&d)
        .then_some((i64::from(y), m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_of_known_instants() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(86_399_999), "1970-01-01");
        assert_eq!(day_of(86_400_000), "1970-01-02");
        // 2024-02-29T12:00:00Z
        assert_eq!(day_of(1_709_208_000_000), "2024-02-29");
        // 2026-11-22T23:59:59.999Z
        assert_eq!(day_of(1_795_391_999_999), "2026-11-22");
        assert_eq!(day_of(-1), "1969-12-31");
    }

    #[test]
    fn parses_only_real_days() {
        assert_eq!(parse_day("2026-11-22"), Some((2026, 11, 22)));
        assert_eq!(parse_day("2024-02-29"), Some((2024, 2, 29)));
        assert!(parse_day("2023-02-29").is_none());
        assert!(parse_day("2026-13-01").is_none());
        assert!(parse_day("2026-1-01").is_none());
        assert!(parse_day("2026-01-+1").is_none());
        assert!(parse_day("yesterday").is_none());
    }
}
