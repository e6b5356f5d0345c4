//! W3C trace context across the enqueue → run hop (OpenTelemetry).
//!
//! An add records the producer's trace context in the job as a W3C `traceparent`
//! (`00-<trace id>-<parent span id>-<flags>`): the one given in
//! [`JobOptions::traceparent`](crate::JobOptions::traceparent) (the CLI's `TRACEPARENT`, the
//! dashboard's `traceparent` header), or else the caller's: its current `tracing` span when
//! a [`tracing-opentelemetry`](tracing_opentelemetry) layer gives that span an
//! OpenTelemetry context, or the current OpenTelemetry context. The job hash keeps it in a
//! field `tp` of its own, written only when there is one: an add without trace context does
//! no extra work and stores nothing more. A job reads it back as
//! [`JobInfo::traceparent`](crate::JobInfo::traceparent).
//!
//! The worker runs each attempt in a span, `jobq.attempt` (target `jobq`, level INFO), whose
//! OpenTelemetry parent is the stored context, with the job's queue, id, name and attempt as
//! attributes (see [`AttemptSpans`]). Whether the process has a tracing-opentelemetry layer
//! is found out by the first attempt: without one, attempts get no span and their trace
//! context is never read, so tracing costs nothing when it is off. This crate exports
//! nothing itself: the `jobq-worker` binary exports over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; an embedding program installs its own layer.

use std::sync::atomic::{AtomicU8, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::{OpenTelemetrySpanExt, SetParentError};

use crate::error::{Error, Result};

/// The environment variable `jobq add` and `jobq add-bulk` take a traceparent from.
pub const TRACEPARENT_ENV: &str = "TRACEPARENT";

/// The HTTP header the dashboard's enqueue routes take a traceparent from.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Length of a version-00 traceparent: `00-` + 32 + `-` + 16 + `-` + 2.
const LEN: usize = 55;

/// What a traceparent looks like, for error messages.
const FORM: &str = "use 00-<trace id: 32 hex digits>-<parent id: 16 hex digits>-<flags: 2 hex \
                    digits>, lower case, ids not all zero";

/// Checks a W3C `traceparent` and returns it in the version-00 form jobq stores
/// (surrounding spaces dropped). A later version's value is read as the W3C spec says (its
/// first four fields, then `-` or the end) and stored as version 00. Anything else is an
/// [`Error::Invalid`] naming the value and the rule it breaks.
///
/// ```
/// use queue_core::trace::parse_traceparent;
///
/// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// assert_eq!(parse_traceparent(tp).unwrap(), tp);
/// let e = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")
///     .unwrap_err();
/// assert!(e.to_string().contains("parent id is all zero"), "{e}");
/// ```
pub fn parse_traceparent(value: &str) -> Result<String> {
    let tp = value.trim_matches(|c: char| c == ' ' || c == '\t');
    let bad = |why: &str| {
        Error::invalid(
            "traceparent",
            format!("{:?}: {why}; {FORM}", crate::text::clip(tp, 80)),
        )
    };
    let b = tp.as_bytes();
    if b.len() < LEN {
        return Err(bad(&format!("{} characters, not 55", tp.chars().count())));
    }
    // before any slicing: a multi-byte character would put a field boundary inside it
    if !tp.is_ascii() {
        return Err(bad("not ASCII"));
    }
    let (version, trace_id, span_id, flags) = (&tp[..2], &tp[3..35], &tp[36..52], &tp[53..55]);
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return Err(bad("fields are not separated by '-' at 3, 36 and 53"));
    }
    if !is_hex(version) {
        return Err(bad("the version is not 2 lower-case hex digits"));
    }
    if version == "ff" {
        return Err(bad("version ff is invalid"));
    }
    // version 00 is exactly 55 characters; a later one may add fields after a '-'
    if b.len() > LEN && (version == "00" || b[LEN] != b'-') {
        return Err(bad(&format!("{} characters, not 55", tp.chars().count())));
    }
    if !is_hex(trace_id) {
        return Err(bad("the trace id is not 32 lower-case hex digits"));
    }
    if trace_id.bytes().all(|c| c == b'0') {
        return Err(bad("the trace id is all zero"));
    }
    if !is_hex(span_id) {
        return Err(bad("the parent id is not 16 lower-case hex digits"));
    }
    if span_id.bytes().all(|c| c == b'0') {
        return Err(bad("the parent id is all zero"));
    }
    if !is_hex(flags) {
        return Err(bad("the flags are not 2 lower-case hex digits"));
    }
    if version == "00" {
        return Ok(tp.to_string());
    }
    Ok(format!("00-{trace_id}-{span_id}-{flags}"))
}

/// A checked traceparent in the form the job hash keeps (see [`parse_traceparent`]): a
/// version-00 one as is, any other (a later version's extra fields, surrounding spaces)
/// rewritten, so that what is stored is 55 bytes whatever the caller gave.
pub(crate) fn stored_form(tp: &str) -> std::borrow::Cow<'_, str> {
    if tp.len() == LEN && tp.starts_with("00-") {
        return std::borrow::Cow::Borrowed(tp);
    }
    // the add checked it; were it bad, it is kept as given (never reached)
    parse_traceparent(tp).map_or(std::borrow::Cow::Borrowed(tp), std::borrow::Cow::Owned)
}

/// Lower-case hex digits only (the W3C spec refuses upper case).
fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// The caller's trace context as a traceparent: its current `tracing` span's, when a
/// tracing-opentelemetry layer gave that span an OpenTelemetry context, else the current
/// OpenTelemetry context's. None when neither holds a valid span context.
pub fn current_traceparent() -> Option<String> {
    let cx = Span::current().context();
    let from_span = format_span_context(cx.span().span_context());
    from_span.or_else(|| Context::map_current(|cx| format_span_context(cx.span().span_context())))
}

fn format_span_context(sc: &SpanContext) -> Option<String> {
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Gives every job of an add that names no traceparent (each job's `traceparent` option,
/// in `slots`) the caller's ([`current_traceparent`]), looked up once per add and only when
/// some job needs it.
pub(crate) fn inherit<'a>(slots: impl IntoIterator<Item = &'a mut Option<String>>) {
    let mut caller: Option<Option<String>> = None;
    for slot in slots {
        if slot.is_some() {
            continue;
        }
        match caller.get_or_insert_with(current_traceparent) {
            Some(tp) => *slot = Some(tp.clone()),
            // no trace context here: nothing to give the rest either
            None => return,
        }
    }
}

/// The OpenTelemetry context whose remote parent is the stored `traceparent`; None (and a
/// debug line) when it does not read as one.
pub(crate) fn parent_context(traceparent: &str) -> Option<Context> {
    let read = || -> Option<SpanContext> {
        let tp = parse_traceparent(traceparent).ok()?;
        Some(SpanContext::new(
            TraceId::from_hex(&tp[3..35]).ok()?,
            SpanId::from_hex(&tp[36..52]).ok()?,
            TraceFlags::new(u8::from_str_radix(&tp[53..55], 16).ok()?),
            true,
            TraceState::default(),
        ))
    };
    match read() {
        Some(sc) => Some(Context::new().with_remote_span_context(sc)),
        None => {
            tracing::debug!(
                traceparent = %crate::text::clip(&crate::text::printable(traceparent), 100),
                "stored traceparent does not read: the attempt starts a trace of its own"
            );
            None
        }
    }
}

/// Whether a worker's attempts get spans: found out by its first attempt, whose span is
/// kept only when a tracing-opentelemetry layer takes it (its parent can be set). A worker
/// without one pays for that one span, then never makes another nor reads a job's stored
/// trace context.
#[derive(Debug, Default)]
pub(crate) struct AttemptSpans(AtomicU8);

const UNKNOWN: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

impl AttemptSpans {
    /// Whether attempts may get spans, so that claimed jobs' trace context is worth reading
    /// (true until the first attempt has found out).
    pub(crate) fn wanted(&self) -> bool {
        self.0.load(Ordering::Relaxed) != OFF
    }

    /// The span of one attempt: a child of the job's stored `traceparent` (a trace of its
    /// own without one), or [`Span::none`] when attempts get no spans.
    pub(crate) fn attempt(
        &self,
        queue: &str,
        id: &str,
        name: &str,
        attempt: u32,
        traceparent: Option<&str>,
    ) -> Span {
        if self.0.load(Ordering::Relaxed) == OFF {
            return Span::none();
        }
        let name = crate::text::printable(name);
        let span = tracing::info_span!(
            target: "jobq",
            "jobq.attempt",
            otel.name = %format_args!("process {queue}"),
            otel.kind = "consumer",
            otel.status_code = Empty,
            otel.status_description = Empty,
            messaging.system = "jobq",
            messaging.operation.type = "process",
            messaging.destination.name = queue,
            messaging.message.id = id,
            jobq.queue = queue,
            jobq.job_id = id,
            jobq.job_name = %name,
            jobq.attempt = i64::from(attempt),
            jobq.outcome = Empty,
        );
        let parent = traceparent.and_then(parent_context).unwrap_or_default();
        match span.set_parent(parent) {
            Ok(()) => {
                self.0.store(ON, Ordering::Relaxed);
                span
            }
            // a span just made has not started: cannot happen
            Err(SetParentError::AlreadyStarted) => span,
            // no tracing-opentelemetry layer, or spans at this level filtered out
            Err(_) => {
                if self.0.swap(OFF, Ordering::Relaxed) == UNKNOWN {
                    tracing::debug!("no OpenTelemetry layer: job attempts run without spans");
                }
                Span::none()
            }
        }
    }
}

/// Records how an attempt ended on its span: `jobq.outcome` (`completed`, `failed`,
/// `snoozed`, `cancelled`, `abandoned`), and an error status with the message when it failed.
pub(crate) fn record_outcome(span: &Span, outcome: &'static str, error: Option<&str>) {
    if span.is_none() {
        return;
    }
    span.record("jobq.outcome", outcome);
    if let Some(message) = error {
        span.record("otel.status_code", "error");
        span.record("otel.status_description", message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn good_traceparents_read_and_later_versions_become_00() {
        assert_eq!(parse_traceparent(TP).unwrap(), TP);
        assert_eq!(parse_traceparent(&format!(" {TP}\t")).unwrap(), TP);
        let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
        assert_eq!(
            parse_traceparent(v1).unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
        let cx = parent_context(TP).unwrap();
        let sc = cx.span().span_context().clone();
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(sc.trace_id().to_string(), &TP[3..35]);
        assert_eq!(sc.span_id().to_string(), &TP[36..52]);
    }

    #[test]
    fn bad_traceparents_are_refused_naming_value_and_rule() {
        for (bad, rule) in [
            ("", "0 characters"),
            ("garbage", "7 characters"),
            (&format!("{TP}-x") as &str, "57 characters"),
            (&TP.replace("-00f", "_00f"), "separated"),
            (&TP.replacen("00", "ff", 1), "version ff"),
            (&TP.replacen("00", "0g", 1), "version is not"),
            (&TP.replace("4bf9", "4BF9"), "trace id is not"),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "trace id is all zero",
            ),
            (&TP.replace("00f067aa", "00f067zz"), "parent id is not"),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "parent id is all zero",
            ),
            (&TP.replace("-01", "-1x"), "flags"),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00x",
                "56 characters",
            ),
        ] {
            let e = parse_traceparent(bad).unwrap_err().to_string();
            assert!(e.contains("traceparent"), "{bad}: {e}");
            assert!(e.contains(rule), "{bad}: {e}");
            assert!(
                e.contains(&format!("{:?}", crate::text::clip(bad, 80))),
                "{e}"
            );
            assert!(parent_context(bad).is_none());
        }
    }

    #[test]
    fn non_ascii_traceparents_are_refused_not_a_panic() {
        // a multi-byte character across a field boundary: slicing there would panic (the
        // CLI's TRACEPARENT, or a stored tp read back by the worker's attempt)
        for bad in [
            format!("0é{}", &TP[3..]),
            format!("00-4bf92f3577b34da6a3ce929d0e0e473é{}", &TP[35..]),
            format!("{}é{}", &TP[..51], &TP[53..]),
            format!("{}é", &TP[..54]),
            format!("01{}-é", &TP[2..]),
            "é".repeat(40),
        ] {
            let e = parse_traceparent(&bad).unwrap_err().to_string();
            assert!(e.contains("traceparent"), "{bad}: {e}");
            assert!(parent_context(&bad).is_none());
        }
    }

    #[test]
    fn no_subscriber_means_no_caller_context_and_no_spans() {
        assert_eq!(current_traceparent(), None);
        let mut slots = [None, Some(TP.to_string())];
        inherit(slots.iter_mut());
        assert_eq!(slots[0], None);
        assert_eq!(slots[1].as_deref(), Some(TP));
        let spans = AttemptSpans::default();
        assert!(spans.wanted());
        assert!(spans.attempt("q", "1", "n", 1, Some(TP)).is_none());
        assert!(!spans.wanted(), "found out once: off");
    }
}
