//! The primitives handlers build on, against a real Redis: the cache, the lock and the
//! rate limiter.

mod primitives_cache;
mod primitives_lock;
mod primitives_rate;
