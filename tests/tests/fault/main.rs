//! Fault drills with real `jobq-worker` processes and a real Redis: workers killed, frozen
//! or shut down mid-job, leases and stalls, lost replies and lost stream entries, timeouts,
//! Redis restarting or absent at start-up, the consistency sweep, and random churn. No job
//! is lost or recorded twice.
//!
//! Needs the workspace binaries built first (`cargo build --workspace --bins`).

mod fault_churn;
mod fault_flow;
mod fault_frozen;
mod fault_groups;
mod fault_kill;
mod fault_lease;
mod fault_lost_pending;
mod fault_lost_reply;
mod fault_redis_restart;
mod fault_shutdown;
mod fault_startup;
mod fault_sweep;
mod fault_timeout;
