//! `schedule_fire.lua`: moves schedules' due ticks on, each only if it is still the tick the
//! caller read (compare-and-set), so two workers never fire one tick twice.

use super::invoke_on;
use crate::error::{Error, Result};
use crate::store::QueueStore;

script!(SCRIPT, "schedule_fire.lua");

/// One `schedule_fire` call: move each schedule's due tick `from` → `to` if it still is
/// `from` (`to` = None: off the due set). Returns which moves happened.
pub(crate) async fn move_ticks<'a>(
    queue: &QueueStore,
    moves: impl Iterator<Item = (&'a str, u64, Option<u64>)>,
) -> Result<Vec<bool>> {
    let inner = queue;
    let keys = &inner.keys;
    let mut inv = SCRIPT.prepare_invoke();
    inv.key(keys.schedules()).key(keys.schedules_due());
    let mut n = 0;
    for (id, from, to) in moves {
        inv.arg(id)
            .arg(from)
            .arg(to.map(|t| t as i64).unwrap_or(-1));
        n += 1;
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let out: Vec<i64> = invoke_on(inner, &inv).await?;
    if out.len() != n {
        return Err(Error::Protocol(format!(
            "schedule_fire returned {} results for {n} schedules",
            out.len()
        )));
    }
    Ok(out.into_iter().map(|v| v == 1).collect())
}
