//! How long to wait before a retry: fixed or exponential, with optional jitter. The CLI form
//! (`exp:1s`, `fixed:500ms:0.5`) is read by [`Backoff::parse`] and written by `Display`, each
//! the inverse of the other.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{check_ms, format_duration};
use crate::error::{Error, Result};

/// How long to wait before a retry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Backoff {
    /// `fixed` or `exponential`.
    #[serde(rename = "type")]
    pub kind: BackoffKind,
    /// Base delay in milliseconds.
    #[serde(rename = "delay")]
    pub delay_ms: u64,
    /// 0.0–1.0: the delay is drawn from `[d·(1-jitter), d]`.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub jitter: f64,
}

/// The two backoff curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BackoffKind {
    /// The same delay before every retry.
    Fixed,
    /// `delay · 2^(attempt-1)`.
    Exponential,
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

impl Backoff {
    /// The same `delay` before every retry.
    pub fn fixed(delay: Duration) -> Self {
        Backoff {
            kind: BackoffKind::Fixed,
            delay_ms: crate::duration::saturating_ms(delay),
            jitter: 0.0,
        }
    }

    /// `base`, `2·base`, `4·base`, … before retries 1, 2, 3, …
    pub fn exponential(base: Duration) -> Self {
        Backoff {
            kind: BackoffKind::Exponential,
            delay_ms: crate::duration::saturating_ms(base),
            jitter: 0.0,
        }
    }

    /// Randomises each delay down by up to `fraction` (0.0–1.0) to spread retries.
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// The delay before the retry that follows attempt number `attempts_made` (1-based).
    pub fn delay_after(&self, attempts_made: u32) -> Duration {
        let base = match self.kind {
            BackoffKind::Fixed => self.delay_ms,
            BackoffKind::Exponential => {
                let shift = attempts_made.saturating_sub(1).min(40);
                self.delay_ms.saturating_mul(1u64 << shift)
            }
        };
        let ms = if self.jitter > 0.0 {
            let cut = (base as f64) * self.jitter * rand::random::<f64>();
            (base as f64 - cut).round() as u64
        } else {
            base
        };
        // a long exponential curve stops at the longest delay there is
        Duration::from_millis(ms.min(crate::duration::MAX_DURATION_MS))
    }

    /// Parses the CLI form `exp:1s`, `exponential:1s`, `fixed:500ms`, optionally `…:0.5`
    /// for jitter.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "backoff",
                format!("{text:?}: use fixed:DURATION or exp:DURATION[:JITTER], e.g. exp:1s"),
            )
        };
        let mut parts = text.split(':');
        let kind = parts.next().ok_or_else(bad)?;
        let delay =
            crate::duration::parse_duration(parts.next().ok_or_else(bad)?).map_err(|_| bad())?;
        let mut backoff = match kind {
            "fixed" => Backoff::fixed(delay),
            "exp" | "exponential" => Backoff::exponential(delay),
            _ => return Err(bad()),
        };
        if let Some(j) = parts.next() {
            let j: f64 = j.parse().map_err(|_| bad())?;
            backoff = backoff.with_jitter(j);
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        backoff.validate().map_err(|e| {
            Error::invalid(
                "backoff",
                format!("{text:?}: {}", e.to_string().trim_start_matches("invalid ")),
            )
        })?;
        Ok(backoff)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_ms("backoff delay", self.delay_ms)?;
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::invalid(
                "backoff jitter",
                format!("{}: must be between 0 and 1", self.jitter),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Backoff {
    /// The CLI form [`Backoff::parse`] reads: `exp:1s`, `fixed:500ms:0.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            BackoffKind::Fixed => "fixed",
            BackoffKind::Exponential => "exp",
        };
        write!(
            f,
            "{kind}:{}",
            format_duration(Duration::from_millis(self.delay_ms))
        )?;
        if self.jitter > 0.0 {
            write!(f, ":{}", self.jitter)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_inverse_of_parse() {
        for text in ["exp:1s", "fixed:500ms", "fixed:90s:0.5", "exp:48h:0.25"] {
            let b = Backoff::parse(text).unwrap();
            assert_eq!(b.to_string(), text);
            assert_eq!(Backoff::parse(&b.to_string()).unwrap(), b);
        }
    }
}
