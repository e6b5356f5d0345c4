//! Finding jobs by what they hold (`jobq search`, `GET /api/queues/{q}/jobs?name=&data=…`,
//! the dashboard's search box): a name, text in the data or the failure reason, a state, an
//! age, a page at a time with a cursor.
//!
//! A search walks the places where each state's jobs are kept ([`places`]), newest first,
//! in bounded script calls (`scripts/search.lua`: at most 1,000 entries examined, 512 KiB
//! read and 10 ms spent per call), so a search through a queue of millions of jobs never
//! blocks Redis for long; Rust makes calls until the page is full or every place is walked. Like a
//! listing it is a read: a job that moves while searched may be missed or show in its new
//! state, and is never reported in a state its hash contradicts. Corrupt records are
//! skipped (a key of the wrong type, a hash with garbage fields), never a failure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::duration::{check_ms, saturating_ms};
use crate::error::{Error, Result};
use crate::job::{lean_place, stored_state, JobInfo, JobState};
use crate::keys::QueueKeys;
use crate::queue::Queue;
use crate::scripts;
use crate::scripts::search::{Filters, Walk};
use crate::store::QueueStore;

/// Jobs a search returns when no limit is given.
pub const DEFAULT_SEARCH_LIMIT: u64 = 50;
/// Most jobs one search returns.
pub const MAX_SEARCH_LIMIT: u64 = 1_000;
/// Bytes of a job's data searched, from its start: the whole data of almost every job
/// (stored in pieces of 64 bytes up to 4 KiB); of longer data, its first 4 KiB only, so a
/// search reads at most one big piece of a job.
pub const SEARCH_DATA_BYTES: usize = 4096;
/// Longest text a search looks for in data or failure reasons.
pub const MAX_SEARCH_TEXT: usize = 1024;
/// Longest one page of a search walks: past it, the page ends with what it found (maybe
/// nothing) and the cursor of where it stopped, so a search through millions of jobs
/// answers within a dashboard's request deadline, a page at a time.
pub const SEARCH_PAGE_TIME: Duration = Duration::from_secs(2);

/// What a search looks for. Every filter is optional; a job matches when it passes all
/// those given. Build with [`SearchFilter::new`] and the chained setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchFilter {
    /// Only jobs in this state (default: every state, one after the other).
    pub state: Option<JobState>,
    /// Only jobs of this name, exactly (not a substring: `mail.send` does not find
    /// `mail.send.bulk`). Empty: any.
    pub name: Option<String>,
    /// Only jobs whose stored JSON data contains this text (case-sensitive; the first
    /// [`SEARCH_DATA_BYTES`] of the data are searched). Empty: any.
    pub data: Option<String>,
    /// Only jobs whose failure reason (`error`: of a failed job, or the last failed attempt
    /// of a job being retried) contains this text, case-sensitive. Empty: any.
    pub error: Option<String>,
    /// Only jobs created within this long before the search.
    pub since: Option<Duration>,
    /// At most this many jobs (1 to [`MAX_SEARCH_LIMIT`]).
    pub limit: u64,
    /// Where to go on: the [`SearchPage::next`] of the previous page of the same search.
    pub cursor: Option<String>,
}

impl Default for SearchFilter {
    fn default() -> Self {
        SearchFilter {
            state: None,
            name: None,
            data: None,
            error: None,
            since: None,
            limit: DEFAULT_SEARCH_LIMIT,
            cursor: None,
        }
    }
}

impl SearchFilter {
    /// Every job, [`DEFAULT_SEARCH_LIMIT`] at a time.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only jobs in `state`.
    pub fn state(mut self, state: JobState) -> Self {
        self.state = Some(state);
        self
    }
    /// Only jobs named exactly `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Only jobs whose JSON data contains `text`.
    pub fn data(mut self, text: impl Into<String>) -> Self {
        self.data = Some(text.into());
        self
    }
    /// Only jobs whose failure reason contains `text`.
    pub fn error(mut self, text: impl Into<String>) -> Self {
        self.error = Some(text.into());
        self
    }
    /// Only jobs created within `age` before the search.
    pub fn since(mut self, age: Duration) -> Self {
        self.since = Some(age);
        self
    }
    /// At most `limit` jobs.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }
    /// Go on from `cursor` (a previous page's [`SearchPage::next`]).
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }
}

/// One page of a search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    /// The jobs that match, state by state (in [`JobState::ALL`] order), newest first
    /// within a state (see [`Queue::search`]). Without their logs.
    pub jobs: Vec<JobInfo>,
    /// Pass it as [`SearchFilter::cursor`] for the next page; `None` when the search has
    /// walked every job.
    pub next: Option<String>,
}

/// Where jobs of one state are kept, as a search walks them.
enum Place {
    /// A sorted set whose jobs' hashes record the state; `timed`: its scores are times at
    /// or after each job's creation (finish, cancel, due), so a `since` search stops at the
    /// cutoff.
    Sorted { key: String, timed: bool },
    /// The lanes, highest priority first: their undelivered entries (waiting), or the
    /// delivered ones still pending (active).
    Lanes { delivered: bool },
    /// The groups' queues (waiting grouped jobs).
    Groups,
}

/// The places holding the jobs of `state`, in the order a search walks them. `paused` is
/// an alias: the waiting jobs of a paused queue (none while it runs), which `waiting` finds
/// too, as `jobq stats` counts them. A new state is one arm here.
fn places(keys: &QueueKeys, state: JobState, paused: bool) -> Vec<Place> {
    let sorted = |key: String, timed: bool| vec![Place::Sorted { key, timed }];
    match state {
        JobState::Paused if !paused => Vec::new(),
        JobState::Waiting | JobState::Paused => {
            vec![Place::Lanes { delivered: false }, Place::Groups]
        }
        JobState::Active => vec![Place::Lanes { delivered: true }],
        JobState::Delayed => sorted(keys.delayed(), true),
        JobState::Completed => sorted(keys.completed(), true),
        JobState::Failed => sorted(keys.failed(), true),
        JobState::Cancelled => sorted(keys.cancelled(), true),
        // scored by when the safety net looks again
        JobState::WaitingChildren => sorted(keys.waiting_children(), false),
    }
}

/// A job a batch found, in the state of the place it was found in.
struct Found {
    state: JobState,
    id: String,
    /// How long its lane entry has been idle (ms), for an active job.
    idle: i64,
}

/// Where a search stopped: a place of a state, and a position in it (empty: its start).
/// In a lane place the position is the lane's priority then the lane's position.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    state: JobState,
    place: usize,
    at: Vec<String>,
}

impl Cursor {
    /// As text: each part in hex, joined by `.` (URL- and shell-safe, whatever a corrupt
    /// group name holds).
    fn to_text(&self) -> String {
        let mut parts = vec![self.state.as_str().to_string(), self.place.to_string()];
        parts.extend(self.at.iter().cloned());
        parts
            .iter()
            .map(|p| p.bytes().map(|b| format!("{b:02x}")).collect::<String>())
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The error of a cursor that is not one, naming it.
    fn bad(text: &str) -> Error {
        Error::invalid(
            "cursor",
            format!(
                "{:?}: not a search cursor (pass the \"next\" of the previous page)",
                crate::text::clip(text, 60)
            ),
        )
    }

    /// Reads a cursor's text back; an error names it.
    fn parse(text: &str) -> Result<Cursor> {
        let bad = || Cursor::bad(text);
        let parts: Vec<String> = text
            .split('.')
            .map(|p| {
                let bytes = (0..p.len())
                    .step_by(2)
                    .map(|i| {
                        p.get(i..i + 2)
                            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    })
                    .collect::<Option<Vec<u8>>>()?;
                String::from_utf8(bytes).ok()
            })
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let [state, place, at @ ..] = parts.as_slice() else {
            return Err(bad());
        };
        let state = state.parse::<JobState>().map_err(|_| bad())?;
        let place = place.parse::<usize>().map_err(|_| bad())?;
        Ok(Cursor {
            state,
            place,
            at: at.to_vec(),
        })
    }
}

/// Whether `at` is a position in `place` (as [`Cursor::at`] holds it): a cursor's parts
/// reach the script only once they are known to be of the right form.
fn fits(place: &Place, at: &[String]) -> bool {
    let score = |s: &str| s.parse::<f64>().is_ok_and(|f| !f.is_nan());
    let count = |s: &str| s.parse::<u64>().is_ok();
    // "+" (the newest), an entry id, or "(<id>" (after it)
    let entry = |s: &str| {
        s == "+"
            || s.strip_prefix('(')
                .unwrap_or(s)
                .split_once('-')
                .is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
                })
    };
    match (place, at) {
        (_, []) => true,
        (Place::Sorted { .. }, [s, k]) => score(s) && count(k),
        (Place::Lanes { .. }, [p, e]) => p.parse::<i32>().is_ok() && entry(e),
        (Place::Groups, [c, _group, s, k]) => count(c) && score(s) && count(k),
        _ => false,
    }
}

impl SearchFilter {
    /// The filters as a batch takes them, every value checked and named when bad.
    fn checked(&self, cutoff_ms: u64) -> Result<Filters<'_>> {
        if !(1..=MAX_SEARCH_LIMIT).contains(&self.limit) {
            return Err(Error::invalid(
                "limit",
                format!("{}: use 1 to {MAX_SEARCH_LIMIT}", self.limit),
            ));
        }
        fn text<'a>(what: &'static str, v: &'a Option<String>, max: usize) -> Result<&'a str> {
            if v.as_deref() == Some("") {
                // (it would match everything, as if the filter were left out)
                return Err(Error::invalid(
                    what,
                    "empty: give the text to match, or leave this filter out",
                ));
            }
            let v = v.as_deref().unwrap_or("");
            if v.len() > max {
                return Err(Error::invalid(
                    what,
                    format!(
                        "{:?}: {} bytes, longer than the {max} a search takes",
                        crate::text::clip(v, 40),
                        v.len()
                    ),
                ));
            }
            Ok(v)
        }
        Ok(Filters {
            // no job name is longer than 256 bytes
            name: text("name", &self.name, 256)?,
            data: text("data", &self.data, MAX_SEARCH_TEXT)?,
            error: text("error", &self.error, MAX_SEARCH_TEXT)?,
            since_ms: cutoff_ms,
            data_bytes: SEARCH_DATA_BYTES,
        })
    }

    /// How far back `since` reaches (ms), checked; 0 without it.
    fn since_ms(&self) -> Result<u64> {
        match self.since {
            None => Ok(0),
            Some(d) if d.is_zero() => Err(Error::invalid("since", "0ms: must be positive")),
            Some(d) => check_ms("since", saturating_ms(d)),
        }
    }
}

impl Queue {
    /// The jobs that pass `filter`, a page at a time: up to `filter.limit` of them, and the
    /// cursor of the next page.
    ///
    /// Without a state, every state is searched, one after the other in [`JobState::ALL`]
    /// order. Within a state the newest come first, place by place: `completed`, `failed`
    /// by finish time, `cancelled` by cancel time; `delayed` by due time, latest first; `waiting` lane by lane from
    /// the highest priority, newest first within a lane, then the groups' jobs group by
    /// group; `active` lane by lane, newest first; `waiting_children` by when they are
    /// next checked. The waiting jobs of a paused queue are found as `paused`, by `waiting`
    /// as well as `paused`. Names match exactly; data and failure reasons by substring,
    /// case-sensitive, on the stored JSON text (the first [`SEARCH_DATA_BYTES`] of the
    /// data). A bad filter or cursor is [`Error::Invalid`], naming it.
    pub async fn search(&self, filter: &SearchFilter) -> Result<SearchPage> {
        // every value is checked before Redis is asked anything
        let since = filter.since_ms()?;
        filter.checked(0)?;
        let mut start = filter.cursor.as_deref().map(Cursor::parse).transpose()?;
        match (&mut start, filter.state) {
            (Some(c), Some(s)) if c.state != s => {
                return Err(Error::invalid(
                    "cursor",
                    format!("it goes on with {} jobs, not {s}", c.state),
                ));
            }
            // a search of every state finds paused jobs with the waiting ones
            (Some(c), None) if c.state == JobState::Paused => c.state = JobState::Waiting,
            _ => {}
        }
        let q = &*self.inner;
        let cutoff = if since > 0 {
            scripts::node_time::now_ms(q).await?.saturating_sub(since)
        } else {
            0
        };
        let filters = filter.checked(cutoff)?;
        let states: Vec<JobState> = match filter.state {
            Some(s) => vec![s],
            // paused jobs are found with the waiting ones
            None => JobState::ALL
                .into_iter()
                .filter(|s| *s != JobState::Paused)
                .collect(),
        };
        let paused = scripts::listing::is_paused(q).await?;
        let mut w = Walker {
            q,
            filters,
            limit: filter.limit as usize,
            found: Vec::new(),
            now_ms: 0,
            until: Instant::now() + SEARCH_PAGE_TIME,
            walked: false,
        };
        let mut next = None;
        let first = start
            .as_ref()
            .and_then(|c| states.iter().position(|s| *s == c.state))
            .unwrap_or(0);
        'states: for (n, &state) in states.iter().enumerate().skip(first) {
            let places = places(&q.keys, state, paused);
            let resume = start.as_ref().filter(|c| c.state == state);
            for (i, place) in places
                .iter()
                .enumerate()
                .skip(resume.map_or(0, |c| c.place))
            {
                let at = resume
                    .filter(|c| c.place == i && !c.at.is_empty())
                    .map(|c| c.at.clone());
                if at.as_ref().is_some_and(|at| !fits(place, at)) {
                    return Err(Cursor::bad(filter.cursor.as_deref().unwrap_or("")));
                }
                if let Some(at) = w.place(place, state, at).await? {
                    next = Some(Cursor {
                        state,
                        place: i,
                        at,
                    });
                    break 'states;
                }
                if w.full() {
                    // full at the end of a place: go on at the next one, if any is left
                    if i + 1 < places.len() {
                        next = Some(Cursor {
                            state,
                            place: i + 1,
                            at: Vec::new(),
                        });
                    } else if let Some(&later) = states.get(n + 1) {
                        next = Some(Cursor {
                            state: later,
                            place: 0,
                            at: Vec::new(),
                        });
                    }
                    break 'states;
                }
            }
        }
        Ok(SearchPage {
            jobs: read_found(q, w.found, w.now_ms, paused).await?,
            next: next.map(|c| c.to_text()),
        })
    }
}

/// A search under way: what it looks for, and what it has found.
struct Walker<'a> {
    q: &'a QueueStore,
    filters: Filters<'a>,
    limit: usize,
    found: Vec<Found>,
    /// The node clock at the last batch (ms).
    now_ms: u64,
    /// When this page stops walking ([`SEARCH_PAGE_TIME`]).
    until: Instant,
    /// Whether a batch was walked yet: a page out of time still walks one, so paging
    /// always gets on.
    walked: bool,
}

impl Walker<'_> {
    /// Whether this page ends here: full, or out of time.
    fn full(&self) -> bool {
        self.found.len() >= self.limit || (self.walked && Instant::now() >= self.until)
    }

    /// Walks `place` (of `state`) from `at` (its start when None) until the page is full or
    /// the place ends; where it stopped, if before its end.
    async fn place(
        &mut self,
        place: &Place,
        state: JobState,
        at: Option<Vec<String>>,
    ) -> Result<Option<Vec<String>>> {
        match place {
            Place::Sorted { key, timed } => {
                let since = self.filters.since_ms;
                let walk = Walk::Sorted {
                    key,
                    state: state.as_str(),
                    min: (*timed && since > 0).then_some(since),
                };
                self.walk(&walk, state, at).await
            }
            Place::Groups => self.walk(&Walk::Groups, state, at).await,
            Place::Lanes { delivered } => {
                // a lane place's position: the lane's priority, then where in the lane
                let (from_lane, from) = match at.as_deref() {
                    Some([p, e]) => (p.parse().unwrap_or(i32::MAX), Some(e.clone())),
                    _ => (i32::MAX, None),
                };
                let lanes = crate::scripts::refresh_lanes(self.q).await?;
                for prio in lanes.prios.into_iter().filter(|p| *p <= from_lane) {
                    if self.full() {
                        // full at the end of a lane: the next page starts with this one
                        return Ok(Some(vec![prio.to_string(), "+".to_string()]));
                    }
                    let key = self.q.keys.lane(prio);
                    let walk = Walk::Lane {
                        key: &key,
                        prio,
                        delivered: *delivered,
                    };
                    let resume = from.clone().filter(|_| prio == from_lane);
                    if let Some(pos) = self.walk(&walk, state, resume.map(|e| vec![e])).await? {
                        return Ok(Some(vec![prio.to_string(), pos[0].clone()]));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Walks one set, lane or the groups batch after batch from `from` (its start when
    /// None); where it stopped, if before its end.
    async fn walk(
        &mut self,
        walk: &Walk<'_>,
        state: JobState,
        from: Option<Vec<String>>,
    ) -> Result<Option<Vec<String>>> {
        let mut position = from.unwrap_or_else(|| walk.start());
        loop {
            let wanted = self.limit - self.found.len();
            let b = scripts::search::batch(self.q, walk, &self.filters, &position, wanted).await?;
            self.walked = true;
            self.now_ms = self.now_ms.max(b.now_ms);
            let found = b.found.into_iter();
            self.found
                .extend(found.map(|(id, idle)| Found { state, id, idle }));
            if b.done {
                return Ok(None);
            }
            position = b.position;
            if self.full() {
                return Ok(Some(position));
            }
        }
    }
}

/// The jobs found, read whole (without logs), each still in the state it was found in;
/// one that moved on meanwhile is left out.
async fn read_found(
    q: &QueueStore,
    found: Vec<Found>,
    now_ms: u64,
    paused: bool,
) -> Result<Vec<JobInfo>> {
    let ids: Vec<String> = found.iter().map(|f| f.id.clone()).collect();
    let hashes = scripts::listing::read_hashes(q, &ids).await?;
    // lean jobs without a record are read from their lane entries, in the same order
    let no_record =
        |id: &str, h: &HashMap<String, String>| h.is_empty() && lean_place(id).is_some();
    let bare: Vec<String> = ids
        .iter()
        .zip(&hashes)
        .filter(|(id, h)| no_record(id, h))
        .map(|(id, _)| id.clone())
        .collect();
    let mut lean = scripts::listing::read_lean(q, &bare).await?.into_iter();
    let mut out = Vec::with_capacity(found.len());
    for (f, h) in found.into_iter().zip(hashes) {
        let h = if no_record(&f.id, &h) {
            match lean.next().flatten() {
                // still where it was found (pending: active), else it moved on meanwhile
                Some((h, pending)) if pending.is_some() == (f.state == JobState::Active) => h,
                _ => continue,
            }
        } else {
            h
        };
        let recorded = match f.state {
            // waiting, paused and active jobs record no state (their lane entry says it)
            JobState::Waiting | JobState::Paused | JobState::Active => "waiting",
            other => other.as_str(),
        };
        if stored_state(&h) != Some(recorded) {
            continue;
        }
        let run = h.get("run").cloned();
        let Ok(mut info) = JobInfo::from_hash(&q.name, &f.id, h, Vec::new(), paused) else {
            continue;
        };
        if f.state == JobState::Active {
            // the hash is written when an attempt ends: report the running one
            info.state = JobState::Active;
            info.attempts_made += 1;
            info.started_at = Some(scripts::listing::running_since(
                run.as_deref(),
                info.attempts_made,
                now_ms,
                f.idle.max(0) as u64,
            ));
        }
        out.push(info);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_bad_ones_are_named() {
        for c in [
            Cursor {
                state: JobState::Completed,
                place: 0,
                at: vec!["1712345678901".into(), "3".into()],
            },
            Cursor {
                state: JobState::Waiting,
                place: 0,
                at: vec!["-5".into(), "1712345678901-7".into()],
            },
            Cursor {
                state: JobState::Paused,
                place: 1,
                at: vec![
                    "17".into(),
                    "tenant:~{x}".into(),
                    "-4398046511000".into(),
                    "0".into(),
                ],
            },
            Cursor {
                state: JobState::Failed,
                place: 1,
                at: Vec::new(),
            },
        ] {
            let text = c.to_text();
            assert!(
                text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.'),
                "{text}"
            );
            assert_eq!(Cursor::parse(&text).unwrap(), c);
        }
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        for bad in [
            "".to_string(),
            "zz".into(),
            "abc".into(),
            hex("done"),
            format!("{}.{}", hex("failed"), hex("x")),
            format!("{}.+f", hex("failed")),
        ] {
            let e = Cursor::parse(&bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::BadInput);
            assert!(e.to_string().contains("cursor"), "{e}");
        }
        // a position must be of its place's form before it reaches the script
        let at = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let sorted = Place::Sorted {
            key: String::new(),
            timed: true,
        };
        let lanes = Place::Lanes { delivered: true };
        assert!(fits(&sorted, &at(&["1712345678901", "3"])));
        assert!(fits(&sorted, &at(&[])));
        assert!(!fits(&sorted, &at(&["nan", "1"])));
        assert!(!fits(&sorted, &at(&["5", "1-0"])));
        assert!(fits(&lanes, &at(&["-5", "1712345678901-7"])));
        assert!(fits(&lanes, &at(&["1", "(1-0"])));
        assert!(!fits(&lanes, &at(&["1", "((1-0"])));
        assert!(!fits(&lanes, &at(&["1", "1-"])));
        assert!(fits(&Place::Groups, &at(&["17", "a:b", "+inf", "0"])));
        assert!(!fits(&Place::Groups, &at(&["x", "a", "1", "0"])));
    }

    #[test]
    fn filters_are_checked_and_named() {
        let ok = SearchFilter::new().name("a").data("x").limit(1000);
        assert!(ok.checked(0).is_ok());
        for (f, named) in [
            (SearchFilter::new().limit(0), "limit"),
            (SearchFilter::new().limit(1001), "1001"),
            (
                SearchFilter::new().data("x".repeat(MAX_SEARCH_TEXT + 1)),
                "data",
            ),
            (SearchFilter::new().name("n".repeat(257)), "name"),
        ] {
            let e = f.checked(0).unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
        }
        let e = SearchFilter::new()
            .since(Duration::from_secs(3651 * 86_400))
            .since_ms()
            .unwrap_err()
            .to_string();
        assert!(e.contains("since"), "{e}");
        assert!(SearchFilter::new()
            .since(Duration::ZERO)
            .since_ms()
            .is_err());
    }
}
