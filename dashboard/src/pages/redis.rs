//! `/redis`: Redis at a glance, a card per node (every master of a cluster): version and
//! uptime, memory used, peak and fragmentation against `maxmemory`, ops/s, clients,
//! keyspace, eviction policy and AOF. What loses jobs is flagged: a banner lists the
//! warnings, and an evicting policy or AOF off carries a red badge where it is shown.

use axum::extract::State;
use axum::response::{Html, Response};
use axum::Extension;
use queue_core::{NodeOverview, RedisOverview};

use super::layout::page;
use super::{respond, PageCtx};
use crate::discovery::overview;
use crate::error::AppError;
use crate::html::{bytes, esc, short_duration};
use crate::session::Access;
use crate::state::AppState;

/// The Redis page.
pub async fn redis_page(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> Response {
    let page = render(&state, access).await;
    respond(&state, access, page)
}

async fn render(state: &AppState, access: Access) -> Result<Html<String>, AppError> {
    let ctx = PageCtx::new(state, Some(access));
    let view = overview(state.backend()).await?;
    Ok(page(
        &ctx,
        "Redis",
        maud::PreEscaped(redis_body(&view)),
        &[("redis", "/redis".into())],
        "",
    ))
}

/// The page's content for `view`.
fn redis_body(view: &RedisOverview) -> String {
    let mut out = format!(
        "<h1>Redis</h1><p class=\"muted\">{} · {} node(s)</p>",
        if view.cluster {
            "cluster"
        } else {
            "one server"
        },
        view.nodes.len()
    );
    if view.warnings.is_empty() {
        out.push_str("<p id=\"warnings\" class=\"banner notice\">No warnings.</p>");
    } else {
        out.push_str("<div id=\"warnings\" class=\"banner error\"><ul>");
        for w in &view.warnings {
            out.push_str(&format!("<li>{}</li>", esc(w)));
        }
        out.push_str("</ul></div>");
    }
    for n in &view.nodes {
        out.push_str(&node_card(n));
    }
    out
}

/// A red badge when `bad`, else a plain one.
fn badge(text: &str, bad: bool) -> String {
    let class = if bad {
        "badge failed flag"
    } else {
        "badge running"
    };
    format!("<span class=\"{class}\">{}</span>", esc(text))
}

fn num(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), |n| n.to_string())
}

fn size(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), bytes)
}

fn node_card(n: &NodeOverview) -> String {
    let mut out = format!(
        "<h2>{}</h2><div class=\"card node\" data-node=\"{}\">",
        esc(&n.node),
        esc(&n.node)
    );
    if let Some(e) = &n.error {
        out.push_str(&format!(
            "<p class=\"banner error\">INFO failed: {}</p></div>",
            esc(e)
        ));
        return out;
    }
    let m = &n.memory;
    let max = match m.max_bytes {
        Some(0) => "no limit".to_string(),
        other => size(other),
    };
    let policy_ok = m.policy == "noeviction";
    let aof = &n.aof;
    let mut rows: Vec<(&str, &str, String)> = vec![
        ("version", "Version", esc(&n.version)),
        (
            "uptime",
            "Uptime",
            n.uptime_secs
                .map_or_else(|| "?".into(), |s| short_duration(s.saturating_mul(1000))),
        ),
        (
            "memory",
            "Memory",
            format!(
                "{} used · peak {} · max {max} · fragmentation {}",
                size(m.used_bytes),
                size(m.peak_bytes),
                m.fragmentation_ratio
                    .map_or_else(|| "?".into(), |r| format!("{r:.2}"))
            ),
        ),
        (
            "policy",
            "Eviction policy",
            format!(
                "{}{}",
                badge(&m.policy, !policy_ok),
                if policy_ok {
                    ""
                } else {
                    " <span class=\"reason\">may evict job keys: set noeviction</span>"
                }
            ),
        ),
        (
            "aof",
            "AOF",
            if aof.enabled {
                format!(
                    "{} · last rewrite {} · last write {}{}",
                    badge("on", false),
                    badge(&aof.last_rewrite_status, aof.last_rewrite_status != "ok"),
                    badge(&aof.last_write_status, aof.last_write_status != "ok"),
                    if aof.rewrite_in_progress {
                        " · rewriting now"
                    } else {
                        ""
                    }
                )
            } else {
                format!(
                    "{} <span class=\"reason\">a restart loses jobs added since the last \
                     snapshot: set appendonly yes</span>",
                    badge("off", true)
                )
            },
        ),
        ("ops", "Ops/s", num(n.ops_per_sec)),
        (
            "clients",
            "Clients",
            format!(
                "{} connected · {} blocked",
                num(n.connected_clients),
                num(n.blocked_clients)
            ),
        ),
    ];
    if n.loading {
        rows.push(("loading", "Loading", badge("loading its data set", true)));
    }
    let keyspace = if n.keyspace.is_empty() {
        "no keys".to_string()
    } else {
        n.keyspace
            .iter()
            .map(|k| format!("{}: {} keys ({} with a TTL)", esc(&k.db), k.keys, k.expires))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    rows.push(("keyspace", "Keyspace", keyspace));
    out.push_str("<dl class=\"facts\">");
    for (field, label, value) in rows {
        out.push_str(&format!(
            "<dt>{label}</dt><dd data-field=\"{field}\">{value}</dd>"
        ));
    }
    out.push_str("</dl></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue_core::{Aof, Memory};

    #[test]
    fn an_evicting_policy_and_aof_off_are_flagged() {
        let node = NodeOverview {
            node: "<b>n</b>".into(),
            version: "7.0.15".into(),
            memory: Memory {
                used_bytes: Some(2048),
                max_bytes: Some(0),
                policy: "allkeys-lru".into(),
                ..Memory::default()
            },
            aof: Aof::default(),
            ..NodeOverview::default()
        };
        let view = RedisOverview {
            cluster: false,
            nodes: vec![node],
            warnings: vec!["AOF is <off>".into()],
        };
        let html = redis_body(&view);
        assert!(html.contains("<li>AOF is &lt;off&gt;</li>"), "{html}");
        assert!(html.contains("<h2>&lt;b&gt;n&lt;/b&gt;</h2>"));
        assert!(html.contains("<span class=\"badge failed flag\">allkeys-lru</span>"));
        assert!(html.contains("<span class=\"badge failed flag\">off</span>"));
        assert!(html.contains("2.0 KiB used") && html.contains("max no limit"));
    }
}
