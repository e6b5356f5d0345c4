//! This machine's clock and UTC calendar dates, shared by every crate (schedules, the
//! analytics handlers, the CLI's and the dashboard's time columns). Dates are `chrono`'s.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};

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

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01, clamped
/// like [`utc_instant`]. (Kept for callers that format a date themselves; [`utc_day`] and
/// [`utc_time`] format it.)
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let date = TimeDelta::try_days(z)
        .and_then(|days| epoch.checked_add_signed(days))
        .unwrap_or(if z < 0 {
            NaiveDate::MIN
        } else {
            NaiveDate::MAX
        });
    (i64::from(date.year()), date.month(), date.day())
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
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2000-02-29 (a leap day of a century divisible by 400) = day 11 016
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        // 2100 is not a leap year: 2100-02-28 is followed by 2100-03-01
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
        // out of chrono's range: clamped, not a panic
        assert_eq!(civil_from_days(i64::MAX).1, 12);
        assert_eq!(civil_from_days(i64::MIN).1, 1);
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
