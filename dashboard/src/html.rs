//! Values formatted for the HTML pages: links, times, sizes. Escaping is not here: the pages
//! are `maud` templates, which escape every value spliced into them. A value from a user or a
//! job (a queue name, a job id) that goes into a link goes through [`url_component`] first,
//! and the link is then escaped as an attribute like any other value.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What [`url_component`] encodes: everything but the unreserved characters of RFC 3986.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` percent-encoded for one path segment or query value: everything but the unreserved
/// characters of RFC 3986 (a job id may contain `/`, `?` or `#`).
pub fn url_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Link to a queue's page.
pub fn queue_href(queue: &str) -> String {
    format!("/queues/{}", url_component(queue))
}

/// Link to a job's page.
pub fn job_href(queue: &str, id: &str) -> String {
    format!(
        "/queues/{}/jobs/{}",
        url_component(queue),
        url_component(id)
    )
}

/// Link to a queue's schedules page.
pub fn schedules_href(queue: &str) -> String {
    format!("{}/schedules", queue_href(queue))
}

/// Link to a queue's limits page.
pub fn limits_href(queue: &str) -> String {
    format!("{}/limits", queue_href(queue))
}

/// A JSON value pretty-printed (for `<pre>`).
pub fn pretty_json(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Milliseconds since the epoch as `2026-08-05 14:03:07.123 UTC`.
pub fn utc(ms: u64) -> String {
    queue_core::internal::clock::utc_time(ms)
}

/// A size in bytes as `512 B`, `1.5 KiB`, `3.2 MiB`, `1.1 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

pub use queue_core::duration::{relative, short_duration};

pub use queue_core::internal::text::clip;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_every_reserved_character() {
        assert_eq!(
            job_href("q.1", "a/b?c#d e"),
            "/queues/q.1/jobs/a%2Fb%3Fc%23d%20e"
        );
        assert_eq!(url_component("é"), "%C3%A9");
        // the unreserved characters stay, every other printable one is encoded
        assert_eq!(url_component("aZ9-._~"), "aZ9-._~");
        assert_eq!(
            url_component("!*'();:@&=+$,/?#[]%\"<> "),
            "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D%25%22%3C%3E%20"
        );
    }

    #[test]
    fn times_read_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(1_709_251_199_999), "2024-02-29 23:59:59.999 UTC");
        assert_eq!(short_duration(1_500), "1.5s");
        assert_eq!(clip("abcdef", 4), "abc…");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
    }
}
