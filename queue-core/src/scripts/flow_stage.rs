//! `flow_stage.lua`: stores a chunk of a flow's jobs of one queue, none runnable yet.

use std::borrow::Cow;

use super::flow::{flow_call, flow_script};
use super::{invoke_on, Reply};
use crate::error::Result;
use crate::store::QueueStore;

flow_script!(SCRIPT, "flow_stage.lua");

/// One job to stage: its id, whether the user gave it, its hash fields (the first pair
/// `ts`, `` filled in by the script) and its children (`<queue>/<id>`, `<position> <name>`).
pub(crate) struct Staged<'a> {
    pub id: &'a str,
    pub given: bool,
    pub fields: Vec<Cow<'a, str>>,
    pub children: Vec<(String, String)>,
}

/// Stages `jobs` of queue `q`; `Some(id)` when a given id is taken (then nothing is stored).
pub(crate) async fn stage(q: &QueueStore, jobs: &[Staged<'_>]) -> Result<Option<String>> {
    let mut inv = flow_call(&SCRIPT, &q.keys);
    inv.arg(jobs.len());
    for job in jobs {
        inv.arg(job.id)
            .arg(if job.given { "1" } else { "0" })
            .arg(job.fields.len())
            .arg(&job.fields[..])
            .arg(job.children.len());
        for (child, name) in &job.children {
            inv.arg(child).arg(name);
        }
    }
    let v: redis::Value = invoke_on(q, &inv).await?;
    let mut r = Reply::new(&v)?;
    Ok(match r.string()?.as_str() {
        "taken" => Some(r.string()?),
        _ => None,
    })
}
