//! Search from outside: `jobq search --json` and `GET /api/queues/{q}/jobs?name=&data=…`
//! find exactly the matching jobs for each filter and agree, page by page; bad values are a
//! 400 naming them while a plain listing stays as it was; and the queue page's search box
//! shows matches as text with a link to the next page.

use std::collections::BTreeSet;

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// The query parameters (and `jobq search` flags) of a filter.
fn params(f: &SearchFilter) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(s) = f.state {
        out.push(("state", s.to_string()));
    }
    for (k, v) in [("name", &f.name), ("data", &f.data), ("error", &f.error)] {
        if let Some(v) = v {
            out.push((k, v.clone()));
        }
    }
    if let Some(d) = f.since {
        out.push(("since", format_duration(d)));
    }
    out.push(("limit", f.limit.to_string()));
    if let Some(c) = &f.cursor {
        out.push(("cursor", c.clone()));
    }
    out
}

/// One page by `jobq --json search`: the job ids and the next cursor.
fn cli_page(env: &TestEnv, queue: &str, f: &SearchFilter) -> (Vec<String>, Option<String>) {
    let p = params(f);
    let mut args = vec!["--json".to_string(), "search".into(), queue.into()];
    for (k, v) in &p {
        args.push(format!("--{k}"));
        args.push(v.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = jobq(env, &args);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    page_of(&serde_json::from_str(&text).unwrap())
}

/// One page by the API.
async fn api_page(d: &Dashboard, queue: &str, f: &SearchFilter) -> (Vec<String>, Option<String>) {
    let url =
        reqwest::Url::parse_with_params(&d.url(&format!("/api/queues/{queue}/jobs")), params(f))
            .unwrap();
    let (status, body) = get_json(url.as_str()).await;
    assert_eq!(status, 200, "{url}: {body}");
    page_of(&body)
}

fn page_of(v: &Value) -> (Vec<String>, Option<String>) {
    let ids = v["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("no jobs: {v}"))
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    (ids, v["next"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_by_cli_and_api_finds_exactly_the_matching_jobs_for_each_filter() {
    let env = TestEnv::new().await;
    let fx = SearchFixture::build(&env, "search").await;
    let d = Dashboard::start(&env, &[]).await;
    for (label, filter) in SearchFixture::filters() {
        let want = fx.expect(&filter);
        let whole = filter.clone().limit(1_000);
        let (cli, cli_next) = cli_page(&env, "search", &whole);
        assert_eq!(
            cli.iter().cloned().collect::<BTreeSet<_>>(),
            want,
            "{label}: CLI"
        );
        assert_eq!(cli.len(), want.len(), "{label}: CLI twice");
        assert_eq!(cli_next, None, "{label}");
        let searching = filter.name.is_some()
            || filter.data.is_some()
            || filter.error.is_some()
            || filter.since.is_some();
        if searching {
            let (api, api_next) = api_page(&d, "search", &whole).await;
            assert_eq!(api, cli, "{label}: API and CLI");
            assert_eq!(api_next, None, "{label}");
        } else if filter.state.is_some() {
            // without a search parameter the API lists the state: the same jobs
            let (api, _) = api_page(&d, "search", &whole).await;
            assert_eq!(
                api.into_iter().collect::<BTreeSet<_>>(),
                want,
                "{label}: API"
            );
        }
    }
    // page by page (40 at a time), the CLI and the API hand each other their cursors
    let mut f = SearchFilter::new().data("{").limit(40);
    let mut seen = Vec::new();
    for turn in 0.. {
        let (ids, next) = if turn % 2 == 0 {
            cli_page(&env, "search", &f)
        } else {
            api_page(&d, "search", &f).await
        };
        assert!(ids.len() <= 40);
        seen.extend(ids);
        match next {
            Some(c) => f.cursor = Some(c),
            None => break,
        }
    }
    let all: BTreeSet<String> = fx.jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(seen.len(), 300);
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_api_refuses_bad_values_naming_them_and_plain_listings_stay() {
    let env = TestEnv::new().await;
    let q = env.queue("s").await;
    q.add("t", &json!({"a": 1}), JobOptions::new())
        .await
        .unwrap();
    let d = Dashboard::start(&env, &[]).await;
    let long = "n".repeat(300);
    for (query, named) in [
        ("data=x&state=done", "done"),
        ("since=abc", "abc"),
        ("since=200000000000d", "200000000000d"),
        ("since=0s", "since"),
        ("name=t&limit=0", "limit"),
        ("name=t&limit=1001", "1001"),
        ("name=t&limit=lots", "lots"),
        ("cursor=zz", "zz"),
        ("name=t&offset=5", "offset"),
        (&format!("name={long}") as &str, "name"),
    ] {
        let (status, body) = get_json(&d.url(&format!("/api/queues/s/jobs?{query}"))).await;
        assert_eq!(status, 400, "{query}: {body}");
        let e = body["error"].as_str().unwrap_or_default();
        assert!(e.contains(named), "{query}: {e}");
    }
    // an unknown queue is still a 404
    let (status, _) = get_json(&d.url("/api/queues/nope/jobs?data=x")).await;
    assert_eq!(status, 404);
    // no search parameter (or only empty ones): the listing, as before
    for query in ["", "?state=waiting&limit=5", "?name=&data=&since="] {
        let (status, body) = get_json(&d.url(&format!("/api/queues/s/jobs{query}"))).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["total"], 1, "{query}: {body}");
        assert_eq!(body["offset"], 0, "{query}: {body}");
        assert!(body.get("next").is_none(), "{query}: {body}");
    }
    // `offset=0` is a search's first page (a client following the OpenAPI document sends it)
    for query in ["data=%22a%22", "data=%22a%22&offset=0"] {
        let (status, body) = get_json(&d.url(&format!("/api/queues/s/jobs?{query}"))).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["jobs"].as_array().unwrap().len(), 1, "{query}: {body}");
        assert_eq!(body["next"], Value::Null, "{query}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_page_search_box_shows_matches_as_text_with_a_next_page_link() {
    let env = TestEnv::new().await;
    let q = env.queue("sbox").await;
    let mut ids = BTreeSet::new();
    for i in 0..25 {
        let data = json!({"html": "<img src=x onerror=alert(1)>", "i": i});
        ids.insert(
            q.add("<b>bold</b>", &data, JobOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    q.add("other", &json!({"plain": true}), JobOptions::new())
        .await
        .unwrap();
    let d = Dashboard::start(&env, &[]).await;

    // the box is on the queue page
    let (s, page) = get_text(&d.url("/queues/sbox")).await;
    assert_eq!(s, 200);
    assert!(page.contains("<form id=\"search\""), "{page}");

    // a search for markup: every value shown as text, the typed text kept in the box
    let url = reqwest::Url::parse_with_params(
        &d.url("/queues/sbox"),
        [
            ("data", "<img src=x"),
            ("name", "<b>bold</b>"),
            ("state", ""),
        ],
    )
    .unwrap();
    let (s, page) = get_text(url.as_str()).await;
    assert_eq!(s, 200, "{page}");
    assert!(
        !page.contains("<img src=x") && !page.contains("<b>bold</b>"),
        "{page}"
    );
    assert!(
        page.contains("value=\"&lt;img src=x\""),
        "the search shown in the box"
    );
    let shown = |page: &str| {
        ids.iter()
            .filter(|id| page.contains(&format!("href=\"/queues/sbox/jobs/{id}\"")))
            .count()
    };
    assert_eq!(shown(&page), 20, "a page of 20");
    assert!(!page.contains("other"));
    // the next page, through its link
    let start = page.find("id=\"next\" href=\"").expect("a next page link") + 16;
    let href = page[start..][..page[start..].find('"').unwrap()].replace("&amp;", "&");
    assert!(href.contains("cursor="), "{href}");
    let (s, second) = get_text(&d.url(&href)).await;
    assert_eq!(s, 200);
    assert_eq!(shown(&second), 5);
    assert!(!second.contains("id=\"next\""));

    // a bad value is a 400 page naming it
    let (s, page) = get_text(&d.url("/queues/sbox?since=forever")).await;
    assert_eq!(s, 400);
    assert!(page.contains("forever"), "{page}");
}
