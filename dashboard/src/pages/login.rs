//! `/login` and `/logout`: with `--auth-token`, a person logs in by typing the token once;
//! the dashboard answers with a random session cookie (`HttpOnly`, `SameSite=Strict`), so
//! the token is not stored in the browser. Without a token there is nothing to log in to.

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::html;
use serde::Deserialize;

use super::layout::{error_banner, page};
use super::{AuthKind, PageCtx};
use crate::auth;
use crate::server::ClientAddr;
use crate::session::Access;
use crate::state::AppState;

/// `?next=`: where to go once logged in.
#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    /// A path of this dashboard.
    pub next: Option<String>,
}

/// The login form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    /// The token typed.
    pub token: Option<String>,
    /// Where to go next.
    pub next: Option<String>,
}

/// `GET /login`.
pub async fn form(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Query(query): Query<NextQuery>,
) -> Response {
    render(&state, access, query.next.as_deref(), None)
}

fn render(state: &AppState, access: Access, next: Option<&str>, error: Option<&str>) -> Response {
    let ctx = PageCtx::new(state, Some(access));
    let body = html! {
        h1 { "Log in" }
        @match ctx.auth {
            AuthKind::Open => p { "This dashboard has no token: there is nothing to log in to." },
            AuthKind::Basic => p {
                "This dashboard uses HTTP basic auth: your browser asks for the user name and \
                 password."
            },
            AuthKind::Token => {
                @if let Some(e) = error { (error_banner(e)) }
                form class="card" method="post" action="/login" {
                    input type="hidden" name="next" value=(safe_next(next));
                    p {
                        label {
                            "Token "
                            input type="password" name="token" autocomplete="current-password"
                                autofocus required size="40";
                        }
                    }
                    button class="primary" { "Log in" }
                }
                p class="muted" {
                    "The token is the dashboard's --auth-token (JOBQ_DASHBOARD_TOKEN)."
                }
            },
        }
    };
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    (status, page(&ctx, "Log in", body, &[], "")).into_response()
}

/// `POST /login`: a right token sets the session cookie and goes on to `next`. Wrong
/// tokens count toward the client address's backoff (`throttle.rs`): while it is locked
/// out, the token is not even checked (429).
pub async fn login(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let ip = client.map(|c| c.0 .0.ip());
    if let Some(Err(wait)) = ip.map(|ip| state.throttle().check(ip)) {
        let e = auth::locked_out(wait);
        let mut response = render(&state, access, form.next.as_deref(), Some(&e.to_string()));
        *response.status_mut() = e.status();
        e.decorate(&mut response);
        return response;
    }
    let given = form.token.unwrap_or_default();
    if !auth::token_matches(&state.config().auth, &given) {
        match ip {
            Some(ip) => auth::record_failure(&state, ip, "/login", "wrong token at the login form"),
            None => tracing::warn!("failed dashboard login"),
        }
        return render(
            &state,
            access,
            form.next.as_deref(),
            Some("That token is not right."),
        );
    }
    let id = state.sessions().create();
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        == Some("https");
    (
        [(header::SET_COOKIE, auth::session_set_cookie(&id, secure))],
        Redirect::to(safe_next(form.next.as_deref())),
    )
        .into_response()
}

/// `POST /logout`: ends the session.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = auth::session_cookie(&headers) {
        state.sessions().remove(id);
    }
    (
        [(header::SET_COOKIE, auth::session_clear_cookie())],
        Redirect::to("/"),
    )
        .into_response()
}

/// `next` when it is a path of this site, else `/` (no open redirects): it must start
/// with one `/` followed by something other than `/` or `\` (`//host` and `/\host` name
/// another host), and hold no whitespace, control character or `\` anywhere (browsers drop
/// tabs and newlines from URLs, so `/\t/evil.example` would become `//evil.example`, and
/// read `\` as `/`).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if is_local_path(n) => n,
        _ => "/",
    }
}

fn is_local_path(path: &str) -> bool {
    let mut chars = path.chars();
    chars.next() == Some('/')
        && chars.next() != Some('/')
        && !path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        for good in ["/queues/a?state=failed", "/", "/queues/a%20b"] {
            assert_eq!(safe_next(Some(good)), good);
        }
        for bad in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/\u{a0}/evil.example",
            "//evil",
            "//evil.example",
            "/\\evil",
            "/a\\/evil",
            "https://evil",
            "https://evil.example",
            "evil",
            "",
            "/queues\u{7f}",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
