//! OpenTelemetry (SPEC §12): the trace context given at add — `TRACEPARENT` for `jobq add`,
//! the `traceparent` header on the dashboard's enqueue routes, the caller's `tracing` span
//! in-process — is stored with the job, and the real `jobq-worker`, exporting over OTLP to a
//! receiver started here, sends each attempt's span as its child. Without trace context
//! nothing is stored; with export off nothing is sent; a malformed value is refused, named.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobq_tests::*;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use prost::Message;
use queue_core::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::prelude::*;

use crate::dashboard_support::{client, Dashboard};

const Q: &str = "diag";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID: &str = "00f067aa0ba902b7";

fn traceparent(trace_id: &str, span_id: &str) -> String {
    format!("00-{trace_id}-{span_id}-01")
}

/// An OTLP/HTTP receiver: records the body of every `POST /v1/traces`, answers 200.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut conn = BufReader::new(stream);
                    // requests one after another on the connection (keep-alive)
                    loop {
                        let mut line = String::new();
                        if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let mut len = 0;
                        loop {
                            let mut header = String::new();
                            conn.read_line(&mut header).await.unwrap();
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = header.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    len = v.trim().parse().unwrap();
                                }
                            }
                        }
                        let mut body = vec![0; len];
                        conn.read_exact(&mut body).await.unwrap();
                        if path == "/v1/traces" {
                            kept.lock().unwrap().push(body);
                        }
                        let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n\
                                     content-length: 0\r\n\r\n";
                        conn.get_mut().write_all(reply.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        Receiver { url, bodies }
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<OtlpSpan> {
        let bodies = self.bodies.lock().unwrap();
        bodies
            .iter()
            .map(|b| ExportTraceServiceRequest::decode(&b[..]).expect("OTLP protobuf"))
            .flat_map(|r| r.resource_spans)
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }

    /// The attempt spans of job `id`.
    fn attempts_of(&self, id: &str) -> Vec<OtlpSpan> {
        self.spans()
            .into_iter()
            .filter(|s| attr(s, "jobq.job_id") == Some(json!(id)))
            .collect()
    }
}

/// A span attribute's value, as JSON.
fn attr(span: &OtlpSpan, key: &str) -> Option<Value> {
    let kv = span.attributes.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(json!(s)),
        AnyValue::IntValue(i) => Some(json!(i)),
        AnyValue::BoolValue(b) => Some(json!(b)),
        other => Some(json!(format!("{other:?}"))),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `jobq-worker` on the `diag` queue exporting to `receiver`, with extra `env`.
fn exporting_worker(env: &TestEnv, receiver: &Receiver, extra: &[(&str, &str)]) -> WorkerProcess {
    let mut vars = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str())];
    vars.extend_from_slice(extra);
    WorkerProcess::start_env(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", Q, "--concurrency", "2"],
        &vars,
    )
}

/// Stops `worker` with SIGTERM (its exporter sends what it holds on the way out).
fn stop(worker: &mut WorkerProcess) {
    worker.signal("TERM");
    let code = worker.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "worker log:\n{}", worker.stderr());
}

/// Runs `jobq` with extra environment `vars` against the test's Redis and prefix.
fn jobq_with(env: &TestEnv, vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let spool = TempDir::new("otel-spool");
    std::process::Command::new(bin_path("jobq"))
        .env_remove("TRACEPARENT")
        .env_remove("REDIS_URL")
        .env_remove("JOBQ_PREFIX")
        .env("JOBQ_SPOOL_DIR", spool.as_str())
        .envs(vars.iter().copied())
        .args(["--redis-url", env.config.redis_url().unwrap()])
        .args(["--prefix", env.config.prefix()])
        .args(args)
        .output()
        .expect("run jobq")
}

fn show_json(env: &TestEnv, id: &str) -> Value {
    let out = jobq_with(env, &[], &["--json", "show", Q, id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Checks the one attempt span of job `id` is the child of `trace_id`/`parent_id` and says
/// what it ran.
fn assert_child_attempt(receiver: &Receiver, id: &str, name: &str, trace_id: &str, parent: &str) {
    let spans = receiver.attempts_of(id);
    assert_eq!(spans.len(), 1, "one attempt span of job {id}: {spans:#?}");
    let span = &spans[0];
    assert_eq!(hex(&span.trace_id), trace_id, "the trace given at add");
    assert_eq!(
        hex(&span.parent_span_id),
        parent,
        "the span given at add is its parent"
    );
    assert_eq!(span.name, format!("process {Q}"));
    assert_eq!(attr(span, "jobq.queue"), Some(json!(Q)));
    assert_eq!(attr(span, "jobq.job_name"), Some(json!(name)));
    assert_eq!(attr(span, "jobq.attempt"), Some(json!(1)));
    assert_eq!(attr(span, "jobq.outcome"), Some(json!("completed")));
    assert_eq!(attr(span, "messaging.destination.name"), Some(json!(Q)));
    assert_eq!(attr(span, "messaging.system"), Some(json!("jobq")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_traceparent_is_stored_and_the_worker_exports_the_attempt_as_its_child() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let receiver = Receiver::start().await;
    let tp = traceparent(TRACE_ID, SPAN_ID);
    let out = jobq_with(
        &env,
        &[("TRACEPARENT", &tp)],
        &["add", Q, "diag.echo", "--data", r#"{"x":1}"#],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(show_json(&env, &id)["traceparent"], json!(tp));

    // the default batch delay (5 s) is longer than this test waits for the job: the span
    // arrives because the worker flushes on SIGTERM
    let mut worker = exporting_worker(&env, &receiver, &[]);
    let done = wait_job_done(&q, &id, Duration::from_secs(20)).await;
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.traceparent.as_deref(), Some(tp.as_str()));
    stop(&mut worker);
    assert_child_attempt(&receiver, &id, "diag.echo", TRACE_ID, SPAN_ID);
    assert!(
        worker.stderr().contains("exporting spans over OTLP"),
        "{}",
        worker.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_traceparent_header_is_stored_for_jobs_and_flows_and_exported_as_parent() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let receiver = Receiver::start().await;
    let d = Dashboard::start(&env, &[]).await;
    let c = client();
    let (one_trace, bulk_trace, flow_trace) = (
        "0af7651916cd43dd8448eb211c80319c",
        "1af7651916cd43dd8448eb211c80319c",
        "2af7651916cd43dd8448eb211c80319c",
    );
    let post = |path: &str, trace_id: &str, body: Value| {
        c.post(d.url(path))
            .header("traceparent", traceparent(trace_id, SPAN_ID))
            .json(&body)
            .send()
    };
    let r = post(
        "/api/queues/diag/jobs",
        one_trace,
        json!({"name": "diag.echo", "data": 1}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let one = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = post(
        "/api/queues/diag/jobs",
        bulk_trace,
        json!([{"name": "diag.noop"}, {"name": "diag.noop"}]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let bulk: Vec<String> = r.json::<Value>().await.unwrap()["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    let r = post(
        "/api/flows",
        flow_trace,
        json!({"queue": Q, "name": "diag.noop", "children": [{"queue": Q, "name": "diag.noop"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let tree = r.json::<Value>().await.unwrap();
    let parent = tree["id"].as_str().unwrap().to_string();
    let child = tree["children"][0]["id"].as_str().unwrap().to_string();
    // the API's job JSON carries it too
    let job = c
        .get(d.url(&format!("/api/queues/diag/jobs/{one}")))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        job["traceparent"],
        json!(traceparent(one_trace, SPAN_ID)),
        "{job}"
    );

    let mut worker = exporting_worker(&env, &receiver, &[]);
    for id in [&one, &bulk[0], &bulk[1], &child, &parent] {
        let done = wait_job_done(&q, id, Duration::from_secs(20)).await;
        assert_eq!(done.state, JobState::Completed, "{done:?}");
    }
    stop(&mut worker);
    assert_child_attempt(&receiver, &one, "diag.echo", one_trace, SPAN_ID);
    for id in &bulk {
        assert_child_attempt(&receiver, id, "diag.noop", bulk_trace, SPAN_ID);
    }
    for id in [&parent, &child] {
        assert_child_attempt(&receiver, id, "diag.noop", flow_trace, SPAN_ID);
    }
}

#[tokio::test]
async fn an_add_inside_a_traced_span_records_that_span_as_parent() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    // this (current-thread) runtime's thread: every await below runs under it
    let _default = tracing::subscriber::set_default(subscriber);
    let span = tracing::info_span!("checkout");
    let sc = span.context().span().span_context().clone();
    assert!(sc.is_valid());
    let expected = format!("00-{}-{}-01", sc.trace_id(), sc.span_id());

    let given = traceparent(TRACE_ID, SPAN_ID);
    let (one, bulk, explicit, flow) = async {
        let one = q
            .add("diag.noop", &json!(1), JobOptions::new())
            .await
            .unwrap();
        let bulk = q
            .add_bulk(vec![
                NewJob::new("diag.noop", &2, JobOptions::new()).unwrap()
            ])
            .await
            .unwrap();
        // a traceparent given in the options wins over the caller's span
        let explicit = q
            .add("diag.noop", &3, JobOptions::new().traceparent(&given))
            .await
            .unwrap();
        let flow = FlowProducer::new(&env.redis, env.config.prefix())
            .add(FlowJob::new(Q, "diag.noop", &json!(4)).unwrap())
            .await
            .unwrap();
        (one, bulk, explicit, flow)
    }
    .instrument(span)
    .await;
    for id in [&one.id, &bulk[0].id, &flow.id] {
        let job = q.get_job(id).await.unwrap().unwrap();
        assert_eq!(job.traceparent.as_deref(), Some(expected.as_str()), "{id}");
    }
    let job = q.get_job(&explicit.id).await.unwrap().unwrap();
    assert_eq!(job.traceparent.as_deref(), Some(given.as_str()));

    // outside any span: nothing recorded
    let plain = q.add("diag.noop", &5, JobOptions::new()).await.unwrap();
    let job = q.get_job(&plain.id).await.unwrap().unwrap();
    assert_eq!(job.traceparent, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trace_context_nothing_is_stored_and_without_export_nothing_is_sent() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let receiver = Receiver::start().await;
    // no TRACEPARENT: no `tp` field, `traceparent` null
    let out = jobq_with(&env, &[], &["add", Q, "diag.noop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let shown = show_json(&env, &plain);
    assert_eq!(shown["traceparent"], Value::Null, "{shown}");
    let mut conn = env.raw().await;
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{{{}:{Q}}}:j:{plain}", env.config.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!fields.is_empty(), "the job hash is where the test looks");
    assert!(!fields.contains(&"tp".to_string()), "{fields:?}");

    // export switched off (OTEL_SDK_DISABLED) with an endpoint set: a traced job runs and
    // nothing reaches the receiver, and the worker says nothing of exporting
    let tp = traceparent(TRACE_ID, SPAN_ID);
    let out = jobq_with(&env, &[("TRACEPARENT", &tp)], &["add", Q, "diag.noop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let traced = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut worker = exporting_worker(&env, &receiver, &[("OTEL_SDK_DISABLED", "true")]);
    for id in [&plain, &traced] {
        let done = wait_job_done(&q, id, Duration::from_secs(20)).await;
        assert_eq!(done.state, JobState::Completed);
    }
    stop(&mut worker);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.bodies.lock().unwrap().is_empty());
    assert!(
        !worker.stderr().contains("exporting spans"),
        "{}",
        worker.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_traceparent_is_refused_naming_it_and_nothing_is_added() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let bad = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
    for args in [&["add", Q, "diag.noop"][..], &["add-bulk", Q, "-"][..]] {
        let out = jobq_with(&env, &[("TRACEPARENT", bad)], args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("TRACEPARENT"), "{err}");
        assert!(err.contains(bad), "{err}");
        assert!(err.contains("trace id"), "{err}");
    }
    // a multi-byte character where a field boundary falls: bad input, not a panic
    let multibyte = format!("0é{}", &traceparent(TRACE_ID, SPAN_ID)[3..]);
    let out = jobq_with(
        &env,
        &[("TRACEPARENT", &multibyte)],
        &["add", Q, "diag.noop"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not ASCII"), "{err}");
    let zero = traceparent(TRACE_ID, "0000000000000000");
    let out = jobq_with(&env, &[("TRACEPARENT", &zero)], &["add", Q, "diag.noop"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("parent id is all zero"));

    let d = Dashboard::start(&env, &[]).await;
    let c = client();
    for (path, body) in [
        ("/api/queues/diag/jobs", json!({"name": "diag.noop"})),
        ("/api/queues/diag/jobs", json!([{"name": "diag.noop"}])),
        ("/api/flows", json!({"queue": Q, "name": "diag.noop"})),
    ] {
        let r = c
            .post(d.url(path))
            .header("traceparent", "not-a-traceparent")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let e: Value = r.json().await.unwrap();
        let msg = e["error"].as_str().unwrap_or_default();
        assert!(msg.contains("traceparent header"), "{e}");
        assert!(msg.contains("not-a-traceparent"), "{e}");
    }
    let counts = q.counts().await.unwrap();
    assert_eq!(counts.waiting, 0, "nothing added");

    // an export the worker cannot do is refused at start, naming the variable
    let receiver = Receiver::start().await;
    let mut worker = exporting_worker(&env, &receiver, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
    assert_eq!(worker.wait_exit(Duration::from_secs(20)), Some(2));
    assert!(
        worker
            .stderr()
            .contains("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\""),
        "{}",
        worker.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_stored_traceparent_never_fails_the_job_nor_a_read_of_it() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let receiver = Receiver::start().await;
    let good = traceparent(TRACE_ID, SPAN_ID);
    let multibyte = format!("0é{}", &good[3..]);
    let stored: [&[u8]; 5] = [
        // not UTF-8, claimed beside the good one: it must not cost that one its parent
        b"\xff\xfe00-\x80",
        good.as_bytes(),
        // a field boundary inside a multi-byte character
        multibyte.as_bytes(),
        b"\x1b[31m\n<script>alert(1)</script>",
        &[b'a'; 1 << 20],
    ];
    let mut conn = env.raw().await;
    let mut ids = Vec::new();
    // (given ids, the jobs keep records, hashes, whose `tp` field is overwritten here;
    // plain jobs would be stored lean, their lane entries alone: see the test below)
    for (i, tp) in stored.into_iter().enumerate() {
        let id = q
            .add(
                "diag.echo",
                &json!({"x": 1}),
                JobOptions::new().job_id(format!("tp{i}")),
            )
            .await
            .unwrap()
            .id;
        let _: () = redis::cmd("HSET")
            .arg(format!("{{{}:{Q}}}:j:{id}", env.config.prefix()))
            .arg("tp")
            .arg(tp)
            .query_async(&mut conn)
            .await
            .unwrap();
        ids.push(id);
    }
    shown_and_run_with_only_the_good_one_a_child(&env, &q, &receiver, &ids).await;
}

/// The same corrupt trace contexts in lean jobs (their lane entries alone, no hash: the
/// `t` field), as something other than jobq might write them: no read of them fails, each
/// job completes, and only the good one is exported as a child of the trace it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_traceparent_in_a_lean_entry_never_fails_the_job_nor_a_read_of_it() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let receiver = Receiver::start().await;
    // (a plain job, lean too, opens the lane)
    let plain = q
        .add("diag.echo", &json!({"x": 0}), JobOptions::new())
        .await
        .unwrap()
        .id;
    assert!(plain.starts_with('~'), "{plain}");
    let good = traceparent(TRACE_ID, SPAN_ID);
    let multibyte = format!("0é{}", &good[3..]);
    let stored: [&[u8]; 5] = [
        b"\xff\xfe00-\x80",
        good.as_bytes(),
        multibyte.as_bytes(),
        b"\x1b[31m\n<script>alert(1)</script>",
        &[b'a'; 1 << 20],
    ];
    let mut ids = Vec::new();
    for tp in stored {
        let id = crate::dashboard_support::add_lean_to(
            &env,
            Q,
            &[("n", b"diag.echo"), ("d", b"{\"x\":1}"), ("t", tp)],
        )
        .await;
        ids.push(id);
    }
    shown_and_run_with_only_the_good_one_a_child(&env, &q, &receiver, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_traceparent_headers_get_a_short_400_and_add_nothing() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let d = Dashboard::start(&env, &[]).await;
    let c = client();
    let good = traceparent(TRACE_ID, SPAN_ID);
    let huge = format!("00-{}", "a".repeat(10_000));
    let mut multibyte = b"00-".to_vec();
    multibyte.extend("é".repeat(3000).as_bytes());
    let mut latin1 = good.clone().into_bytes();
    latin1[10] = 0xe9;
    let (upper, extra) = (good.to_uppercase(), format!("{good}-extra"));
    let cases: [(Vec<&[u8]>, &str); 7] = [
        (vec![upper.as_bytes()], "trace id is not"),
        (vec![extra.as_bytes()], "61 characters"),
        (vec![huge.as_bytes()], "separated"),
        (vec![&multibyte], "not visible ASCII"),
        (vec![&latin1], "not visible ASCII"),
        (vec![good.as_bytes(), good.as_bytes()], "more than once"),
        (vec![b""], "0 characters"),
    ];
    for (values, rule) in cases {
        let mut r = c.post(d.url("/api/queues/diag/jobs"));
        for v in &values {
            r = r.header(
                "traceparent",
                reqwest::header::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        let r = r.json(&json!({"name": "diag.noop"})).send().await.unwrap();
        assert_eq!(r.status(), 400, "{rule}");
        let e: Value = r.json().await.unwrap();
        let msg = e["error"].as_str().unwrap_or_default();
        assert!(msg.contains("traceparent header"), "{e}");
        assert!(msg.contains(rule), "{rule}: {e}");
        // the value named, clipped: a 10 KB header is not echoed back whole
        assert!(msg.len() < 400, "{} bytes: {msg}", msg.len());
        assert!(!msg.contains("  "), "{msg}");
    }
    assert_eq!(q.counts().await.unwrap().waiting, 0, "nothing added");

    // a later version with more fields is read as the W3C spec says, stored as version 00
    let later = format!("cc-{TRACE_ID}-{SPAN_ID}-01-what-comes-later");
    let r = c
        .post(d.url("/api/queues/diag/jobs"))
        .header("traceparent", later)
        .json(&json!({"name": "diag.noop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(show_json(&env, &id)["traceparent"], json!(good));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_given_in_code_is_stored_in_its_version_00_form() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let good = traceparent(TRACE_ID, SPAN_ID);
    // a later version may carry more fields, of any length: kept out of the job hash
    let later = format!(" cc-{TRACE_ID}-{SPAN_ID}-01-{}", "x".repeat(5000));
    let mut ids = Vec::new();
    for tp in [later.clone(), format!("{good} ")] {
        let added = q
            .add("diag.noop", &(), JobOptions::new().traceparent(tp))
            .await
            .unwrap();
        ids.push(added.id);
    }
    let flow = FlowJob::new(Q, "diag.noop", &())
        .unwrap()
        .with_traceparent(&later);
    let tree = FlowProducer::new(&env.redis, env.config.prefix())
        .add(flow)
        .await
        .unwrap();
    ids.push(tree.id);
    for id in &ids {
        assert_eq!(show_json(&env, id)["traceparent"], json!(good), "{id}");
    }
}

/// The five jobs `ids` (their trace contexts corrupt but for the second's) are shown by
/// `jobq show` (plain and `--json`, no escape reaching the terminal), the API and the page;
/// each completes, and only the second's attempt is exported as a child of the trace it
/// names, the others each as a trace of its own.
async fn shown_and_run_with_only_the_good_one_a_child(
    env: &TestEnv,
    q: &Queue,
    receiver: &Receiver,
    ids: &[String],
) {
    let d = Dashboard::start(env, &[]).await;
    for id in ids {
        for args in [&["show", Q, id][..], &["--json", "show", Q, id][..]] {
            let out = jobq_with(env, &[], args);
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert!(out.status.success(), "{args:?}: {stderr}");
            assert!(
                !stdout.contains('\u{1b}'),
                "{args:?}: escapes reach the terminal"
            );
        }
        let (status, job) =
            crate::dashboard_support::get_json(&d.url(&format!("/api/queues/{Q}/jobs/{id}"))).await;
        assert_eq!(status, 200, "{job}");
        let (status, page) =
            crate::dashboard_support::get_text(&d.url(&format!("/queues/{Q}/jobs/{id}"))).await;
        assert_eq!(status, 200);
        assert!(!page.contains("<script>alert"), "escaped on the page");
    }

    let mut worker = exporting_worker(env, receiver, &[]);
    for id in ids {
        let done = wait_job_done(q, id, Duration::from_secs(20)).await;
        assert_eq!(
            done.state,
            JobState::Completed,
            "{id}: {:?}",
            done.failed_reason
        );
    }
    stop(&mut worker);
    assert_child_attempt(receiver, &ids[1], "diag.echo", TRACE_ID, SPAN_ID);
    for id in [&ids[0], &ids[2], &ids[3], &ids[4]] {
        let spans = receiver.attempts_of(id);
        assert_eq!(spans.len(), 1, "{id}: a trace of its own");
        assert!(spans[0].parent_span_id.is_empty(), "{id}: no parent");
    }
}
