//! The shell every page shares: header with breadcrumbs, the links to the pages that are
//! not a queue's (queues, workers, Redis) and the live indicator, the stylesheet,
//! login/logout links, the footer, and the small script that shows whether live updates
//! are connected. Page scripts are static text: they read what they need from
//! escaped `data-` attributes, never from interpolated strings.

use axum::response::Html;

use super::context::{AuthKind, PageCtx};
use crate::html::esc;

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

/// A whole page: `title` (escaped here), `body` (already-escaped HTML), breadcrumbs
/// (label, link; escaped here) and an optional static page script.
pub fn page(
    ctx: &PageCtx,
    title: &str,
    body: &str,
    crumbs: &[(&str, String)],
    script: &str,
) -> Html<String> {
    let mut nav = String::new();
    for (label, href) in crumbs {
        nav.push_str(&format!(" / <a href=\"{}\">{}</a>", esc(href), esc(label)));
    }
    let links: String = NAV
        .iter()
        .map(|(label, href)| format!("<a href=\"{href}\">{label}</a>"))
        .collect();
    let account = match ctx.auth {
        AuthKind::Token if ctx.access.session => {
            "<form class=\"inline\" method=\"post\" action=\"/logout\"><button>Log out</button></form>"
                .to_string()
        }
        AuthKind::Token if !ctx.access.authenticated => "<a href=\"/login\">Log in</a>".to_string(),
        _ => String::new(),
    };
    let mode = if ctx.read_only {
        "<span class=\"badge\">read-only</span>"
    } else {
        ""
    };
    let script = if script.is_empty() {
        String::new()
    } else {
        format!("<script>{LIVE_JS}{script}</script>")
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · jobq</title><style>{CSS}</style></head><body>\
         <header><a class=\"brand\" href=\"/\">jobq</a><span class=\"crumbs\">{nav}</span>\
         <span class=\"spacer\"></span><nav>{links}</nav>{mode}\
         <span class=\"meta\">prefix {prefix}</span>\
         <span id=\"live\">{live}</span>{account}</header>\
         <main><p id=\"redis-banner\" class=\"banner error\" hidden></p>{body}</main>\
         <footer>jobq dashboard · Redis {redis} · <a href=\"/api/queues\">API</a> · \
         <a href=\"/metrics\">metrics</a> · <a href=\"/api/health\">health</a></footer>\
         {script}</body></html>",
        title = esc(title),
        prefix = esc(&ctx.prefix),
        live = if script.is_empty() {
            "static"
        } else {
            "connecting"
        },
        redis = esc(&ctx.redis),
    ))
}

/// A banner for an error that stopped part of a page (e.g. Redis unreachable).
pub fn error_banner(message: &str) -> String {
    format!("<p class=\"banner error\">{}</p>", esc(message))
}

/// The notice an action left (`?notice=`), if any.
pub fn notice_banner(notice: Option<&str>) -> String {
    match notice {
        Some(n) if !n.is_empty() => format!("<p class=\"banner notice\">{}</p>", esc(n)),
        _ => String::new(),
    }
}

/// A small POST form with one button (and hidden fields, escaped here).
pub fn button_form(
    action: &str,
    label: &str,
    class: &str,
    hidden: &[(&str, &str)],
    confirm: Option<&str>,
) -> String {
    let mut fields = String::new();
    for (name, value) in hidden {
        fields.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(name),
            esc(value)
        ));
    }
    let onsubmit = confirm
        .map(|c| {
            format!(
                " onsubmit=\"return confirm(this.dataset.confirm)\" data-confirm=\"{}\"",
                esc(c)
            )
        })
        .unwrap_or_default();
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\"{onsubmit}>{fields}<button class=\"{}\">{}</button></form>",
        esc(action),
        esc(class),
        esc(label)
    )
}
