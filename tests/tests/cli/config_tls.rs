//! `rediss://` is real TLS: a job goes through a TLS-only Redis port, and the server's
//! certificate is verified unless the URL says `#insecure`.

use std::process::Command;
use std::time::Duration;

use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

fn self_signed_cert(dir: &std::path::Path) {
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl must be installed (scripts/test installs it)")
        .status
        .success();
    assert!(ok, "openssl could not make a certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_url_runs_jobs_over_tls_and_verifies_the_certificate() {
    let certs = std::env::temp_dir().join(format!("jobq-tls-{}", free_port()));
    std::fs::create_dir_all(&certs).unwrap();
    self_signed_cert(&certs);
    let tls_port = free_port().to_string();
    let cert = certs.join("cert.pem").display().to_string();
    let key = certs.join("key.pem").display().to_string();
    let _server = RedisServer::start(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &cert,
        "--tls-auth-clients",
        "no",
    ]);

    // verification is on: a self-signed certificate is refused
    let strict = Config::new(format!("rediss://127.0.0.1:{tls_port}")).unwrap();
    let err = Redis::connect(&strict).await.unwrap_err().to_string();
    assert!(
        err.to_lowercase().contains("certificate"),
        "expected a certificate error, got: {err}"
    );

    // with #insecure the same server works end to end
    let env = TestEnv::on(&format!("rediss://127.0.0.1:{tls_port}/#insecure")).await;
    let q = env.queue("tls").await;
    let added = q
        .add("echo", &json!({"over": "tls"}), JobOptions::new())
        .await
        .unwrap();
    let worker = env
        .worker()
        .queues(["tls"])
        .handler("echo", |j: Job<Value>, _c: Ctx| async move {
            Ok::<_, JobError>(j.data)
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 1, Duration::from_secs(5)).await;
    guard.stop().await.unwrap();
    let job = q.job(&added.id).await.unwrap();
    assert_eq!(job.return_value, Some(json!({"over": "tls"})));
    let _ = std::fs::remove_dir_all(&certs);
}
