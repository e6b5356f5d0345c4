//! This machine's clock and UTC calendar dates, shared by every crate (schedules, the
//! analytics handlers, the CLI's and the dashboard's time columns). Dates are `chrono`'s.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// Milliseconds since the Unix epoch by this machine's clock (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The UTC instant of a Unix time in ms. Times beyond what `chrono` represents (about
/// 262 000 years either side of the epoch, e.g. a corrupted stored time) are clamped to
/// its bounds rather than failing: they are only ever shown.
pub fn utc_instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// The UTC day of a Unix time in ms, as `YYYY-MM-DD`.
pub fn utc_day(ms: i64) -> String {
    utc_instant(ms).format("%Y-%m-%d").to_string()
}

/// A Unix time in ms as `2026-08-05 14:03:07.123 UTC`.
pub fn utc_time(ms: u64) -> String {
    utc_instant(i64::try_from(ms).unwrap_or(i64::MAX))
        .format("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days() {
        const DAY: i64 = 86_400_000;
        assert_eq!(utc_day(0), "1970-01-01");
        // 2000-02-29 (a leap day of a century divisible by 400) = day 11 016
        assert_eq!(utc_day(11_016 * DAY), "2000-02-29");
        // 2100 is not a leap year: 2100-02-28 is followed by 2100-03-01
        assert_eq!(utc_day(47_540 * DAY), "2100-02-28");
        assert_eq!(utc_day(47_541 * DAY), "2100-03-01");
        assert_eq!(utc_day(2_932_896 * DAY), "9999-12-31");
        // out of chrono's range: clamped, not a panic
        assert!(utc_day(i64::MAX).ends_with("-12-31"));
        assert!(utc_day(i64::MIN).ends_with("-01-01"));
        assert_eq!(utc_day(86_399_999), "1970-01-01");
        // 2024-02-29T12:00:00Z
        assert_eq!(utc_day(1_709_208_000_000), "2024-02-29");
        assert_eq!(utc_day(-1), "1969-12-31");
        assert_eq!(utc_time(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc_time(1_709_208_000_123), "2024-02-29 12:00:00.123 UTC");
        assert_eq!(utc_time(253_402_300_799_999), "9999-12-31 23:59:59.999 UTC");
        assert!(utc_time(u64::MAX).ends_with(" UTC"));
        assert!(now_ms() > 1_700_000_000_000);
    }
}
