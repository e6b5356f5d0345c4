//! The engine against a real Redis: adding jobs (single, bulk, batched, debounced),
//! claiming, delays, priorities, retries and failures, concurrency, counts and listings,
//! per-minute metrics, the stored layout of a job, self-repair and bad stored data; and a
//! smoke test end to end.

mod engine_add;
mod engine_add_batching;
mod engine_bad_data;
mod engine_claim_ahead;
mod engine_claim_fast;
mod engine_concurrency;
mod engine_counts;
mod engine_debounce;
mod engine_delay;
mod engine_failures;
mod engine_flow;
mod engine_groups;
mod engine_groups_hostile;
mod engine_layout;
mod engine_lean;
mod engine_lean_hostile;
mod engine_lean_ops;
mod engine_lean_reads;
mod engine_listing;
mod engine_metrics;
mod engine_priority;
mod engine_repair;
mod engine_retry;
mod engine_search;
mod engine_waiting_count;
mod smoke;
