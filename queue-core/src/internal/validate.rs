//! Validation of names users type: queue names and key prefixes.

use crate::error::{Error, Result};

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// `.` and `..`: valid characters, but a URL path segment of either is a dot segment that
/// browsers and URL parsers remove (even percent-encoded), so a queue or job of that name
/// could never be opened from the dashboard.
fn is_dots(s: &str) -> bool {
    s == "." || s == ".."
}

/// A queue name is 1–128 characters of `[A-Za-z0-9._-]`.
pub fn validate_queue_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 128 || !name.chars().all(is_name_char) || is_dots(name) {
        return Err(Error::InvalidQueueName(name.to_string()));
    }
    Ok(())
}

/// A key prefix follows the queue-name rule, so it cannot break the `{prefix:queue}` tag.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() || prefix.len() > 64 || !prefix.chars().all(is_name_char) {
        return Err(Error::Config(format!(
            "prefix {prefix:?} is invalid: use 1-64 characters of A-Z a-z 0-9 . _ -"
        )));
    }
    Ok(())
}

/// An id that is part of a key (a dedup or debounce id): 1–256 printable ASCII characters
/// without spaces.
pub fn is_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && id.chars().all(|c| c.is_ascii_graphic())
}

/// A job id given by the user: a key id ([`is_key_id`]) other than `.` and `..` (it is a
/// path segment of the API and the dashboard).
pub fn validate_job_id(id: &str) -> Result<()> {
    if !is_key_id(id) || is_dots(id) {
        return Err(Error::invalid(
            "job id",
            format!("{id:?}: use 1-256 printable ASCII characters without spaces (not . or ..)"),
        ));
    }
    Ok(())
}

/// A job group's key (`opts.group`): 1-128 characters of `A-Z a-z 0-9 . _ : -`. Shown in
/// full by `jobq groups` and used as a metric label, so nothing else is allowed.
pub fn validate_group(group: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if group.is_empty() || group.len() > 128 || !group.chars().all(ok) {
        return Err(Error::invalid(
            "group",
            format!(
                "{:?}: use 1-128 characters of A-Z a-z 0-9 . _ : -",
                group.chars().take(140).collect::<String>()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys() {
        for ok in ["a", "tenant:42", "a.b_c-D9", &"x".repeat(128)] {
            validate_group(ok).unwrap();
        }
        for bad in ["", "a b", "a/b", "{x}", "é", "a\nb", &"x".repeat(129)] {
            let err = validate_group(bad).unwrap_err().to_string();
            assert!(err.contains("group"), "{err}");
            assert!(err.contains(&format!("{:?}", bad)), "{err}");
        }
    }

    #[test]
    fn queue_names() {
        for ok in ["a", "video", "a.b_c-D9", &"x".repeat(128)] {
            validate_queue_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "bad name!",
            "a:b",
            "{x}",
            "é",
            &"x".repeat(129),
        ] {
            let err = validate_queue_name(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn job_ids() {
        validate_job_id("order-42").unwrap();
        assert!(validate_job_id("has space").is_err());
        assert!(validate_job_id("").is_err());
        assert!(validate_job_id(".").is_err());
        assert!(validate_job_id("..").is_err());
        validate_job_id("...").unwrap();
    }
}
