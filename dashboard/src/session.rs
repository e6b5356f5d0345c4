//! Login sessions, kept in memory, and the [`Access`] the auth guard grants each request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// What the guard found out about a request (an extension the handlers can read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The request proved who it is (always true when no auth is configured).
    pub authenticated: bool,
    /// It did so with a login session cookie (so the page offers to log out).
    pub session: bool,
}

/// Login sessions: random ids → expiry, in memory (a restart logs everyone out).
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<String, Instant>>);

impl Sessions {
    /// A new session id, valid for [`SESSION_TTL`].
    pub fn create(&self) -> String {
        let id: String = rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, expiry| *expiry > now);
        map.insert(id.clone(), now + SESSION_TTL);
        id
    }

    /// Whether `id` is a live session. (A map lookup by a 256-bit random id leaks nothing
    /// useful through timing.)
    pub fn is_valid(&self, id: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).is_some_and(|expiry| *expiry > Instant::now())
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}
