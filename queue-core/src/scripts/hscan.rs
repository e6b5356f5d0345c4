//! Reading a whole hash of a queue a bounded call at a time (flows' children, the group
//! limits).

use crate::error::Result;
use crate::store::QueueStore;

/// Fields asked for per HSCAN round trip: at first a few, then as many as keep one reply
/// near [`SCAN_BYTES`] by the sizes read so far (a flow's outcomes may be return values of
/// up to the data cap each), between [`SCAN_FIRST`] and [`SCAN_MOST`].
const SCAN_FIRST: usize = 8;
const SCAN_MOST: usize = 1_000;
const SCAN_BYTES: usize = 1 << 20;

/// Every field and value of hash `key`, in no particular order, each once. Read with HSCAN,
/// a bounded number of bytes a call, so a hash of large values never makes one long call.
/// `None` when the key is not a hash (a corrupt record).
pub(crate) async fn read_hash(q: &QueueStore, key: &str) -> Result<Option<Vec<(String, String)>>> {
    let mut conn = q.redis.conn();
    let mut cursor = 0u64;
    let mut out: Vec<(String, String)> = Vec::new();
    let (mut count, mut bytes) = (SCAN_FIRST, 0usize);
    loop {
        let reply = redis::cmd("HSCAN")
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await;
        let (next, page): (u64, Vec<(String, String)>) = match reply {
            Err(e) if e.code() == Some("WRONGTYPE") => return Ok(None),
            r => r.map_err(|e| q.redis.err(e))?,
        };
        bytes += page.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        out.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
        let average = bytes / out.len().max(1) + 1;
        count = (SCAN_BYTES / average).clamp(SCAN_FIRST, SCAN_MOST);
    }
    // HSCAN may return a field twice
    let mut seen = std::collections::HashSet::new();
    out.retain(|(k, _)| seen.insert(k.clone()));
    Ok(Some(out))
}
