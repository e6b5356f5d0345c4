//! A queue's outbox of finished flow children (`keys.rs` `outbox`): read from its head and
//! deleted once delivered (`flow/deliver.rs`). Entries are written by the scripts that
//! finish or remove a child (`notify_parent` in the prelude).

use redis::Value;

use crate::error::Result;
use crate::store::QueueStore;

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The stream entry id.
    pub entry: String,
    /// The child's id (in the outbox's queue).
    pub child: String,
    /// Its parent, `<queue>/<id>`.
    pub parent: String,
    /// `c`, `f` or `r`.
    pub state: String,
    /// Return value or reason.
    pub value: String,
}

/// Up to `count` entries from the head of `q`'s outbox. An entry missing a field (a
/// corrupt record) comes back with it empty: the deliverer drops it.
pub(crate) async fn read(q: &QueueStore, count: usize) -> Result<Vec<Entry>> {
    let v: Value = redis::cmd("XRANGE")
        .arg(q.keys.outbox())
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        _ => String::new(),
    };
    let mut out = Vec::new();
    let Value::Array(items) = v else {
        return Ok(out);
    };
    for item in items {
        let Value::Array(parts) = item else { continue };
        let (Some(id), Some(Value::Array(fields))) = (parts.first(), parts.get(1)) else {
            continue;
        };
        let mut e = Entry {
            entry: text(id),
            child: String::new(),
            parent: String::new(),
            state: String::new(),
            value: String::new(),
        };
        for pair in fields.chunks(2) {
            let [name, value] = pair else { continue };
            let value = text(value);
            match text(name).as_str() {
                "c" => e.child = value,
                "p" => e.parent = value,
                "s" => e.state = value,
                "v" => e.value = value,
                _ => {}
            }
        }
        out.push(e);
    }
    Ok(out)
}

/// Deletes delivered entries from `q`'s outbox: every entry up to `last`, the newest of
/// those read from its head (so all older ones were read too). One trim drops whole nodes
/// of the stream where deleting entry by entry costs far more, and it cannot drop an entry
/// written since: stream ids only grow.
pub(crate) async fn delete_through(q: &QueueStore, last: &str) -> Result<()> {
    let Some((ms, seq)) = last
        .split_once('-')
        .and_then(|(ms, seq)| Some((ms.parse::<u64>().ok()?, seq.parse::<u64>().ok()?)))
    else {
        return Ok(());
    };
    let next = match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms + 1),
    };
    let _: i64 = redis::cmd("XTRIM")
        .arg(q.keys.outbox())
        .arg("MINID")
        .arg(next)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    Ok(())
}
