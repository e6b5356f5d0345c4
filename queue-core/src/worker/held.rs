//! The jobs a worker holds in one queue (claimed, running or waiting to be recorded), by lane
//! entry: the lane's priority and the entry's id, since an entry id is unique only within
//! its stream (jobs added in one millisecond to two lanes get the same one). The lease loop
//! renews exactly these; a job reported lost, or with a cancel request, is stopped here.

pub(crate) use crate::scripts::extend_lease::HeldEntry;
use std::collections::HashMap;
use std::sync::Mutex;

use super::run::{Active, Stops};
use crate::scripts::cancel::request_member;

struct HeldJob {
    id: String,
    /// `<attempt>:<start ms>`, recorded with each lease renewal.
    run: String,
    stops: Stops,
}

#[derive(Default)]
pub(crate) struct Held(Mutex<HashMap<(i32, String), HeldJob>>);

impl Held {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(i32, String), HeldJob>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a claimed job's entry; its handler watches `stops.cancel`.
    pub fn insert(&self, job: &Active, stops: Stops) {
        self.map().insert(
            (job.prio, job.sid.clone()),
            HeldJob {
                id: job.raw.id.clone(),
                run: format!("{}:{}", job.raw.attempt, job.started_ms),
                stops,
            },
        );
    }

    /// The held attempts not stopped for a cancel yet, as members of the queue's cancel
    /// requests (`request_member`: entry id and job id).
    pub fn cancellable(&self) -> Vec<String> {
        self.map()
            .iter()
            .filter(|(_, job)| !job.stops.asked.is_cancelled())
            .map(|((_, sid), job)| request_member(sid, &job.id))
            .collect()
    }

    /// Stops the held attempts among `members` (their cancel was requested): they end
    /// cancelled. Returns how many were running here and not stopped already.
    pub fn cancel_requested(&self, members: &std::collections::HashSet<String>) -> usize {
        let mut n = 0;
        for ((_, sid), job) in self.map().iter() {
            if !job.stops.asked.is_cancelled() && members.contains(&request_member(sid, &job.id)) {
                job.stops.asked.cancel();
                job.stops.cancel.cancel();
                n += 1;
            }
        }
        n
    }

    /// Forgets entries (lane priority, entry id) whose outcome is recorded (or abandoned).
    pub fn remove<'a>(&self, entries: impl IntoIterator<Item = (i32, &'a str)>) {
        let mut map = self.map();
        for (prio, sid) in entries {
            map.remove(&(prio, sid.to_string()));
        }
    }

    /// Entries held, grouped by lane priority.
    pub fn by_lane(&self) -> HashMap<i32, Vec<HeldEntry>> {
        let mut out: HashMap<i32, Vec<HeldEntry>> = HashMap::new();
        for ((prio, sid), job) in self.map().iter() {
            out.entry(*prio).or_default().push(HeldEntry {
                sid: sid.clone(),
                id: job.id.clone(),
                run: job.run.clone(),
            });
        }
        out
    }

    /// The ids of the jobs held (at most `max` of them) and how many are held in all.
    pub fn job_ids(&self, max: usize) -> (Vec<String>, usize) {
        let map = self.map();
        let ids = map.values().take(max).map(|j| j.id.clone()).collect();
        (ids, map.len())
    }

    /// A reclaimer took these entries (lane priority, entry id): stop their handlers (their
    /// outcome will not count).
    pub fn lose(&self, entries: &[(i32, String)]) {
        let mut map = self.map();
        for entry in entries {
            if let Some(job) = map.remove(entry) {
                job.stops.cancel.cancel();
            }
        }
    }
}
