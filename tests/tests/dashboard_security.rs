//! Who may read and change through the dashboard: the bearer token on writes, validation
//! before anything is stored, login sessions and the same-origin (CSRF) check on form posts,
//! read-only mode, and the refusal to serve an exposed bind without auth.

mod dashboard_support;

use std::time::Duration;

use dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const TOKEN: &str = "t0ken-for-tests-0123456789";

async fn error_of(r: reqwest::Response) -> String {
    let body: Value = r.json().await.expect("a JSON error body");
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field in {body}"))
        .to_string()
}

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
