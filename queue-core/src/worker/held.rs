//! The jobs a worker holds in one queue (claimed, running or waiting to be recorded), by lane
//! entry: the lane's priority and the entry's id, since an entry id is unique only within
//! its stream (jobs added in one millisecond to two lanes get the same one). The lease loop
//! renews exactly these; a job reported lost, or with a cancel request, is stopped here.

pub(crate) use crate::scripts::extend_lease::HeldEntry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::pace::{self, MAX_AHEAD};
use super::run::{Active, Stops};
use crate::scripts::cancel::request_member;

struct HeldJob {
    id: String,
    /// Its attempt number and start (ms), recorded with each lease renewal.
    attempt: u32,
    started_ms: i64,
    stops: Arc<Stops>,
}

/// Held jobs by lane priority, then entry id (nested, so that an outcome finds its job by
/// `&str`, with no key built per job).
type ByLane = HashMap<i32, HashMap<String, HeldJob>>;

/// The bytes of data and outcomes (results, errors) a queue's room is sized for: with small
/// jobs it holds its concurrency plus [`MAX_AHEAD`] of them, with larger ones fewer, so that
/// outcomes waiting to be recorded (at the data cap, 1 MiB each by default) cannot pile up
/// in a worker's memory by the thousand.
const ROOM_BYTES: u64 = 64 << 20;
/// Places beyond the concurrency before any outcome is recorded.
const ROOM_AHEAD_AT_START: usize = 1000;

pub(crate) struct Held {
    jobs: Mutex<ByLane>,
    /// The room: one permit per job held, from its claim until its outcome is recorded
    /// (`run.rs` `Shares::room`): the concurrency, plus places sized by the outcomes'
    /// bytes (`recorded`).
    pub room: Arc<Semaphore>,
    /// Places in the room beyond the concurrency.
    ahead: Mutex<usize>,
    /// Moving average of an outcome's bytes (its job's data and its result or error).
    outcome_bytes: AtomicU64,
}

impl Held {
    /// Nothing held, with room for `concurrency` jobs and [`ROOM_AHEAD_AT_START`] more.
    pub fn new(concurrency: usize) -> Self {
        Held {
            jobs: Mutex::default(),
            room: Arc::new(Semaphore::new(concurrency + ROOM_AHEAD_AT_START)),
            ahead: Mutex::new(ROOM_AHEAD_AT_START),
            outcome_bytes: AtomicU64::new(0),
        }
    }

    /// Outcomes of `bytes` each on average (their jobs' data and their results or errors)
    /// were recorded: the room grows or shrinks to hold [`ROOM_BYTES`] of such jobs beyond
    /// the concurrency, at most [`MAX_AHEAD`].
    pub fn recorded(&self, bytes: u64) {
        pace::average_in(&self.outcome_bytes, bytes);
        let each = self.outcome_bytes.load(Ordering::Relaxed).max(1);
        let target = (ROOM_BYTES / each).min(MAX_AHEAD) as usize;
        let mut ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner());
        pace::resize(&self.room, &mut ahead, target);
    }

    fn map(&self) -> std::sync::MutexGuard<'_, ByLane> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every held job with its lane priority and entry id.
    fn each(map: &ByLane) -> impl Iterator<Item = (i32, &String, &HeldJob)> {
        map.iter()
            .flat_map(|(prio, lane)| lane.iter().map(move |(sid, job)| (*prio, sid, job)))
    }

    /// Takes a job out, and its lane once empty (a lane with nothing held is not renewed).
    fn take(map: &mut ByLane, prio: i32, sid: &str) -> Option<HeldJob> {
        let lane = map.get_mut(&prio)?;
        let job = lane.remove(sid);
        if lane.is_empty() {
            map.remove(&prio);
        }
        job
    }

    /// Registers a claimed job's entry; its handler watches `stops.cancel`.
    pub fn insert(&self, job: &Active, stops: Arc<Stops>) {
        self.map().entry(job.prio).or_default().insert(
            job.sid.clone(),
            HeldJob {
                id: job.raw.id.clone(),
                attempt: job.raw.attempt,
                started_ms: job.started_ms,
                stops,
            },
        );
    }

    /// The held attempts not stopped for a cancel yet, as members of the queue's cancel
    /// requests (`request_member`: entry id and job id).
    pub fn cancellable(&self) -> Vec<String> {
        Self::each(&self.map())
            .filter(|(_, _, job)| !job.stops.asked())
            .map(|(_, sid, job)| request_member(sid, &job.id))
            .collect()
    }

    /// Stops the held attempts among `members` (their cancel was requested): they end
    /// cancelled. Returns how many were running here and not stopped already.
    pub fn cancel_requested(&self, members: &std::collections::HashSet<String>) -> usize {
        let mut n = 0;
        for (_, sid, job) in Self::each(&self.map()) {
            if !job.stops.asked() && members.contains(&request_member(sid, &job.id)) {
                job.stops.ask();
                n += 1;
            }
        }
        n
    }

    /// Stops every held job (the grace period is over): each is left for reclaim.
    pub fn stop_all(&self) {
        for (_, _, job) in Self::each(&self.map()) {
            job.stops.cancel.cancel();
        }
    }

    /// Forgets entries (lane priority, entry id) whose outcome is recorded (or abandoned).
    pub fn remove<'a>(&self, entries: impl IntoIterator<Item = (i32, &'a str)>) {
        let mut map = self.map();
        for (prio, sid) in entries {
            Self::take(&mut map, prio, sid);
        }
    }

    /// Entries held, grouped by lane priority.
    pub fn by_lane(&self) -> HashMap<i32, Vec<HeldEntry>> {
        let map = self.map();
        map.iter()
            .map(|(prio, lane)| {
                let entries = lane
                    .iter()
                    .map(|(sid, job)| HeldEntry {
                        sid: sid.clone(),
                        id: job.id.clone(),
                        run: format!("{}:{}", job.attempt, job.started_ms),
                    })
                    .collect();
                (*prio, entries)
            })
            .collect()
    }

    /// The ids of the jobs held (at most `max` of them) and how many are held in all.
    pub fn job_ids(&self, max: usize) -> (Vec<String>, usize) {
        let map = self.map();
        let ids = Self::each(&map)
            .take(max)
            .map(|(_, _, j)| j.id.clone())
            .collect();
        (ids, map.values().map(HashMap::len).sum())
    }

    /// A reclaimer took these entries (lane priority, entry id): stop their handlers (their
    /// outcome will not count).
    pub fn lose(&self, entries: &[(i32, String)]) {
        let mut map = self.map();
        for (prio, sid) in entries {
            if let Some(job) = Self::take(&mut map, *prio, sid) {
                job.stops.cancel.cancel();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_holds_more_small_jobs_and_fewer_large_ones() {
        let held = Held::new(50);
        assert_eq!(held.room.available_permits(), 50 + ROOM_AHEAD_AT_START);
        // ~100-byte jobs: as many ahead as a claim budget may be
        held.recorded(120);
        assert_eq!(held.room.available_permits(), 50 + MAX_AHEAD as usize);
        // results at the 1 MiB data cap: the average moves, the room follows
        for _ in 0..100 {
            held.recorded(1 << 20);
        }
        assert_eq!(held.room.available_permits(), 50 + 64);
    }

    #[test]
    fn places_in_use_are_given_up_as_they_come_home() {
        let held = Held::new(1);
        let taken = held.room.clone().try_acquire_many_owned(1001).unwrap();
        for _ in 0..100 {
            held.recorded(4 << 20);
        }
        // nothing was free to give up: the places come back, then go
        assert_eq!(held.room.available_permits(), 0);
        drop(taken);
        held.recorded(4 << 20);
        assert_eq!(held.room.available_permits(), 1 + 16);
    }
}
