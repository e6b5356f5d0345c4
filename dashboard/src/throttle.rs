//! Backoff on failed authentication, per client address, so credentials cannot be guessed
//! at network speed.
//!
//! Each wrong bearer token, basic-auth password or login-form token from an address counts
//! as a failure. The first [`FREE_FAILURES`] cost nothing (typos happen); each further one
//! locks the address out for [`FIRST_LOCK`], doubling per failure up to [`MAX_LOCK`]. While
//! locked, every attempt from the address that carries credentials is answered 429 with
//! `Retry-After` without being checked (a right guess would not be told apart), and is not
//! counted. An address is forgotten [`FORGET_AFTER`] after its last failure or lock ends.
//!
//! IPv6 addresses are grouped by their /64 (one host usually holds a whole /64), and the
//! table holds at most [`MAX_ADDRESSES`] entries (expired ones are dropped first, then the
//! longest quiet), so a flood of addresses cannot grow it without bound. Behind a reverse
//! proxy every client has the proxy's address, and they share one record.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures from one address that cost nothing.
pub const FREE_FAILURES: u32 = 5;
/// The lockout after the first failure past [`FREE_FAILURES`]; it doubles per failure.
pub const FIRST_LOCK: Duration = Duration::from_secs(2);
/// The longest lockout.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// How long an address's failures are remembered after its last failure or lockout.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most addresses remembered at once.
pub const MAX_ADDRESSES: usize = 10_000;

/// What one address did lately.
#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    /// The last failure, or the end of the lockout if later.
    last: Instant,
    locked_until: Option<Instant>,
}

impl Record {
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) > FORGET_AFTER
    }
}

/// The result of recording a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Failures from this address so far (within [`FORGET_AFTER`]).
    pub failures: u32,
    /// The lockout this failure started, if any.
    pub locked_for: Option<Duration>,
}

/// The per-address table.
#[derive(Debug, Default)]
pub struct AuthThrottle {
    table: Mutex<HashMap<IpAddr, Record>>,
}

/// The key of an address: IPv4 as it is (an IPv4-mapped IPv6 address as IPv4), IPv6 by
/// its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The lockout after `failures` failures.
fn lock_for(failures: u32) -> Option<Duration> {
    let past = failures.checked_sub(FREE_FAILURES).filter(|n| *n > 0)?;
    let doublings = (past - 1).min(20);
    Some((FIRST_LOCK * (1u32 << doublings)).min(MAX_LOCK))
}

impl AuthThrottle {
    /// `Err(wait)` while `ip` is locked out: how long until it may try again.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        match table.get(&client_key(ip)).and_then(|r| r.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr) -> Failure {
        self.failed_at(ip, Instant::now())
    }

    fn failed_at(&self, ip: IpAddr, now: Instant) -> Failure {
        let key = client_key(ip);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if !table.contains_key(&key) && table.len() >= MAX_ADDRESSES {
            table.retain(|_, r| !r.expired(now));
            if table.len() >= MAX_ADDRESSES {
                if let Some(oldest) = table.iter().min_by_key(|(_, r)| r.last).map(|(k, _)| *k) {
                    table.remove(&oldest);
                }
            }
        }
        let record = table.entry(key).or_insert(Record {
            failures: 0,
            last: now,
            locked_until: None,
        });
        if record.expired(now) {
            record.failures = 0;
            record.locked_until = None;
        }
        record.failures = record.failures.saturating_add(1);
        record.last = now;
        let locked_for = lock_for(record.failures);
        if let Some(d) = locked_for {
            record.locked_until = Some(now + d);
            record.last = now + d;
        }
        Failure {
            failures: record.failures,
            locked_for,
        }
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn five_failures_are_free_then_the_lockout_doubles() {
        let t = AuthThrottle::default();
        let now = Instant::now();
        let a = ip("192.0.2.1");
        for n in 1..=FREE_FAILURES {
            assert_eq!(t.failed_at(a, now).locked_for, None, "failure {n}");
            assert!(t.check_at(a, now).is_ok());
        }
        assert_eq!(t.failed_at(a, now).locked_for, Some(FIRST_LOCK));
        assert_eq!(t.check_at(a, now), Err(FIRST_LOCK));
        // another address is not affected
        assert!(t.check_at(ip("192.0.2.2"), now).is_ok());
        let later = now + FIRST_LOCK;
        assert!(t.check_at(a, later).is_ok());
        assert_eq!(t.failed_at(a, later).locked_for, Some(FIRST_LOCK * 2));
        assert_eq!(lock_for(100), Some(MAX_LOCK));
        assert_eq!(lock_for(u32::MAX), Some(MAX_LOCK));
        // forgotten once quiet for long enough
        let much_later = later + FIRST_LOCK * 2 + FORGET_AFTER + Duration::from_secs(1);
        assert_eq!(t.failed_at(a, much_later).failures, 1);
    }

    #[test]
    fn ipv6_counts_per_64_and_the_table_is_bounded() {
        let t = AuthThrottle::default();
        let now = Instant::now();
        for i in 0..FREE_FAILURES {
            t.failed_at(ip(&format!("2001:db8::{i:x}")), now);
        }
        assert_eq!(
            t.failed_at(ip("2001:db8::ffff"), now).locked_for,
            Some(FIRST_LOCK)
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
        for i in 0..(MAX_ADDRESSES as u32 + 50) {
            t.failed_at(IpAddr::V4(std::net::Ipv4Addr::from(i)), now);
        }
        assert_eq!(t.len(), MAX_ADDRESSES);
    }
}
