//! The queue's `waiting` counter (ARCHITECTURE.md *Invariants*: counters are exact) against the
//! truth, the lane entries its lanes' consumer group has not delivered yet: a priority
//! change sent after another moved the job (two operators at once) moves the job from
//! where it is, and never a running one; and a mixed run of operator calls, workers and
//! workers that die holding jobs keeps the counter exact at every step, checked in one
//! atomic call beside them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::internal::keys::{QueueKeys, GROUP};
use queue_core::*;
use serde_json::{json, Value};

// A priority change reaches `update_job.lua` after `Queue::change_priority` has read the
// job (its priority names the lane the call declares); it is called here as
// `update_job.rs` calls it (same keys and arguments), with the priority read before
// another change moved the job.
static UPDATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(concat!(
        include_str!("../../../queue-core/src/scripts/prelude.lua"),
        include_str!("../../../queue-core/src/scripts/update_job.lua")
    ))
});

/// `update_job` changing job `id`'s priority to `new`, sent by a caller that read its
/// priority as `read`; the script's answer.
async fn change_priority_read_as(
    env: &TestEnv,
    keys: &QueueKeys,
    id: &str,
    read: i32,
    new: i32,
) -> String {
    let lean_lane = id
        .strip_prefix('~')
        .and_then(|rest| rest.split_once('.'))
        .map_or(read, |(p, _)| p.parse().unwrap());
    UPDATE
        .key(keys.job(id))
        .key(keys.meta())
        .key(keys.lanes())
        .key(keys.events())
        .key(keys.lane(new))
        .key(keys.lane(lean_lane))
        .arg(id)
        .arg("priority")
        .arg(new.to_string())
        .arg(GROUP)
        .arg(1000)
        .invoke_async(&mut env.raw().await)
        .await
        .unwrap()
}

// The counter and the truth in one atomic call: for every lane of the queue, the entries
// past its group's last delivered one. (The queues here have no groups, whose waiting
// jobs the counter counts too.)
static TRUTH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local n = 0
for _, p in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local key = ARGV[1] .. p
  if redis.call('EXISTS', key) == 1 then
    local last = '0-0'
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
      local name, at
      for f = 1, #g, 2 do
        if g[f] == 'name' then name = g[f + 1] elseif g[f] == 'last-delivered-id' then at = g[f + 1] end
      end
      if name == ARGV[2] then last = at end
    end
    n = n + #redis.call('XRANGE', key, '(' .. last, '+')
  end
end
return {tonumber(redis.call('HGET', KEYS[1], 'waiting') or '0'), n}
"#,
    )
});

/// (the `waiting` counter, the undelivered lane entries), read at one instant.
async fn counter_and_truth(env: &TestEnv, keys: &QueueKeys) -> (i64, i64) {
    let v: Vec<i64> = TRUTH
        .key(keys.meta())
        .key(keys.lanes())
        .arg(keys.lane_prefix())
        .arg(GROUP)
        .invoke_async(&mut env.raw().await)
        .await
        .unwrap();
    (v[0], v[1])
}

// A worker's claim that dies with its reply: up to ARGV[3] undelivered entries of lane
// KEYS[2] pending to consumer ARGV[2], uncounted from `waiting` in the same call (as the
// claim does), never run or renewed: reclaimed once their lease runs out.
static DEAD_CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[2], '>')
local n = r and #r[1][2] or 0
if n > 0 then redis.call('HINCRBY', KEYS[1], 'waiting', -n) end
return n
"#,
    )
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_change_sent_after_another_moved_the_job_moves_it_from_where_it_is() {
    let env = TestEnv::new().await;
    let q = env.queue("wc-prio-race").await;
    let keys = QueueKeys::new(env.config.prefix(), "wc-prio-race");
    for (what, opts) in [
        ("a lean job", JobOptions::new()),
        ("a job with a record", JobOptions::new().job_id("kept")),
    ] {
        let id = q.add("work", &json!({}), opts).await.unwrap().id;
        assert_eq!(id.starts_with('~'), what == "a lean job", "{id}");
        // two operators read priority 0; the first moves the job to lane 5, then the
        // second's call comes, naming lane 0
        q.change_priority(&id, 5).await.unwrap();
        let in_5 = q.job(&id).await.unwrap();
        assert_eq!(in_5.priority, 5);
        assert_eq!(
            change_priority_read_as(&env, &keys, &id, 0, 7).await,
            "ok",
            "{what}"
        );
        let info = q.job(&id).await.unwrap();
        assert_eq!(
            (info.state, info.priority),
            (JobState::Waiting, 7),
            "{what}"
        );
        // in lane 7 alone: its entry in lane 5 went (left there, the job had two
        // undelivered entries counted once, and their claims took the counter below zero)
        assert_eq!(
            counter_and_truth(&env, &keys).await,
            (1, 1),
            "{what}: the counter, and the job's entries"
        );
        assert_eq!(q.counts().await.unwrap().waiting, 1, "{what}");
        q.remove_job(&id).await.unwrap();
        assert_eq!(counter_and_truth(&env, &keys).await, (0, 0), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_change_sent_after_another_moved_the_job_is_refused_once_it_runs() {
    let env = TestEnv::new().await;
    let q = env.queue("wc-prio-race-running").await;
    let keys = QueueKeys::new(env.config.prefix(), "wc-prio-race-running");
    // two operators read priority 0; the first moves the job to lane 5, a worker claims it
    // there, then the second's call comes, naming lane 0: refused as running, not moved
    // (moved, it waited in lane 7 too, uncounted, and ran twice)
    let id = q
        .add("work", &json!({}), JobOptions::new())
        .await
        .unwrap()
        .id;
    q.change_priority(&id, 5).await.unwrap();
    assert_eq!(claim_by_hand(&env, &keys, 5, "c", 10).await.len(), 1);
    assert_eq!(
        change_priority_read_as(&env, &keys, &id, 0, 7).await,
        "active"
    );
    assert_eq!(counter_and_truth(&env, &keys).await, (0, 0));
    let counts = q.counts().await.unwrap();
    assert_eq!((counts.waiting, counts.active), (0, 1));
}

/// A tiny seeded generator (xorshift64*), so a failing run can be replayed with its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// One operator call (or a worker's death) on queue `q`, picked by `rng` among the ids
/// added so far (`ids`); what it was, for the log.
async fn random_step(
    env: &TestEnv,
    q: &Queue,
    keys: &QueueKeys,
    rng: &mut Rng,
    ids: &Mutex<Vec<String>>,
    step: u64,
) -> String {
    // (mostly the newest jobs: those still waiting or running)
    let pick = |rng: &mut Rng| {
        let ids = ids.lock().unwrap();
        let n = ids.len() as u64;
        let from = if rng.below(4) > 0 {
            n.saturating_sub(20)
        } else {
            0
        };
        ids[(from + rng.below(n - from)) as usize].clone()
    };
    let prio = [0, 3, 7][rng.below(3) as usize];
    // (now and then one running past a third of its lease: renewed, a lean one gets its
    // record then)
    let ms = if rng.below(10) == 0 {
        200 + rng.below(400)
    } else {
        rng.below(40)
    };
    let fail = rng.below(4) == 0;
    let data = json!({ "ms": ms, "fail": fail });
    match rng.below(16) {
        0..=2 => {
            let opts = match rng.below(4) {
                0 => JobOptions::new().job_id(format!("j{step}-{}", rng.below(1 << 30))),
                1 => JobOptions::new().delay(Duration::from_millis(1 + rng.below(300))),
                _ => JobOptions::new(),
            };
            let opts = opts
                .priority(prio)
                .attempts(2)
                .backoff(Backoff::fixed(Duration::from_millis(30)));
            let id = q.add("work", &data, opts).await.unwrap().id;
            ids.lock().unwrap().push(id.clone());
            format!("add {id}")
        }
        3 => {
            let jobs = (0..1 + rng.below(5))
                .map(|_| NewJob::new("work", &data, JobOptions::new().priority(prio)).unwrap())
                .collect();
            let added = q.add_bulk(jobs).await.unwrap();
            let mut ids = ids.lock().unwrap();
            ids.extend(added.iter().map(|a| a.id.clone()));
            format!("add_bulk {}", added.len())
        }
        4 => {
            let id = pick(rng);
            format!("cancel {id}: {:?}", q.cancel(&id).await.map(|_| ()))
        }
        5 => {
            let id = pick(rng);
            format!("remove {id}: {:?}", q.remove_job(&id).await)
        }
        6 => {
            let id = pick(rng);
            format!("update_data {id}: {:?}", q.update_data(&id, &data).await)
        }
        7 | 8 => {
            // two operators at once, now and then
            let id = pick(rng);
            let other = [0, 3, 7][rng.below(3) as usize];
            let both = rng.below(2) == 0;
            let (a, b) = tokio::join!(q.change_priority(&id, prio), async {
                if both {
                    Some(q.change_priority(&id, other).await)
                } else {
                    None
                }
            });
            format!("change_priority {id} {prio} / {other}: {a:?} {b:?}")
        }
        9 => {
            let id = pick(rng);
            format!("promote {id}: {:?}", q.promote_job(&id).await)
        }
        10 => {
            let id = pick(rng);
            format!("retry {id}: {:?}", q.retry_job(&id).await)
        }
        11 => match rng.below(3) {
            0 => format!("drain: {:?}", q.drain().await),
            1 => format!("promote_all: {:?}", q.promote_all_delayed().await),
            _ => format!("retry_all: {:?}", q.retry_all_failed().await),
        },
        12 => {
            q.pause().await.unwrap();
            tokio::time::sleep(Duration::from_millis(rng.below(30))).await;
            q.resume().await.unwrap();
            "pause, resume".to_string()
        }
        _ => {
            // a worker killed with the jobs it just claimed: they stay pending until their
            // lease runs out and a live worker reclaims them
            let mut raw = env.raw().await;
            let lanes: Vec<i32> = lane_prios(&mut raw, keys).await;
            let lane = lanes[rng.below(lanes.len() as u64) as usize];
            let n: i64 = DEAD_CLAIM
                .key(keys.meta())
                .key(keys.lane(lane))
                .arg(GROUP)
                .arg(format!("dead-{step}"))
                .arg(1 + rng.below(3))
                .invoke_async(&mut raw)
                .await
                .unwrap();
            format!("killed holding {n} of lane {lane}")
        }
    }
}

/// Operator calls of every kind, two operators at once, beside workers that run, fail and
/// retry jobs, workers killed holding jobs (reclaimed at their lease), and the repair
/// sweep: after every step the counter equals the undelivered entries, and at the end,
/// every job finished, both are 0. JOBQ_TEST_SEED replays a run; JOBQ_TEST_STEPS
/// lengthens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_counter_stays_exact_through_a_hostile_mixed_run() {
    let env = Arc::new(TestEnv::new().await);
    let name = "wc-mix";
    let q = env.queue(name).await;
    let keys = QueueKeys::new(env.config.prefix(), name);
    let seed = std::env::var("JOBQ_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let steps: u64 = std::env::var("JOBQ_TEST_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    eprintln!("seed {seed}, {steps} steps per operator");
    let worker = env
        .worker()
        .queues([name])
        .concurrency(4)
        .lease(Duration::from_millis(600))
        .max_stalls(5)
        .sweep_interval(Duration::from_millis(200))
        .handler("work", |j: Job<Value>, _c: Ctx| async move {
            let ms = j.data["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if j.data["fail"].as_bool().unwrap_or(false) {
                return Err(JobError::new("asked to fail"));
            }
            Ok::<_, JobError>(())
        })
        .build()
        .unwrap();
    let guard = spawn_worker(worker);

    let ids = Arc::new(Mutex::new(Vec::new()));
    for i in 0..10 {
        let id = q
            .add("work", &json!({ "ms": i }), JobOptions::new())
            .await
            .unwrap()
            .id;
        ids.lock().unwrap().push(id);
    }
    let off = Arc::new(AtomicBool::new(false));
    let mut operators = Vec::new();
    for op in 0..2u64 {
        let (env, q, keys, ids, off) = (
            env.clone(),
            q.clone(),
            keys.clone(),
            ids.clone(),
            off.clone(),
        );
        operators.push(tokio::spawn(async move {
            let mut rng = Rng(seed.wrapping_add(op.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
            let mut log: Vec<String> = Vec::new();
            for step in 0..steps {
                if off.load(Ordering::Relaxed) {
                    break;
                }
                let did = random_step(&env, &q, &keys, &mut rng, &ids, op * steps + step).await;
                log.push(did);
                let (counter, truth) = counter_and_truth(&env, &keys).await;
                if counter != truth {
                    off.store(true, Ordering::Relaxed);
                    let last: Vec<&String> = log.iter().rev().take(8).collect();
                    panic!(
                        "seed {seed}, operator {op}, step {step}: waiting counter {counter}, \
                         undelivered entries {truth}; its last steps, newest first: {last:#?}"
                    );
                }
            }
        }));
    }
    for o in operators {
        o.await.unwrap();
    }

    // every job finishes (the killed workers' ones at their lease): both come to 0
    q.resume().await.unwrap();
    let asked = Instant::now();
    eventually(Duration::from_secs(30), "the queue to empty", || async {
        let c = q.counts().await.unwrap();
        (c.waiting == 0 && c.active == 0 && c.delayed == 0).then_some(())
    })
    .await;
    assert_eq!(
        counter_and_truth(&env, &keys).await,
        (0, 0),
        "seed {seed}, after {:?}",
        asked.elapsed()
    );
    guard.stop().await.unwrap();
}
