//! What Redis says about its own work: CPU time (`INFO cpu`), per-command time
//! (`INFO commandstats`) and, for a profile, every top-level call with its time (the slowlog
//! at threshold 0), scripts named by their file in `queue-core/src/scripts/`.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use redis::FromRedisValue;

use crate::redis_server::RunEnv;

async fn info(env: &RunEnv, section: &str) -> Result<String> {
    let mut c = env.redis.conn();
    Ok(redis::cmd("INFO").arg(section).query_async(&mut c).await?)
}

/// Redis's CPU seconds so far, user + sys (`INFO cpu`): the whole server's, so only the
/// bench's own on a private server.
pub async fn cpu_secs(env: &RunEnv) -> Result<f64> {
    let text = info(env, "cpu").await?;
    let field = |name: &str| -> Result<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("INFO cpu has no {name}"))
    };
    Ok(field("used_cpu_sys")? + field("used_cpu_user")?)
}

/// Calls and microseconds of one command, or of one group of calls.
#[derive(Clone, Copy, Default, Debug)]
pub struct Cost {
    pub calls: u64,
    pub usec: u64,
}

/// `INFO commandstats`: command (`evalsha`, `hset`, …) → calls and µs so far. Commands a
/// script runs are counted under their own names too, so the rows overlap with `evalsha`.
pub async fn commandstats(env: &RunEnv) -> Result<HashMap<String, Cost>> {
    let text = info(env, "commandstats").await?;
    let mut out = HashMap::new();
    for line in text.lines() {
        // cmdstat_hset:calls=3,usec=12,usec_per_call=4.00,rejected_calls=0,failed_calls=0
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let mut cost = Cost::default();
        for kv in rest.split(',') {
            match kv.split_once('=') {
                Some(("calls", v)) => cost.calls = v.parse().unwrap_or(0),
                Some(("usec", v)) => cost.usec = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        out.insert(name.to_string(), cost);
    }
    Ok(out)
}

/// `after − before` per command, rows that did not move left out.
pub fn delta(
    before: &HashMap<String, Cost>,
    after: &HashMap<String, Cost>,
) -> HashMap<String, Cost> {
    after
        .iter()
        .filter_map(|(k, a)| {
            let b = before.get(k).copied().unwrap_or_default();
            let d = Cost {
                calls: a.calls.saturating_sub(b.calls),
                usec: a.usec.saturating_sub(b.usec),
            };
            (d.calls > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// The queue scripts' SHA1s → file stems, as queue-core loads them (`prelude.lua` +
/// `<name>.lua`; the flow scripts with `flow.lua` between; the standalone ones alone),
/// read from the source tree.
fn script_names() -> HashMap<String, String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../queue-core/src/scripts");
    let mut names = HashMap::new();
    let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}"));
    let (Ok(prelude), Ok(flow)) = (read("prelude.lua"), read("flow.lua")) else {
        return names;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return names;
    };
    for e in entries.flatten() {
        let path = e.path();
        let (Some(stem), Some("lua")) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let Ok(body) = std::fs::read_to_string(&path) else {
            continue;
        };
        for src in [
            format!("{prelude}{body}"),
            format!("{prelude}{flow}{body}"),
            body,
        ] {
            names.insert(redis::Script::new(&src).get_hash().to_string(), stem.into());
        }
    }
    names
}

/// Logs every top-level call while it lives (slowlog threshold 0, room for `max_len`
/// entries), and puts the server's settings back when read. Only for a server of our own:
/// it empties the slowlog.
pub struct CallLog {
    saved: Vec<(String, String)>,
    max_len: u64,
}

impl CallLog {
    pub async fn start(env: &RunEnv, max_len: u64) -> Result<CallLog> {
        let mut c = env.redis.conn();
        let mut saved = Vec::new();
        for key in ["slowlog-log-slower-than", "slowlog-max-len"] {
            let kv: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(key)
                .query_async(&mut c)
                .await?;
            if let [k, v] = &kv[..] {
                saved.push((k.clone(), v.clone()));
            }
        }
        let _: () = config_set("slowlog-max-len", &max_len.to_string())
            .query_async(&mut c)
            .await?;
        let _: () = redis::cmd("SLOWLOG")
            .arg("RESET")
            .query_async(&mut c)
            .await?;
        let _: () = config_set("slowlog-log-slower-than", "0")
            .query_async(&mut c)
            .await?;
        Ok(CallLog { saved, max_len })
    }

    /// Stops logging and returns the calls logged (see [`Calls`]); fails when the log
    /// overflowed (it would miss the oldest calls).
    pub async fn finish(self, env: &RunEnv) -> Result<Calls> {
        let mut c = env.redis.conn();
        let saved = |key: &str| {
            self.saved
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let threshold = saved("slowlog-log-slower-than").unwrap_or_else(|| "10000".into());
        let _: () = config_set("slowlog-log-slower-than", &threshold)
            .query_async(&mut c)
            .await?;
        let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query_async(&mut c)
            .await?;
        let _: () = redis::cmd("SLOWLOG")
            .arg("RESET")
            .query_async(&mut c)
            .await?;
        let len = saved("slowlog-max-len").unwrap_or_else(|| "128".into());
        let _: () = config_set("slowlog-max-len", &len)
            .query_async(&mut c)
            .await?;
        if entries.len() as u64 >= self.max_len {
            bail!(
                "the slowlog filled up ({} entries): the profile would miss calls",
                self.max_len
            );
        }
        Ok(Calls::group(&entries))
    }
}

/// Where Redis's time went, from the slowlog at threshold 0 (times are Redis's own, as in
/// `INFO commandstats`: a command's wall time inside Redis, so a busy machine inflates them).
#[derive(Default)]
pub struct Calls {
    /// The clients' calls: a script by its file stem (`complete`, `settle`, …), another
    /// command by its name; `inner` is the part of a script's time spent in the commands
    /// it ran (the rest is Lua).
    pub top: HashMap<String, Cost>,
    pub inner: HashMap<String, u64>,
    /// The commands scripts ran, by command.
    pub in_scripts: HashMap<String, Cost>,
}

impl Calls {
    fn group(entries: &[redis::Value]) -> Calls {
        let names = script_names();
        let mut calls = Calls::default();
        // newest first: a script's commands are logged just before it, one script at a time
        let mut pending = 0u64;
        for e in entries.iter().rev() {
            let redis::Value::Array(fields) = e else {
                continue;
            };
            let (Some(usec), Some(redis::Value::Array(args))) = (fields.get(2), fields.get(3))
            else {
                continue;
            };
            let usec = u64::from_redis_value_ref(usec).unwrap_or(0);
            let arg = |i: usize| {
                args.get(i)
                    .and_then(|v| String::from_redis_value_ref(v).ok())
                    .unwrap_or_default()
                    .to_lowercase()
            };
            let cmd = arg(0);
            // a command run by a script has no client address
            let peer = fields
                .get(4)
                .and_then(|v| String::from_redis_value_ref(v).ok());
            if peer.as_deref() == Some("?:0") {
                let g = calls.in_scripts.entry(cmd).or_default();
                g.calls += 1;
                g.usec += usec;
                pending += usec;
                continue;
            }
            let group = match cmd.as_str() {
                // the profile's own calls
                "slowlog" | "config" | "info" => {
                    pending = 0;
                    continue;
                }
                "evalsha" | "evalsha_ro" => {
                    let sha = arg(1);
                    names
                        .get(&sha)
                        .cloned()
                        .unwrap_or_else(|| format!("evalsha {}", &sha[..sha.len().min(8)]))
                }
                "eval" | "eval_ro" => "eval (script sent whole)".to_string(),
                "script" if arg(1) == "load" => "script load (once a script)".to_string(),
                _ => cmd,
            };
            *calls.inner.entry(group.clone()).or_default() += std::mem::take(&mut pending);
            let g = calls.top.entry(group).or_default();
            g.calls += 1;
            g.usec += usec;
        }
        calls
    }
}

/// `CONFIG SET key value`.
fn config_set(key: &str, value: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("SET").arg(key).arg(value);
    cmd
}
