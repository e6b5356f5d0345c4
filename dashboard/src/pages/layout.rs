//! The shell every page shares: header with breadcrumbs, the links to the pages that are
//! not a queue's (queues, workers, Redis) and the live indicator, the stylesheet,
//! login/logout links, the footer, and the small script that shows whether live updates
//! are connected. Page scripts are static text: they read what they need from
//! escaped `data-` attributes, never from interpolated strings.
//!
//! Every page is a `maud` template: a value spliced into one is escaped, in text and in
//! attributes alike. `PreEscaped` (markup written out as is) is kept for our own constant
//! CSS and scripts, and each use says why it is safe.

use axum::response::Html;
use maud::{html, Markup, PreEscaped, Render, DOCTYPE};

use super::context::{AuthKind, PageCtx};

const CSS: &str = r#"
:root{--fg:#1d232a;--muted:#6b7480;--line:#e3e7ec;--bg:#f6f8fa;--card:#fff;--accent:#2f6fde;
--waiting:#2f6fde;--active:#b26b00;--delayed:#7b4bd6;--completed:#1b8a4b;--failed:#c62f2f;--paused:#6b7480;
--waiting-children:#1f7f8c;--removed:#8a6d3b}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:16px;padding:10px 24px;background:#17202b;color:#fff}
header a{color:#fff;text-decoration:none}header .brand{font-weight:700;letter-spacing:.3px}
header .crumbs a,header .crumbs span{color:#c9d3de}header .crumbs a:hover{color:#fff}
header .spacer{flex:1}header .meta{color:#9fb0c2;font-size:12px}
header nav{display:flex;gap:14px}header nav a{color:#c9d3de}header nav a:hover{color:#fff}
#live{font-size:12px;padding:2px 8px;border-radius:10px;background:#3a4756;color:#c9d3de}
#live.on{background:#1b8a4b;color:#fff}#live.off{background:#c62f2f;color:#fff}
main{padding:20px 24px;max-width:1400px;margin:0 auto}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:20px 0 8px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin-bottom:16px}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle}
th{font-size:12px;text-transform:uppercase;letter-spacing:.4px;color:var(--muted);background:#fbfcfd}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr:last-child td{border-bottom:none}
a{color:var(--accent)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:var(--muted)}
.badge.waiting{background:var(--waiting)}.badge.active{background:var(--active)}.badge.delayed{background:var(--delayed)}
.badge.completed{background:var(--completed)}.badge.failed{background:var(--failed)}.badge.paused{background:var(--paused)}.badge.cancelled{background:var(--paused)}
.badge.running{background:var(--completed)}
.badge.waiting_children{background:var(--waiting-children)}.badge.removed{background:var(--removed)}
.badge.parent{background:#fff;color:var(--waiting-children);border:1px solid var(--waiting-children);font-weight:500}
.count.failed.nonzero{color:var(--failed);font-weight:700}.reason{color:var(--failed)}
.banner{padding:10px 14px;border-radius:6px;margin:0 0 14px;border:1px solid}
.banner.error{background:#fdecec;border-color:#f3b7b7;color:#8a1f1f}
.banner.notice{background:#eaf6ee;border-color:#b5dfc3;color:#1d5e36}
.banner.info{background:#eef3fc;border-color:#c4d5f3;color:#25467e}
.tabs{display:flex;gap:4px;margin:10px 0 0;flex-wrap:wrap}
.tabs a{padding:7px 14px;border:1px solid var(--line);border-bottom:none;border-radius:6px 6px 0 0;background:#eef1f4;color:var(--fg);text-decoration:none}
.tabs a.current{background:var(--card);font-weight:600}
.actions{display:flex;gap:8px;flex-wrap:wrap;align-items:center;margin:8px 0}
form.inline{display:inline}
button,.button{font:inherit;font-size:13px;padding:4px 12px;border-radius:5px;border:1px solid #c5ccd4;background:#fff;cursor:pointer;color:var(--fg)}
button:hover{background:#f0f3f6}button.danger{color:var(--failed);border-color:#e7b1b1}button.primary{background:var(--accent);color:#fff;border-color:var(--accent)}
input,textarea,select{font:inherit;font-size:13px;padding:4px 6px;border:1px solid #c5ccd4;border-radius:5px}
textarea{width:100%;font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#f3f5f7;border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;max-height:420px;margin:0;white-space:pre-wrap;word-break:break-word;font-size:12.5px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
.muted{color:var(--muted)}.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}h1 .mono{font-size:inherit}
.pager{display:flex;gap:12px;align-items:center;margin:10px 0}
svg.chart{display:block;background:#f1f4f7;border-radius:3px}svg.chart path.completed{fill:rgba(27,138,75,.35);stroke:#1b8a4b;stroke-width:1}
svg.chart path.failed{fill:rgba(198,47,47,.35);stroke:#c62f2f;stroke-width:1}
.progress{height:10px;background:#e6eaee;border-radius:5px;overflow:hidden;width:240px;display:inline-block;vertical-align:middle}
.progress>span{display:block;height:100%;background:var(--accent)}
footer{color:var(--muted);font-size:12px;padding:16px 24px;text-align:center}
"#;

/// Shows whether the page's live-update stream is connected; page scripts call
/// `jobqLive(url, handlers)` to open one.
const LIVE_JS: &str = r#"
function jobqLive(url, handlers) {
  const badge = document.getElementById('live');
  const es = new EventSource(url);
  es.onopen = () => { badge.textContent = 'live'; badge.className = 'on'; };
  es.onerror = () => { badge.textContent = 'reconnecting'; badge.className = 'off'; };
  es.addEventListener('status', (e) => {
    const s = JSON.parse(e.data);
    const banner = document.getElementById('redis-banner');
    if (s.redis === 'connected') { banner.hidden = true; }
    else { banner.hidden = false; banner.textContent = 'Redis unreachable: ' + (s.error || 'disconnected'); }
  });
  for (const [name, fn] of Object.entries(handlers)) {
    es.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  }
  return es;
}
"#;

/// The pages every header links to: (label, path).
const NAV: [(&str, &str); 3] = [
    ("Queues", "/"),
    ("Workers", "/workers"),
    ("Redis", "/redis"),
];

/// A whole page: `title`, `body` (a template's markup), breadcrumbs (label, link) and an
/// optional page script, one of the pages' constants (`&'static`: never built from a value).
pub fn page(
    ctx: &PageCtx,
    title: &str,
    body: impl Render,
    crumbs: &[(&str, String)],
    script: &'static str,
) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) " · jobq" }
                // safe: CSS is our own constant, holding no value from a request or Redis
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    a class="brand" href="/" { "jobq" }
                    span class="crumbs" {
                        @for (label, href) in crumbs {
                            " / " a href=(href) { (label) }
                        }
                    }
                    span class="spacer" {}
                    nav {
                        @for (label, href) in NAV {
                            a href=(href) { (label) }
                        }
                    }
                    @if ctx.read_only {
                        span class="badge" { "read-only" }
                    }
                    span class="meta" { "prefix " (ctx.prefix) }
                    span id="live" { @if script.is_empty() { "static" } @else { "connecting" } }
                    @match ctx.auth {
                        AuthKind::Token if ctx.access.session => {
                            form class="inline" method="post" action="/logout" {
                                button { "Log out" }
                            }
                        }
                        AuthKind::Token if !ctx.access.authenticated => {
                            a href="/login" { "Log in" }
                        }
                        _ => {}
                    }
                }
                main {
                    p id="redis-banner" class="banner error" hidden {}
                    (body)
                }
                footer {
                    "jobq dashboard · Redis " (ctx.redis) " · "
                    a href="/api/queues" { "API" } " · "
                    a href="/metrics" { "metrics" } " · "
                    a href="/api/health" { "health" }
                }
                @if !script.is_empty() {
                    // safe: LIVE_JS and `script` are constants of this crate (`&'static`),
                    // holding no value from a request or Redis; scripts read values from
                    // escaped `data-` attributes
                    script { (PreEscaped(LIVE_JS)) (PreEscaped(script)) }
                }
            }
        }
    };
    Html(markup.into_string())
}

/// A banner for an error that stopped part of a page (e.g. Redis unreachable).
pub fn error_banner(message: &str) -> Markup {
    html! { p class="banner error" { (message) } }
}

/// The notice an action left (`?notice=`), if any.
pub fn notice_banner(notice: Option<&str>) -> Markup {
    html! {
        @if let Some(n) = notice.filter(|n| !n.is_empty()) {
            p class="banner notice" { (n) }
        }
    }
}

/// A small POST form with one button (and hidden fields); `confirm`: the question a click
/// asks first (read by the handler from `data-confirm`, never spliced into the script).
pub fn button_form(
    action: &str,
    label: &str,
    class: &str,
    hidden: &[(&str, &str)],
    confirm: Option<&str>,
) -> Markup {
    html! {
        form class="inline" method="post" action=(action)
            onsubmit=[confirm.map(|_| "return confirm(this.dataset.confirm)")]
            data-confirm=[confirm] {
            @for (name, value) in hidden {
                input type="hidden" name=(name) value=(value);
            }
            button class=(class) { (label) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_button_form_holds_its_fields_and_question_escaped() {
        let html = button_form(
            "/queues/a/jobs/x%22/cancel",
            "Cancel",
            "danger",
            &[("return_to", "/q?a=1&b=\"2\"")],
            Some("Cancel <job> \"x\"?"),
        )
        .into_string();
        assert_eq!(
            html,
            "<form class=\"inline\" method=\"post\" action=\"/queues/a/jobs/x%22/cancel\" \
             onsubmit=\"return confirm(this.dataset.confirm)\" \
             data-confirm=\"Cancel &lt;job&gt; &quot;x&quot;?\">\
             <input type=\"hidden\" name=\"return_to\" value=\"/q?a=1&amp;b=&quot;2&quot;\">\
             <button class=\"danger\">Cancel</button></form>"
        );
        let plain = button_form("/p", "Go", "", &[], None).into_string();
        assert_eq!(
            plain,
            "<form class=\"inline\" method=\"post\" action=\"/p\">\
             <button class=\"\">Go</button></form>"
        );
    }
}
