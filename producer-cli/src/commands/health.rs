//! `jobq health`: whether Redis answers (connected / disconnected / not_configured), how
//! fast, its version and the settings that can lose jobs.

use anyhow::Result;
use queue_core::{Config, Redis};
use serde_json::json;

/// Reports the state of Redis; exits 1 when it cannot be reached.
pub async fn health(config: &Config, json: bool) -> Result<()> {
    if config.redis_url().is_none() {
        if json {
            crate::output::json_line(&json!({"status": "not_configured"}));
        } else {
            println!("redis: not_configured (set REDIS_URL or REDIS_HOST)");
        }
        return Ok(());
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
                crate::output::json_line(&json!({
                    "status": "disconnected",
                    "redis": config.masked_url(),
                    "error": e.to_string(),
                }));
            } else {
                println!("redis: disconnected ({})", config.masked_url());
            }
            return Err(e.into());
        }
    };
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if json {
        crate::output::json_line(&json!({
            "status": "connected",
            "redis": redis.addr(),
            "latency_ms": latency_ms,
            "server": info,
            "warnings": info.warnings(),
        }));
    } else {
        println!(
            "redis: connected to {} (Redis {}), latency {latency_ms:.2} ms",
            redis.addr(),
            info.version
        );
        for w in info.warnings() {
            println!("warning: {w}");
        }
    }
    Ok(())
}
