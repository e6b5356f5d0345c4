//! The dashboard in a real browser: headless Debian `chromium` driven through `chromedriver`
//! (the W3C WebDriver protocol, as JSON over HTTP). The overview updates a queue's counts
//! live when the CLI adds a job (no reload: a marker set in the page survives), a new queue
//! appears as a new row, and a failed job is retried with the button on its page and is
//! seen to complete. A schedule is added from the schedules page's form, listed with its next
//! run and removed with its button, and a rate limit is set from the limits page. The Workers
//! and Redis pages render from the header links.
//!
//! Needs `chromium` and `chromium-driver` (Debian packages; `scripts/test` installs them).
//! Without them this test fails and says so rather than skipping.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::dashboard_support::*;
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};

/// The key of an element reference in WebDriver replies.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_on_path(names: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A `chromedriver` process on a free port. When dropped (also when a test panics) it
/// ends the browser sessions it started, then is killed: no browser outlives the test.
struct Driver {
    child: Child,
    port: u16,
    sessions: Mutex<Vec<String>>,
}

impl Driver {
    async fn start() -> (Driver, std::path::PathBuf) {
        let missing = "chromium and chromedriver are required for the browser test: install them \
                       with `sudo apt-get install chromium chromium-driver` (scripts/test does)";
        let driver = find_on_path(&["chromedriver"]).expect(missing);
        let browser = find_on_path(&["chromium", "chromium-browser"]).expect(missing);
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(missing);
        let d = Driver {
            child,
            port,
            sessions: Mutex::default(),
        };
        let http = client();
        eventually(
            Duration::from_secs(20),
            "chromedriver to be ready",
            || async {
                let r = http
                    .get(format!("http://127.0.0.1:{port}/status"))
                    .send()
                    .await
                    .ok()?;
                let v: Value = r.json().await.ok()?;
                (v["value"]["ready"] == true).then_some(())
            },
        )
        .await;
        (d, browser)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let sessions =
            std::mem::take(&mut *self.sessions.lock().unwrap_or_else(|e| e.into_inner()));
        for id in sessions {
            // a plain blocking request: this may run while a panic unwinds the runtime
            let _ = delete_session(self.port, &id);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `DELETE /session/{id}`: chromedriver closes that browser.
fn delete_session(port: u16, id: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    // the reply comes once the browser is closed (chromedriver keeps the connection open)
    let mut reply = [0u8; 1024];
    let _ = s.read(&mut reply)?;
    Ok(())
}

/// One browser session.
struct Session {
    http: reqwest::Client,
    base: String,
}

impl Session {
    async fn new(driver: &Driver, browser: &std::path::Path) -> Session {
        let http = client();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"],
            },
        }}});
        let r = http
            .post(format!("http://127.0.0.1:{}/session", driver.port))
            .json(&caps)
            .send()
            .await
            .expect("new WebDriver session");
        let v: Value = r.json().await.unwrap();
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not start chromium: {v}"))
            .to_string();
        driver
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.clone());
        Session {
            http,
            base: format!("http://127.0.0.1:{}/session/{id}", driver.port),
        }
    }

    /// Sends a command; `Ok(value)` or `Err(the WebDriver error name)`.
    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match v["value"]["error"].as_str() {
            Some(e) => Err(format!("{e}: {}", v["value"]["message"])),
            None => Ok(v["value"].clone()),
        }
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .unwrap();
    }

    async fn find(&self, css: &str) -> Result<String, String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        v[ELEMENT]
            .as_str()
            .map(String::from)
            .ok_or_else(|| format!("no element reference in {v}"))
    }

    async fn text(&self, css: &str) -> Result<String, String> {
        let el = self.find(css).await?;
        let v = self
            .cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await?;
        Ok(v.as_str().unwrap_or("").to_string())
    }

    /// Sends `action` (`click`, `clear`, `value`) to the element `css` selects.
    async fn on(&self, css: &str, action: &str, body: Value) {
        let el = self
            .find(css)
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/{action}"),
            Some(body),
        )
        .await
        .unwrap_or_else(|e| panic!("{action} {css}: {e}"));
    }

    async fn click(&self, css: &str) {
        self.on(css, "click", json!({})).await;
    }

    /// Empties a form field, then types `text` into it.
    async fn fill(&self, css: &str, text: &str) {
        self.on(css, "clear", json!({})).await;
        self.on(css, "value", json!({"text": text})).await;
    }

    /// Accepts the `confirm()` dialog a click opened (waiting for it to open).
    async fn accept_dialog(&self) {
        let start = Instant::now();
        loop {
            match self
                .cmd(reqwest::Method::POST, "/alert/accept", Some(json!({})))
                .await
            {
                Ok(_) => return,
                Err(e) if start.elapsed() > Duration::from_secs(5) => {
                    panic!("no dialog to accept: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(15)).await,
            }
        }
    }

    async fn exec(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
        .unwrap()
    }

    /// Polls the text of `css` until `want` holds; the text and how long it took.
    async fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        want: impl Fn(&str) -> bool,
    ) -> (String, Duration) {
        let start = Instant::now();
        let mut last = Err(String::from("not looked yet"));
        while start.elapsed() < timeout {
            last = self.text(css).await;
            if let Ok(t) = &last {
                if want(t) {
                    return (t.clone(), start.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        let page = self
            .exec("return location.href + '\\n' + document.body.innerText.slice(0, 800);")
            .await;
        panic!(
            "{css} did not reach the wanted text within {timeout:?}; last: {last:?}; page:\n{page}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_updates_live_and_a_failed_job_is_retried_from_its_page() {
    let (driver, browser) = Driver::start().await;
    let env = TestEnv::new().await;
    let watch = env.queue("watch").await;
    watch
        .add("diag.noop", &json!({}), JobOptions::new())
        .await
        .unwrap();
    let d = Dashboard::start(&env, &[]).await;
    let s = Session::new(&driver, &browser).await;

    // the overview, connected to its live stream
    s.goto(&d.url("/")).await;
    s.wait_text("#live", Duration::from_secs(15), |t| t == "live")
        .await;
    let waiting = "tr[data-queue=\"watch\"] [data-field=\"waiting\"]";
    assert_eq!(s.text(waiting).await.unwrap(), "1");
    s.exec("window.jobqMarker = 'kept'; return true;").await;

    // a job added by the CLI shows without a reload
    jobq(&env, &["add", "watch", "diag.noop"]);
    let (_, took) = s
        .wait_text(waiting, Duration::from_secs(5), |t| t == "2")
        .await;
    eprintln!("the CLI's job showed on the overview {took:?} after the CLI returned");
    assert!(took <= Duration::from_secs(1), "took {took:?}");
    assert_eq!(
        s.exec("return window.jobqMarker;").await,
        "kept",
        "the page was not reloaded"
    );

    // a new queue gets a row; its job fails once
    let first_failed = Arc::new(AtomicBool::new(false));
    let flag = first_failed.clone();
    let worker = env
        .worker()
        .queues(["work"])
        .handler("flaky", move |_j: Job<Value>, _c: Ctx| {
            let flag = flag.clone();
            async move {
                if !flag.swap(true, Ordering::SeqCst) {
                    return Err(JobError::new("first attempt fails on purpose"));
                }
                Ok::<_, JobError>(json!({"ok": true}))
            }
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    let work = env.queue("work").await;
    let job = work
        .add("flaky", &json!({"n": 1}), JobOptions::new())
        .await
        .unwrap();
    let failed = wait_job_done(&work, &job.id, Duration::from_secs(15)).await;
    assert_eq!(failed.state, JobState::Failed);
    s.wait_text(
        "tr[data-queue=\"work\"] [data-field=\"failed\"]",
        Duration::from_secs(5),
        |t| t == "1",
    )
    .await;
    assert_eq!(s.exec("return window.jobqMarker;").await, "kept");

    // from the failed tab to the job's page, then Retry
    s.goto(&d.url("/queues/work?state=failed")).await;
    s.click(&format!("tr[data-job=\"{}\"] a", job.id)).await;
    s.wait_text("h1 .badge", Duration::from_secs(10), |t| t == "failed")
        .await;
    assert!(s
        .text("pre.error")
        .await
        .unwrap()
        .contains("first attempt fails on purpose"));
    s.click("form[action$=\"/retry\"] button").await;
    s.wait_text(".banner.notice", Duration::from_secs(10), |t| {
        t.contains("retrying job")
    })
    .await;
    // the worker runs it again; the page follows the job's events
    s.wait_text("h1 .badge", Duration::from_secs(15), |t| t == "completed")
        .await;
    assert_eq!(work.job(&job.id).await.unwrap().state, JobState::Completed);

    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_cancelled_with_the_button_on_its_page() {
    let (driver, browser) = Driver::start().await;
    let env = TestEnv::new().await;
    let q = env.queue("stop").await;
    let d = Dashboard::start(&env, &[]).await;
    let s = Session::new(&driver, &browser).await;
    let guard = spawn_worker(crate::dashboard_cancel::diag_worker(&env, "stop"));
    let job = start_long_job(&q, "diag.sleep", JobOptions::new(), Duration::from_secs(10)).await;
    s.goto(&d.url(&format!("/queues/stop/jobs/{job}"))).await;
    s.wait_text("h1 .badge", Duration::from_secs(10), |t| t == "active")
        .await;
    // the button asks first: say yes
    s.exec("window.confirm = () => true; return true;").await;
    s.click("form[action$=\"/cancel\"] button").await;
    s.wait_text(".banner.notice", Duration::from_secs(10), |t| {
        t.contains("cancelling job")
    })
    .await;
    // the worker stops it; the page follows the job's events
    s.wait_text("h1 .badge", Duration::from_secs(10), |t| t == "cancelled")
        .await;
    assert_eq!(q.job(&job).await.unwrap().state, JobState::Cancelled);
    // a cancelled job offers Retry, not Cancel
    assert!(s.find("form[action$=\"/retry\"] button").await.is_ok());
    assert!(s.find("form[action$=\"/cancel\"] button").await.is_err());
    guard.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_is_added_and_removed_and_a_rate_limit_set_from_the_pages() {
    let (driver, browser) = Driver::start().await;
    let env = TestEnv::new().await;
    let q = env.queue("steer").await;
    q.register().await.unwrap();
    let d = Dashboard::start(&env, &[]).await;
    let s = Session::new(&driver, &browser).await;

    // from the queue page to its schedules; the add form
    s.goto(&d.url("/queues/steer")).await;
    s.click("#steer a[href$=\"/schedules\"]").await;
    s.wait_text("h1", Duration::from_secs(10), |t| t == "Schedules of steer")
        .await;
    assert!(s.find("#no-schedules").await.is_ok());
    s.click("details summary").await;
    s.fill("#add-schedule input[name=\"id\"]", "nightly").await;
    s.fill("#add-schedule input[name=\"name\"]", "analytics.rollup")
        .await;
    s.fill("#add-schedule input[name=\"cron\"]", "0 30 3 * * *")
        .await;
    s.fill(
        "#add-schedule textarea[name=\"data\"]",
        "{\"day\": \"yesterday\"}",
    )
    .await;
    s.click("#add-schedule button").await;
    s.wait_text(".banner.notice", Duration::from_secs(10), |t| {
        t.contains("added schedule nightly")
    })
    .await;

    // listed with its next run: 03:30 UTC, the one queue-core computed
    let stored = q.schedule("nightly").await.unwrap().expect("stored");
    assert_eq!(stored.data, json!({"day": "yesterday"}));
    let next = stored.next_run_ms.unwrap();
    assert_eq!(next % 86_400_000, (3 * 3600 + 30 * 60) * 1000);
    let row = "tr[data-schedule=\"nightly\"]";
    let shown = s
        .text(&format!("{row} [data-field=\"next-run\"]"))
        .await
        .unwrap();
    let day = queue_core::internal::clock::utc_day(next as i64);
    let when = format!("{day} 03:30:00.000 UTC");
    assert!(
        shown.starts_with(&when) && shown.contains(" in "),
        "{shown}"
    );
    assert!(s.text(&format!("{row} td")).await.unwrap() == "nightly");

    // removed with its button (after the confirmation)
    s.click(&format!("{row} button")).await;
    s.accept_dialog().await;
    s.wait_text(".banner.notice", Duration::from_secs(10), |t| {
        t.contains("removed schedule nightly")
    })
    .await;
    assert!(s.find("#no-schedules").await.is_ok());
    assert!(q.schedule("nightly").await.unwrap().is_none());

    // a rate limit from the limits page
    s.goto(&d.url("/queues/steer")).await;
    s.click("#steer a[href$=\"/limits\"]").await;
    s.wait_text("h1", Duration::from_secs(10), |t| t == "Limits of steer")
        .await;
    assert_eq!(
        s.text("#queue-limits [data-limit=\"rate\"]").await.unwrap(),
        "none"
    );
    s.fill("#queue-limits-form input[name=\"rate\"]", "50/1s")
        .await;
    s.click("#queue-limits-form button").await;
    s.wait_text(".banner.notice", Duration::from_secs(10), |t| {
        t.contains("queue limits saved: rate 50/1s")
    })
    .await;
    assert_eq!(
        s.text("#queue-limits [data-limit=\"rate\"]").await.unwrap(),
        "50/1s"
    );
    assert_eq!(
        q.limits().await.unwrap(),
        Limits {
            rate_max: Some(50),
            rate_window_ms: Some(1000),
            concurrency: None,
            corrupt: None,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_and_redis_pages_render_from_the_header_links() {
    let (driver, browser) = Driver::start().await;
    let env = TestEnv::new().await;
    let worker = WorkerProcess::start(
        env.config.redis_url().unwrap(),
        env.config.prefix(),
        &["--queues", "diag", "--heartbeat", "200ms"],
    );
    let d = Dashboard::start(&env, &[]).await;
    let s = Session::new(&driver, &browser).await;
    s.goto(&d.url("/")).await;
    s.click("header nav a[href=\"/workers\"]").await;
    let pid = worker.child.id().to_string();
    // the worker's first heartbeat may come after the first look
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.text("#worker-count").await.as_deref() != Ok("1") {
        assert!(Instant::now() < deadline, "the worker was never listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.exec("location.reload(); return true;").await;
    }
    let (row, _) = s
        .wait_text("#workers tbody tr", Duration::from_secs(5), |t| {
            t.contains(&pid)
        })
        .await;
    assert!(row.contains("diag") && row.contains("0 of 16"), "{row}");

    s.click("header nav a[href=\"/redis\"]").await;
    s.wait_text("#warnings", Duration::from_secs(10), |t| {
        t.contains("AOF is off")
    })
    .await;
    assert_eq!(s.text("[data-field=\"aof\"] .badge").await.unwrap(), "off");
    assert_eq!(
        s.text("[data-field=\"policy\"] .badge").await.unwrap(),
        "noeviction"
    );
    assert!(s
        .text("[data-field=\"memory\"]")
        .await
        .unwrap()
        .contains("used"));
}
