//! Reading a parent's children and their outcomes.

use crate::error::Result;
use crate::store::QueueStore;

use super::ChildOutcome;

/// The children of parent `id` of queue `q`.
pub(crate) async fn of(q: &QueueStore, id: &str) -> Result<Vec<ChildOutcome>> {
    let _ = (q, id);
    todo!("children")
}
