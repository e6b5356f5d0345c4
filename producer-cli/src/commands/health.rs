//! `jobq health`: whether Redis answers (connected / disconnected / not_configured), how
//! fast, its version and the settings that can lose jobs; what producers do while it is
//! down (`JOBQ_FALLBACK`) and the spooled jobs waiting for it.

use anyhow::Result;
use queue_core::producer::spool_files;
use queue_core::{Config, Redis};
use serde_json::{json, Value};

/// Spooled jobs waiting in `JOBQ_SPOOL_DIR`: (files, jobs). Files no replay takes (their
/// header is missing or corrupt) hold no waiting jobs; `jobq spool status` shows them.
fn spooled(config: &Config) -> (usize, u64) {
    let files = spool_files(&config.spool_dir).unwrap_or_default();
    let waiting = files.iter().filter(|f| !f.orphan);
    (waiting.clone().count(), waiting.map(|f| f.jobs).sum())
}

/// The fallback and spool fields every `--json` answer carries.
fn degraded_fields(config: &Config, out: &mut Value) {
    let (files, jobs) = spooled(config);
    out["fallback"] = config.fallback.as_str().into();
    out["spool"] = json!({"dir": config.spool_dir, "files": files, "jobs": jobs});
}

/// The fallback and spool lines of the text answer.
fn print_degraded(config: &Config) {
    println!("fallback: {} (JOBQ_FALLBACK)", config.fallback);
    let (files, jobs) = spooled(config);
    if files > 0 {
        println!(
            "spool: {jobs} job(s) waiting in {files} file(s) in {}",
            config.spool_dir.display()
        );
    }
}

/// Reports the state of Redis; exits 1 when it cannot be reached or is not configured
/// (the report is printed first either way).
pub async fn health(config: &Config, json: bool) -> Result<()> {
    if config.redis_url().is_none() {
        if json {
            let mut out = json!({"status": "not_configured"});
            degraded_fields(config, &mut out);
            crate::output::json_line(&out);
        } else {
            println!("redis: not_configured (set REDIS_URL or REDIS_HOST)");
            print_degraded(config);
        }
        return Err(queue_core::Error::NotConfigured.into());
    }
    let checked = async {
        let redis = Redis::connect(config).await?;
        let latency = redis.ping().await?;
        let info = redis.server_info().await?;
        Ok::<_, queue_core::Error>((redis, latency, info))
    }
    .await;
    let (redis, latency, info) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            if json {
                let mut out = json!({
                    "status": "disconnected",
                    "redis": config.masked_url(),
                    "error": e.to_string(),
                });
                degraded_fields(config, &mut out);
                crate::output::json_line(&out);
            } else {
                println!("redis: disconnected ({})", config.masked_url());
                print_degraded(config);
            }
            return Err(e.into());
        }
    };
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if json {
        let mut out = json!({
            "status": "connected",
            "redis": redis.addr(),
            "latency_ms": latency_ms,
            "server": info,
            "warnings": info.warnings(),
        });
        degraded_fields(config, &mut out);
        crate::output::json_line(&out);
    } else {
        println!(
            "redis: connected to {} (Redis {}{}), latency {latency_ms:.2} ms",
            redis.addr(),
            info.version,
            if redis.is_cluster() { ", cluster" } else { "" }
        );
        for w in info.warnings() {
            println!("warning: {w}");
        }
        let (files, jobs) = spooled(config);
        if files > 0 {
            println!(
                "spool: {jobs} job(s) waiting in {files} file(s) in {} (replayed by workers \
                 and by `jobq spool replay`)",
                config.spool_dir.display()
            );
        }
    }
    Ok(())
}
