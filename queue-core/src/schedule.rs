//! Repeatable jobs: schedules that add a job on every tick of an interval (`every 1s`) or of
//! a cron expression (seconds allowed, evaluated in UTC). Schedules live in Redis, so they
//! outlive every process, and every worker runs the loop that fires them
//! (`worker/schedule.rs`).
//!
//! A schedule is one entry of the queue's schedules hash (id → definition) plus its next
//! due tick in a sorted set. A worker fires a tick by first claiming it: the fire script
//! moves the schedule's due score from that tick to the next one only if it still holds
//! that tick, so however many workers run, exactly one claims it. The claimed tick becomes
//! an ordinary job with the id `sched:<schedule id>:<tick ms>`, added through the same path
//! as [`Queue::add`]. While a worker runs, every tick fires, in order, each its own job
//! (one the loop reaches up to [`CATCH_UP`] late still does). Ticks that passed while no
//! worker ran (the schedule is due more than [`CATCH_UP`] ago) fire once: only the latest of
//! them, not replayed in a burst. Upserting wakes the workers' loops, so a new schedule's
//! first tick is on time.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration::{format_duration, parse_duration};
use crate::error::{Error, Result};
use crate::job::{JobOptions, NewJob};
use crate::queue::{checked_data, Queue};
use crate::scripts;
use crate::validate::validate_job_id;

/// Shortest interval of an `every` schedule: each tick costs a few round trips, so a
/// shorter period could not be kept anyway.
pub const MIN_EVERY: Duration = Duration::from_millis(10);
/// Longest interval of an `every` schedule (ten years; keeps tick arithmetic exact).
pub const MAX_EVERY: Duration = Duration::from_secs(3650 * 86_400);
/// How late a tick may be reached and still fire in the catch-up of a running loop. A
/// schedule due longer ago than this missed its ticks while no worker ran (or Redis was
/// unreachable): only the latest of them fires. Well above how late a live loop gets
/// (it sleeps until the next tick and is woken by upserts), well below a restart.
pub const CATCH_UP: Duration = Duration::from_secs(2);
/// Longest schedule id: the job ids derived from it (`sched:<id>:<tick>`) must stay valid.
pub const MAX_SCHEDULE_ID_LEN: usize = 200;

/// When a schedule ticks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RepeatRepr", into = "RepeatRepr")]
pub enum Repeat {
    /// Every interval, on multiples of the interval since the Unix epoch (an `every 1m`
    /// schedule ticks at the start of each minute, whenever it was created).
    Every(Duration),
    /// A cron expression in UTC: 5 fields (minute first), or 6 with seconds first
    /// (`0 */5 * * * *`), or 7 with a year last, or a nickname such as `@hourly`.
    Cron(String),
}

/// The stored and JSON form of [`Repeat`]: `{"every_ms": 1000}` or `{"cron": "* * * * * *"}`.
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Repeat))]
#[serde(untagged)]
enum RepeatRepr {
    Every { every_ms: u64 },
    Cron { cron: String },
}

impl TryFrom<RepeatRepr> for Repeat {
    type Error = Error;
    fn try_from(r: RepeatRepr) -> Result<Self> {
        match r {
            RepeatRepr::Every { every_ms } => Repeat::every(Duration::from_millis(every_ms)),
            RepeatRepr::Cron { cron } => Repeat::cron(&cron),
        }
    }
}

impl From<Repeat> for RepeatRepr {
    fn from(r: Repeat) -> Self {
        match r {
            Repeat::Every(d) => RepeatRepr::Every {
                every_ms: d.as_millis() as u64,
            },
            Repeat::Cron(cron) => RepeatRepr::Cron { cron },
        }
    }
}

impl Repeat {
    /// Every `interval` (between [`MIN_EVERY`] and [`MAX_EVERY`], whole milliseconds).
    pub fn every(interval: Duration) -> Result<Repeat> {
        let r = Repeat::Every(interval);
        r.validate()?;
        Ok(r)
    }

    /// On the ticks of cron expression `expr` (UTC). Fails, naming the expression, when it
    /// does not parse or never fires.
    pub fn cron(expr: &str) -> Result<Repeat> {
        let r = Repeat::Cron(expr.trim().to_string());
        r.validate()?;
        Ok(r)
    }

    /// Checks the interval's range or the cron expression, naming the bad value.
    pub fn validate(&self) -> Result<()> {
        match self {
            Repeat::Every(d) => {
                let whole_ms = d.subsec_nanos() % 1_000_000 == 0;
                if !whole_ms || *d < MIN_EVERY || *d > MAX_EVERY {
                    // (in ms when the short form would round: 3650d and 1ms is not 3650d)
                    let shown = if !whole_ms {
                        format!("{d:?}")
                    } else if parse_duration(&format_duration(*d)).ok() == Some(*d) {
                        format_duration(*d)
                    } else {
                        format!("{}ms", d.as_millis())
                    };
                    return Err(Error::invalid(
                        "schedule interval",
                        format!(
                            "{shown}: use whole milliseconds from {} to 3650d",
                            format_duration(MIN_EVERY)
                        ),
                    ));
                }
                Ok(())
            }
            Repeat::Cron(expr) => {
                let cron = parse_cron(expr)?;
                // a pattern such as "0 0 0 31 2 *" parses but never matches
                next_cron_tick(&cron, expr, 0)?;
                Ok(())
            }
        }
    }

    /// The first tick strictly after `now_ms` (ms since the epoch); `None` when a cron
    /// expression has no further tick.
    pub fn next_after(&self, now_ms: u64) -> Result<Option<u64>> {
        Ticker::new(self)?.next_after(now_ms)
    }

    /// The latest tick at or before `now_ms`; `None` when there is none (or, for a cron
    /// expression, none within the search limit of about a year back).
    pub fn latest_at_or_before(&self, now_ms: u64) -> Result<Option<u64>> {
        Ticker::new(self)?.latest_at_or_before(now_ms)
    }

    /// The ticks one round of the schedule loop fires for a schedule due at `due` (at or
    /// before `now`), and the tick it is due at afterwards (`None`: a cron expression with no
    /// further tick). Late by at most `window_ms` (the loop slept or was slow): every tick
    /// from `due` to `now`, in order, at most `max` of them (then the next one is due at once).
    /// Later than that (no worker ran): only the latest tick at or before `now`, once.
    pub(crate) fn ticks_due(
        &self,
        due: u64,
        now: u64,
        window_ms: u64,
        max: usize,
    ) -> Result<(Vec<u64>, Option<u64>)> {
        let ticker = Ticker::new(self)?;
        if now.saturating_sub(due) > window_ms {
            let latest = ticker
                .latest_at_or_before(now)?
                .filter(|t| *t >= due)
                .unwrap_or(due);
            // after `now`, not after `latest`: should the search for the latest tick fall
            // back to `due`, the ticks between must not fire one per round
            return Ok((vec![latest], ticker.next_after(now)?));
        }
        let mut ticks = vec![due];
        loop {
            let next = ticker.next_after(*ticks.last().unwrap_or(&due))?;
            match next {
                Some(t) if t <= now && ticks.len() < max => ticks.push(t),
                _ => return Ok((ticks, next)),
            }
        }
    }

    /// The interval in ms, 0 for a cron schedule (the upsert script's argument).
    fn every_ms(&self) -> u64 {
        match self {
            Repeat::Every(d) => d.as_millis() as u64,
            Repeat::Cron(_) => 0,
        }
    }
}

impl fmt::Display for Repeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repeat::Every(d) => write!(f, "every {}", format_duration(*d)),
            Repeat::Cron(expr) => write!(f, "cron {expr}"),
        }
    }
}

/// A repeatable job: on every tick of `repeat`, a job `name` with `data` and `opts` is
/// added to the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Identifies the schedule within its queue; upserting the same id replaces it.
    pub id: String,
    /// Handler name of the jobs it adds.
    pub name: String,
    /// Payload of the jobs it adds.
    pub data: Value,
    /// Options of the jobs it adds (a `job_id` is not allowed: it is derived per tick).
    pub opts: JobOptions,
    /// When it ticks.
    pub repeat: Repeat,
}

impl Schedule {
    /// A schedule adding jobs `name` with `null` data and default options.
    pub fn new(id: impl Into<String>, name: impl Into<String>, repeat: Repeat) -> Self {
        Schedule {
            id: id.into(),
            name: name.into(),
            data: Value::Null,
            opts: JobOptions::new(),
            repeat,
        }
    }

    /// Sets the payload of the jobs it adds.
    pub fn data<T: Serialize + ?Sized>(mut self, data: &T) -> Result<Self> {
        self.data = serde_json::to_value(data)?;
        Ok(self)
    }

    /// Sets the options of the jobs it adds.
    pub fn opts(mut self, opts: JobOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Checks every value, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        validate_schedule_id(&self.id)?;
        validate_definition(&self.name, &self.opts)?;
        self.repeat.validate()
    }

    /// The job of the tick at `tick_ms`: its id is derived from the schedule and the tick,
    /// so adding it twice stores it once.
    pub(crate) fn job_for_tick(&self, tick_ms: u64) -> NewJob {
        NewJob {
            name: self.name.clone(),
            data: self.data.clone(),
            opts: self.opts.clone().job_id(tick_job_id(&self.id, tick_ms)),
        }
    }

    /// Reads a stored definition back (the hash field is the id).
    pub(crate) fn from_stored(id: &str, json: &str) -> Result<Self> {
        let s: Stored = serde_json::from_str(json)
            .map_err(|e| Error::Protocol(format!("stored schedule {id:?}: {e}")))?;
        let schedule = Schedule {
            id: id.to_string(),
            name: s.name,
            data: s.data,
            opts: s.opts,
            repeat: s.repeat,
        };
        schedule
            .validate()
            .map_err(|e| Error::Protocol(format!("stored schedule {id:?}: {e}")))?;
        Ok(schedule)
    }

    fn stored(&self) -> Result<String> {
        Ok(serde_json::to_string(&StoredRef {
            name: &self.name,
            data: &self.data,
            opts: &self.opts,
            repeat: &self.repeat,
        })?)
    }
}

/// What is stored in the schedules hash under the schedule's id.
#[derive(Deserialize)]
struct Stored {
    name: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    opts: JobOptions,
    repeat: Repeat,
}

#[derive(Serialize)]
struct StoredRef<'a> {
    name: &'a str,
    data: &'a Value,
    #[serde(skip_serializing_if = "is_default_opts")]
    opts: &'a JobOptions,
    repeat: &'a Repeat,
}

fn is_default_opts(o: &&JobOptions) -> bool {
    **o == JobOptions::default()
}

/// Tick arithmetic with the cron expression parsed once.
enum Ticker<'a> {
    Every(u64),
    // boxed: a parsed cron is far larger than an interval
    Cron(Box<Cron>, &'a str),
}

impl<'a> Ticker<'a> {
    fn new(repeat: &'a Repeat) -> Result<Self> {
        Ok(match repeat {
            Repeat::Every(d) => Ticker::Every((d.as_millis() as u64).max(1)),
            Repeat::Cron(expr) => Ticker::Cron(Box::new(parse_cron(expr)?), expr),
        })
    }

    fn next_after(&self, now_ms: u64) -> Result<Option<u64>> {
        match self {
            Ticker::Every(every) => Ok(Some((now_ms / every + 1) * every)),
            Ticker::Cron(cron, expr) => next_cron_tick(cron, expr, now_ms),
        }
    }

    fn latest_at_or_before(&self, now_ms: u64) -> Result<Option<u64>> {
        match self {
            Ticker::Every(every) => Ok(Some(now_ms / every * every)),
            Ticker::Cron(cron, expr) => {
                // a tick at second s is at or before now_ms exactly when s <= now_ms / 1000
                let Some(at) = utc_second(now_ms) else {
                    return Ok(None);
                };
                match cron.find_previous_occurrence(&at, true) {
                    Ok(t) if t.timestamp() >= 0 => Ok(Some(t.timestamp() as u64 * 1000)),
                    Ok(_) | Err(CronError::TimeSearchLimitExceeded) => Ok(None),
                    Err(e) => Err(bad_cron(expr, &e.to_string())),
                }
            }
        }
    }
}

/// A stored schedule as listed: its definition and when it fires next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleInfo {
    /// Queue name.
    pub queue: String,
    /// Schedule id.
    pub id: String,
    /// Handler name of the jobs it adds.
    pub name: String,
    /// Payload of the jobs it adds.
    pub data: Value,
    /// Options of the jobs it adds.
    pub opts: JobOptions,
    /// When it ticks.
    #[cfg_attr(feature = "openapi", schema(value_type = RepeatRepr))]
    pub repeat: Repeat,
    /// Its next tick (ms since the epoch, Redis clock); `None` once a cron expression has
    /// no further tick.
    pub next_run_ms: Option<u64>,
}

impl ScheduleInfo {
    fn new(queue: &str, s: Schedule, next_run_ms: Option<u64>) -> Self {
        ScheduleInfo {
            queue: queue.to_string(),
            id: s.id,
            name: s.name,
            data: s.data,
            opts: s.opts,
            repeat: s.repeat,
            next_run_ms,
        }
    }
}

/// A stored schedule whose definition does not read back (a corrupt record, written behind
/// jobq's back): it never fires, and is listed with why, so it can be seen and removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorruptSchedule {
    /// Queue name.
    pub queue: String,
    /// Schedule id.
    pub id: String,
    /// Why its definition cannot be read.
    pub corrupt: String,
}

/// A queue's schedules as listed: those that read back, and the corrupt ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleListing {
    /// The schedules, sorted by id, with their next ticks.
    pub schedules: Vec<ScheduleInfo>,
    /// The definitions that do not read back, sorted by id.
    pub corrupt: Vec<CorruptSchedule>,
}

/// A schedule id follows the job-id rule (1–[`MAX_SCHEDULE_ID_LEN`] printable ASCII
/// characters without spaces), so the job ids derived from it are valid too.
pub fn validate_schedule_id(id: &str) -> Result<()> {
    if id.len() > MAX_SCHEDULE_ID_LEN || validate_job_id(id).is_err() {
        return Err(Error::invalid(
            "schedule id",
            format!(
                "{id:?}: use 1-{MAX_SCHEDULE_ID_LEN} printable ASCII characters without spaces (not . or ..)"
            ),
        ));
    }
    Ok(())
}

fn validate_definition(name: &str, opts: &JobOptions) -> Result<()> {
    if name.is_empty() || name.len() > 256 {
        return Err(Error::invalid(
            "job name",
            format!("{name:?}: use 1-256 characters"),
        ));
    }
    if let Some(id) = &opts.job_id {
        return Err(Error::invalid(
            "schedule job options",
            format!(
                "job_id {id:?} is not allowed: each tick's job id is derived from the schedule"
            ),
        ));
    }
    opts.validate()
}

/// The id of the job a schedule adds for the tick at `tick_ms`.
pub fn tick_job_id(schedule_id: &str, tick_ms: u64) -> String {
    format!("sched:{schedule_id}:{tick_ms}")
}

fn parse_cron(expr: &str) -> Result<Cron> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| bad_cron(expr, &e.to_string()))
}

fn bad_cron(expr: &str, why: &str) -> Error {
    Error::invalid(
        "cron expression",
        format!(
            "{expr:?}: {why} (use 5 fields, or 6 with seconds first, e.g. \"0 */5 * * * *\", or 7 with a year last; times are UTC)"
        ),
    )
}

/// The first tick of `cron` strictly after `now_ms`; `None` when there is none.
fn next_cron_tick(cron: &Cron, expr: &str, now_ms: u64) -> Result<Option<u64>> {
    // cron works on whole seconds: the next second after the current one is after now_ms
    let Some(from) = utc_second(now_ms) else {
        return Ok(None);
    };
    match cron.find_next_occurrence(&from, false) {
        Ok(t) if t.timestamp() >= 0 => Ok(Some(t.timestamp() as u64 * 1000)),
        Ok(_) => Ok(None),
        Err(CronError::TimeSearchLimitExceeded) if now_ms > 0 => Ok(None),
        Err(CronError::TimeSearchLimitExceeded) => Err(bad_cron(expr, "it never fires")),
        Err(e) => Err(bad_cron(expr, &e.to_string())),
    }
}

/// The UTC second `now_ms` falls in, which croner searches from (UTC has no
/// daylight-saving gaps or folds); `None` past the dates `chrono` represents (far past
/// croner's search limit anyway: no tick is found there).
fn utc_second(now_ms: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(now_ms / 1000).ok()?, 0)
}

impl Queue {
    /// Stores `schedule`, replacing any schedule with the same id, and returns it with its
    /// first tick: the first multiple of the interval after now (`every`), or the cron
    /// expression's next tick. Fails, naming the bad value, on an invalid id, name, option,
    /// interval or cron expression, or on a job its ticks could not add (a name with control
    /// characters, data or options over the size caps): such a schedule would fail every
    /// tick, and the ticks of the queue's other schedules fired with it.
    pub async fn upsert_schedule(&self, schedule: Schedule) -> Result<ScheduleInfo> {
        schedule.validate()?;
        checked_data(&schedule.job_for_tick(0), self.inner.redis.caps())?;
        let def = schedule.stored()?;
        // The script refuses a cron tick that is no longer in the future by its own clock
        // (it may already have been fired under the old definition): compute it again.
        for _ in 0..5 {
            let first_cron = match &schedule.repeat {
                Repeat::Every(_) => 0,
                Repeat::Cron(expr) => schedule
                    .repeat
                    .next_after(scripts::node_time::now_ms(&self.inner).await?)?
                    .ok_or_else(|| bad_cron(expr, "it has no future tick"))?,
            };
            let first = scripts::schedule_upsert::schedule_upsert(
                &self.inner,
                &schedule.id,
                &def,
                schedule.repeat.every_ms(),
                first_cron,
            )
            .await?;
            if first >= 0 {
                // after the store: an obliterate from elsewhere before it would take the
                // registration and leave the schedule (firing) out of every listing
                scripts::registry::register_again(&self.inner).await?;
                return Ok(ScheduleInfo::new(
                    &self.inner.name,
                    schedule,
                    Some(first as u64),
                ));
            }
        }
        Err(Error::Protocol(format!(
            "schedule {:?}: its first tick kept passing before it was stored",
            schedule.id
        )))
    }

    /// Every schedule of this queue with its next tick, sorted by id; a stored definition
    /// that does not read back (a corrupt record, which never fires either) is left out:
    /// [`Queue::schedule_listing`] lists those too.
    pub async fn schedules(&self) -> Result<Vec<ScheduleInfo>> {
        Ok(self.schedule_listing().await?.schedules)
    }

    /// Every schedule of this queue, as [`Queue::schedules`], and beside them each stored
    /// definition that does not read back, with why (never failing the listing of the
    /// others).
    pub async fn schedule_listing(&self) -> Result<ScheduleListing> {
        let (defs, due) = scripts::schedules::all(&self.inner).await?;
        let due: std::collections::HashMap<String, f64> = due.into_iter().collect();
        let mut out = ScheduleListing {
            schedules: Vec::with_capacity(defs.len()),
            corrupt: Vec::new(),
        };
        for (id, json) in defs {
            let next = due.get(&id).map(|s| *s as u64);
            match Schedule::from_stored(&id, &json) {
                Ok(s) => out
                    .schedules
                    .push(ScheduleInfo::new(&self.inner.name, s, next)),
                Err(e) => out.corrupt.push(CorruptSchedule {
                    queue: self.inner.name.clone(),
                    corrupt: crate::text::clip(&e.to_string(), 300),
                    id,
                }),
            }
        }
        out.schedules.sort_by(|a, b| a.id.cmp(&b.id));
        out.corrupt.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// One schedule of this queue with its next tick, if it exists.
    pub async fn schedule(&self, id: &str) -> Result<Option<ScheduleInfo>> {
        let (def, next) = scripts::schedules::one(&self.inner, id).await?;
        match def {
            None => Ok(None),
            Some(json) => Ok(Some(ScheduleInfo::new(
                &self.inner.name,
                Schedule::from_stored(id, &json)?,
                next.map(|s| s as u64),
            ))),
        }
    }

    /// Removes schedule `id`: no tick fires after this returns (a job of a tick already
    /// being fired may still be added). Jobs it already added are left alone. Returns
    /// whether it existed.
    pub async fn remove_schedule(&self, id: &str) -> Result<bool> {
        scripts::schedule_remove::schedule_remove(&self.inner, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_just_over_the_most_is_named_as_it_was_given() {
        let e = Repeat::Every(MAX_EVERY + Duration::from_millis(1))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("315360000001ms"), "{e}");
        let e = Repeat::Every(Duration::from_millis(5))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("5ms:"), "{e}");
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> u64 {
        let t = chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|date| date.and_hms_opt(h, mi, s))
            .expect("a valid date and time");
        t.and_utc().timestamp_millis() as u64
    }

    #[test]
    fn known_dates_convert_both_ways() {
        // (ms since the epoch, the date and time): 1970, a day before it, leap days
        // (2000 is a leap year, 2100 is not), and the last second of year 9999
        for (ms, (y, mo, d, h, mi, s)) in [
            (0, (1970, 1, 1, 0, 0, 0)),
            (951_782_400_000, (2000, 2, 29, 0, 0, 0)),
            (1_709_208_000_000, (2024, 2, 29, 12, 0, 0)),
            (4_107_542_399_000, (2100, 2, 28, 23, 59, 59)),
            (4_107_542_400_000, (2100, 3, 1, 0, 0, 0)),
            (253_402_300_799_000, (9999, 12, 31, 23, 59, 59)),
        ] {
            assert_eq!(utc(y, mo, d, h, mi, s), ms, "{y}-{mo}-{d} {h}:{mi}:{s}");
            let t = utc_second(ms).unwrap();
            assert_eq!(t.timestamp_millis() as u64, ms);
            assert_eq!(
                t.format("%Y-%m-%d %H:%M:%S").to_string(),
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            );
        }
        // 1970-01-01 was a Thursday, 2024-06-09 a Sunday: what weekday crons match
        let thursdays = Repeat::cron("0 0 0 * * THU").unwrap();
        assert_eq!(thursdays.next_after(0).unwrap(), Some(7 * 86_400_000));
        let sundays = Repeat::cron("0 0 12 * * SUN").unwrap();
        assert_eq!(
            sundays.next_after(utc(2024, 6, 8, 0, 0, 0)).unwrap(),
            Some(utc(2024, 6, 9, 12, 0, 0))
        );
        // leap days: the next 29 February after 2096's is 2104's (2100 has none)
        let leap = Repeat::cron("0 0 0 29 2 *").unwrap();
        assert_eq!(
            leap.next_after(utc(2096, 3, 1, 0, 0, 0)).unwrap(),
            Some(utc(2104, 2, 29, 0, 0, 0))
        );
        // a time past the dates chrono represents has no tick
        assert_eq!(thursdays.next_after(u64::MAX).unwrap(), None);
        assert_eq!(thursdays.latest_at_or_before(u64::MAX).unwrap(), None);
    }

    proptest::proptest! {
        /// Over years 1970 to 4000, a cron tick every second, minute or day falls where
        /// plain arithmetic on Unix time puts it (UTC days are 86 400 s long).
        #[test]
        fn cron_ticks_agree_with_unix_time_arithmetic(now in 0u64..64_060_588_800_000) {
            for (expr, period) in [
                ("* * * * * *", 1_000),
                ("0 * * * * *", 60_000),
                ("0 0 0 * * *", 86_400_000),
            ] {
                let r = Repeat::cron(expr).unwrap();
                proptest::prop_assert_eq!(
                    r.next_after(now).unwrap(),
                    Some((now / period + 1) * period)
                );
                proptest::prop_assert_eq!(
                    r.latest_at_or_before(now).unwrap(),
                    Some(now / period * period)
                );
            }
        }
    }

    #[test]
    fn every_ticks_on_multiples_of_the_interval() {
        let r = Repeat::every(Duration::from_secs(1)).unwrap();
        assert_eq!(r.next_after(5_300).unwrap(), Some(6_000));
        assert_eq!(r.next_after(6_000).unwrap(), Some(7_000));
        let r = Repeat::every(Duration::from_millis(250)).unwrap();
        assert_eq!(r.next_after(1_001).unwrap(), Some(1_250));
    }

    #[test]
    fn a_late_loop_fires_every_missed_tick_in_order() {
        let r = Repeat::every(Duration::from_millis(10)).unwrap();
        // due at 1_000, reached at 1_035: four ticks, then due at 1_040
        assert_eq!(
            r.ticks_due(1_000, 1_035, 2_000, 1_000).unwrap(),
            (vec![1_000, 1_010, 1_020, 1_030], Some(1_040))
        );
        // on time: just the one
        assert_eq!(
            r.ticks_due(1_000, 1_000, 2_000, 1_000).unwrap(),
            (vec![1_000], Some(1_010))
        );
        // at most `max` per round: the rest stay due
        assert_eq!(
            r.ticks_due(1_000, 1_035, 2_000, 2).unwrap(),
            (vec![1_000, 1_010], Some(1_020))
        );
        // exactly at the window's edge still catches up
        let (ticks, next) = r.ticks_due(1_000, 3_000, 2_000, 1_000).unwrap();
        assert_eq!(ticks.len(), 201);
        assert!(ticks.windows(2).all(|w| w[1] - w[0] == 10), "{ticks:?}");
        assert_eq!(next, Some(3_010));
        let c = Repeat::cron("* * * * * *").unwrap();
        assert_eq!(
            c.ticks_due(5_000, 7_000, 2_000, 1_000).unwrap(),
            (vec![5_000, 6_000, 7_000], Some(8_000))
        );
    }

    #[test]
    fn after_downtime_only_the_latest_missed_tick_fires() {
        let r = Repeat::every(Duration::from_millis(500)).unwrap();
        // due at 1_000, reached 3.7 s later: the latest tick, not the oldest
        assert_eq!(
            r.ticks_due(1_000, 4_700, 2_000, 1_000).unwrap(),
            (vec![4_500], Some(5_000))
        );
        assert_eq!(
            r.ticks_due(1_000, 5_000, 2_000, 1_000).unwrap(),
            (vec![5_000], Some(5_500))
        );
        assert_eq!(r.latest_at_or_before(4_999).unwrap(), Some(4_500));
        let now = utc(2024, 3, 10, 12, 34, 56) + 789;
        let c = Repeat::cron("*/10 * * * * *").unwrap();
        let due = utc(2024, 3, 10, 12, 0, 0);
        assert_eq!(
            c.ticks_due(due, now, 2_000, 1_000).unwrap(),
            (
                vec![utc(2024, 3, 10, 12, 34, 50)],
                Some(utc(2024, 3, 10, 12, 35, 0))
            )
        );
        // on the tick itself: that tick
        let c = Repeat::cron("0 */5 * * * *").unwrap();
        let on = utc(2024, 3, 10, 12, 35, 0);
        assert_eq!(c.latest_at_or_before(on).unwrap(), Some(on));
        assert_eq!(
            c.latest_at_or_before(on - 1).unwrap(),
            Some(utc(2024, 3, 10, 12, 30, 0))
        );
        // a yearly tick more than the search limit back: the due tick fires, and the next
        // is after now (not the ticks in between, one per round)
        let c = Repeat::cron("0 0 0 1 1 *").unwrap();
        let due = utc(2020, 1, 1, 0, 0, 0);
        let (ticks, next) = c.ticks_due(due, now, 2_000, 1_000).unwrap();
        assert_eq!(ticks.len(), 1, "{ticks:?}");
        assert!(ticks[0] >= due && ticks[0] <= now, "{ticks:?}");
        assert_eq!(next, Some(utc(2025, 1, 1, 0, 0, 0)));
    }

    #[test]
    fn cron_with_and_without_seconds() {
        let now = utc(2024, 3, 10, 12, 34, 56) + 789;
        let r = Repeat::cron("*/10 * * * * *").unwrap();
        assert_eq!(
            r.next_after(now).unwrap(),
            Some(utc(2024, 3, 10, 12, 35, 0))
        );
        let r = Repeat::cron("* * * * * *").unwrap();
        assert_eq!(
            r.next_after(now).unwrap(),
            Some(utc(2024, 3, 10, 12, 34, 57))
        );
        // exactly on a tick: the next one, never the same
        let r = Repeat::cron("0 */5 * * * *").unwrap();
        let on = utc(2024, 3, 10, 12, 35, 0);
        assert_eq!(r.next_after(on).unwrap(), Some(utc(2024, 3, 10, 12, 40, 0)));
        // five fields: minute first, second 0
        let r = Repeat::cron("30 2 * * *").unwrap();
        assert_eq!(r.next_after(now).unwrap(), Some(utc(2024, 3, 11, 2, 30, 0)));
        // weekdays and leap days
        let r = Repeat::cron("0 0 9 * * MON").unwrap();
        assert_eq!(r.next_after(now).unwrap(), Some(utc(2024, 3, 11, 9, 0, 0)));
        let r = Repeat::cron("0 0 0 29 2 *").unwrap();
        assert_eq!(
            r.next_after(utc(2024, 3, 1, 0, 0, 0)).unwrap(),
            Some(utc(2028, 2, 29, 0, 0, 0))
        );
        let r = Repeat::cron("@hourly").unwrap();
        assert_eq!(r.next_after(now).unwrap(), Some(utc(2024, 3, 10, 13, 0, 0)));
    }

    #[test]
    fn bad_cron_and_interval_name_the_value() {
        for bad in ["not a cron", "61 * * * * *", "* * * *", "", "0 0 0 31 2 *"] {
            let e = Repeat::cron(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{:?}", bad.trim())), "{e}");
            assert!(e.contains("cron expression"), "{e}");
        }
        for bad in [
            Duration::ZERO,
            Duration::from_millis(5),
            Duration::from_micros(1500),
        ] {
            let e = Repeat::every(bad).unwrap_err().to_string();
            assert!(e.contains("interval"), "{e}");
        }
        let e = Repeat::every(Duration::from_millis(5))
            .unwrap_err()
            .to_string();
        assert!(e.contains("5ms"), "{e}");
    }

    #[test]
    fn schedule_ids_and_options_are_checked() {
        let every = Repeat::every(Duration::from_secs(1)).unwrap();
        Schedule::new("nightly-report", "report", every.clone())
            .validate()
            .unwrap();
        for bad in ["", "has space", &"x".repeat(201)] {
            let e = Schedule::new(bad, "report", every.clone())
                .validate()
                .unwrap_err()
                .to_string();
            assert!(e.contains("schedule id"), "{e}");
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        let e = Schedule::new("s", "report", every.clone())
            .opts(JobOptions::new().job_id("fixed"))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("fixed"), "{e}");
        let e = Schedule::new("s", "", every)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("job name"), "{e}");
    }

    #[test]
    fn stored_definition_round_trips() {
        let s = Schedule::new("s1", "report", Repeat::cron("0 */5 * * * *").unwrap())
            .data(&serde_json::json!({"k": [1, 2]}))
            .unwrap()
            .opts(JobOptions::new().attempts(3).priority(5));
        let back = Schedule::from_stored("s1", &s.stored().unwrap()).unwrap();
        assert_eq!(back, s);
        let e = Schedule::new(
            "s2",
            "r",
            Repeat::every(Duration::from_millis(1500)).unwrap(),
        );
        let json = e.stored().unwrap();
        assert!(json.contains("\"every_ms\":1500"), "{json}");
        assert_eq!(Schedule::from_stored("s2", &json).unwrap(), e);
        let job = s.job_for_tick(1_700_000_000_000);
        assert_eq!(job.opts.job_id.as_deref(), Some("sched:s1:1700000000000"));
        assert_eq!(job.opts.priority, 5);
    }
}
