//! Who may read and change through the dashboard: the bearer token on writes, validation
//! before anything is stored, login sessions and the same-origin (CSRF) check on form posts,
//! read-only mode, and the refusal to serve an exposed bind without auth (or with a short
//! secret); connections held open (header and idle timeouts, the connection cap), the
//! backoff on failed authentication, and errors in JSON whatever produced them.

use std::time::Duration;

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const TOKEN: &str = "t0ken-for-tests-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_token_and_bad_input_stores_nothing() {
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let c = client();
    let url = d.url("/api/queues/orders/jobs");
    let job = json!({"name": "send", "data": {"n": 1}});

    let r = c.post(&url).json(&job).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(error_of(r).await.contains("Bearer"));
    let r = c
        .post(&url)
        .bearer_auth("wrong")
        .json(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .delete(d.url("/api/queues/orders/jobs/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(!list_queues(&env.redis, env.config.prefix())
        .await
        .unwrap()
        .contains(&"orders".into()));

    let r = c
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let q = env.queue("orders").await;
    let stored = q.job(&id).await.unwrap();
    assert_eq!(
        (stored.name.as_str(), &stored.data),
        ("send", &json!({"n": 1}))
    );

    // malformed or mis-shaped bodies: 400 naming the problem, nothing stored
    for (body, needle) in [
        ("{\"name\": \"send\", ", "not valid JSON"),
        ("", "empty"),
        ("{\"data\": 1}", "\"name\" is missing"),
        ("{\"name\": 5}", "\"name\" must be a string"),
        (
            "{\"name\": \"send\", \"opts\": {\"attempts\": 0}}",
            "attempts",
        ),
        (
            "{\"name\": \"send\", \"opts\": {\"delay\": \"soon\"}}",
            "soon",
        ),
        ("{\"name\": \"send\", \"colour\": 1}", "colour"),
        ("[{\"name\": \"ok\"}, {\"nam\": \"typo\"}]", "job 1"),
    ] {
        let r = c
            .post(&url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let e = error_of(r).await;
        assert!(e.contains(needle), "{body}: {e}");
    }
    assert_eq!(
        q.counts().await.unwrap().waiting,
        1,
        "a bad body stored nothing"
    );

    // a bad queue name: 400 naming it, no queue created
    let r = c
        .post(d.url("/api/queues/bad%20name!/jobs"))
        .bearer_auth(TOKEN)
        .json(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(error_of(r).await.contains("bad name!"));
    assert_eq!(
        list_queues(&env.redis, env.config.prefix()).await.unwrap(),
        ["orders"]
    );

    // reads stay open on loopback
    let (s, _) = get_json(&d.url("/api/queues")).await;
    assert_eq!(s, 200);
    assert!(get_text(&d.url("/")).await.1.contains("orders"));
    // no CORS headers by default
    let r = c
        .get(d.url("/api/queues"))
        .header("origin", "http://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_session_works_only_from_the_dashboards_own_pages() {
    let env = TestEnv::new().await;
    let q = env.queue("forms").await;
    q.add("x", &json!({}), JobOptions::new()).await.unwrap();
    let d = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let c = client();
    let origin = d.origin();

    // a page form post without a session goes to the login page
    let r = c
        .post(d.url("/queues/forms/pause"))
        .header("origin", &origin)
        .form(&[("state", "waiting")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next="));
    assert!(!q.counts().await.unwrap().paused);

    // a wrong token is refused, the right one sets a strict, HttpOnly session cookie
    let r = c
        .post(d.url("/login"))
        .header("origin", &origin)
        .form(&[("token", "nope"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = c
        .post(d.url("/login"))
        .header("origin", &origin)
        .form(&[("token", TOKEN), ("next", "/queues/forms")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/queues/forms");
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    assert!(!set_cookie.contains(TOKEN), "the cookie is not the token");
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    // same origin: allowed
    let r = c
        .post(d.url("/queues/forms/pause"))
        .header("cookie", &cookie)
        .header("origin", &origin)
        .form(&[("state", "waiting")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    assert!(q.counts().await.unwrap().paused);

    // another site's form, or a cross-site fetch, with the same cookie: refused
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("referer", "http://evil.example/page"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = c
            .post(d.url("/queues/forms/resume"))
            .header("cookie", &cookie)
            .header(header, value)
            .form(&[("state", "waiting")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{header}: {value}");
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("cross-site request refused"));
        assert!(
            q.counts().await.unwrap().paused,
            "{header}: the queue stayed paused"
        );
    }
    // the JSON API with the cookie is under the same rule; with the bearer token it is not
    let r = c
        .post(d.url("/api/queues/forms/resume"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = c
        .post(d.url("/api/queues/forms/resume"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(!q.counts().await.unwrap().paused);

    // logging out ends the session
    let r = c
        .post(d.url("/logout"))
        .header("cookie", &cookie)
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = c
        .post(d.url("/api/queues/forms/pause"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(!q.counts().await.unwrap().paused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_every_change() {
    let env = TestEnv::new().await;
    let q = env.queue("ro").await;
    let added = q.add("x", &json!({}), JobOptions::new()).await.unwrap();
    let d = Dashboard::start(&env, &["--read-only"]).await;
    let c = client();
    let origin = d.origin();
    let refused = [
        c.post(d.url("/api/queues/ro/jobs"))
            .json(&json!({"name": "y"})),
        c.post(d.url("/api/queues/ro/pause")),
        c.post(d.url("/api/queues/ro/drain")),
        c.delete(d.url(&format!("/api/queues/ro/jobs/{}", added.id))),
    ];
    for req in refused {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert!(error_of(r).await.contains("read-only"));
    }
    let r = c
        .post(d.url("/queues/ro/pause"))
        .header("origin", &origin)
        .form(&[("state", "waiting")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("<html") && page.contains("read-only"));
    let c_now = q.counts().await.unwrap();
    assert_eq!((c_now.waiting, c_now.paused), (1, false), "nothing changed");
    // reads work, and the pages offer no buttons
    let (s, api) = get_json(&d.url("/api/queues/ro/jobs")).await;
    assert_eq!((s, api["total"].as_u64()), (200, Some(1)));
    let (_, html) = get_text(&d.url("/queues/ro")).await;
    assert!(!html.contains("<button"), "read-only pages show no actions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exposed_bind_needs_auth_or_insecure() {
    let env = TestEnv::new().await;
    let url = env.config.redis_url().unwrap();
    let prefix = env.config.prefix();

    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let mut refused = Dashboard::spawn(
        &["--bind", &bind, "--redis-url", url, "--prefix", prefix],
        port,
    );
    assert_eq!(
        refused.wait_exit(Duration::from_secs(20)),
        Some(2),
        "{}",
        refused.stderr()
    );
    let msg = refused.stderr();
    assert!(msg.contains(&bind) && msg.contains("--insecure"), "{msg}");

    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let open = Dashboard::spawn(
        &[
            "--bind",
            &bind,
            "--redis-url",
            url,
            "--prefix",
            prefix,
            "--insecure",
        ],
        port,
    );
    open.wait_ready().await;
    let (s, _) = get_json(&open.url("/api/queues")).await;
    assert_eq!(s, 200, "--insecure serves reads without auth");
    drop(open);

    // exposed with a token: reads need it too (health stays open)
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let guarded = Dashboard::spawn(
        &[
            "--bind",
            &bind,
            "--redis-url",
            url,
            "--prefix",
            prefix,
            "--auth-token",
            TOKEN,
        ],
        port,
    );
    guarded.wait_ready().await;
    let c = client();
    let r = c.get(guarded.url("/api/queues")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .get(guarded.url("/api/queues"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c.get(guarded.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c.get(guarded.url("/")).send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        303,
        "pages send people to the login form"
    );
    let (s, _) = get_json(&guarded.url("/api/health")).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_guards_changes_and_asks_the_browser() {
    let env = TestEnv::new().await;
    let q = env.queue("basic").await;
    q.add("x", &json!({}), JobOptions::new()).await.unwrap();
    let d = Dashboard::start(&env, &["--basic-auth", "ops:pa55"]).await;
    let c = client();
    let r = c
        .post(d.url("/api/queues/basic/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let r = c
        .post(d.url("/api/queues/basic/pause"))
        .basic_auth("ops", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(!q.counts().await.unwrap().paused);
    let r = c
        .post(d.url("/api/queues/basic/pause"))
        .basic_auth("ops", Some("pa55"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(q.counts().await.unwrap().paused);
    // the browser re-sends basic credentials by itself: a cross-site post is refused
    let r = c
        .post(d.url("/queues/basic/resume"))
        .basic_auth("ops", Some("pa55"))
        .header("origin", "http://evil.example")
        .form(&[("state", "waiting")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(q.counts().await.unwrap().paused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_name_is_refused_on_loopback() {
    // DNS rebinding: a hostile name pointed at 127.0.0.1 must not read through a browser
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &[]).await;
    let r = client()
        .get(d.url("/api/queues"))
        .header("host", "evil.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = client()
        .get(d.url("/api/queues"))
        .header("host", format!("localhost:{}", d.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_other_site_may_frame_the_dashboard() {
    // clickjacking: a page overlaying the dashboard invisibly could click its buttons
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let c = client();
    let page = c.get(d.url("/")).send().await.unwrap();
    let api = c
        .get(d.url("/api/queues"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let refused = c.post(d.url("/api/queues/x/pause")).send().await.unwrap();
    assert_eq!(api.status().as_u16(), 200);
    assert_eq!(refused.status().as_u16(), 401);
    for r in [&page, &api, &refused] {
        let h = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{} has no {name}", r.url()))
                .to_string()
        };
        assert_eq!(h("x-frame-options"), "DENY");
        assert_eq!(h("content-security-policy"), "frame-ancestors 'none'");
        assert_eq!(h("x-content-type-options"), "nosniff");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_answers_whatever_credentials_come_along() {
    let env = TestEnv::new().await;
    let c = client();
    let token = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let r = c
        .get(token.url("/api/health"))
        .bearer_auth("a-stale-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "wrong bearer token");
    // still refused elsewhere
    let r = c
        .post(token.url("/api/queues/x/pause"))
        .bearer_auth("a-stale-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let basic = Dashboard::start(&env, &["--basic-auth", "ops:pa55"]).await;
    for auth in ["Basic b3BzOm5vcGU=", "Basic !!not-base64!!"] {
        let r = c
            .get(basic.url("/api/health"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{auth}");
    }
}

/// Reads from `stream` until the server closes it (or `limit` passes): what it sent, and
/// how long it took.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (String, Duration, bool) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
        closed,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_connections_are_capped() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let env = TestEnv::new().await;
    let d = Dashboard::start(
        &env,
        &[
            "--header-timeout",
            "1s",
            "--idle-timeout",
            "1500ms",
            "--max-connections",
            "3",
        ],
    )
    .await;
    let addr = format!("127.0.0.1:{}", d.port);

    // slow loris: half a header, then nothing
    let mut loris = TcpStream::connect(&addr).await.unwrap();
    loris
        .write_all(b"GET /api/queues HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let (_, took, closed) = read_until_closed(&mut loris, Duration::from_secs(5)).await;
    assert!(closed, "a half-sent header held the connection for 5s");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");

    // a body that stops coming: closed once idle, not held
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(
            b"POST /api/queues/q/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":",
        )
        .await
        .unwrap();
    let (_, took, closed) = read_until_closed(&mut stalled, Duration::from_secs(5)).await;
    assert!(
        closed && took < Duration::from_secs(4),
        "stalled body: {took:?}"
    );

    // an event stream that only sends keep-alives outlives the idle timeout
    let mut events = SseReader::open(&d.url("/events")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while events.next(deadline).await.is_some() {}
    assert!(
        std::time::Instant::now() >= deadline,
        "the event stream was closed as idle"
    );
    drop(events);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // at the cap, one more connection is answered 503 in JSON and closed
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = TcpStream::connect(&addr).await.unwrap();
    over.write_all(b"GET /api/queues HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let (answer, _, _) = read_until_closed(&mut over, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("application/json") && answer.contains("--max-connections"),
        "{answer}"
    );
    assert!(answer.contains("\r\nretry-after: 1\r\n"), "{answer}");
    assert!(d.stderr().contains("refusing more"), "{}", d.stderr());
    // the held ones send no header: closed by the header timeout, and the slots are free
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = get_json(&d.url("/api/queues")).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_back_off_per_address_and_are_logged() {
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let c = client();
    let url = d.url("/api/queues");
    let mut codes = Vec::new();
    for i in 0..10 {
        let r = c
            .get(&url)
            .bearer_auth(format!("guess-{i}"))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert_eq!(&codes[..5], &[401; 5], "{codes:?}");
    assert_eq!(codes[9], 429, "{codes:?}");
    // locked out: even the right token is not checked
    let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&wait), "Retry-After {wait}");
    assert!(error_of(r).await.contains("too many failed"));
    // the login form is locked out too
    let r = c
        .post(d.url("/login"))
        .form(&[("token", TOKEN), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    // the health check stays open
    let (s, _) = get_json(&d.url("/api/health")).await;
    assert_eq!(s, 200);
    let log = d.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("failed authentication") && l.contains("client=127.0.0.1")),
        "{log}"
    );
    assert!(log.contains("refusing this address"), "{log}");

    tokio::time::sleep(Duration::from_secs(wait)).await;
    let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "the lockout ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_secrets_are_refused_on_an_exposed_bind() {
    let env = TestEnv::new().await;
    let url = env.config.redis_url().unwrap();
    for (flag, value, named) in [
        ("--auth-token", "short", "--auth-token"),
        ("--basic-auth", "ops:pa55", "--basic-auth"),
    ] {
        let port = free_port();
        let bind = format!("0.0.0.0:{port}");
        let mut d = Dashboard::spawn(&["--bind", &bind, "--redis-url", url, flag, value], port);
        assert_eq!(
            d.wait_exit(Duration::from_secs(20)),
            Some(2),
            "{}",
            d.stderr()
        );
        let msg = d.stderr();
        assert!(msg.contains(named) && msg.contains("characters"), "{msg}");
        assert!(!msg.contains("pa55"), "the secret is not shown: {msg}");
    }
    // on loopback a short one is fine
    let d = Dashboard::start(&env, &["--auth-token", "short"]).await;
    let r = client()
        .get(d.url("/api/queues"))
        .bearer_auth("short")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_error_is_json_naming_the_problem() {
    let env = TestEnv::new().await;
    let q = env.queue("errs").await;
    q.add("x", &json!({}), JobOptions::new()).await.unwrap();
    let d = Dashboard::start(&env, &[]).await;
    let c = client();
    let big = "x".repeat(3 << 20);
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (c.get(d.url("/api/queues/errs/pause")), 405, "GET"),
        (
            c.post(d.url("/api/queues/errs/jobs"))
                .header("content-type", "application/json")
                .body(big.clone()),
            413,
            "at most",
        ),
        (
            c.post(d.url("/api/queues/errs/clean"))
                .header("content-type", "application/json")
                .body(big),
            413,
            "at most",
        ),
        // the add-job form posted as JSON, by a client that does not ask for HTML
        (
            c.post(d.url("/queues/errs/jobs"))
                .json(&json!({"name": "x"})),
            415,
            "application/x-www-form-urlencoded",
        ),
        (
            c.get(d.url("/api/queues/errs/jobs?offset=1&offset=2")),
            400,
            "offset",
        ),
        (c.get(d.url("/api/queues/%FF/jobs")), 400, "%FF"),
        (
            c.get(d.url("/api/no/such/thing")),
            404,
            "/api/no/such/thing",
        ),
        (
            c.get(d.url("/api/queues/errs/jobs?offset=18446744073709551615")),
            400,
            "18446744073709551615",
        ),
        (
            c.get(d.url("/api/queues/errs/jobs?state=delayed&offset=99999999999999999999")),
            400,
            "99999999999999999999",
        ),
        (
            c.post(d.url("/api/queues/errs/clean"))
                .json(&json!({"state": "completed", "older_than": "200000000000d"})),
            400,
            "200000000000d",
        ),
        (
            c.post(d.url("/api/queues/errs/clean"))
                .json(&json!({"state": "completed", "older_than": u64::MAX})),
            400,
            "18446744073709551615",
        ),
    ];
    for (request, status, needle) in cases {
        let r = request.send().await.unwrap();
        let what = format!("{} {}", r.status(), r.url());
        assert_eq!(r.status().as_u16(), status, "{what}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/json"), "{what}: {ct}");
        let e = error_of(r).await;
        assert!(e.contains(needle), "{what}: {e}");
    }
    // pages answer the same in an error page
    for (path, needle) in [
        (
            "/queues/errs?page=18446744073709551615",
            "18446744073709551615",
        ),
        ("/queues/errs?state=failed&page=99999999999", "99999999999"),
    ] {
        let (s, page) = get_text(&d.url(path)).await;
        assert_eq!(s, 400, "{path}");
        assert!(page.contains(needle), "{path}: {page}");
    }
    let r = c
        .post(d.url("/queues/errs/clean"))
        .form(&[("state", "completed"), ("older_than", "200000000000d")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("200000000000d"));
    // nothing was removed, and the dashboard is still up
    assert_eq!(q.counts().await.unwrap().waiting, 1);
    assert!(!d.stderr().contains("panicked"), "{}", d.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_over_the_size_caps_is_a_413_naming_the_size() {
    let env = TestEnv::new().await;
    let d = Dashboard::start_env(
        env.config.redis_url(),
        env.config.prefix(),
        &[],
        &[("JOBQ_MAX_DATA_BYTES", "1000")],
    )
    .await;
    let c = client();
    let url = d.url("/api/queues/big/jobs");
    let r = c
        .post(&url)
        .json(&json!({"name": "x", "data": {"blob": "y".repeat(5000)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let e = error_of(r).await;
    assert!(
        e.contains("1000") && e.contains("JOBQ_MAX_DATA_BYTES"),
        "{e}"
    );
    // the form says the same in an error page
    let r = c
        .post(d.url("/queues/big/jobs"))
        .form(&[
            ("name", "x"),
            ("data", &format!("{{\"blob\": \"{}\"}}", "y".repeat(5000))),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert!(r.text().await.unwrap().contains("JOBQ_MAX_DATA_BYTES"));
    // under the cap: stored
    let r = c
        .post(&url)
        .json(&json!({"name": "x", "data": {"blob": "y".repeat(500)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(env.queue("big").await.counts().await.unwrap().waiting, 1);
}

/// Was: one client holding `/events` streams open (no credentials needed on loopback) took
/// every connection slot: past 512 streams, even `/api/health` was answered 503. Live
/// streams now get at most half the connections; one more is a 503 naming the cap, and the
/// rest of the dashboard still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_never_take_every_connection() {
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &["--max-connections", "6"]).await;
    // half of 6
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(SseReader::open(&d.url("/events")).await);
    }
    let (status, body) = get_json(&d.url("/events")).await;
    assert_eq!(status, 503, "{body}");
    let e = body["error"].as_str().unwrap_or_default();
    assert!(e.contains("live streams"), "{e}");
    let (status, body) = get_json(&d.url("/api/health")).await;
    assert_eq!(status, 200, "{body}");
    // a stream closed frees its place
    held.pop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.push(SseReader::open(&d.url("/events")).await);
}
