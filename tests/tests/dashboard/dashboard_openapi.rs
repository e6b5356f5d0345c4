//! `GET /api/openapi.json`: the served document is valid OpenAPI under a standard validator
//! (`openapi-spec-validator`, which refuses a broken copy of it), it is public on a dashboard
//! that guards everything else and tells nothing of it, and a Python client that knows only
//! the document enqueues a job through it that a real `jobq-worker` completes.
//!
//! Python, `openapi-spec-validator` and `requests` are installed by `scripts/test`; without
//! python3 these tests say so and skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::dashboard_support::*;
use jobq_tests::*;
use serde_json::{json, Value};

const TOKEN: &str = "t0ken-for-openapi-0123456789";

/// Whether python3 runs; `None` (skip) when it is absent, a panic when a module the tests
/// need is missing (scripts/test installs them).
fn python() -> Option<()> {
    match Command::new("python3")
        .args(["-c", "import openapi_spec_validator, requests"])
        .output()
    {
        Err(e) => {
            eprintln!("SKIPPED: python3 is not available ({e}); scripts/test installs it");
            None
        }
        Ok(out) => {
            assert!(
                out.status.success(),
                "python3 lacks openapi-spec-validator or requests (scripts/test installs them: \
                 python3 -m pip install openapi-spec-validator requests): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(())
        }
    }
}

/// Runs `python3 -m openapi_spec_validator` on every document of `docs` (written to files
/// in `dir`), all at once: for each, `None` when it is valid, else what the validator said.
fn validate(dir: &Path, docs: &[(&str, &Value)]) -> Vec<Option<String>> {
    // one process per file (the validator stops at the first file it cannot resolve), run
    // side by side: python starts slowly on a busy machine
    let running: Vec<_> = docs
        .iter()
        .map(|(name, doc)| {
            let file = dir.join(name);
            std::fs::write(&file, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
            Command::new("python3")
                .args(["-m", "openapi_spec_validator"])
                .arg(&file)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run openapi_spec_validator")
        })
        .collect();
    running
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("openapi_spec_validator");
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // an error quotes the whole document: the start says what is wrong
            (!out.status.success()).then(|| said.chars().take(1500).collect())
        })
        .collect()
}

/// A dashboard on an exposed bind with a token: every read but the public ones needs it.
async fn guarded_dashboard(env: &TestEnv) -> Dashboard {
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let d = Dashboard::spawn(
        &[
            "--bind",
            &bind,
            "--redis-url",
            env.config.redis_url().unwrap(),
            "--prefix",
            env.config.prefix(),
            "--auth-token",
            TOKEN,
        ],
        port,
    );
    d.wait_ready().await;
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_public_and_valid_openapi_and_a_broken_copy_is_refused() {
    let env = TestEnv::new().await;
    let d = guarded_dashboard(&env).await;
    let c = client();
    let r = c.get(d.url("/api/queues")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "the API is guarded");
    // public: without credentials, and with wrong ones (a stale token in a generator)
    for bearer in [None, Some("wrong-token")] {
        let mut req = c.get(d.url("/api/openapi.json"));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "bearer {bearer:?}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/json"), "{ct}");
    }
    let text = c
        .get(d.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in [TOKEN, env.config.redis_url().unwrap(), env.config.prefix()] {
        assert!(!text.contains(secret), "the document shows {secret:?}");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    // the bearer scheme is the one this dashboard checks
    let r = c
        .get(d.url("/api/queues"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"],
        json!({"type": "http", "scheme": "bearer", "description": "The token given with --auth-token"})
    );
    // the guard's refusals are documented, as the JSON error they are
    let refused = &doc["paths"]["/api/queues"]["get"]["responses"]["401"]["$ref"];
    assert_eq!(refused, "#/components/responses/Unauthorized");
    let r = c.get(d.url("/api/queues")).send().await.unwrap();
    assert!(error_of(r).await.contains("Bearer"));
    // public for reading only: nothing else is routed there
    let r = c.post(d.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(error_of(r).await.contains("POST"));

    if python().is_none() {
        return;
    }
    let dir = TempDir::new("openapi");
    // the validator is not a rubber stamp: each break of the document is refused, named
    let mut unresolved = doc.clone();
    unresolved["paths"]["/api/queues"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"] = json!({"$ref": "#/components/schemas/NoSuchSchema"});
    let mut undeclared = doc.clone();
    undeclared["paths"]["/api/queues/{queue}/drain"]["post"]["parameters"] = json!([]);
    let mut misplaced = doc.clone();
    let params = &mut misplaced["paths"]["/api/queues/{queue}/jobs"]["get"]["parameters"];
    let state = params
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["name"] == "state")
        .expect("the state parameter");
    state["in"] = json!("body"); // OpenAPI 2's place, gone in 3
    let verdicts = validate(
        dir.path(),
        &[
            ("served.json", &doc),
            ("unresolved.json", &unresolved),
            ("undeclared.json", &undeclared),
            ("misplaced.json", &misplaced),
        ],
    );
    assert_eq!(verdicts[0], None, "the served document is refused");
    for (verdict, (name, named)) in verdicts[1..].iter().zip([
        ("unresolved", "NoSuchSchema"),
        ("undeclared", "Path parameter 'queue'"),
        ("misplaced", "body"),
    ]) {
        let said = verdict
            .as_deref()
            .unwrap_or_else(|| panic!("the {name} document passed"));
        assert!(said.contains(named), "{name}: {said}");
    }
}

/// The Python client of `tests/python`.
fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/openapi_client.py")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_that_reads_only_the_document_enqueues_a_job_a_worker_completes() {
    if python().is_none() {
        return;
    }
    let env = TestEnv::new().await;
    let (url, prefix) = (env.config.redis_url().unwrap(), env.config.prefix());
    let _worker = WorkerProcess::start(url, prefix, &["--queues", "openapi-client"]);
    let d = guarded_dashboard(&env).await;
    let run = |token: &str| {
        Command::new("python3")
            .arg(client_script())
            .args([&d.url(""), "openapi-client", "--timeout", "30"])
            .args(["--token", token])
            .output()
            .expect("run the python client")
    };
    let out = run(TOKEN);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the client failed:\n{stdout}{stderr}\ndashboard log:\n{}",
        d.stderr()
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("a JSON summary");
    let id = summary["id"].as_str().expect("the job id");
    // the job it says it saw completed is in Redis, completed, with its marker returned
    let job = env.queue("openapi-client").await.job(id).await.unwrap();
    assert_eq!(job.state, queue_core::JobState::Completed, "{job:?}");
    assert_eq!(job.name, "diag.echo");
    assert!(job.return_value.unwrap()["marker"].is_string());
    // it checked the answers of the reads against their schemas too
    let checked: Vec<&str> = summary["checked"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for op in [
        "getJob",
        "listJobs",
        "getQueue",
        "listQueues",
        "health",
        "listWorkers",
    ] {
        assert!(checked.contains(&op), "{op} not checked: {checked:?}");
    }
    // the client goes through the guard like any other: a wrong token is refused
    let out = run("wrong-token-0123456789");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("401"), "{said}");
}

/// Answers collected for `openapi_client.py --check`.
#[derive(Default)]
struct Answers(Vec<Value>);

impl Answers {
    /// Records what `r` answered to `operation`; its status.
    async fn add(&mut self, operation: &str, r: reqwest::Response) -> u16 {
        let status = r.status().as_u16();
        let body: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{operation} {status}: not JSON: {e}"));
        self.0
            .push(json!({"operation": operation, "status": status, "body": body}));
        status
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_answer_is_what_the_document_says() {
    if python().is_none() {
        return;
    }
    let env = TestEnv::new().await;
    let d = Dashboard::start(&env, &["--auth-token", TOKEN]).await;
    let c = client();
    let api = |path: &str| d.url(&format!("/api{path}"));
    let post = |path: &str, body: Value| c.post(api(path)).bearer_auth(TOKEN).json(&body);
    let mut a = Answers::default();

    let echo = json!({"name": "diag.echo", "data": {"k": 1}, "opts": {"jobId": "j1"}});
    let r = post("/queues/shapes/jobs", echo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("addJobs", r).await, 201);
    let r = post("/queues/shapes/jobs", echo).send().await.unwrap();
    assert_eq!(a.add("addJobs", r).await, 200, "a duplicate");
    let many = json!([{"name": "diag.echo"}, {"name": "diag.noop", "opts": {"delayMs": 60000}}]);
    let r = post("/queues/shapes/jobs", many).send().await.unwrap();
    assert_eq!(a.add("addJobs", r).await, 201);
    let r = post("/queues/shapes/jobs", json!({"nam": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("addJobs", r).await, 400);
    let r = c
        .post(api("/queues/shapes/jobs"))
        .json(&json!({"name": "x"}));
    assert_eq!(a.add("addJobs", r.send().await.unwrap()).await, 401);

    for query in [
        "",
        "?state=delayed&limit=5",
        "?name=diag.echo",
        "?data=k&state=waiting",
    ] {
        let r = c.get(api(&format!("/queues/shapes/jobs{query}")));
        assert_eq!(a.add("listJobs", r.send().await.unwrap()).await, 200);
    }
    let r = c
        .get(api("/queues/shapes/jobs?state=done"))
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("listJobs", r).await, 400);
    // a parameter an endpoint does not take, and a body over a change's limit
    let r = c.get(api("/queues?verbose=1")).send().await.unwrap();
    assert_eq!(a.add("listQueues", r).await, 400);
    let r = c.get(api("/workers?x=1")).send().await.unwrap();
    assert_eq!(a.add("listWorkers", r).await, 400);
    // (twice the 64 KiB a change's body may have: small enough to be sent whole before the
    // 413 comes back and the connection is closed; a 10 MiB body was still being written
    // then, and the client saw a broken pipe instead of the answer)
    let r = c
        .post(api("/queues/shapes/pause"))
        .bearer_auth(TOKEN)
        .body(vec![b' '; 128 << 10])
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("pauseQueue", r).await, 413);
    let r = c.get(api("/queues/shapes/jobs/j1")).send().await.unwrap();
    assert_eq!(a.add("getJob", r).await, 200);
    let r = c.get(api("/queues/shapes/jobs/nope")).send().await.unwrap();
    assert_eq!(a.add("getJob", r).await, 404);
    let r = c.get(api("/queues/no-such-queue")).send().await.unwrap();
    assert_eq!(a.add("getQueue", r).await, 404);

    let flow = json!({"queue": "shapes", "name": "diag.collect", "children": [
        {"queue": "shapes-kids", "name": "diag.echo"}, {"queue": "shapes-kids", "name": "diag.noop"}]});
    let r = post("/flows", flow).send().await.unwrap();
    let tree: Value = r.json().await.unwrap();
    a.0.push(json!({"operation": "addFlow", "status": 201, "body": tree}));
    let parent = tree["id"].as_str().unwrap();
    let r = c
        .get(api(&format!("/queues/shapes/jobs/{parent}")))
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("getJob", r).await, 200, "a parent with its children");
    let r = post(&format!("/queues/shapes/jobs/{parent}/cancel"), json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("cancelJob", r).await, 200);
    let r = post(&format!("/queues/shapes/jobs/{parent}/cancel"), json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("cancelJob", r).await, 409);
    let r = post(&format!("/queues/shapes/jobs/{parent}/retry"), json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("retryJob", r).await, 200);
    let r = post("/queues/shapes/jobs/j1/promote", json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("promoteJob", r).await, 409, "not delayed");
    let r = c
        .delete(api("/queues/shapes/jobs/j1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("removeJob", r).await, 200);

    for (op, path, body) in [
        ("pauseQueue", "/queues/shapes/pause", json!({})),
        ("resumeQueue", "/queues/shapes/resume", json!({})),
        ("retryFailed", "/queues/shapes/retry", json!({})),
        ("promoteDelayed", "/queues/shapes/promote", json!({})),
        (
            "cleanQueue",
            "/queues/shapes/clean",
            json!({"state": "cancelled", "older_than": 0}),
        ),
        ("drainQueue", "/queues/shapes/drain", json!({})),
        (
            "setLimits",
            "/queues/shapes/limits",
            json!({"rate": "10/1s", "group": "vip", "group_concurrency": 2}),
        ),
        (
            "addSchedule",
            "/queues/shapes/schedules",
            json!({"id": "tick", "name": "diag.noop", "every": "1h"}),
        ),
    ] {
        let status = a.add(op, post(path, body).send().await.unwrap()).await;
        assert!(status < 300, "{op}: {status}");
    }
    let r = post("/queues/shapes/clean", json!({"state": "waiting"}))
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("cleanQueue", r).await, 400);
    for (op, path) in [
        ("listQueues", "/queues"),
        ("getQueue", "/queues/shapes"),
        ("listGroups", "/queues/shapes/groups"),
        ("getLimits", "/queues/shapes/limits"),
        ("listSchedules", "/queues/shapes/schedules"),
        ("listWorkers", "/workers"),
        ("redisOverview", "/redis"),
        ("health", "/health"),
    ] {
        let status = a.add(op, c.get(api(path)).send().await.unwrap()).await;
        assert_eq!(status, 200, "{op}");
    }
    let r = c
        .delete(api("/queues/shapes/schedules/tick"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(a.add("removeSchedule", r).await, 200);

    // Redis down: jobs spooled (202), everything else a 503, health degraded
    let spool = TempDir::new("openapi-spool");
    let down = Dashboard::start_env(
        Some("redis://127.0.0.1:1"),
        env.config.prefix(),
        &[],
        &[
            ("JOBQ_FALLBACK", "spool"),
            ("JOBQ_SPOOL_DIR", spool.as_str()),
        ],
    )
    .await;
    let r = c
        .post(down.url("/api/queues/shapes/jobs"))
        .json(&json!({"name": "diag.echo"}));
    assert_eq!(a.add("addJobs", r.send().await.unwrap()).await, 202);
    let r = c
        .post(down.url("/api/queues/shapes/jobs"))
        .json(&json!([{"name": "diag.echo"}, {"name": "diag.noop"}]));
    assert_eq!(a.add("addJobs", r.send().await.unwrap()).await, 202);
    let r = c.get(down.url("/api/queues")).send().await.unwrap();
    assert_eq!(a.add("listQueues", r).await, 503);
    let r = c.get(down.url("/api/health")).send().await.unwrap();
    assert_eq!(a.add("health", r).await, 503);

    let dir = TempDir::new("openapi-answers");
    let file = dir.path().join("answers.json");
    std::fs::write(&file, serde_json::to_vec(&a.0).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(client_script())
        .arg(d.url(""))
        .arg("--check")
        .arg(&file)
        .output()
        .expect("run the python client");
    assert!(
        out.status.success(),
        "an answer is not what the document says:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["checked"], a.0.len());
}
