//! Flows through the dashboard: `POST /api/flows` adds a tree of jobs all or nothing (201
//! with every node's id; a bad node is a 4xx naming it by its path, and nothing is stored;
//! the token, read-only and same-origin rules of an enqueue); a parent's job page and API
//! list its children linked to their pages, a child's links its parent, everything escaped;
//! the `waiting_children` tab, count and gauge; a parent of 10,000 children; an add the
//! client gave up on; Redis down (503, never spooled).

use std::time::Duration;

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const TOKEN: &str = "t0ken-for-flow-tests-0123456789";

/// Every key under the test's prefix: what "nothing stored" means.
async fn keys_under(env: &TestEnv) -> Vec<String> {
    let mut conn = env.raw().await;
    redis::cmd("KEYS")
        .arg(format!("*{}*", env.config.prefix()))
        .query_async(&mut conn)
        .await
        .expect("KEYS")
}

/// POST `body` (text, sent as JSON) to `/api/flows` with the token → (status, JSON body).
async fn post_flow(d: &Dashboard, body: &str) -> (u16, Value) {
    let r = client()
        .post(d.url("/api/flows"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /api/flows");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The `error` of a JSON error body.
fn error_text(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field in {body}"))
}

/// `n` children of one shape in `queue`.
fn children(queue: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"queue": queue, "name": "leaf", "data": {"i": i}}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_body_that_does_not_read_is_a_400_naming_the_node_and_nothing_is_stored() {
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let too_wide = json!({"queue": "p", "name": "parent", "children": children("c", 10_001)});
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("   ".into(), "empty"),
        ("{\"queue\": \"p\", ".into(), "not valid JSON"),
        ("not json at all".into(), "not valid JSON"),
        (
            json!({"queue": "p"}).to_string(),
            "flow node root: \"name\" is missing",
        ),
        (
            json!({"queue": "p", "name": "parent",
                   "children": [{"queue": "c", "name": "ok"}, {"queue": "c", "data": 1}]})
            .to_string(),
            "flow node root.children[1]: \"name\" is missing",
        ),
        (
            json!({"queue": "p", "name": "parent",
                   "children": [{"queue": "c", "name": "ok",
                                 "children": [{"name": "no queue"}]}]})
            .to_string(),
            "flow node root.children[0].children[0]: \"queue\" is missing",
        ),
        (
            json!({"queue": "p", "name": "parent", "children": {"queue": "c"}}).to_string(),
            "flow node root: \"children\" must be an array",
        ),
        (
            json!({"queue": "p", "name": "parent",
                   "children": [{"queue": "c", "name": "x", "opts": {"attempts": 0}}]})
            .to_string(),
            "flow node root.children[0]: ",
        ),
        (
            json!({"queue": "p", "name": "parent",
                   "children": [{"queue": "c", "name": "x", "colour": 1}]})
            .to_string(),
            "colour",
        ),
        ("[]".into(), "flow node root: expected an object"),
        (too_wide.to_string(), "flow node root: 10001 children"),
    ];
    for (body, needle) in &cases {
        let (status, answer) = post_flow(&d, body).await;
        let shown = queue_core::internal::text::clip(body, 80);
        assert_eq!(status, 400, "{shown}: {answer}");
        let e = error_text(&answer);
        assert!(
            e.contains(needle),
            "{shown}: {e:?} should contain {needle:?}"
        );
    }
    assert_eq!(
        keys_under(&env).await,
        Vec::<String>::new(),
        "nothing stored"
    );
    assert!(!d.stderr().contains("panicked"), "{}", d.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_needs_the_token_a_writable_dashboard_and_its_own_pages() {
    let env = TestEnv::new().await;
    let flow = json!({"queue": "p", "name": "parent", "children": [{"queue": "c", "name": "x"}]});
    let c = client();

    let guarded = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let url = guarded.url("/api/flows");
    let r = c.post(&url).json(&flow).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(error_text(&body).contains("Bearer"), "{body}");
    let r = c
        .post(&url)
        .bearer_auth("wrong-token")
        .json(&flow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());

    // a browser's post from another site, on an open loopback dashboard
    let open = Dashboard::start(&env, &[]).await;
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = c
            .post(open.url("/api/flows"))
            .header(header, value)
            .json(&flow)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{header}: {value}");
        let body: Value = r.json().await.unwrap();
        assert!(error_text(&body).contains("cross-site"), "{body}");
    }

    let read_only = Dashboard::start(&env, &["--read-only"]).await;
    let r = c
        .post(read_only.url("/api/flows"))
        .json(&flow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(error_text(&body).contains("read-only"), "{body}");

    // GET is not a way in
    let r = c.get(open.url("/api/flows")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());

    assert_eq!(
        keys_under(&env).await,
        Vec::<String>::new(),
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_body_over_its_limit_is_a_413_naming_the_limit() {
    let env = TestEnv::new().await;
    let d = Dashboard::start_env(
        env.config.redis_url(),
        env.config.prefix(),
        &["--auth-token", TOKEN],
        &[
            ("JOBQ_MAX_DATA_BYTES", "1000"),
            ("JOBQ_MAX_OPTS_BYTES", "1000"),
        ],
    )
    .await;
    // one job at the caps, 8 MiB for the rest of the tree, 64 KiB of envelope
    let limit = 2000 + (8 << 20) + 64 * 1024;
    let wide = json!({"queue": "p", "name": "parent",
                      "children": [{"queue": "c", "name": "x", "data": "y".repeat(limit)}]});
    let (status, body) = post_flow(&d, &wide.to_string()).await;
    assert_eq!(status, 413, "{body}");
    let e = error_text(&body);
    assert!(
        e.contains("a flow") && e.contains(&limit.to_string()) && e.contains("JOBQ_MAX_DATA_BYTES"),
        "{e}"
    );
    assert_eq!(
        keys_under(&env).await,
        Vec::<String>::new(),
        "nothing stored"
    );
}

// ---- with the flow engine ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_node_is_refused_naming_its_path_and_nothing_of_the_flow_is_stored() {
    let env = TestEnv::new().await;
    let d = Dashboard::start_env(
        env.config.redis_url(),
        env.config.prefix(),
        &["--auth-token", TOKEN],
        &[("JOBQ_MAX_DATA_BYTES", "1000")],
    )
    .await;
    let node = |queue: &str, id: Option<&str>| match id {
        Some(id) => json!({"queue": queue, "name": "n", "opts": {"jobId": id}}),
        None => json!({"queue": queue, "name": "n"}),
    };
    let with = |mut parent: Value, kids: Vec<Value>| {
        parent["children"] = Value::Array(kids);
        parent
    };
    let cases = [
        (
            with(
                node("p", None),
                vec![node("c", None), node("bad queue!", None)],
            ),
            400,
            "flow node root.children[1]:",
            "bad queue!",
        ),
        (
            with(
                node("p", None),
                vec![node("c", Some("x")), node("c", Some("x"))],
            ),
            400,
            "flow node root.children[1]:",
            "duplicate id",
        ),
        (
            with(
                node("p", Some("top")),
                vec![with(node("c", None), vec![node("p", Some("top"))])],
            ),
            400,
            "flow node root.children[0].children[0]:",
            "cycle",
        ),
        (
            with(
                node("p", None),
                vec![
                    json!({"queue": "c", "name": "n", "opts": {"dedup": {"id": "d", "ttl": "1m"}}}),
                ],
            ),
            400,
            "flow node root.children[0]:",
            "dedup",
        ),
        (
            with(
                node("p", None),
                vec![json!({"queue": "c", "name": "n", "data": "y".repeat(5000)})],
            ),
            413,
            "flow node root.children[0]:",
            "1000",
        ),
    ];
    for (flow, status, path, needle) in cases {
        let (got, body) = post_flow(&d, &flow.to_string()).await;
        assert_eq!(got, status, "{flow}: {body}");
        let e = error_text(&body);
        assert!(e.contains(path) && e.contains(needle), "{e}");
    }
    assert_eq!(
        keys_under(&env).await,
        Vec::<String>::new(),
        "nothing stored"
    );
    assert!(list_queues(&env.redis, env.config.prefix())
        .await
        .unwrap()
        .is_empty());

    // a jobId already taken in its queue: 409 naming the node, nothing of the flow kept
    let first = with(node("p", Some("once")), vec![node("c", None)]);
    let (status, body) = post_flow(&d, &first.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let again = with(
        node("p", None),
        vec![node("c", None), node("p", Some("once"))],
    );
    let (status, body) = post_flow(&d, &again.to_string()).await;
    assert_eq!(status, 409, "{body}");
    let e = error_text(&body);
    assert!(
        e.contains("flow node root.children[1]:") && e.contains("once"),
        "{e}"
    );
    for (queue, waiting_children, waiting) in [("p", 1, 0), ("c", 0, 1)] {
        let c = env.queue(queue).await.counts().await.unwrap();
        assert_eq!(
            (c.waiting_children, c.waiting, c.delayed),
            (waiting_children, waiting, 0),
            "only the first flow is in {queue}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_is_added_with_every_id_and_its_pages_link_parent_and_children_escaped() {
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let hostile = "<script>alert('x')</script>";
    let flow = json!({
        "queue": "pub", "name": hostile, "data": {"html": hostile},
        "opts": {"jobId": "top/<b>1</b>", "onChildFailure": "ignore"},
        "children": [
            {"queue": "ka", "name": "<i>left</i>", "data": {"side": "left"}},
            {"queue": "kb", "name": "right", "opts": {"jobId": "r\"1'"},
             "children": [{"queue": "ka", "name": "deep"}]},
        ]
    });
    let (status, tree) = post_flow(&d, &flow.to_string()).await;
    assert_eq!(status, 201, "{tree}");
    // the tree as sent, every node with its id
    assert_eq!(
        (&tree["queue"], &tree["name"], &tree["id"]),
        (&json!("pub"), &json!(hostile), &json!("top/<b>1</b>"))
    );
    let kids = tree["children"].as_array().unwrap();
    assert_eq!(kids.len(), 2);
    assert_eq!(
        (&kids[0]["queue"], &kids[0]["name"]),
        (&json!("ka"), &json!("<i>left</i>"))
    );
    assert_eq!(
        (&kids[1]["queue"], &kids[1]["id"]),
        (&json!("kb"), &json!("r\"1'"))
    );
    assert_eq!(kids[1]["children"][0]["queue"], "ka");
    for node in [&tree, &kids[0], &kids[1], &kids[1]["children"][0]] {
        assert!(
            node["id"].as_str().is_some_and(|id| !id.is_empty()),
            "{node}"
        );
        assert!(node["children"].is_array(), "{node}");
    }
    let left_id = kids[0]["id"].as_str().unwrap().to_string();

    // the API: the parent with its children, a child with its parent
    let root_url = d.url("/api/queues/pub/jobs/top%2F%3Cb%3E1%3C%2Fb%3E");
    let (s, root) = get_json(&root_url).await;
    assert_eq!(s, 200, "{root}");
    assert_eq!(root["state"], "waiting_children");
    assert_eq!(root["children_pending"], 2);
    let listed = root["children"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{root}");
    assert_eq!(
        (&listed[0]["queue"], &listed[0]["id"], &listed[0]["name"]),
        (&json!("ka"), &json!(left_id), &json!("<i>left</i>"))
    );
    assert_eq!(listed[1]["state"], "waiting_children", "{root}");
    assert_eq!(listed[0]["state"], "waiting", "{root}");
    let (s, left) = get_json(&d.url(&format!("/api/queues/ka/jobs/{left_id}"))).await;
    assert_eq!(s, 200);
    assert_eq!(
        left["parent"],
        json!({"queue": "pub", "id": "top/<b>1</b>"})
    );
    assert!(left.get("children").is_none(), "a leaf lists no children");

    // the parent's page: children linked to their pages, everything escaped
    let (s, page) = get_text(&d.url("/queues/pub/jobs/top%2F%3Cb%3E1%3C%2Fb%3E")).await;
    assert_eq!(s, 200);
    assert!(!page.contains("<script>alert"), "raw script in the page");
    assert!(
        !page.contains("<i>left") && !page.contains("<b>1"),
        "raw markup"
    );
    assert!(page.contains("&lt;script&gt;alert('x')&lt;/script&gt;"));
    assert!(
        page.contains(&format!("href=\"/queues/ka/jobs/{left_id}\"")),
        "child link"
    );
    assert!(
        page.contains("href=\"/queues/kb/jobs/r%221%27\""),
        "encoded child link"
    );
    assert!(page.contains("&lt;i&gt;left&lt;/i&gt;") && page.contains("r&quot;1'"));
    assert!(page.contains("id=\"children-table\""));
    // the child's page links back to its parent
    let (s, page) = get_text(&d.url(&format!("/queues/ka/jobs/{left_id}"))).await;
    assert_eq!(s, 200);
    assert!(
        page.contains("href=\"/queues/pub/jobs/top%2F%3Cb%3E1%3C%2Fb%3E\"")
            && page.contains("pub/top/&lt;b&gt;1&lt;/b&gt;"),
        "parent link"
    );

    // the queue page's tab and badge, the overview's count, the gauge
    let (s, tab) = get_text(&d.url("/queues/pub?state=waiting_children")).await;
    assert_eq!(s, 200);
    assert!(
        tab.contains("data-count=\"waiting_children\">1<"),
        "tab count"
    );
    assert!(tab.contains("parent · 2 left"), "parent badge");
    assert!(!tab.contains("<script>alert"));
    let (_, overview) = get_text(&d.url("/")).await;
    assert!(overview.contains("data-field=\"waiting_children\""));
    let (_, metrics) = get_text(&d.url("/metrics")).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "jobq_jobs{queue=\"pub\",state=\"waiting_children\"} 1"),
        "{metrics}"
    );
    let (_, api) = get_json(&d.url("/api/queues/pub")).await;
    assert_eq!(api["waiting_children"], 1, "{api}");

    // children finish: their outcomes show on the parent's page
    let worker = env
        .worker()
        .queues(["ka", "kb"])
        .handler("<i>left</i>", |j: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>(json!({"done": j.data["side"]}))
        })
        .handler("deep", |_j: Job<Value>, _c: Ctx| async move {
            Err::<Value, _>(JobError::fatal("<img src=x onerror=alert(1)>"))
        })
        .handler("right", |_j: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>(json!("ok"))
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let root = eventually(
        Duration::from_secs(20),
        "the parent's children to finish",
        || {
            let url = root_url.clone();
            async move {
                let (_, v) = get_json(&url).await;
                (v["children_pending"] == 0).then_some(v)
            }
        },
    )
    .await;
    guard.stop().await.unwrap();
    assert_eq!(root["children"][0]["state"], "completed", "{root}");
    assert_eq!(root["children"][0]["return_value"], json!({"done": "left"}));
    let (_, page) = get_text(&d.url("/queues/pub/jobs/top%2F%3Cb%3E1%3C%2Fb%3E")).await;
    assert!(
        page.contains("&quot;done&quot;:&quot;left&quot;"),
        "return value shown"
    );
    let (_, kb_page) = get_text(&d.url("/queues/kb/jobs/r%221%27")).await;
    assert!(!kb_page.contains("<img src=x"), "raw failure reason");
    assert!(
        kb_page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "reason shown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_of_10000_children_shows_the_first_200_and_counts_them_all() {
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let flow = json!({"queue": "wide", "name": "fan-in", "opts": {"jobId": "root"},
                      "children": children("leaves", 10_000)});
    let (status, tree) = post_flow(&d, &flow.to_string()).await;
    assert_eq!(status, 201, "{tree}");
    assert_eq!(tree["children"].as_array().unwrap().len(), 10_000);

    let r = client()
        .get(d.url("/queues/wide/jobs/root"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ms = server_ms(&r);
    let page = r.text().await.unwrap();
    assert!(page.contains("Children (10000)"), "the count");
    assert!(page.contains("10000 waiting"), "the count per state");
    assert!(page.contains("showing the first 200 of 10000"));
    let table = page
        .split("id=\"children-table\"")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("the children table");
    assert_eq!(
        table.matches("<tr>").count(),
        1 + 200,
        "header + 200 children"
    );
    assert!(ms < 2000.0, "the page took {ms} ms");

    let (s, api) = get_json(&d.url("/api/queues/wide/jobs/root")).await;
    assert_eq!(s, 200);
    assert_eq!(api["children"].as_array().unwrap().len(), 10_000);
    assert_eq!(api["children_pending"], 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_add_the_client_gave_up_on_still_stores_the_whole_flow() {
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    // 40,000 leaves under 4 middles: long enough to store (a second or more) that the client
    // surely hangs up first, however fast the machine is that day
    let middles: Vec<Value> = (0..4)
        .map(|m| {
            json!({"queue": "mid", "name": "part", "data": {"m": m},
                        "children": children("leaves", 10_000)})
        })
        .collect();
    let flow = json!({"queue": "gone", "name": "fan-in", "opts": {"jobId": "root"},
                      "children": middles});
    // the client hangs up while the dashboard is still storing the flow
    let cut = client()
        .post(d.url("/api/flows"))
        .bearer_auth(TOKEN)
        .json(&flow)
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(
        cut.as_ref().is_err_and(|e| e.is_timeout()),
        "the add answered within 200 ms: {:?}",
        cut.map(|r| r.status())
    );
    let leaves = env.queue("leaves").await;
    eventually(Duration::from_secs(60), "the whole flow stored", || async {
        (leaves.counts().await.ok()?.waiting == 40_000).then_some(())
    })
    .await;
    let root = env.queue("gone").await.job("root").await.unwrap();
    assert_eq!(
        (root.state, root.children_pending),
        (JobState::WaitingChildren, Some(4))
    );
    let mid = env.queue("mid").await.counts().await.unwrap();
    assert_eq!(mid.waiting_children, 4, "{mid:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_a_flow_is_a_503_even_with_spool_and_bad_input_stays_a_400() {
    let spool = TempDir::new("flow-spool");
    // port 1: nothing listens there
    let d = Dashboard::start_env(
        Some("redis://127.0.0.1:1"),
        &fresh_prefix(),
        &["--auth-token", TOKEN],
        &[
            ("JOBQ_FALLBACK", "spool"),
            ("JOBQ_SPOOL_DIR", spool.as_str()),
        ],
    )
    .await;
    let flow = json!({"queue": "p", "name": "parent", "children": [{"queue": "c", "name": "x"}]});
    let (status, body) = post_flow(&d, &flow.to_string()).await;
    assert_eq!(status, 503, "{body}");
    let e = error_text(&body);
    assert!(
        e.contains("127.0.0.1:1") && e.contains("never spooled"),
        "{e}"
    );
    assert!(spool.files_ending("").is_empty(), "nothing spooled");
    let (status, body) = post_flow(&d, r#"{"queue": "p"}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_text(&body).contains("flow node root: \"name\" is missing"));
}
