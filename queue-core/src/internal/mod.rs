//! Pieces jobq's own binaries and tests share: the CLI's value parsers (`args`), a worker's
//! claims one call at a time (`claims`), key names
//! (`keys`), text escaping (`text`), name checks (`validate`), the clock (`clock`), job
//! JSON lines (`job_spec`), integers JSON would round (`json_numbers`) and a queue's limits as JSON (`limits_view`). Not part of the
//! stable API: they change with jobq.

pub mod args;
pub mod claims;
pub mod clock;
pub mod job_spec;
pub mod json_numbers;
pub mod keys;
pub mod limits_view;
pub mod text;
pub mod validate;
