//! Text shown to people: the CLI's tables, the dashboard's pages, error messages that quote
//! input.

/// `s` with its control characters (newline, ESC, NUL …) escaped as `\n`, `\u{1b}` …, so
/// a value from a user (a job name, a handler's error) cannot forge or break log lines.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_unprintable) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unprintable(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Control characters, and the invisible ones that reorder or hide text (bidirectional
/// overrides and isolates, zero-width marks): what a value from a user must not carry into
/// a log line or a terminal.
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A usage error as clap renders it (`error: …`, then lines of detail, a blank line, a
/// usage line and a hint to try `--help`) made one line: the error and its detail, the rest
/// dropped. The binaries print their usage errors so.
pub fn one_line_usage_error(rendered: &str) -> String {
    let error = rendered.split("\n\n").next().unwrap_or(rendered);
    error.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first line of `s`, at most `max` characters (an ellipsis when cut). Not escaped.
pub fn clip(s: &str, max: usize) -> String {
    let one_line = s.lines().next().unwrap_or("");
    if one_line.chars().count() <= max && !s.contains('\n') {
        return one_line.to_string();
    }
    let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_are_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  <QUEUE>\n\nUsage: jobq add <QUEUE> <NAME>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line_usage_error(rendered),
            "error: the following required arguments were not provided: <QUEUE>"
        );
        assert_eq!(
            one_line_usage_error("error: invalid value '-5s' for '--delay <DURATION>': \"-5s\"\n\nFor more information, try '--help'.\n"),
            "error: invalid value '-5s' for '--delay <DURATION>': \"-5s\""
        );
    }

    #[test]
    fn printable_escapes_control_characters_only() {
        assert_eq!(printable("video.transcode"), "video.transcode");
        assert_eq!(printable("a\nb\u{1b}[31m\0é"), "a\\nb\\u{1b}[31m\\u{0}é");
        assert_eq!(printable("ab\u{202e}cd"), "ab\\u{202e}cd");
    }
}
