//! Steering queues: pause/resume and per-job operations, bulk operations bounded in time
//! (measured with Redis's slowlog), queue-wide limits, retention keeping memory flat, and
//! repeatable jobs (schedules), cancellation and handler-steered retries.

mod control_bulk;
mod control_cancel;
mod control_limits;
mod control_ops;
mod control_retention;
mod control_schedule;
