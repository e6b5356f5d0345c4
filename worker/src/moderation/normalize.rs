//! Text normalisation before classification and hashing: the same message written with
//! different spacing or case gets the same hash, and so the same cached verdict.

use crate::digest::sha256_hex;

/// Trims, collapses runs of whitespace to one space and drops control characters. Case is
/// kept: shouting is one of the things classified.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| !c.is_control()));
    }
    out
}

/// Lower-cased, with common look-alike substitutions undone (`fr33` → `free`, `$` → `s`),
/// for matching word lists.
pub fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '0' => 'o',
            '1' | '!' => 'i',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' => 't',
            c => c,
        })
        .collect()
}

/// Hex SHA-256 of the normalised text: the cache key of its verdict.
pub fn text_hash(normalized: &str) -> String {
    sha256_hex(normalized.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_does_not_change_the_hash() {
        let a = normalize("  Hello\t\tworld \n");
        assert_eq!(a, "Hello world");
        assert_eq!(text_hash(&a), text_hash(&normalize("Hello world")));
        assert_ne!(text_hash(&a), text_hash("hello world"));
        assert_eq!(
            text_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn folds_look_alikes() {
        assert_eq!(fold("FR33 M0N3Y"), "free money");
        assert_eq!(fold("$h1t"), "shit");
    }
}
