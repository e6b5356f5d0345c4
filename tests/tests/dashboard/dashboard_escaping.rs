//! Every page shows hostile values as text: job ids, names, data, errors, log lines,
//! progress and return values, worker records, schedules, typed form values (the refused
//! schedule and group-limit forms), a queue named in an error page, a notice and the login
//! page's `next`. Each value holds `<script>`, both quotes, `&` and `</textarea>`; each page
//! must show it escaped (so it is on the page) and never raw.

use std::time::Duration;

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

const Q: &str = "esc";

/// A hostile value, told apart by `tag` (no space: job and schedule ids take it too).
fn h(tag: &str) -> String {
    format!("{tag}<script>x</script>\"'&</textarea><b>")
}

/// `s` as one path segment or query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `page` holds no hostile value raw, and the value of each of `tags` escaped.
fn assert_escaped(what: &str, page: &str, tags: &[&str]) {
    for raw in ["<script>x", "</textarea><b>", "\"'&"] {
        assert!(
            !page.contains(raw),
            "{what}: {raw:?} raw in the page:\n{page}"
        );
    }
    for tag in tags {
        let shown = format!("{tag}&lt;script&gt;x&lt;/script&gt;");
        assert!(
            page.contains(&shown),
            "{what}: {tag} not shown escaped:\n{page}"
        );
    }
}

async fn page(d: &Dashboard, path: &str) -> String {
    let (status, page) = get_text(&d.url(path)).await;
    assert!(status < 500, "{path}: {status}\n{page}");
    page
}

async fn form_post(d: &Dashboard, path: &str, form: &[(&str, &str)]) -> String {
    let r = client()
        .post(d.url(path))
        .header("origin", d.origin())
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "{path}: a refused form");
    r.text().await.unwrap()
}

/// A live worker's record, every text field hostile.
async fn plant_hostile_worker(env: &TestEnv) {
    let keys = queue_core::internal::keys::WorkerKeys::new(env.config.prefix());
    let id = h("workerid");
    let info = json!({
        "host": h("host"),
        "pid": 7,
        "version": h("version"),
        "queues": [h("wqueue")],
        "queue_count": 1,
        "concurrency": 2,
        "running": [{"queue": Q, "id": h("running")}],
        "running_count": 1,
    });
    let mut c = env.raw().await;
    let _: () = redis::pipe()
        .cmd("ZADD")
        .arg(keys.registry())
        .arg(now_ms() + 3_600_000)
        .arg(&id)
        .ignore()
        .cmd("HSET")
        .arg(keys.record(&id))
        .arg("info")
        .arg(info.to_string())
        .arg("seen")
        .arg(now_ms())
        .ignore()
        .query_async(&mut c)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_shows_hostile_values_escaped() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let failed = q
        .add(
            &h("failname"),
            &json!({}),
            JobOptions::new().job_id(h("failid")),
        )
        .await
        .unwrap();
    let done = q
        .add(
            &h("okname"),
            &json!({}),
            JobOptions::new().job_id(h("okid")),
        )
        .await
        .unwrap();
    let guard = spawn_worker(
        env.worker()
            .queues([Q])
            .handler(h("failname"), |_j: Job<Value>, _c: Ctx| async move {
                Err::<Value, _>(JobError::new(h("error")))
            })
            .handler(h("okname"), |_j: Job<Value>, c: Ctx| async move {
                c.log(h("log")).await?;
                c.progress(h("progress")).await?;
                Ok::<_, JobError>(json!(h("ret")))
            })
            .build()
            .unwrap(),
    );
    wait_job_done(&q, &failed.id, Duration::from_secs(15)).await;
    wait_job_done(&q, &done.id, Duration::from_secs(15)).await;
    guard.stop().await.unwrap();
    let waiting = q
        .add(
            &h("waitname"),
            &json!({"v": h("data")}),
            JobOptions::new().job_id(h("waitid")),
        )
        .await
        .unwrap();
    q.upsert_schedule(
        Schedule::new(
            h("schedid"),
            h("schedname"),
            Repeat::every(Duration::from_secs(3600)).unwrap(),
        )
        .data(&json!({"v": h("scheddata")}))
        .unwrap(),
    )
    .await
    .unwrap();
    plant_hostile_worker(&env).await;
    let d = Dashboard::start(&env, &[]).await;

    let p = page(&d, &format!("/?notice={}", enc(&h("notice")))).await;
    assert_escaped("overview", &p, &["notice"]);

    let p = page(&d, &format!("/queues/{Q}?state=failed")).await;
    assert_escaped("failed tab", &p, &["failid", "failname", "error"]);
    assert!(
        p.contains(&format!("href=\"/queues/{Q}/jobs/{}\"", enc(&failed.id))),
        "the job's link is percent-encoded:\n{p}"
    );
    let p = page(&d, &format!("/queues/{Q}?state=completed")).await;
    assert_escaped("completed tab", &p, &["okid", "okname", "ret"]);
    let p = page(&d, &format!("/queues/{Q}?state=waiting")).await;
    assert_escaped("waiting tab", &p, &["waitid", "waitname", "data"]);
    let p = page(
        &d,
        &format!(
            "/queues/{Q}?name={}&data={}",
            enc(&h("sname")),
            enc(&h("sdata"))
        ),
    )
    .await;
    assert_escaped("search", &p, &["sname", "sdata"]);

    let job = |id: &str| format!("/queues/{Q}/jobs/{}", enc(id));
    let p = page(&d, &job(&failed.id)).await;
    assert_escaped("failed job", &p, &["failid", "failname", "error"]);
    let p = page(&d, &job(&done.id)).await;
    assert_escaped(
        "completed job",
        &p,
        &["okid", "okname", "log", "progress", "ret"],
    );
    let p = page(&d, &job(&waiting.id)).await;
    assert_escaped("waiting job", &p, &["waitid", "waitname", "data"]);

    let p = page(&d, "/workers").await;
    assert_escaped(
        "workers",
        &p,
        &["workerid", "host", "version", "wqueue", "running"],
    );

    let p = page(&d, &format!("/queues/{Q}/schedules")).await;
    assert_escaped("schedules", &p, &["schedid", "schedname", "scheddata"]);
    let typed_data = json!({"v": h("typeddata")}).to_string();
    let p = form_post(
        &d,
        &format!("/queues/{Q}/schedules"),
        &[
            ("id", &h("typedid")),
            ("name", &h("typedname")),
            ("cron", &h("typedcron")),
            ("data", &typed_data),
            ("opts", &h("typedopts")),
        ],
    )
    .await;
    assert_escaped(
        "refused schedule",
        &p,
        &[
            "typedid",
            "typedname",
            "typedcron",
            "typeddata",
            "typedopts",
        ],
    );

    let p = form_post(
        &d,
        &format!("/queues/{Q}/limits"),
        &[
            ("scope", "group"),
            ("group", &h("group")),
            ("rate", &h("rate")),
        ],
    )
    .await;
    assert_escaped("refused group limit", &p, &["group", "rate"]);

    let p = page(&d, &format!("/queues/{}", enc(&h("queue")))).await;
    assert_escaped("error page", &p, &["queue"]);

    let guarded = Dashboard::start(&env, &["--auth-token", "t0ken-for-tests-0123456789"]).await;
    let p = page(&guarded, &format!("/login?next=/{}", enc(&h("next")))).await;
    assert_escaped("login", &p, &["next"]);
}
