//! Text shown to people: the CLI's tables, the dashboard's pages, error messages that quote
//! input.

/// The first line of `s`, at most `max` characters (an ellipsis when cut). Not escaped.
pub fn clip(s: &str, max: usize) -> String {
    let one_line = s.lines().next().unwrap_or("");
    if one_line.chars().count() <= max && !s.contains('\n') {
        return one_line.to_string();
    }
    let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}
