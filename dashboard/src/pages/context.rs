//! What every page knows besides its own content: [`PageCtx`], read by the shared shell.

use crate::config::AuthMode;
use crate::session::Access;
use crate::state::AppState;

/// What every page needs to know besides its own content.
#[derive(Debug, Clone)]
pub struct PageCtx {
    /// Changes are refused: hide the buttons.
    pub read_only: bool,
    /// How the dashboard authenticates.
    pub auth: AuthKind,
    /// The viewer's access.
    pub access: Access,
    /// The key prefix shown in the header.
    pub prefix: String,
    /// The Redis address shown in the footer (password masked).
    pub redis: String,
}

/// Which login links to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// No auth.
    Open,
    /// Token, with a login form.
    Token,
    /// HTTP basic auth (the browser asks).
    Basic,
}

impl PageCtx {
    /// The context of a request that passed the guard (`access` None: it did not).
    pub fn new(state: &AppState, access: Option<Access>) -> Self {
        let config = state.config();
        PageCtx {
            read_only: config.read_only,
            auth: match config.auth {
                AuthMode::Open => AuthKind::Open,
                AuthMode::Token(_) => AuthKind::Token,
                AuthMode::Basic { .. } => AuthKind::Basic,
            },
            access: access.unwrap_or(Access {
                authenticated: config.auth.is_open(),
                session: false,
            }),
            prefix: state.backend().prefix().to_string(),
            redis: state.backend().masked_url(),
        }
    }

    /// Whether to show the buttons that change things.
    pub fn can_change(&self) -> bool {
        !self.read_only && self.access.authenticated
    }
}
