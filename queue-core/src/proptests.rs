//! Property tests of the decoders of outside data (issue 16): job JSON (`jobq add-bulk`
//! lines, the dashboard's add API), durations, Redis URLs, stored job options and stored
//! job hashes. Whatever the input, a decoder returns a value or an error naming it; it
//! never panics and never hangs.
//!
//! 256 cases per property keep the suite fast; `PROPTEST_CASES` raises it for a longer run.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::config::{mask_url, seed_urls, Config};
use crate::duration::{format_duration, parse_duration, MAX_DURATION_MS};
use crate::error::Error;
use crate::internal::job_spec::{parse_job_json, parse_job_value};
use crate::job::{Backoff, BackoffKind, Debounce, Dedup, JobInfo, JobOptions, Retention};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        // no regression files written into the source tree; a failure prints its input
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Object keys: mostly the names the decoders look for, so generated values reach deep.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "name", "data", "opts", "delay", "delayMs", "timeout", "timeoutMs", "priority",
            "attempts", "backoff", "jobId", "job_id", "removeOnComplete", "remove_on_complete",
            "removeOnFail", "remove_on_fail", "type", "jitter", "count", "age", "dedup", "id",
            "ttl",
        ])
        .prop_map(str::to_string),
        1 => ".{0,8}",
    ]
}

/// Strings that look like what the decoders parse (durations, backoffs, numbers), or not.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,22}(ms|s|m|h|d|x)?([0-9]{1,4}(ms|s|m|h|d))?",
        "(fixed|exp|exponential|linear):[0-9]{0,6}(ms|s|h)?(:[0-9.eE+-]{0,6})?",
        "-?[0-9]{1,25}(\\.[0-9]{1,3})?",
        ".{0,24}",
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // floats JSON text carries exactly (the round trips compare values), and extremes
        prop_oneof![
            (any::<i32>(), 0..=4u32).prop_map(|(m, e)| f64::from(m) / f64::from(1u32 << e)),
            prop::sample::select(vec![1e300, -1e-300, -0.0, f64::MAX, f64::MIN_POSITIVE]),
        ]
        .prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A job-shaped object: `name`, `data` and `opts` (with option names) of any values, and
/// sometimes an extra field.
fn job_shaped() -> impl Strategy<Value = Value> {
    (
        prop::option::of(json_value()),
        prop::option::of(json_value()),
        prop::option::of(prop::collection::vec((key(), json_value()), 0..6)),
        prop::option::of((key(), json_value())),
    )
        .prop_map(|(name, data, opts, extra)| {
            let mut o = Map::new();
            if let Some(n) = name {
                o.insert("name".into(), n);
            }
            if let Some(d) = data {
                o.insert("data".into(), d);
            }
            if let Some(opts) = opts {
                o.insert(
                    "opts".into(),
                    Value::Object(opts.into_iter().collect::<Map<_, _>>()),
                );
            }
            if let Some((k, v)) = extra {
                o.insert(k, v);
            }
            Value::Object(o)
        })
}

fn ms() -> impl Strategy<Value = u64> {
    prop_oneof![0..=10_000u64, 0..=MAX_DURATION_MS]
}

fn retention() -> impl Strategy<Value = Retention> {
    (prop::option::of(0..100_000u64), prop::option::of(ms()))
        .prop_map(|(count, age_ms)| Retention { count, age_ms })
}

fn backoff() -> impl Strategy<Value = Backoff> {
    // jitter in eighths: exact in binary, so it survives JSON text unchanged
    (any::<bool>(), ms(), 0..=8u32).prop_map(|(exp, delay_ms, j)| Backoff {
        kind: if exp {
            BackoffKind::Exponential
        } else {
            BackoffKind::Fixed
        },
        delay_ms,
        jitter: f64::from(j) / 8.0,
    })
}

/// Options a user may write in job JSON: a dedup id or a debounce id (`keyed`: which, its
/// id and ttl), not both.
fn valid_opts() -> impl Strategy<Value = JobOptions> {
    (
        prop::option::of(ms()),
        -1_000..=1_000i32,
        prop::option::of(1..=1_000u32),
        prop::option::of(backoff()),
        // (`.` and `..` are refused as job ids: path segments in the API; ids starting with
        // `~` are lean jobs')
        prop::option::of("[!-~]{1,40}".prop_filter("not . or .., nor ~…", |id| {
            id != "." && id != ".." && !id.starts_with('~')
        })),
        prop::option::of(ms().prop_map(|t| t.max(1))),
        prop::option::of(retention()),
        prop::option::of(retention()),
        prop::option::of("[A-Za-z0-9._:-]{1,128}"),
        prop::option::of((any::<bool>(), "[!-~]{1,40}", ms().prop_map(|t| t.max(1)))),
    )
        .prop_map(
            |(
                delay_ms,
                priority,
                attempts,
                backoff,
                job_id,
                timeout_ms,
                roc,
                rof,
                group,
                keyed,
            )| {
                let (dedup, debounce) = match keyed {
                    Some((true, id, ttl_ms)) => (Some(Dedup { id, ttl_ms }), None),
                    Some((false, id, ttl_ms)) => (None, Some(Debounce { id, ttl_ms })),
                    None => (None, None),
                };
                JobOptions {
                    delay_ms,
                    priority,
                    attempts,
                    backoff,
                    job_id,
                    timeout_ms,
                    remove_on_complete: roc,
                    remove_on_fail: rof,
                    dedup,
                    debounce,
                    on_child_failure: None,
                    group,
                    traceparent: None,
                }
            },
        )
}

/// One duration term: a count and its unit (ms per unit).
fn term() -> impl Strategy<Value = (u64, &'static str, u64)> {
    (
        prop_oneof![0..1_000u64, 0..10_000_000u64, 0..1_000_000_000_000u64],
        prop::sample::select(vec![
            ("ms", 1u64),
            ("s", 1_000),
            ("m", 60_000),
            ("h", 3_600_000),
            ("d", 86_400_000),
        ]),
    )
        .prop_map(|(n, (unit, per))| (n, unit, per))
}

/// A password of the characters URLs allow unencoded in it (and `@`, `/`, `,`, which
/// people type anyway). A fixed head keeps it from occurring by chance elsewhere in a URL.
fn password() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!$&'()*+,;=:@/~._%-]{0,12}".prop_map(|tail| format!("Pw9z{tail}"))
}

/// A password as people paste it: `#` and `?` unencoded too.
fn pasted_password() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!$&'()*+,;=:@/~._%#?-]{0,12}".prop_map(|tail| format!("Pw9z{tail}"))
}

/// Redis-URL-shaped text from `schemes` and `pass`: (url, password, scheme); one or more
/// hosts, a path, a query or fragment.
fn url_from(
    schemes: Vec<&'static str>,
    pass: BoxedStrategy<String>,
) -> impl Strategy<Value = (String, Option<String>, String)> {
    (
        prop::sample::select(schemes),
        prop::option::of("[a-z]{0,6}"),
        prop::option::of(pass),
        prop::collection::vec("[a-z0-9.]{1,10}(:[0-9]{1,6})?", 1..4),
        prop::sample::select(vec!["", "/", "/0", "/3", "/x"]),
        prop::sample::select(vec!["", "?protocol=resp3", "#insecure", "?db=2#insecure"]),
        prop::sample::select(vec![",", ", ", ",redis://", ", rediss://"]),
    )
        .prop_map(|(scheme, user, pass, hosts, path, tail, sep)| {
            let userinfo = match (&user, &pass) {
                (None, None) => String::new(),
                (Some(u), None) => format!("{u}@"),
                (u, Some(p)) => format!("{}:{p}@", u.as_deref().unwrap_or("")),
            };
            let url = format!("{scheme}{userinfo}{}{path}{tail}", hosts.join(sep));
            (url, pass, scheme.to_string())
        })
}

/// URLs with a scheme (`http://` too, which is refused) and a well-formed password.
fn url_parts() -> impl Strategy<Value = (String, Option<String>, String)> {
    url_from(
        vec!["redis://", "rediss://", "redis://", "http://"],
        password().boxed(),
    )
}

/// The password is never shown, whatever was typed: `masked` (a masked URL or an error
/// message) of `url` must not hold `pass`.
fn hides(url: &str, pass: &str, masked: &str) -> std::result::Result<(), TestCaseError> {
    prop_assert!(!masked.contains(pass), "{url:?} shown as {masked:?}");
    Ok(())
}

/// The fields of a stored job hash (see job.rs and the scripts), and some it never has.
fn hash_field() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "name", "data", "data:n", "data:2", "data:3", "opts", "opts:n", "opts:2", "att",
            "prio", "ts", "sid", "state", "stalls", "due", "started", "finished", "progress",
            "result", "error", "stack", "run",
        ])
        .prop_map(str::to_string),
        1 => "[a-z:0-9]{1,8}",
    ]
}

/// Values a corrupted field may hold: numbers of every size, JSON, and junk (piece counts
/// stay small here: a huge one has its own test below).
fn hash_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,3}",
        "-?[0-9]{4,25}",
        json_value().prop_map(|v| v.to_string()),
        prop::sample::select(vec![
            "waiting",
            "active",
            "delayed",
            "completed",
            "failed",
            "paused",
            "",
            "nan",
            "1e3",
            "0x10",
            "1.5",
        ])
        .prop_map(str::to_string),
        ".{0,40}",
    ]
}

fn job_hash() -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::hash_map(hash_field(), hash_value(), 0..12).prop_map(|mut h| {
        // `f:n` may be huge only in its own test
        for f in ["data:n", "opts:n"] {
            if let Some(v) = h.get_mut(f) {
                *v = v.chars().take(3).collect();
            }
        }
        h
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn job_json_of_any_text_is_a_job_or_an_error(text in ".{0,200}") {
        let _ = parse_job_json(&text);
    }

    #[test]
    fn job_json_of_any_value_is_a_valid_job_or_an_error(v in prop_oneof![json_value(), job_shaped()]) {
        let text = v.to_string();
        match parse_job_value(v) {
            Ok(job) => {
                prop_assert!(!job.name.is_empty() && job.name.len() <= 256, "{:?}", job.name);
                prop_assert!(job.opts.validate().is_ok(), "{:?}", job.opts);
                // the text form reads the same
                let again = parse_job_json(&text).expect("the value parsed");
                prop_assert_eq!(again.opts, job.opts);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn valid_jobs_round_trip_through_json(
        name in "[ -~]{1,256}",
        data in json_value(),
        opts in valid_opts(),
        delay_as_text in any::<bool>(),
    ) {
        let mut o = serde_json::to_value(&opts).unwrap();
        // a delay given as a duration string reads as the same milliseconds
        if delay_as_text {
            if let Some(d) = opts.delay_ms {
                let text = format_duration(Duration::from_millis(d));
                if parse_duration(&text).ok() == Some(Duration::from_millis(d)) {
                    o["delay"] = json!(text);
                    o.as_object_mut().unwrap().remove("delayMs");
                }
            }
        }
        let line = json!({"name": name, "data": data, "opts": o}).to_string();
        let job = parse_job_json(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        prop_assert_eq!(&job.name, &name);
        prop_assert_eq!(&job.data, &data);
        prop_assert_eq!(&job.opts, &opts);
    }

    #[test]
    fn durations_of_any_text_parse_or_fail_naming_the_text(s in prop_oneof![text(), ".{0,40}"]) {
        match parse_duration(&s) {
            Ok(d) => prop_assert!(d.as_millis() <= u128::from(MAX_DURATION_MS), "{s}: {d:?}"),
            Err(e) => prop_assert!(e.to_string().contains(&format!("{s:?}")), "{s}: {e}"),
        }
    }

    #[test]
    fn durations_add_up_and_past_3650d_are_refused(terms in prop::collection::vec(term(), 1..4)) {
        let text: String = terms.iter().map(|(n, unit, _)| format!("{n}{unit}")).collect();
        let total: u128 = terms.iter().map(|(n, _, per)| u128::from(*n) * u128::from(*per)).sum();
        match parse_duration(&text) {
            Ok(d) => prop_assert_eq!(d.as_millis(), total, "{}", text),
            Err(Error::DurationTooLong(t)) => {
                prop_assert!(total > u128::from(MAX_DURATION_MS), "{}: {} ms refused", text, total);
                prop_assert_eq!(t, text);
            }
            Err(e) => prop_assert!(false, "{}: {}", text, e),
        }
    }

    #[test]
    fn formatted_durations_read_back(ms in prop_oneof![0..120_000u64, 0..=MAX_DURATION_MS], secs in any::<u64>(), nanos in 0..1_000_000_000u32) {
        // any Duration formats without panicking
        let _ = format_duration(Duration::new(secs, nanos));
        let d = Duration::from_millis(ms);
        let text = format_duration(d);
        // `1.5s` is a display form parse_duration does not read; whole units read back,
        // and exactly unless sub-second ms were dropped (`61500ms` shows as `61s`)
        if !text.contains('.') {
            let back = parse_duration(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert!(back <= d && d - back < Duration::from_secs(1), "{} -> {} -> {:?}", ms, text, back);
            if ms < 1_000 || ms % 1_000 == 0 {
                prop_assert_eq!(back, d, "{}", text);
            }
        }
    }

    #[test]
    fn redis_urls_of_any_text_are_taken_or_refused(s in prop_oneof![".{0,60}", url_parts().prop_map(|p| p.0)]) {
        let _ = seed_urls(&s);
        let _ = mask_url(&s);
        if let Ok(cfg) = Config::default().with_redis_url(s.clone()) {
            prop_assert_eq!(cfg.redis_url(), Some(s.as_str()));
            let _ = cfg.masked_url();
        }
    }

    #[test]
    fn masked_urls_and_url_errors_never_show_the_password((url, pass, _) in url_parts()) {
        let Some(pass) = pass else { return Ok(()) };
        hides(&url, &pass, &mask_url(&url))?;
        match Config::default().with_redis_url(url.clone()) {
            Ok(cfg) => hides(&url, &pass, &cfg.masked_url())?,
            Err(e) => hides(&url, &pass, &e.to_string())?,
        }
    }

    // Fails today: mask_url leaves `redis://:se#cret@h` (credentials end at the last `@`
    // before any `#`/`?`, so an unencoded `#` or `?` in a password hides the `@`) and
    // `:secret@h` (no scheme) whole, and Config::with_redis_url puts that in its error.
    #[test]
    fn url_errors_never_show_a_pasted_password(
        (url, pass, _) in url_from(vec!["redis://", "rediss://", ""], pasted_password().boxed())
    ) {
        let Some(pass) = pass else { return Ok(()) };
        match Config::default().with_redis_url(url.clone()) {
            Ok(cfg) => hides(&url, &pass, &cfg.masked_url())?,
            Err(e) => hides(&url, &pass, &e.to_string())?,
        }
    }

    #[test]
    fn seed_urls_keep_the_scheme_and_one_url_stays_whole((url, _, _) in url_parts()) {
        let seeds = seed_urls(&url);
        prop_assert!(!seeds.is_empty());
        if !url.contains(',') {
            prop_assert_eq!(seeds, vec![url.clone()]);
        } else {
            for s in &seeds {
                prop_assert!(s.contains("://"), "{url:?} -> {seeds:?}");
            }
        }
    }

    #[test]
    fn stored_options_of_any_text_read_or_fail(s in prop_oneof![".{0,80}", json_value().prop_map(|v| v.to_string())]) {
        if let Err(e) = JobOptions::from_stored(&s) {
            prop_assert!(matches!(e, Error::Protocol(_)), "{e:?}");
        }
    }

    #[test]
    fn stored_options_round_trip(opts in valid_opts()) {
        let stored = opts.stored().unwrap();
        let back = JobOptions::from_stored(&stored).unwrap();
        let mut expect = opts;
        expect.delay_ms = None;
        expect.job_id = None;
        expect.dedup = None;
        expect.debounce = None;
        expect.priority = 0;
        prop_assert_eq!(back, expect);
    }

    #[test]
    fn a_stored_job_hash_of_any_content_reads_or_fails(h in job_hash(), paused in any::<bool>()) {
        match JobInfo::from_hash("q", "job1", h.clone(), Vec::new(), paused) {
            Ok(info) => prop_assert_eq!(info.id, "job1"),
            // an error names the job or the field it could not read
            Err(e) => {
                let e = e.to_string();
                prop_assert!(
                    ["job1", "state", "options"].iter().any(|w| e.contains(w)),
                    "{:?}: {}", h, e
                );
            }
        }
    }
}

/// `from_hash` on another thread, bounded: Some(result) if it returned within 2 s.
fn from_hash_within(h: HashMap<String, String>) -> Option<crate::error::Result<JobInfo>> {
    let (tx, rx) = mpsc::channel();
    // on a timeout the thread is left spinning; the test fails (and the process ends) anyway
    std::thread::spawn(move || {
        let _ = tx.send(JobInfo::from_hash("q", "job1", h, Vec::new(), false));
    });
    rx.recv_timeout(Duration::from_secs(2)).ok()
}

#[test]
fn a_huge_piece_count_in_a_stored_job_does_not_hang_its_reader() {
    for field in ["data", "opts"] {
        for n in ["18446744073709551615", "4000000000"] {
            let mut h: HashMap<String, String> =
                [("name", "x"), ("sid", "1-0"), ("data", "{}"), ("opts", "")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            h.insert(format!("{field}:n"), n.to_string());
            assert!(
                from_hash_within(h).is_some(),
                "JobInfo::from_hash with {field}:n = {n} did not return within 2 s"
            );
        }
    }
}

/// A spool line shaped like the ones producers write (`spool.rs` `SpoolLine`), with any of
/// its fields replaced by any JSON value or dropped.
fn spool_line() -> impl Strategy<Value = Value> {
    let good = (key(), job_shaped(), 0..u64::MAX / 2).prop_map(|(id, job, at)| {
        let mut line = json!({"prefix": "jobq", "queue": "q", "id": id, "at": at});
        if let (Value::Object(l), Value::Object(j)) = (&mut line, job) {
            for (k, v) in j {
                l.insert(k, v);
            }
        }
        line
    });
    (
        good,
        prop::option::of((
            prop_oneof![
                Just("prefix"),
                Just("queue"),
                Just("id"),
                Just("name"),
                Just("data"),
                Just("opts"),
                Just("at")
            ],
            prop::option::of(json_value()),
        )),
    )
        .prop_map(|(mut line, change)| {
            if let (Value::Object(l), Some((field, value))) = (&mut line, change) {
                match value {
                    Some(v) => l.insert(field.to_string(), v),
                    None => l.remove(field),
                };
            }
            line
        })
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes in a spool file (a torn write, a disk error, an edit by hand) decode to a
    /// job or to an error: never a panic.
    #[test]
    fn spool_lines_of_any_bytes_decode_or_fail(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = crate::producer::decode_spool_line(&bytes, 0);
    }

    /// A spool line with a field changed or dropped decodes only to a job a producer could
    /// have added (valid queue, name and options); a job keeps its spooled id.
    #[test]
    fn spool_lines_decode_only_to_valid_jobs(line in spool_line(), now in 0..u64::MAX / 2) {
        let text = line.to_string();
        if let Ok(((_, queue), job)) = crate::producer::decode_spool_line(text.as_bytes(), now) {
            prop_assert!(crate::validate::validate_queue_name(&queue).is_ok());
            prop_assert!(crate::queue::validate_new_job(&job).is_ok(), "{job:?}");
            prop_assert_eq!(job.opts.job_id.as_deref(), line["id"].as_str());
        }
    }
}
