//! How results are printed: one JSON object per line with `--json`, aligned tables and
//! labelled fields otherwise. Durations read the way they are typed (`500ms`, `10s`, `1h`).
//!
//! Stored values (job names, data, errors, logs) are whatever producers and handlers put
//! there: in text output every control character in them is escaped ([`plain`]), so a
//! value cannot move the cursor, recolour or retitle the terminal, or fake lines of output.

use std::borrow::Cow;
use std::time::Duration;

use queue_core::{format_duration, ChildOutcome, JobInfo, JobOptions, Retention};
use serde::Serialize;
use serde_json::Value;

/// Prints `value` as one line of JSON.
pub fn json_line<T: Serialize + ?Sized>(value: &T) {
    println!(
        "{}",
        serde_json::to_string(value).expect("CLI output serializes to JSON")
    );
}

/// A plain-text table: a header row and aligned columns; numeric columns align right.
pub struct Table {
    header: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles; a title starting with `>` aligns its column right.
    pub fn new(columns: &[&'static str]) -> Table {
        Table {
            header: columns.iter().map(|c| c.trim_start_matches('>')).collect(),
            right: columns.iter().map(|c| c.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column); control characters in cells are escaped.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| match plain(&c) {
                    Cow::Borrowed(_) => c,
                    Cow::Owned(escaped) => escaped,
                })
                .collect(),
        );
    }

    /// The table as text, one line per row, header first.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    out.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                let last = i + 1 == cells.len();
                if self.right[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if !last {
                        out.push_str(&" ".repeat(pad));
                    }
                }
            }
            out
        };
        let mut text = line(self.header.clone());
        text.push('\n');
        for row in &self.rows {
            text.push_str(&line(row.iter().map(String::as_str).collect()));
            text.push('\n');
        }
        text
    }

    /// Prints the table.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

pub use queue_core::duration::relative;

fn ms(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}

fn retention_text(r: &Retention) -> String {
    match (r.count, r.age_ms) {
        (Some(0), _) => "remove at once".into(),
        (Some(n), Some(a)) => format!("keep {n} for {}", ms(a)),
        (Some(n), None) => format!("keep {n}"),
        (None, Some(a)) => format!("keep for {}", ms(a)),
        (None, None) => "keep".into(),
    }
}

/// Job options in words, e.g. `attempts 3, backoff exp:1s, timeout 30s`.
pub fn opts_text(o: &JobOptions) -> String {
    let mut parts = vec![format!("attempts {}", o.max_attempts())];
    if let Some(b) = &o.backoff {
        parts.push(format!("backoff {b}"));
    }
    if let Some(t) = o.timeout_ms {
        parts.push(format!("timeout {}", ms(t)));
    }
    if o.priority != 0 {
        parts.push(format!("priority {}", o.priority));
    }
    if let Some(r) = &o.remove_on_complete {
        parts.push(format!("on complete: {}", retention_text(r)));
    }
    if let Some(r) = &o.remove_on_fail {
        parts.push(format!("on fail: {}", retention_text(r)));
    }
    if let Some(g) = &o.group {
        parts.push(format!("group {g}"));
    }
    if let Some(p) = o.on_child_failure {
        parts.push(format!("on child failure: {}", p.as_str()));
    }
    parts.join(", ")
}

/// A job as `show --json` prints it: every field of [`JobInfo`] plus `attempts` (made so
/// far) and `max_attempts`.
pub fn job_json(job: &JobInfo) -> Value {
    let mut v = serde_json::to_value(job).expect("job serializes");
    if let Value::Object(map) = &mut v {
        map.insert("attempts".into(), job.attempts_made.into());
        map.insert("max_attempts".into(), job.opts.max_attempts().into());
    }
    v
}

/// `s` with every control character (C0, DEL, C1: what a terminal may act on) and every
/// invisible reordering one written as an escape: `\n`, `\r`, `\t`, or `\u{1b}`;
/// borrowed when there is none (`queue_core::internal::text::printable`).
pub fn plain(s: &str) -> Cow<'_, str> {
    queue_core::internal::text::printable(s)
}

/// A job as `show` prints it for people, with its children (a flow's parent).
pub fn print_job(job: &JobInfo, children: &[ChildOutcome]) {
    let field = |label: &str, value: &str| println!("{:<11}{}", format!("{label}:"), plain(value));
    // multi-line values (a stack trace) print line by line, each escaped
    let lines = |label: &str, value: &str| {
        let mut label = format!("{label}:");
        for line in value.lines() {
            println!("{label:<11}{}", plain(line));
            label.clear();
        }
    };
    field("queue", &job.queue);
    field("id", &job.id);
    field("name", &job.name);
    field("state", job.state.as_str());
    if job.staged {
        field(
            "staged",
            "its flow's add did not finish: not counted nor listed until the workers \
             commit it",
        );
    }
    if let Some(w) = &job.worker {
        field("worker", w);
    }
    if let Some(p) = &job.parent {
        field("parent", &p.to_text());
    }
    if let Some(c) = &job.corrupt {
        field("corrupt", c);
    }
    field(
        "attempts",
        &format!("{} of {}", job.attempts_made, job.opts.max_attempts()),
    );
    field("priority", &job.priority.to_string());
    field("options", &opts_text(&job.opts));
    field("data", &job.data.to_string());
    if let Some(p) = &job.progress {
        field("progress", &p.to_string());
    }
    if let Some(r) = &job.return_value {
        field("result", &r.to_string());
    }
    if let Some(e) = &job.failed_reason {
        field("error", e);
    }
    if let Some(s) = &job.stacktrace {
        lines("trace", s);
    }
    field("created", &relative(job.created_at));
    if let Some(t) = job.started_at {
        field("started", &relative(t));
    }
    if let Some(t) = job.finished_at {
        field("finished", &relative(t));
    }
    if let Some(t) = job.due_at {
        field("due", &relative(t));
    }
    if let Some(tp) = &job.traceparent {
        // (the W3C traceparent; `--json` names it so)
        field("trace ctx", tp);
    }
    if !children.is_empty() {
        let finished = children.iter().filter(|c| c.state.is_finished()).count();
        field(
            "children",
            &format!(
                "{} ({} to finish)",
                children.len(),
                children.len() - finished
            ),
        );
        for line in children_table(children).render().lines() {
            // an empty last cell would leave trailing spaces
            println!("  {}", line.trim_end());
        }
    }
    if job.logs.is_empty() {
        field("logs", "none");
    } else {
        field("logs", &format!("{} line(s)", job.logs.len()));
        for line in &job.logs {
            for part in line.lines() {
                println!("  {}", plain(part));
            }
        }
    }
}

/// A flow parent's children: where each is, its state, and how it ended (clipped).
fn children_table(children: &[ChildOutcome]) -> Table {
    let mut t = Table::new(&["CHILD", "NAME", "STATE", "OUTCOME"]);
    for c in children {
        let outcome = match (&c.return_value, &c.failed_reason) {
            (_, Some(reason)) => clip(reason, 60),
            (Some(value), None) => clip(&value.to_string(), 60),
            (None, None) => String::new(),
        };
        t.row(vec![
            format!("{}/{}", c.queue, c.id),
            c.name.clone(),
            c.state.to_string(),
            outcome,
        ]);
    }
    t
}

/// A cell no wider than `max` characters (ellipsis when cut).
pub use queue_core::internal::text::clip;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["QUEUE", ">WAITING"]);
        t.row(vec!["video".into(), "5".into()]);
        t.row(vec!["a".into(), "12345678".into()]);
        assert_eq!(
            t.render(),
            "QUEUE   WAITING\nvideo         5\na      12345678\n"
        );
    }

    #[test]
    fn control_characters_are_escaped_in_cells() {
        assert!(matches!(plain("plain text é"), Cow::Borrowed(_)));
        assert_eq!(
            plain("a\nb\u{1b}[31mred\u{0}\u{9b}\u{7f}\t"),
            "a\\nb\\u{1b}[31mred\\u{0}\\u{9b}\\u{7f}\\t"
        );
        let mut t = Table::new(&["NAME"]);
        t.row(vec!["evil\u{1b}]0;title\u{7}".into()]);
        assert_eq!(t.render(), "NAME\nevil\\u{1b}]0;title\\u{7}\n");
    }

    #[test]
    fn clip_cuts_long_and_multiline_cells() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdefghijkl", 5), "abcd…");
        assert_eq!(clip("one\ntwo", 10), "one…");
    }
}
