//! The built-in rule classifier: word lists and simple detectors, one score (0–1) per
//! category, no network, microseconds per text.
//!
//! | category | raises it |
//! |---|---|
//! | `profanity` | words from a list, also written with look-alikes (`sh1t`) |
//! | `spam` | links, sales phrases (`buy now`, `click here`), runs of `!!!` or `$$$` |
//! | `pii` | email addresses, phone numbers, card numbers (Luhn-checked) |
//! | `shouting` | mostly capital letters, a character or word repeated over and over |

use std::collections::BTreeMap;

use super::normalize::fold;

/// Score at which a category blocks the text.
pub const BLOCK_AT: f64 = 0.8;
/// Score at which a category flags the text for review.
pub const FLAG_AT: f64 = 0.4;

const STRONG_PROFANITY: &[&str] = &[
    "fuck",
    "fucking",
    "fucker",
    "motherfucker",
    "shit",
    "bullshit",
    "cunt",
    "bitch",
    "asshole",
    "bastard",
    "dickhead",
    "whore",
    "slut",
];
const MILD_PROFANITY: &[&str] = &["damn", "crap", "piss", "dick", "bloody", "arse", "wtf"];
const SPAM_PHRASES: &[&str] = &[
    "buy now",
    "click here",
    "free money",
    "limited time",
    "act now",
    "100% free",
    "make money",
    "earn money",
    "work from home",
    "you have won",
    "you won",
    "winner",
    "risk free",
    "free gift",
    "order now",
    "special offer",
    "cheap pills",
    "viagra",
    "casino",
    "crypto giveaway",
    "double your",
];
const TLDS: &[&str] = &[
    "com", "net", "org", "io", "ru", "cn", "xyz", "biz", "info", "top", "co", "me", "ly", "gg",
];

/// Scores of one text, per category.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Classification {
    /// Category → score in 0–1.
    pub scores: BTreeMap<String, f64>,
    /// What raised the scores (kinds, never the personal data itself).
    pub reasons: Vec<String>,
}

/// Classifies normalised text.
pub fn classify(text: &str) -> Classification {
    let folded = fold(text);
    let mut c = Classification::default();
    let mut add = |category: &str, score: f64, reason: String| {
        let s = c.scores.entry(category.to_string()).or_insert(0.0);
        *s = (*s + score).min(1.0);
        if !c.reasons.contains(&reason) {
            c.reasons.push(reason);
        }
    };
    for category in ["profanity", "spam", "pii", "shouting"] {
        add(category, 0.0, String::new());
    }

    for word in words(&folded) {
        if STRONG_PROFANITY.contains(&word) {
            add("profanity", 0.6, format!("profanity: {word}"));
        } else if MILD_PROFANITY.contains(&word) {
            add("profanity", 0.25, format!("mild profanity: {word}"));
        }
    }

    let lower = text.to_lowercase();
    for token in text.split_whitespace() {
        if is_link(token) {
            add("spam", 0.35, "link".into());
        }
        if is_email(token) {
            add("pii", 0.6, "email address".into());
        }
    }
    for phrase in SPAM_PHRASES {
        if lower.contains(phrase) || folded.contains(phrase) {
            add("spam", 0.3, format!("spam phrase: {phrase}"));
        }
    }
    if text.contains("!!!") {
        add("spam", 0.1, "exclamation run".into());
    }
    if text.contains("$$$") {
        add("spam", 0.2, "dollar run".into());
    }

    for run in digit_runs(text) {
        if (13..=19).contains(&run.digits.len()) && luhn(&run.digits) {
            add("pii", 0.9, "card number".into());
        } else if run.is_phone_like() {
            add("pii", 0.6, "phone number".into());
        }
    }

    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() >= 12 {
        let upper = letters.iter().filter(|c| c.is_uppercase()).count();
        let ratio = upper as f64 / letters.len() as f64;
        if ratio >= 0.7 {
            add("shouting", ratio, "mostly capitals".into());
        }
    }
    if longest_char_run(text) >= 6 {
        add("shouting", 0.4, "repeated character".into());
    }
    if repeated_words(&folded) {
        add("shouting", 0.6, "repeated words".into());
    }
    c.reasons.retain(|r| !r.is_empty());
    c
}

/// `blocked`, `flagged` or `allowed` for a set of scores: any category at [`BLOCK_AT`], or
/// two at [`FLAG_AT`], blocks; one at [`FLAG_AT`] flags.
pub fn decide(scores: &BTreeMap<String, f64>) -> &'static str {
    let high = scores.values().filter(|s| **s >= FLAG_AT).count();
    if scores.values().any(|s| *s >= BLOCK_AT) || high >= 2 {
        "blocked"
    } else if high == 1 {
        "flagged"
    } else {
        "allowed"
    }
}

fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

fn is_link(token: &str) -> bool {
    let t = token.trim_matches(|c: char| !c.is_alphanumeric() && c != '/');
    let lower = t.to_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("www.") {
        return true;
    }
    if t.contains('@') {
        return false;
    }
    // bare domains: name.tld or name.tld/path
    let host = lower.split('/').next().unwrap_or("");
    match host.rsplit_once('.') {
        Some((name, tld)) => {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                && TLDS.contains(&tld)
        }
        None => false,
    }
}

fn is_email(token: &str) -> bool {
    let t = token.trim_matches(|c: char| !c.is_alphanumeric());
    let Some((local, domain)) = t.split_once('@') else {
        return false;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_alphanumeric() || "._%+-".contains(c))
    };
    ok(local) && ok(domain) && domain.contains('.') && !domain.ends_with('.')
}

/// Digits written as one number, possibly in groups (`+1 (555) 123-4567`).
struct DigitRun {
    digits: String,
    /// Digits per group, in order.
    groups: Vec<usize>,
    /// Written with a leading `+` (an international number).
    plus: bool,
}

impl DigitRun {
    /// 9–15 digits written as a phone number is: one block, an international `+…`, or
    /// groups ending in one of three digits or more. Dates, times and lists of small
    /// numbers (`2026-11-22 10`, `10 20 30 40 50`) end in short groups and are not.
    fn is_phone_like(&self) -> bool {
        (9..=15).contains(&self.digits.len())
            && (self.plus || self.groups.len() == 1 || self.groups.last().is_some_and(|g| *g >= 3))
    }
}

/// Runs of digits, allowing the separators people write in phone and card numbers.
fn digit_runs(text: &str) -> Vec<DigitRun> {
    let mut runs = Vec::new();
    let mut run: Option<DigitRun> = None;
    let mut gap = 0;
    let mut prev = ' ';
    for c in text.chars() {
        if c.is_ascii_digit() {
            let r = run.get_or_insert_with(|| DigitRun {
                digits: String::new(),
                groups: Vec::new(),
                plus: prev == '+',
            });
            if gap > 0 || r.groups.is_empty() {
                r.groups.push(0);
            }
            r.digits.push(c);
            *r.groups.last_mut().expect("a group was pushed") += 1;
            gap = 0;
        } else if run.is_some() && " -().+/".contains(c) && gap < 2 {
            gap += 1;
        } else {
            runs.extend(run.take());
            gap = 0;
        }
        prev = c;
    }
    runs.extend(run);
    runs
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

fn longest_char_run(text: &str) -> usize {
    let mut best = 0;
    let mut run = 0;
    let mut prev = None;
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        run = if Some(c) == prev { run + 1 } else { 1 };
        prev = Some(c);
        best = best.max(run);
    }
    best
}

/// The same word four times in a row, or one word making up half of six or more.
fn repeated_words(folded: &str) -> bool {
    let all: Vec<&str> = words(folded).collect();
    let mut run = 1;
    for pair in all.windows(2) {
        run = if pair[0] == pair[1] { run + 1 } else { 1 };
        if run >= 4 {
            return true;
        }
    }
    if all.len() >= 6 {
        let mut counts = BTreeMap::new();
        for w in &all {
            *counts.entry(*w).or_insert(0usize) += 1;
        }
        return counts.values().any(|n| n * 2 >= all.len());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(text: &str) -> &'static str {
        decide(&classify(text).scores)
    }

    #[test]
    fn plain_sentences_are_allowed() {
        for text in [
            "The meeting moved to Thursday at 3pm, see you there.",
            "I loved the ending of this video, thanks for sharing.",
            "Version 2.0 ships in 2026 with 15 new features.",
            "Meet on 2026-11-22 10:30 in room 4.",
            "Scores were 10 20 30 40 50 and 60.",
        ] {
            let c = classify(text);
            assert_eq!(decide(&c.scores), "allowed", "{text}: {c:?}");
        }
    }

    #[test]
    fn spam_with_a_link_and_an_email_is_not_allowed() {
        let text = "BUY NOW!!! Click here http://cheap-deals.ru and mail winner@deals.biz";
        let c = classify(text);
        assert!(c.scores["spam"] >= BLOCK_AT, "{c:?}");
        assert!(c.scores["pii"] >= FLAG_AT, "{c:?}");
        assert_eq!(decide(&c.scores), "blocked");
        assert!(c.reasons.iter().any(|r| r == "email address"));
        assert!(!c.reasons.iter().any(|r| r.contains("winner@")));
    }

    #[test]
    fn detectors() {
        assert!(classify("call me on +1 (555) 123-4567").scores["pii"] >= FLAG_AT);
        assert!(classify("ring 555 123 4567 tonight").scores["pii"] >= FLAG_AT);
        assert!(classify("ring 0612345678 tonight").scores["pii"] >= FLAG_AT);
        assert!(classify("card 4111 1111 1111 1111 ok").scores["pii"] >= BLOCK_AT);
        assert_eq!(verdict("what the $h1t"), "flagged");
        assert!(classify("THIS IS ABSOLUTELY UNACCEPTABLE").scores["shouting"] >= FLAG_AT);
        assert!(classify("no no no no way").scores["shouting"] >= FLAG_AT);
        assert!(classify("visit example.com today").scores["spam"] > 0.0);
        assert_eq!(classify("see section 2.3 below").scores["spam"], 0.0);
        assert_eq!(verdict("damn, missed the bus"), "allowed");
    }
}
