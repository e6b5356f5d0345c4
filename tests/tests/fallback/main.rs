//! The producer fallback (`JOBQ_FALLBACK`) when Redis is down: through the `jobq` CLI and
//! the library's `Producer` (inline, error, spool, the circuit breaker), and spool replay
//! that survives being killed midway.

mod fallback_cli;
mod fallback_producer;
mod fallback_replay;
