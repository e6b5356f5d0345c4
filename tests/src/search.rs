//! A queue of 300 jobs in every state a running queue has (waiting in lanes and in groups,
//! active, delayed, retrying, completed, failed, cancelled, waiting for children), with
//! varied names, data and failure reasons, some of them created hours ago; and what each
//! search filter must find in it, worked out from what was added, not from the search. The
//! library, CLI and API search tests share it.

use std::collections::BTreeSet;
use std::time::Duration;

use queue_core::{
    Backoff, Ctx, FlowJob, FlowProducer, Job, JobError, JobOptions, JobState, NewJob, Queue,
    SearchFilter,
};
use serde_json::{json, Value};

use crate::{add_all, eventually, now_ms, spawn_worker, wait_active, TestEnv, WorkerGuard};

/// One job of the fixture as it was made.
#[derive(Debug, Clone)]
pub struct Made {
    pub id: String,
    pub name: String,
    /// Its data as stored (JSON text).
    pub data: String,
    pub error: Option<String>,
    pub state: JobState,
    /// Created 3 hours ago (its `ts` rewritten).
    pub old: bool,
}

/// The fixture: the queue, its jobs, and the worker holding the active ones.
pub struct SearchFixture {
    pub queue: Queue,
    pub jobs: Vec<Made>,
    worker: Option<WorkerGuard>,
}

/// Jobs the worker holds running (until it stops).
pub const ACTIVE: usize = 8;
/// Text placed past the first 4 KiB of a long data: a search does not see it.
pub const LATE: &str = "needle-late";
/// Text at the start of the same long data: a search sees it.
pub const EARLY: &str = "needle-early";

/// Bytes of data a search looks at (queue-core's `SEARCH_DATA_BYTES`).
const SEARCHED: usize = queue_core::search::SEARCH_DATA_BYTES;

impl SearchFixture {
    /// Builds the 300 jobs in queue `name` of `env` (a second queue, `<name>-kids`, holds
    /// the flow parent's child).
    pub async fn build(env: &TestEnv, name: &str) -> SearchFixture {
        let q = env.queue(name).await;
        let mut jobs = Vec::new();
        let data = |v: Value| serde_json::to_string(&v).unwrap();

        // run by the worker: 40 completed, 30 failed, 10 failed once and retrying in an hour
        let mut run = Vec::new();
        for i in 0..40 {
            let lang = if i % 2 == 0 { "fr" } else { "de" };
            run.push((
                "mail.send",
                json!({"to": format!("user{i}@example.com"), "lang": lang}),
                JobState::Completed,
                None,
                JobOptions::new(),
            ));
        }
        for i in 0..30 {
            let err = if i % 3 == 0 {
                "timeout after 30s talking to smtp".to_string()
            } else {
                format!("report {i}: disk full")
            };
            run.push((
                "report.build",
                json!({"report": i, "err": err}),
                JobState::Failed,
                Some(err),
                JobOptions::new(),
            ));
        }
        for i in 0..10 {
            let err = "rate limited by upstream (429)".to_string();
            run.push((
                "report.build",
                json!({"report": 100 + i, "err": err}),
                JobState::Delayed,
                Some(err),
                JobOptions::new()
                    .attempts(2)
                    .backoff(Backoff::fixed(Duration::from_secs(3600))),
            ));
        }
        let ids = add_all(
            &q,
            run.iter()
                .map(|(n, d, _, _, o)| NewJob::new(*n, d, o.clone()).unwrap())
                .collect(),
        )
        .await;
        for (id, (n, d, st, e, _)) in ids.into_iter().zip(run) {
            jobs.push(Made {
                id,
                name: n.into(),
                data: data(d),
                error: e,
                state: st,
                old: false,
            });
        }
        let worker = env
            .worker()
            .queues([name])
            .concurrency(ACTIVE + 4)
            .grace(Duration::from_millis(500))
            .handler("mail.send", |_j: Job<Value>, _c: Ctx| async {
                Ok::<_, JobError>(())
            })
            .handler("report.build", |j: Job<Value>, _c: Ctx| async move {
                Err::<(), _>(JobError::new(j.data["err"].as_str().unwrap_or("?")))
            })
            .handler("video.transcode", |_j: Job<Value>, c: Ctx| async move {
                c.cancellation_token().cancelled().await;
                Err::<(), _>(JobError::new("stopped"))
            })
            .build()
            .unwrap();
        let guard = spawn_worker(worker);
        eventually(
            Duration::from_secs(60),
            "the run jobs to settle",
            || async {
                let c = q.counts().await.ok()?;
                (c.completed == 40 && c.failed == 30 && c.delayed == 10).then_some(())
            },
        )
        .await;

        // 8 held running; the queue's concurrency cap then keeps every later job waiting
        q.set_global_concurrency(ACTIVE as u32).await.unwrap();
        let held: Vec<Value> = (0..ACTIVE)
            .map(|i| json!({"src": format!("movie{i}.mp4")}))
            .collect();
        let ids = add_all(
            &q,
            held.iter()
                .map(|d| NewJob::new("video.transcode", d, JobOptions::new()).unwrap())
                .collect(),
        )
        .await;
        for (id, d) in ids.into_iter().zip(held) {
            jobs.push(Made {
                id,
                name: "video.transcode".into(),
                data: data(d),
                error: None,
                state: JobState::Active,
                old: false,
            });
        }
        wait_active(&q, ACTIVE as u64, Duration::from_secs(30)).await;

        // 131 waiting in lanes of three priorities, 40 in groups, 40 delayed (5 then cancelled)
        let mut later = Vec::new();
        for i in 0..131 {
            let name = ["mail.send", "mail.send.bulk", "video.transcode"][i % 3];
            let d = match i {
                0..=4 => json!({"blob": format!("{EARLY} {} {LATE}", "x".repeat(5000))}),
                5..=14 => json!({"city": "Café de Flore", "n": i}),
                _ => json!({"to": format!("user{i}@example.com"), "n": i}),
            };
            let prio = [0, 5, -3][i % 3];
            later.push((name, d, JobState::Waiting, JobOptions::new().priority(prio)));
        }
        for i in 0..40 {
            let group = if i % 2 == 0 { "tenant:a" } else { "tenant:b" };
            later.push((
                "mail.send",
                json!({"to": format!("grouped{i}@example.org")}),
                JobState::Waiting,
                JobOptions::new().group(group),
            ));
        }
        for i in 0..40 {
            let name = if i % 2 == 0 {
                "mail.send"
            } else {
                "report.build"
            };
            later.push((
                name,
                json!({"to": format!("later{i}@example.net")}),
                JobState::Delayed,
                JobOptions::new().delay(Duration::from_secs(3600)),
            ));
        }
        let ids = add_all(
            &q,
            later
                .iter()
                .map(|(n, d, _, o)| NewJob::new(*n, d, o.clone()).unwrap())
                .collect(),
        )
        .await;
        for (id, (n, d, st, _)) in ids.into_iter().zip(later) {
            jobs.push(Made {
                id,
                name: n.into(),
                data: data(d),
                error: None,
                state: st,
                old: false,
            });
        }

        // 5 of the delayed ones cancelled
        let delayed = jobs.iter_mut().filter(|j| j.state == JobState::Delayed);
        for job in delayed.skip(10).step_by(8) {
            q.cancel(&job.id).await.unwrap();
            job.state = JobState::Cancelled;
        }

        // a flow's parent waiting for a child of another queue
        let parent = json!({"summary": "weekly"});
        let tree =
            FlowProducer::new(&env.redis, env.config.prefix())
                .add(FlowJob::new(name, "report.build", &parent).unwrap().child(
                    FlowJob::new(format!("{name}-kids"), "report.part", &json!({})).unwrap(),
                ))
                .await
                .unwrap();
        jobs.push(Made {
            id: tree.id,
            name: "report.build".into(),
            data: data(parent),
            error: None,
            state: JobState::WaitingChildren,
            old: false,
        });
        assert_eq!(jobs.len(), 300);

        // every fifth job with a record was created 3 hours ago (a lean job's add time is
        // its lane entry's: it cannot be rewritten)
        let mut conn = env.raw().await;
        let then = now_ms() - 3 * 3_600_000;
        for (i, job) in jobs.iter_mut().enumerate() {
            if i % 5 == 0 && !job.id.starts_with('~') {
                job.old = true;
                let _: () = redis::cmd("HSET")
                    .arg(format!("{{{}:{name}}}:j:{}", env.config.prefix(), job.id))
                    .arg("ts")
                    .arg(then)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        }
        let c = q.counts().await.unwrap();
        assert_eq!(
            (
                c.waiting,
                c.active,
                c.delayed,
                c.completed,
                c.failed,
                c.waiting_children
            ),
            (171, ACTIVE as u64, 45, 40, 30, 1),
            "{c:?}"
        );
        assert_eq!(c.cancelled, 5, "{c:?}");
        SearchFixture {
            queue: q,
            jobs,
            worker: Some(guard),
        }
    }

    /// The ids `filter` must find (its limit and cursor aside), from what was added.
    pub fn expect(&self, filter: &SearchFilter) -> BTreeSet<String> {
        let hours = filter.since.map(|d| d.as_secs_f64() / 3600.0);
        // within 10 minutes: every new job; the old ones are 3 hours old
        assert!(
            hours.is_none_or(|h| (0.2..=2.0).contains(&h) || h >= 4.0),
            "since {:?} is too close to the fixture's ages",
            filter.since
        );
        let text = |want: &Option<String>, have: Option<&str>| match want.as_deref() {
            None | Some("") => true,
            Some(w) => have.is_some_and(|h| h.contains(w)),
        };
        self.jobs
            .iter()
            .filter(|j| filter.state.is_none_or(|s| s == j.state))
            .filter(|j| {
                filter
                    .name
                    .as_deref()
                    .is_none_or(|n| n.is_empty() || n == j.name)
            })
            .filter(|j| text(&filter.data, Some(&j.data[..j.data.len().min(SEARCHED)])))
            .filter(|j| text(&filter.error, j.error.as_deref()))
            .filter(|j| !(j.old && hours.is_some_and(|h| h <= 2.0)))
            .map(|j| j.id.clone())
            .collect()
    }

    /// The filters the tests try, each with a label: every state, names, data, reasons,
    /// ages, and some together.
    pub fn filters() -> Vec<(&'static str, SearchFilter)> {
        let f = SearchFilter::new;
        let mut out = vec![("everything", f())];
        for s in JobState::ALL {
            out.push((s.as_str(), f().state(s)));
        }
        out.extend([
            ("name mail.send (not mail.send.bulk)", f().name("mail.send")),
            ("name mail.send.bulk", f().name("mail.send.bulk")),
            ("name nobody has", f().name("mail")),
            ("data example.com", f().data("example.com")),
            ("data café", f().data("Café de")),
            ("data JSON text", f().data(r#""lang":"fr""#)),
            ("data early in a long value", f().data(EARLY)),
            ("data past the searched bytes", f().data(LATE)),
            ("error disk full", f().error("disk full")),
            ("error rate limited (retrying)", f().error("rate limited")),
            (
                "error timeout, failed only",
                f().error("timeout").state(JobState::Failed),
            ),
            ("since 1h", f().since(Duration::from_secs(3600))),
            ("since 5h", f().since(Duration::from_secs(5 * 3600))),
            (
                "delayed report.build",
                f().state(JobState::Delayed).name("report.build"),
            ),
            (
                "waiting mail.send in 1h at example",
                f().state(JobState::Waiting)
                    .name("mail.send")
                    .data("example")
                    .since(Duration::from_secs(3600)),
            ),
            ("active movie", f().state(JobState::Active).data("movie")),
            ("grouped", f().data("grouped")),
        ]);
        out
    }

    /// Stops the worker (its held jobs are left active, for reclaim).
    pub async fn stop(mut self) {
        if let Some(w) = self.worker.take() {
            w.stop().await.unwrap();
        }
    }
}
