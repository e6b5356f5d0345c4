//! Who may read and who may change, checked once for every request by [`guard`].
//!
//! - **Credentials.** With `--auth-token`, a request is authenticated by
//!   `Authorization: Bearer <token>` or by the session cookie the `/login` form sets
//!   (`jobq_session`: random, `HttpOnly`, `SameSite=Strict`, 12 hours). With `--basic-auth`,
//!   by `Authorization: Basic …`. Secrets are compared in constant time.
//! - **Reads** (GET) are open on a loopback bind; on any other bind they need credentials
//!   too (the dashboard refuses to start exposed without any, unless `--insecure`).
//!   `/api/health` is always open, for load balancers, even to a request with wrong
//!   credentials; so is `/api/openapi.json`, the API's shape and nothing of this dashboard's
//!   (see `openapi.rs`).
//! - **Changes** (POST, DELETE) need credentials whenever auth is configured, and are refused
//!   (403) with `--read-only`.
//! - **CSRF.** A browser sends cookies and basic-auth credentials by itself, so a change that
//!   is not authenticated by an explicit bearer header must come from a page of this very
//!   dashboard: `Sec-Fetch-Site` (when sent) must be `same-origin`, and `Origin` (or, without
//!   it, `Referer`) must name this host. Requests that carry none of those headers are not
//!   from a browser's cross-site form, and pass. Together with `SameSite=Strict` on the
//!   session cookie this needs no per-form token. The check also protects open loopback
//!   dashboards from being driven by a web page the operator happens to visit.
//! - **Guessing.** Wrong credentials are counted per client address (`throttle.rs`): after
//!   5, the address is refused (429, `Retry-After`) for a delay that doubles per failure,
//!   and every failure is logged with the address.
//! - **DNS rebinding.** On a loopback bind the `Host` header must be a loopback name, so a
//!   hostile domain re-pointed at 127.0.0.1 cannot read through the operator's browser.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;

use crate::config::AuthMode;
use crate::error::{retry_after_secs, AppError};
use crate::server::ClientAddr;
use crate::session::{Access, Sessions, SESSION_TTL};
use crate::state::AppState;

/// Name of the login session cookie.
pub const SESSION_COOKIE: &str = "jobq_session";

/// Compares two secrets in time that depends only on their lengths, not on where they
/// first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(usize::from(x ^ y));
    }
    diff == 0
}

/// The session id a request's cookies carry, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// How a request authenticated, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// An explicit `Authorization: Bearer` header: never sent by a browser on its own.
    Bearer,
    /// The login cookie.
    Session,
    /// Basic auth (a browser re-sends it by itself, like a cookie).
    Basic,
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()
}

/// Checks the request's credentials against `mode`: `Ok(None)` when it has none,
/// `Err` when they are wrong.
fn prove(
    mode: &AuthMode,
    headers: &HeaderMap,
    sessions: &Sessions,
) -> Result<Option<Proof>, String> {
    let auth = authorization(headers);
    match mode {
        AuthMode::Open => Ok(None),
        AuthMode::Token(token) => {
            if let Some(given) = auth.and_then(|a| strip_scheme(a, "Bearer")) {
                return if constant_time_eq(given.as_bytes(), token.as_bytes()) {
                    Ok(Some(Proof::Bearer))
                } else {
                    Err("the bearer token is wrong".into())
                };
            }
            match session_cookie(headers) {
                Some(id) if sessions.is_valid(id) => Ok(Some(Proof::Session)),
                _ => Ok(None),
            }
        }
        AuthMode::Basic { user, password } => {
            let Some(encoded) = auth.and_then(|a| strip_scheme(a, "Basic")) else {
                return Ok(None);
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| "the basic credentials are not valid base64".to_string())?;
            let expected = format!("{user}:{password}");
            if constant_time_eq(&decoded, expected.as_bytes()) {
                Ok(Some(Proof::Basic))
            } else {
                Err("the user name or password is wrong".into())
            }
        }
    }
}

/// `value` without its auth scheme (matched case-insensitively), e.g. `Bearer abc` → `abc`.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// Whether a request changes something.
fn is_mutation(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the path is answered in JSON (or text for machines) rather than HTML.
pub fn is_machine_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics" || path == "/events"
}

/// Paths anyone may use whatever the auth: logging in and out, the health check, and the
/// API's OpenAPI document.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/logout" | "/api/health" | "/api/openapi.json"
    )
}

/// The middleware: applies the rules of this module, then records an [`Access`] for the
/// handlers.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let machine = is_machine_path(&path);
    let config = state.config();
    let refuse = |e: AppError| refusal(&state, &path, machine, e);

    if config.loopback {
        if let Some(host) = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            if !is_loopback_host(host) {
                return refuse(AppError::Forbidden(format!(
                    "Host {host:?} is not a loopback name: this dashboard listens on \
                     loopback only"
                )));
            }
        }
    }
    let client = client_ip(&req);
    let guarded = !config.auth.is_open() && !is_public(&path);
    if guarded && authorization(req.headers()).is_some() {
        if let Some(ip) = client {
            if let Err(wait) = state.throttle().check(ip) {
                tracing::debug!(client = %ip, path = ?path, "credentials refused unchecked: locked out");
                return refuse(locked_out(wait));
            }
        }
    }
    let proof = match prove(&config.auth, req.headers(), state.sessions()) {
        Ok(p) => p,
        // a public path needs no credentials, so wrong ones do not matter: a load balancer
        // sending a stale token must still get its health check
        Err(_) if is_public(&path) => None,
        Err(why) => {
            if let Some(ip) = client {
                record_failure(&state, ip, &path, &why);
            }
            return refuse(AppError::Unauthorized(why));
        }
    };
    let authenticated = config.auth.is_open() || proof.is_some();
    let mutation = is_mutation(req.method());
    if mutation {
        if config.read_only && !is_public(&path) {
            return refuse(AppError::read_only());
        }
        if !authenticated && !is_public(&path) {
            return refuse(AppError::Unauthorized(missing_credentials(&config.auth)));
        }
        if proof != Some(Proof::Bearer) {
            if let Err(why) = check_same_origin(req.headers()) {
                return refuse(AppError::Forbidden(why));
            }
        }
    } else if !authenticated && !config.loopback && !is_public(&path) {
        return refuse(AppError::Unauthorized(missing_credentials(&config.auth)));
    }
    req.extensions_mut().insert(Access {
        authenticated,
        session: proof == Some(Proof::Session),
    });
    next.run(req).await
}

/// The address of the client, when the request came through `server.rs`.
pub fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<ClientAddr>().map(|c| c.0.ip())
}

/// Counts a failed authentication from `ip` and logs it with the address (the path and the
/// reason are escaped: they may hold what the client sent).
pub fn record_failure(state: &AppState, ip: IpAddr, path: &str, why: &str) {
    let failure = state.throttle().failed(ip);
    match failure.locked_for {
        None => tracing::warn!(
            client = %ip,
            path = ?path,
            failures = failure.failures,
            "failed authentication: {why}"
        ),
        Some(d) => tracing::warn!(
            client = %ip,
            path = ?path,
            failures = failure.failures,
            "failed authentication: {why}; refusing this address for {}",
            queue_core::format_duration(d)
        ),
    }
}

/// The 429 of a locked-out address.
pub fn locked_out(wait: Duration) -> AppError {
    AppError::TooManyRequests {
        message: format!(
            "too many failed authentications from this address: try again in {}s",
            retry_after_secs(wait)
        ),
        retry_after: wait,
    }
}

fn missing_credentials(mode: &AuthMode) -> String {
    match mode {
        AuthMode::Basic { .. } => "authentication required: use HTTP basic auth".into(),
        _ => "authentication required: send Authorization: Bearer <token>, or log in at /login"
            .into(),
    }
}

/// The answer to a refused request: JSON for the API, a login redirect or an HTML page for
/// people; basic auth asks the browser for credentials.
fn refusal(state: &AppState, path: &str, machine: bool, e: AppError) -> Response {
    let basic = matches!(state.config().auth, AuthMode::Basic { .. });
    let unauthorized = matches!(e, AppError::Unauthorized(_));
    let mut response = if machine {
        e.into_response()
    } else if unauthorized && !basic {
        Redirect::to(&format!("/login?next={}", crate::html::url_component(path))).into_response()
    } else {
        crate::pages::error_response(state, None, e)
    };
    if unauthorized && basic {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"jobq\", charset=\"UTF-8\""),
        );
    }
    response
}

/// A change made by a browser must come from this dashboard's own pages.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), String> {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get(header::HeaderName::from_static("sec-fetch-site")) {
        if !matches!(site, "same-origin" | "none") {
            return Err(format!(
                "cross-site request refused (Sec-Fetch-Site: {site}): changes must come from \
                 this dashboard's own pages or carry a bearer token"
            ));
        }
    }
    let host = get(header::HOST).unwrap_or("");
    let (what, url) = match (get(header::ORIGIN), get(header::REFERER)) {
        (Some(origin), _) => ("Origin", origin),
        (None, Some(referer)) => ("Referer", referer),
        (None, None) => return Ok(()),
    };
    if authority(url).is_some_and(|a| a.eq_ignore_ascii_case(host)) {
        Ok(())
    } else {
        Err(format!(
            "cross-site request refused ({what}: {url:?} is not this dashboard, {host:?}): \
             changes must come from its own pages or carry a bearer token"
        ))
    }
}

/// `host:port` of an `http(s)://host:port/...` URL.
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// Whether a `Host` header names this machine: `localhost`, `*.localhost`, or a loopback IP,
/// with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        }
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The `Set-Cookie` value of a new session (`secure` when served over HTTPS).
pub fn session_set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn session_clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether the login form's token is the configured one (false when no token is set).
pub fn token_matches(mode: &AuthMode, given: &str) -> bool {
    match mode {
        AuthMode::Token(token) => constant_time_eq(given.as_bytes(), token.as_bytes()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn credentials_are_checked_per_mode() {
        let sessions = Sessions::default();
        let token = AuthMode::Token("t0k".into());
        let p = |m: &AuthMode, h: &[(&'static str, &str)]| prove(m, &headers(h), &sessions);
        assert_eq!(
            p(&token, &[("authorization", "Bearer t0k")]),
            Ok(Some(Proof::Bearer))
        );
        assert_eq!(
            p(&token, &[("authorization", "bearer t0k")]),
            Ok(Some(Proof::Bearer))
        );
        assert!(p(&token, &[("authorization", "Bearer nope")]).is_err());
        assert_eq!(p(&token, &[]), Ok(None));
        let id = sessions.create();
        let cookie = format!("a=1; {SESSION_COOKIE}={id}");
        assert_eq!(p(&token, &[("cookie", &cookie)]), Ok(Some(Proof::Session)));
        sessions.remove(&id);
        assert_eq!(p(&token, &[("cookie", &cookie)]), Ok(None));
        let basic = AuthMode::Basic {
            user: "ops".into(),
            password: "pw".into(),
        };
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ops:pw")
        );
        assert_eq!(
            p(&basic, &[("authorization", &good)]),
            Ok(Some(Proof::Basic))
        );
        let bad = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ops:px")
        );
        assert!(p(&basic, &[("authorization", &bad)]).is_err());
    }

    #[test]
    fn changes_from_other_sites_are_refused() {
        let ok = |h: &[(&'static str, &str)]| check_same_origin(&headers(h));
        assert!(ok(&[("host", "127.0.0.1:8080")]).is_ok());
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])
        .is_ok());
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("referer", "http://127.0.0.1:8080/queues/a?x=1")
        ])
        .is_ok());
        let e = ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ])
        .unwrap_err();
        assert!(e.contains("evil.example"), "{e}");
        assert!(ok(&[("host", "127.0.0.1:8080"), ("origin", "null")]).is_err());
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:9090")
        ])
        .is_err());
        assert!(ok(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]).is_err());
        assert!(ok(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-site")]).is_err());
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "app.localhost",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:8080",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
