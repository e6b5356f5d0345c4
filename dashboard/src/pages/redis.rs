//! `/redis`: Redis at a glance, a card per node (every master of a cluster): version and
//! uptime, memory used, peak and fragmentation against `maxmemory`, ops/s, clients,
//! keyspace, eviction policy and AOF. What loses jobs is flagged: a banner lists the
//! warnings, and an evicting policy or AOF off carries a red badge where it is shown.

use axum::extract::State;
use axum::response::{Html, Response};
use axum::Extension;
use maud::{html, Markup};
use queue_core::{NodeOverview, RedisOverview};

use super::layout::page;
use super::{respond, PageCtx};
use crate::discovery::overview;
use crate::error::AppError;
use crate::html::{bytes, short_duration};
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
        redis_body(&view),
        &[("redis", "/redis".into())],
        "",
    ))
}

/// The page's content for `view`.
fn redis_body(view: &RedisOverview) -> Markup {
    html! {
        h1 { "Redis" }
        p class="muted" {
            (if view.cluster { "cluster" } else { "one server" })
            " · " (view.nodes.len()) " node(s)"
        }
        @if view.warnings.is_empty() {
            p id="warnings" class="banner notice" { "No warnings." }
        } @else {
            div id="warnings" class="banner error" {
                ul { @for w in &view.warnings { li { (w) } } }
            }
        }
        @for n in &view.nodes { (node_card(n)) }
    }
}

/// A red badge when `bad`, else a plain one.
fn badge(text: &str, bad: bool) -> Markup {
    let class = if bad {
        "badge failed flag"
    } else {
        "badge running"
    };
    html! { span class=(class) { (text) } }
}

fn num(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), |n| n.to_string())
}

fn size(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), bytes)
}

fn node_card(n: &NodeOverview) -> Markup {
    let Some(e) = &n.error else {
        return html! {
            h2 { (n.node) }
            div class="card node" data-node=(n.node) { (facts(n)) }
        };
    };
    html! {
        h2 { (n.node) }
        div class="card node" data-node=(n.node) {
            p class="banner error" { "INFO failed: " (e) }
        }
    }
}

/// What INFO said of a node that answered.
fn facts(n: &NodeOverview) -> Markup {
    let m = &n.memory;
    let max = match m.max_bytes {
        Some(0) => "no limit".to_string(),
        other => size(other),
    };
    let policy_ok = m.policy == "noeviction";
    let aof = &n.aof;
    let mut rows: Vec<(&str, &str, Markup)> = vec![
        ("version", "Version", html! { (n.version) }),
        (
            "uptime",
            "Uptime",
            html! {
                (n.uptime_secs
                    .map_or_else(|| "?".into(), |s| short_duration(s.saturating_mul(1000))))
            },
        ),
        (
            "memory",
            "Memory",
            html! {
                (size(m.used_bytes)) " used · peak " (size(m.peak_bytes)) " · max " (max)
                " · fragmentation "
                (m.fragmentation_ratio.map_or_else(|| "?".into(), |r| format!("{r:.2}")))
            },
        ),
        (
            "policy",
            "Eviction policy",
            html! {
                (badge(&m.policy, !policy_ok))
                @if !policy_ok {
                    " " span class="reason" { "may evict job keys: set noeviction" }
                }
            },
        ),
        (
            "aof",
            "AOF",
            html! {
                @if aof.enabled {
                    (badge("on", false)) " · last rewrite "
                    (badge(&aof.last_rewrite_status, aof.last_rewrite_status != "ok"))
                    " · last write "
                    (badge(&aof.last_write_status, aof.last_write_status != "ok"))
                    @if aof.rewrite_in_progress { " · rewriting now" }
                } @else {
                    (badge("off", true)) " "
                    span class="reason" {
                        "a restart loses jobs added since the last snapshot: set appendonly yes"
                    }
                }
            },
        ),
        ("ops", "Ops/s", html! { (num(n.ops_per_sec)) }),
        (
            "clients",
            "Clients",
            html! {
                (num(n.connected_clients)) " connected · " (num(n.blocked_clients)) " blocked"
            },
        ),
    ];
    if n.loading {
        rows.push(("loading", "Loading", badge("loading its data set", true)));
    }
    rows.push((
        "keyspace",
        "Keyspace",
        html! {
            @if n.keyspace.is_empty() {
                "no keys"
            }
            @for (i, k) in n.keyspace.iter().enumerate() {
                @if i > 0 { " · " }
                (k.db) ": " (k.keys) " keys (" (k.expires) " with a TTL)"
            }
        },
    ));
    html! {
        dl class="facts" {
            @for (field, label, value) in rows {
                dt { (label) }
                dd data-field=(field) { (value) }
            }
        }
    }
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
        let html = redis_body(&view).into_string();
        assert!(html.contains("<li>AOF is &lt;off&gt;</li>"), "{html}");
        assert!(html.contains("<h2>&lt;b&gt;n&lt;/b&gt;</h2>"));
        assert!(html.contains("<span class=\"badge failed flag\">allkeys-lru</span>"));
        assert!(html.contains("<span class=\"badge failed flag\">off</span>"));
        assert!(html.contains("2.0 KiB used") && html.contains("max no limit"));
    }
}
