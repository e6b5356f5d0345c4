//! Integers a JSON text holds that would not come back as given. `serde_json` (as most JSON
//! readers) reads an integer outside the 64-bit range as a float: `123456789012345678901234567890`
//! would be stored and handed to the handler as `1.2345678901234568e+29`. Job data, options
//! and request bodies with one are refused, naming it, rather than changed without a word.

use super::text::clip;

/// The first integer of JSON text `text` outside the range of `i64` and `u64`, if any
/// (numbers inside strings are not numbers; fractions and exponents are floats by intent).
pub fn inexact_integer(text: &[u8]) -> Option<String> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                // past the string, its escapes included
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len()
                    && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = String::from_utf8_lossy(&text[start..i]);
                let integer = !token.contains(['.', 'e', 'E']);
                if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                    return Some(token.into_owned());
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Why JSON text `text` cannot be taken as given, if it holds an integer outside 64 bits.
pub fn check(text: &[u8]) -> Result<(), String> {
    match inexact_integer(text) {
        None => Ok(()),
        Some(n) => Err(format!(
            "the number {} is outside the range of 64-bit integers, which would change it \
             (to a rounded float): send it as a string",
            clip(&n, 40)
        )),
    }
}

/// JSON text `text` read as a value, or why not: `not valid JSON: …`, or an integer it holds
/// that would not come back as given ([`check`]).
pub fn parse(text: &str) -> Result<serde_json::Value, String> {
    let value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    check(text.as_bytes())?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_integers_past_64_bits_outside_strings_only() {
        for ok in [
            r#"{"a":1,"b":-9223372036854775808,"c":18446744073709551615}"#,
            r#"{"f":0.1000000000000000055511151231257827,"e":1e300,"s":"123456789012345678901234567890"}"#,
            r#"["\"123456789012345678901234567890\\", 2]"#,
            "",
        ] {
            assert_eq!(inexact_integer(ok.as_bytes()), None, "{ok}");
        }
        for (bad, n) in [
            (
                r#"{"n":123456789012345678901234567890}"#,
                "123456789012345678901234567890",
            ),
            (r#"[18446744073709551616]"#, "18446744073709551616"),
            (
                r#"{"x":"a\"b","m":-9223372036854775809}"#,
                "-9223372036854775809",
            ),
        ] {
            assert_eq!(inexact_integer(bad.as_bytes()).as_deref(), Some(n), "{bad}");
        }
        let e = check(br#"{"n":123456789012345678901234567890}"#).unwrap_err();
        assert!(e.contains("123456789012345678901234567890"), "{e}");
    }
}
