//! Reading a parent's children and their outcomes (`Queue::children`, `Ctx::children`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::Result;
use crate::job::{stored_state, JobRef, JobState};
use crate::queue::Queue;
use crate::scripts::kids;
use crate::store::QueueStore;
use crate::validate::validate_queue_name;

use super::types::{ChildOutcome, ChildState};

impl Queue {
    /// The children of flow parent `id`, in the order the flow gave them: each one's
    /// queue, id, name, and how it ended (return value or failure reason), or its state
    /// now while it has not. Empty for a job without children.
    pub async fn children(&self, id: &str) -> Result<Vec<ChildOutcome>> {
        of(&self.inner, id).await
    }
}

/// The children of parent `id` of queue `q`, in the flow's order. A child not finished yet
/// is looked up in its own queue for its state now (a child whose job is gone shows as
/// removed; one finished but not yet delivered shows its outcome).
pub(crate) async fn of(q: &QueueStore, id: &str) -> Result<Vec<ChildOutcome>> {
    // (a children's record of the wrong type, a corrupt one, has no child to show: its
    // parent is failed saying so, by the safety net)
    let stored = kids::children_of(q, id).await?.unwrap_or_default();
    let mut out: Vec<(u64, ChildOutcome)> = Vec::with_capacity(stored.len());
    // unfinished children, by queue: (index in `out`, child id)
    let mut pending: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
    for (child, value) in stored {
        let Some(r) = JobRef::from_text(&child) else {
            continue;
        };
        let (position, name, outcome) = parse(&value);
        let state = match outcome {
            Outcome::Pending => {
                if validate_queue_name(&r.queue).is_ok() {
                    pending
                        .entry(r.queue.clone())
                        .or_default()
                        .push((out.len(), r.id.clone()));
                }
                ChildState::Unfinished(JobState::Waiting)
            }
            Outcome::Done(s, _) => s,
        };
        let mut c = ChildOutcome {
            queue: r.queue,
            id: r.id,
            name: name.to_string(),
            state,
            return_value: None,
            failed_reason: None,
        };
        if let Outcome::Done(s, v) = outcome {
            set_outcome(&mut c, s, v);
        }
        out.push((position, c));
    }
    for (queue, list) in pending {
        let cq = QueueStore::new(&q.redis, &q.prefix, &queue);
        for chunk in list.chunks(1_000) {
            let ids: Vec<&str> = chunk.iter().map(|(_, id)| id.as_str()).collect();
            let rows = kids::child_fields(&cq, &ids).await?;
            for ((at, _), row) in chunk.iter().zip(rows) {
                if let Some((state, value)) = child_state(&row) {
                    set_outcome(&mut out[*at].1, state, value);
                }
            }
        }
    }
    out.sort_by_key(|(position, _)| *position);
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

/// A stored child entry's outcome.
enum Outcome<'a> {
    Pending,
    Done(ChildState, &'a str),
}

/// Reads `<letter><position> <name>[\n<value>]` (see `keys.rs` `job_kids`).
fn parse(value: &str) -> (u64, &str, Outcome<'_>) {
    let (head, rest) = value.split_once('\n').unwrap_or((value, ""));
    let letter = head.chars().next().unwrap_or('p');
    let head = head.get(letter.len_utf8()..).unwrap_or("");
    let (position, name) = head.split_once(' ').unwrap_or(("", head));
    let position = position.parse().unwrap_or(u64::MAX);
    let outcome = match letter {
        'c' => Outcome::Done(ChildState::Completed, rest),
        'f' => Outcome::Done(ChildState::Failed, rest),
        'r' => Outcome::Done(ChildState::Removed, "it was removed"),
        'x' => Outcome::Done(ChildState::Cancelled, "it was cancelled"),
        _ => Outcome::Pending,
    };
    (position, name, outcome)
}

/// How a child is, from its job's fields (`kids::child_fields`): its state, with its return
/// value or failure reason once it ended; a job that is gone was removed. None when the
/// stored state is not one (a corrupt record).
pub(crate) fn child_state(row: &kids::ChildFields) -> Option<(ChildState, &str)> {
    let Some(f) = row else {
        return Some((ChildState::Removed, "it was removed"));
    };
    let field = |name: &str, missing: &'static str| f.get(name).map_or(missing, String::as_str);
    Some(match stored_state(f)?.parse::<JobState>().ok()? {
        JobState::Completed => (ChildState::Completed, field("result", "null")),
        JobState::Failed => (ChildState::Failed, field("error", "")),
        JobState::Cancelled => (ChildState::Cancelled, "it was cancelled"),
        s => (ChildState::Unfinished(s), ""),
    })
}

/// Sets how child `c` is: `value` is its return value (JSON) or its failure.
fn set_outcome(c: &mut ChildOutcome, state: ChildState, value: &str) {
    c.state = state;
    match state {
        ChildState::Completed => {
            c.return_value = Some(
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string())),
            )
        }
        ChildState::Failed | ChildState::Removed | ChildState::Cancelled => {
            c.failed_reason = Some(value.to_string())
        }
        ChildState::Unfinished(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stored_children() {
        let (p, n, o) = parse("p3 video.transcode");
        assert_eq!((p, n), (3, "video.transcode"));
        assert!(matches!(o, Outcome::Pending));
        let (p, n, o) = parse("c0 a b\n{\"x\":1}\nmore");
        assert_eq!((p, n), (0, "a b"));
        assert!(matches!(
            o,
            Outcome::Done(ChildState::Completed, "{\"x\":1}\nmore")
        ));
        let (_, _, o) = parse("f12 x\nboom");
        assert!(matches!(o, Outcome::Done(ChildState::Failed, "boom")));
        // corrupt values never panic
        for v in ["", "c", "é", "p\n", "cx"] {
            let _ = parse(v);
        }
    }
}
