//! Searching a queue's jobs (`Queue::search`): exactly the matching jobs for each filter,
//! page by page with a cursor, newest first; bad filters and cursors refused naming them;
//! corrupt records skipped, never a failure; and no search call blocking Redis for 50 ms
//! on a queue of 100,000 jobs.

use std::collections::BTreeSet;
use std::time::Duration;

use queue_core::internal::keys::QueueKeys;

use jobq_tests::search::ACTIVE;
use jobq_tests::*;
use queue_core::*;
use serde_json::json;

/// Every page of `filter`'s search, `limit` at a time: the jobs in order.
async fn all_pages(q: &Queue, filter: &SearchFilter, limit: u64) -> Vec<JobInfo> {
    let mut out = Vec::new();
    let mut f = filter.clone().limit(limit);
    for _ in 0..1_000 {
        let page = q.search(&f).await.unwrap();
        assert!(page.jobs.len() as u64 <= limit);
        out.extend(page.jobs);
        match page.next {
            Some(c) => f.cursor = Some(c),
            None => return out,
        }
    }
    panic!("the search never ended");
}

fn id_set(jobs: &[JobInfo]) -> BTreeSet<String> {
    let set: BTreeSet<String> = jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(set.len(), jobs.len(), "a job came twice");
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_exactly_the_matching_jobs_for_each_filter_page_by_page() {
    let env = TestEnv::new().await;
    let fx = SearchFixture::build(&env, "search").await;
    let q = &fx.queue;
    let states: std::collections::HashMap<&str, JobState> =
        fx.jobs.iter().map(|j| (j.id.as_str(), j.state)).collect();
    for (label, filter) in SearchFixture::filters() {
        let want = fx.expect(&filter);
        let page = q.search(&filter.clone().limit(1_000)).await.unwrap();
        assert_eq!(id_set(&page.jobs), want, "{label}");
        assert_eq!(page.next, None, "{label}");
        for j in &page.jobs {
            assert_eq!(j.state, states[j.id.as_str()], "{label}: {}", j.id);
        }
        // in pages of 7, the same jobs in the same order
        let paged = all_pages(q, &filter, 7).await;
        let ids = |v: &[JobInfo]| v.iter().map(|j| j.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&paged), ids(&page.jobs), "{label} in pages");
    }

    // newest first within a state
    let all = q
        .search(&SearchFilter::new().limit(1_000))
        .await
        .unwrap()
        .jobs;
    assert_eq!(all.len(), 300);
    let of = |s: JobState| all.iter().filter(move |j| j.state == s);
    let finished: Vec<u64> = of(JobState::Completed)
        .map(|j| j.finished_at.unwrap())
        .collect();
    assert!(finished.windows(2).all(|w| w[0] >= w[1]), "{finished:?}");
    let due: Vec<u64> = of(JobState::Delayed).map(|j| j.due_at.unwrap()).collect();
    assert!(due.windows(2).all(|w| w[0] >= w[1]), "{due:?}");
    // states in their order, each whole
    // (the queue runs: none is paused)
    let mut runs: Vec<JobState> = all.iter().map(|j| j.state).collect();
    runs.dedup();
    let states: Vec<JobState> = JobState::ALL
        .into_iter()
        .filter(|s| *s != JobState::Paused)
        .collect();
    assert_eq!(runs, states);
    let active = of(JobState::Active).collect::<Vec<_>>();
    assert_eq!(active.len(), ACTIVE);
    assert!(active
        .iter()
        .all(|j| j.started_at.is_some() && j.attempts_made == 1));

    // a paused queue's waiting jobs are found as paused, by waiting and paused alike
    let p = env.queue("search-paused").await;
    p.pause().await.unwrap();
    let ids = add_all(
        &p,
        (0..5)
            .map(|i| NewJob::new("t", &json!({ "i": i }), JobOptions::new()).unwrap())
            .collect(),
    )
    .await;
    let found = p.search(&SearchFilter::new()).await.unwrap().jobs;
    assert_eq!(id_set(&found), ids.iter().cloned().collect());
    assert!(found.iter().all(|j| j.state == JobState::Paused));
    for state in [JobState::Waiting, JobState::Paused] {
        let found = p
            .search(&SearchFilter::new().state(state))
            .await
            .unwrap()
            .jobs;
        assert_eq!(id_set(&found), ids.iter().cloned().collect(), "{state}");
        assert!(found.iter().all(|j| j.state == JobState::Paused));
    }
    // and none is paused while the queue runs
    p.resume().await.unwrap();
    let paused = SearchFilter::new().state(JobState::Paused);
    assert!(p.search(&paused).await.unwrap().jobs.is_empty());
    let all = p.search(&SearchFilter::new()).await.unwrap().jobs;
    assert!(all.iter().all(|j| j.state == JobState::Waiting) && all.len() == 5);
    fx.stop().await;
}

/// The time bound of every script call, for searches: on a queue of 100,000 jobs (in lanes,
/// in groups, delayed; small data, data of 4 KiB in 64 pieces, data of 200 KiB), searches
/// that match nothing walk every job, and one that matches a tenth of them is paged
/// through, yet no call takes 50 ms (the slowlog, a private server, nothing else on it).
/// Runs alone (its name has `slowlog`: .config/nextest.toml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowlog_searches_through_100000_jobs_never_block_redis_for_50ms() {
    // the slowlog keeps every call of 50 ms or more
    let server = RedisServer::start_with_slowlog(50_000, 10_000);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("big").await;
    let made = std::time::Instant::now();
    let mut jobs = Vec::with_capacity(100_000);
    let note = "n".repeat(100);
    for i in 0..100_000u32 {
        let mut data =
            json!({"k": i, "m": i % 10, "user": format!("user{i}@example.com"), "note": note});
        let mut opts = JobOptions::new().priority((i % 3) as i32);
        match i {
            0..=1_999 => data["pad"] = json!("p".repeat(4_000)),
            2_000..=2_099 => data["pad"] = json!("p".repeat(200_000)),
            2_100..=19_999 => opts = opts.group(format!("tenant{}", i % 500)),
            20_000..=39_999 => opts = opts.delay(Duration::from_secs(3_600)),
            _ => {}
        }
        jobs.push(NewJob::new("work", &data, opts).unwrap());
    }
    assert_eq!(add_all(&q, jobs).await.len(), 100_000);
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed), (80_000, 20_000), "{c:?}");
    eprintln!("100,000 jobs stored in {:?}", made.elapsed());

    let mut conn = env.raw().await;
    reset_slowlog(&mut conn).await;
    let calls = script_calls(&mut conn).await;
    let started = std::time::Instant::now();
    for filter in [
        SearchFilter::new().data("no such text"),
        SearchFilter::new().error("no such reason"),
        SearchFilter::new()
            .name("nobody")
            .since(Duration::from_secs(3_600)),
    ] {
        // (a page walks for at most SEARCH_PAGE_TIME: on a slow machine the walk of every
        // job takes a few pages, each empty, each going on where the last stopped)
        let mut filter = filter.limit(1_000);
        loop {
            let page = q.search(&filter).await.unwrap();
            assert!(page.jobs.is_empty(), "{filter:?}");
            match page.next {
                Some(next) => filter = filter.cursor(next),
                None => break,
            }
        }
    }
    let nothing = started.elapsed();
    let scans = script_calls(&mut conn).await - calls;
    // a tenth of them, a page at a time
    let started = std::time::Instant::now();
    let mut filter = SearchFilter::new().data(r#""m":7,"#).limit(1_000);
    let mut seen = 0;
    loop {
        let page = q.search(&filter).await.unwrap();
        seen += page.jobs.len();
        match page.next {
            Some(c) => filter.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, 10_000);
    eprintln!(
        "three searches finding nothing: {nothing:?} in {scans} script calls; \
         10,000 found in pages of 1,000: {:?}",
        started.elapsed()
    );
    let (slow, worst) = slowest_call(&mut conn).await;
    assert_eq!(
        slow, 0,
        "{slow} calls of 50 ms or more, the longest {worst:?}"
    );
    // the scans took many bounded calls, not a few long ones
    assert!(scans > 100, "{scans} script calls");
}

/// Guarantee 8 for searches: records of any content (job hashes of the wrong type or with
/// garbage fields, set members without a job, lane entries without an id, sets, lanes and
/// group queues of the wrong type, data that is not UTF-8) never make a search fail or
/// stop: it skips them and finds every good job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_8_a_search_skips_corrupt_records_and_finds_every_good_job() {
    let env = TestEnv::new().await;
    let q = env.queue("corrupt").await;
    let add = |opts: JobOptions| {
        let q = q.clone();
        async move {
            q.add("good", &json!({"x": "findme"}), opts)
                .await
                .unwrap()
                .id
        }
    };
    let mut good = BTreeSet::new();
    for opts in [
        JobOptions::new(),
        JobOptions::new().priority(7),
        JobOptions::new().group("tenant:a"),
        JobOptions::new().delay(Duration::from_secs(3_600)),
    ] {
        good.insert(add(opts.clone()).await);
        good.insert(add(opts).await);
    }
    // the victims and `long` are given ids: records, whose hashes are corrupted below (the
    // plain good jobs are lean, their lane entries alone; corrupt lean entries:
    // engine_lean_hostile.rs)
    let mut victims = Vec::new();
    for i in 0..5 {
        victims.push(add(JobOptions::new().job_id(format!("victim{i}"))).await);
    }
    let long = q
        .add(
            "good",
            &json!({"x": "findme", "pad": "p".repeat(300)}),
            JobOptions::new().job_id("long"),
        )
        .await
        .unwrap()
        .id;
    good.insert(long.clone());
    let base = QueueKeys::new(env.config.prefix(), "corrupt")
        .base()
        .to_string();
    let job = |id: &str| format!("{base}:j:{id}");
    let mut raw = env.raw().await;
    let commands: Vec<Vec<String>> = vec![
        // a job hash of another type, its lane entry left
        vec!["DEL".into(), job(&victims[0])],
        vec!["SET".into(), job(&victims[0]), "abc".into()],
        // garbage fields: a time, a piece count, a state, no name
        vec![
            "HSET".into(),
            job(&victims[1]),
            "ts".into(),
            "yesterday".into(),
            "data:n".into(),
            "lots".into(),
        ],
        vec![
            "HSET".into(),
            job(&victims[2]),
            "state".into(),
            "bogus".into(),
        ],
        vec!["HDEL".into(), job(&victims[3]), "name".into()],
        vec![
            "HSET".into(),
            job(&victims[4]),
            "data".into(),
            "\u{fffd}findme".into(),
            "data:n".into(),
            "99999999999".into(),
        ],
        // a piece count past the pieces, on a good job: its first pieces are still searched
        vec!["HSET".into(), job(&long), "data:n".into(), "1e9".into()],
        // members without a job, entries without an id, keys of the wrong type
        vec![
            "ZADD".into(),
            format!("{base}:completed"),
            "1".into(),
            "ghost".into(),
        ],
        vec![
            "ZADD".into(),
            format!("{base}:delayed"),
            "+inf".into(),
            "ghost".into(),
        ],
        vec!["SET".into(), format!("{base}:failed"), "abc".into()],
        vec!["HSET".into(), format!("{base}:wc"), "a".into(), "b".into()],
        vec![
            "XADD".into(),
            format!("{base}:ready:0"),
            "*".into(),
            "x".into(),
            "y".into(),
        ],
        vec![
            "ZADD".into(),
            format!("{base}:lanes"),
            "3".into(),
            "3".into(),
        ],
        vec!["SET".into(), format!("{base}:ready:3"), "abc".into()],
        vec![
            "ZADD".into(),
            format!("{base}:gwait"),
            "2".into(),
            "ghost".into(),
            "1".into(),
            "tenant:x".into(),
        ],
        vec!["SET".into(), format!("{base}:gq:tenant:x"), "abc".into()],
    ];
    for c in &commands {
        let mut cmd = redis::cmd(&c[0]);
        for a in &c[1..] {
            cmd.arg(a.as_bytes());
        }
        let _: redis::Value = cmd.query_async(&mut raw).await.unwrap();
    }
    // not UTF-8 at all
    let _: () = redis::cmd("HSET")
        .arg(job(&victims[3]))
        .arg("data")
        .arg(&b"\xff\xfe findme"[..])
        .query_async(&mut raw)
        .await
        .unwrap();

    let ids = |jobs: &[JobInfo]| jobs.iter().map(|j| j.id.clone()).collect::<BTreeSet<_>>();
    let named = |f: SearchFilter| f.name("good");
    for filter in [
        SearchFilter::new(),
        SearchFilter::new().data("findme"),
        SearchFilter::new().since(Duration::from_secs(3_600)),
        SearchFilter::new().error("nothing"),
        SearchFilter::new().state(JobState::Failed),
        SearchFilter::new().state(JobState::WaitingChildren),
    ] {
        for limit in [1_000, 3] {
            let jobs = all_pages(&q, &named(filter.clone()), limit).await;
            let found = ids(&jobs);
            let want: BTreeSet<String> = if filter.error.is_some() || filter.state.is_some() {
                BTreeSet::new()
            } else {
                good.clone()
            };
            // the good jobs, and of the victims only those still readable as such
            assert!(found.is_superset(&want), "{filter:?}: {found:?}");
            let extra: Vec<&String> = found.difference(&want).collect();
            assert!(
                extra
                    .iter()
                    .all(|id| [&victims[1], &victims[4]].contains(id)),
                "{filter:?}: {extra:?}"
            );
        }
    }
    // the job with the garbage piece count and its text in the first piece is found
    let found = q
        .search(&SearchFilter::new().data("findme").name("good"))
        .await
        .unwrap();
    assert!(ids(&found.jobs).contains(&victims[4]));
    // one with a garbage creation time is no newer than any cutoff
    let recent = q
        .search(&SearchFilter::new().since(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(!ids(&recent.jobs).contains(&victims[1]));
}
