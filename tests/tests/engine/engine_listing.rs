//! Listing waiting jobs in run order (`jobq list`) and newest first (the dashboard), across
//! priority lanes and pages.

use jobq_tests::*;
use queue_core::internal::keys::QueueKeys;
use queue_core::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_jobs_list_in_run_order_or_newest_first_across_lanes_and_pages() {
    let env = TestEnv::new().await;
    let q = env.queue("listing").await;
    // added in this order: lane 0 gets a, b, c; lane 5 gets x, y
    let mut ids = std::collections::HashMap::new();
    for (tag, prio) in [("a", 0), ("x", 5), ("b", 0), ("y", 5), ("c", 0)] {
        let added = q
            .add(
                "t",
                &json!({ "tag": tag }),
                JobOptions::new().priority(prio),
            )
            .await
            .unwrap();
        ids.insert(added.id, tag);
    }
    let tags = |jobs: Vec<JobInfo>| -> Vec<&str> { jobs.iter().map(|j| ids[&j.id]).collect() };

    let run = q.list_jobs(JobState::Waiting, 0, 10).await.unwrap();
    assert_eq!(tags(run), ["x", "y", "a", "b", "c"]);
    let newest = q
        .list_jobs_in(JobState::Waiting, ListOrder::Newest, 0, 10)
        .await
        .unwrap();
    assert_eq!(tags(newest), ["c", "b", "a", "y", "x"]);
    // pages cut across lanes in both orders
    let page = q
        .list_jobs_in(JobState::Waiting, ListOrder::Newest, 2, 2)
        .await
        .unwrap();
    assert_eq!(tags(page), ["a", "y"]);
    let page = q.list_jobs(JobState::Waiting, 1, 3).await.unwrap();
    assert_eq!(tags(page), ["y", "a", "b"]);

    // delivered entries are no longer waiting, in either order
    let worker = env
        .worker()
        .queues(["listing"])
        .concurrency(1)
        .handler("t", |_j: Job<serde_json::Value>, _c: Ctx| async {
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);
    wait_finished(&q, 5, std::time::Duration::from_secs(10)).await;
    guard.stop().await.unwrap();
    for order in [ListOrder::Run, ListOrder::Newest] {
        let left = q
            .list_jobs_in(JobState::Waiting, order, 0, 10)
            .await
            .unwrap();
        assert!(left.is_empty(), "{order:?}: {left:?}");
    }
}

/// A page deep in the waiting jobs (past the entries skipped by their count alone, without
/// reading their jobs) is the same page, in both orders and across lanes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_waiting_page_skips_by_count_and_is_the_right_page() {
    let env = TestEnv::new().await;
    let q = env.queue("deep-page").await;
    // 2,000 in lane 5 run first, then 23,000 in lane 0
    let jobs = |n: u64, prio: i32, from: u64| -> Vec<NewJob> {
        (from..from + n)
            .map(|i| {
                NewJob::new("t", &json!({ "i": i }), JobOptions::new().priority(prio)).unwrap()
            })
            .collect()
    };
    add_all(&q, jobs(2_000, 5, 0)).await;
    for chunk in 0..23 {
        add_all(&q, jobs(1_000, 0, 2_000 + chunk * 1_000)).await;
    }
    let at = |jobs: Vec<JobInfo>| -> Vec<u64> {
        jobs.iter().map(|j| j.data["i"].as_u64().unwrap()).collect()
    };
    for offset in [0u64, 1_999, 2_500, 13_000, 24_990] {
        let page = q.list_jobs(JobState::Waiting, offset, 5).await.unwrap();
        let want: Vec<u64> = (offset..(offset + 5).min(25_000)).collect();
        assert_eq!(at(page), want, "run order at {offset}");
        let page = q
            .list_jobs_in(JobState::Waiting, ListOrder::Newest, offset, 5)
            .await
            .unwrap();
        // newest first: lane 0 from its newest, then lane 5 from its newest
        let want: Vec<u64> = (offset..(offset + 5).min(25_000))
            .map(|k| {
                if k < 23_000 {
                    24_999 - k
                } else {
                    1_999 - (k - 23_000)
                }
            })
            .collect();
        assert_eq!(at(page), want, "newest first at {offset}");
    }
}

/// A page of big jobs is read from Redis a bounded number of bytes per round trip. Redis
/// builds a pipeline's replies all at once, while every other client waits: a page of 200
/// jobs of 1 MiB read in one pipeline held 200 MiB of replies and stalled Redis for 166 ms.
/// This server closes any client holding over 8 MiB of replies, so a page of 24 jobs of
/// 900 KiB (~21 MiB) lists whole only when read a few at a time; listings, newest first and
/// in run order, and a search all read through the same path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_big_jobs_is_read_a_bounded_number_of_bytes_at_a_time() {
    let server = RedisServer::start(&["--client-output-buffer-limit", "normal", "8mb", "8mb", "0"]);
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("bigpage").await;
    let big = "x".repeat(900 * 1024);
    let jobs = (0..24)
        .map(|i| NewJob::new("t", &json!({ "i": i, "b": big }), JobOptions::new()).unwrap())
        .collect::<Vec<_>>();
    q.add_bulk(jobs).await.unwrap();
    let whole = |jobs: &[JobInfo]| {
        let mut seen: Vec<u64> = jobs
            .iter()
            .filter(|j| j.data["b"].as_str().map(str::len) == Some(big.len()))
            .filter_map(|j| j.data["i"].as_u64())
            .collect();
        seen.sort_unstable();
        seen == (0..24).collect::<Vec<u64>>()
    };
    for order in [ListOrder::Newest, ListOrder::Run] {
        let page = q
            .list_jobs_in(JobState::Waiting, order, 0, 100)
            .await
            .unwrap();
        assert!(whole(&page), "{order:?}: {} jobs", page.len());
    }
    let found = q.search(&SearchFilter::new().limit(100)).await.unwrap();
    assert!(whole(&found.jobs), "search: {} jobs", found.jobs.len());
}

/// A job key holding a hash of more fields than any job has (a corrupt record: 200,000
/// fields, whose whole read would stall Redis) is listed and shown as corrupt, naming its
/// size, and never read; the jobs beside it list whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_record_of_more_fields_than_a_job_has_is_listed_as_corrupt_unread() {
    let env = TestEnv::new().await;
    let q = env.queue("hugehash").await;
    // given ids: records, one of which is blown up below (a lean entry of too many fields:
    // engine_lean_hostile.rs)
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            q.add(
                "t",
                &json!({ "i": i }),
                JobOptions::new().job_id(format!("j{i}")),
            )
            .await
            .unwrap()
            .id,
        );
    }
    let key = QueueKeys::new(env.config.prefix(), "hugehash").job(&ids[1]);
    let mut raw = env.raw().await;
    for chunk in 0..20 {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&key);
        for f in 0..10_000 {
            cmd.arg(format!("junk{chunk}:{f}")).arg("x");
        }
        let _: i64 = cmd.query_async(&mut raw).await.unwrap();
    }
    let listed = q
        .list_jobs_in(JobState::Waiting, ListOrder::Newest, 0, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for j in &listed {
        if j.id == ids[1] {
            let why = j.corrupt.as_deref().unwrap_or_default();
            assert!(why.contains("200004 fields"), "{why}");
        } else {
            assert!(j.corrupt.is_none() && j.data["i"].is_u64(), "{j:?}");
        }
    }
    // nor is it read whole on its own
    let alone = q.job(&ids[1]).await.unwrap();
    let why = alone.corrupt.as_deref().unwrap_or_default();
    assert!(why.contains("200004 fields"), "{why}");
    // a search skips a corrupt record (its script never reads this one whole either)
    let found = q.search(&SearchFilter::new().limit(10)).await.unwrap().jobs;
    let mut found: Vec<&str> = found.iter().map(|j| j.id.as_str()).collect();
    found.sort_unstable();
    let mut good = vec![ids[0].as_str(), ids[2].as_str()];
    good.sort_unstable();
    assert_eq!(found, good);
}

/// Sizing a page's records walks the fields of every hash not kept compact (~30 ns each):
/// a page of 800 jobs of 4,000 fields each (under the most a job may have, so all are
/// read) was sized in one call of 3.2 million fields, ~90 ms. The sizing goes a bounded
/// number of fields per call, and no call takes 50 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizing_a_page_of_jobs_with_many_fields_never_blocks_redis_for_50ms() {
    let server = RedisServer::start_logging_slow_calls();
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("wide").await;
    // given ids: records, whose hashes are widened below (a plain job would be lean, with
    // no hash)
    let jobs = (0..800)
        .map(|i| {
            let opts = JobOptions::new().job_id(format!("j{i}"));
            NewJob::new("t", &json!({ "i": i }), opts).unwrap()
        })
        .collect::<Vec<_>>();
    let ids: Vec<String> = q
        .add_bulk(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    let keys = QueueKeys::new(env.config.prefix(), "wide");
    let mut raw = env.raw().await;
    for chunk in ids.chunks(50) {
        let mut pipe = redis::pipe();
        for id in chunk {
            let cmd = pipe.cmd("HSET").arg(keys.job(id));
            for f in 0..3_990 {
                cmd.arg(format!("x{f}")).arg(1);
            }
            cmd.ignore();
        }
        let () = pipe.query_async(&mut raw).await.unwrap();
    }
    reset_slowlog(&mut raw).await;
    let page = q
        .list_jobs_in(JobState::Waiting, ListOrder::Newest, 0, 1_000)
        .await
        .unwrap();
    assert_eq!(page.len(), 800);
    assert!(page
        .iter()
        .all(|j| j.corrupt.is_none() && j.data["i"].is_u64()));
    let (slow, (us, cmd)) = slowest_call(&mut raw).await;
    eprintln!("sizing and reading 800 wide jobs: {slow} calls over 5 ms, the longest {us} µs");
    assert!(us < 50_000, "a call took {us} µs: {cmd}");
}

/// One job read whole (`jobq show`, the job page, `GET /api/queues/{q}/jobs/{id}`) never
/// copies a big record through one script call: copying a 60 MB field through Lua held
/// Redis ~200 ms. A log of 1,000 lines of 40 KB is read after the script, a bounded number
/// of bytes a call; a corrupt 20 MB progress (progress holds at most 64 KiB) is named, not
/// read: read whole in one call it took 50.7 ms on a slow machine; a corrupt log of more
/// lines than a log keeps shows its newest lines, marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_one_big_job_never_blocks_redis_for_50ms() {
    let server = RedisServer::start_logging_slow_calls();
    let env = TestEnv::on(&server.url()).await;
    let q = env.queue("bigone").await;
    let keys = QueueKeys::new(env.config.prefix(), "bigone");
    let mut raw = env.raw().await;
    // a given id: a record, its progress blown up below (a plain job would be lean, with
    // no hash; its logs and progress would give it one first)
    let id = q
        .add("t", &json!({ "n": 1 }), JobOptions::new().job_id("big"))
        .await
        .unwrap()
        .id;
    let line = "y".repeat(40_000);
    for _ in 0..10 {
        let mut push = redis::cmd("RPUSH");
        push.arg(keys.job_logs(&id));
        for _ in 0..100 {
            push.arg(&line);
        }
        let _: i64 = push.query_async(&mut raw).await.unwrap();
    }
    let progress = format!("\"{}\"", "z".repeat(20_000_000));
    let _: i64 = redis::cmd("HSET")
        .arg(keys.job(&id))
        .arg("progress")
        .arg(&progress)
        .query_async(&mut raw)
        .await
        .unwrap();
    reset_slowlog(&mut raw).await;
    let job = q.job(&id).await.unwrap();
    assert_eq!(job.data, json!({ "n": 1 }));
    assert_eq!(job.state, JobState::Waiting);
    assert_eq!(job.logs.len(), 1_000);
    assert!(job.logs.iter().all(|l| *l == line));
    assert_eq!(job.progress, None);
    let corrupt = job.corrupt.as_deref().unwrap_or_default();
    assert!(
        corrupt.contains("field progress is 20000002 bytes"),
        "{corrupt}"
    );
    let (slow, (us, cmd)) = slowest_call(&mut raw).await;
    eprintln!("reading a 60 MB job: {slow} calls over 5 ms, the longest {us} µs");
    assert!(us < 50_000, "a call took {us} µs: {cmd}");

    // a log of more lines than a log keeps (a corrupt record): the newest 1,000, marked
    let mut push = redis::cmd("RPUSH");
    push.arg(keys.job_logs(&id));
    for i in 0..4_000 {
        push.arg(format!("line {i}"));
    }
    let _: i64 = push.query_async(&mut raw).await.unwrap();
    let job = q.job(&id).await.unwrap();
    assert_eq!(job.logs.len(), 1_000);
    assert_eq!(job.logs.last().map(String::as_str), Some("line 3999"));
    let corrupt = job.corrupt.unwrap_or_default();
    assert!(corrupt.contains("its log has 5000 lines"), "{corrupt}");
}
