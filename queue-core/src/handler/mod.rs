//! What a handler is and sees: [`Job`] (its typed data), [`JobError`] (how it fails),
//! [`Ctx`] (progress, logs, cancellation and the primitives), [`Handlers`] (the table of
//! registered handlers), and the guarded call that runs one (panics caught, time limit
//! enforced). Shared by the worker runtime (`worker/`) and the producer's inline fallback
//! (`producer/inline.rs`), both of which sit above it.

mod call;
mod ctx;
mod job;
mod panic;
mod trail;

pub(crate) use call::{guarded_call, panicked, timed_out, unregistered, Stop};
pub use ctx::Ctx;
pub(crate) use ctx::{Home, InlineUnavailable};
pub(crate) use job::{erase, Again, ErasedHandler, RawJob};
pub use job::{BackoffFn, Handlers, Job, JobError};
pub use panic::install_panic_hook;
pub(crate) use panic::take_panic_trace;
pub(crate) use trail::{unpoisoned, NoRedis, Trail};
