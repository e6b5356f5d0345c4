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
    fn printable_escapes_control_characters_only() {
        assert_eq!(printable("video.transcode"), "video.transcode");
        assert_eq!(printable("a\nb\u{1b}[31m\0é"), "a\\nb\\u{1b}[31m\\u{0}é");
        assert_eq!(printable("ab\u{202e}cd"), "ab\\u{202e}cd");
    }
}
