//! `FlowProducer`: adds a flow all or nothing.
//!
//! A flow's jobs live in many queues, so in many Redis Cluster slots, and no one call can
//! store them all. The add is in two steps: every job is first *staged* (stored, but
//! runnable by no worker: `waiting_children` with a staged mark, `flow_stage.lua`), then
//! committed top-down, the root first (`flow_commit.lua`). The root's commit is the moment
//! the flow exists: before it, a failed add takes back what it staged, and workers take
//! back staged jobs whose root was never committed; after it, jobs left staged (the
//! producer died half-way through the commits) are committed by the workers
//! (`flow/reconcile.rs`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::config::Config;
use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::job::{new_job_id, push_long, OnChildFailure};
use crate::scripts::flow_commit::{commit, Commit};
use crate::scripts::flow_stage::{stage, Staged};
use crate::scripts::{kids, registry};
use crate::store::QueueStore;

use super::deliver;
use super::types::{FlowJob, FlowTree};
use super::validate::{self, at, Node};

/// Longest an add may spend staging before it gives up instead of committing. Workers take
/// back jobs staged for longer than [`super::reconcile::STAGE_TIMEOUT`] (twice this) whose
/// root was never committed, so a commit never races a take-back.
pub(crate) const COMMIT_DEADLINE: Duration = Duration::from_secs(300);

/// Most arguments of one staging call (a parent of 10,000 children takes 20,000 alone).
const STAGE_ARGS: usize = 20_000;
/// Most jobs, and about the most bytes, of one staging or commit call.
const CALL_JOBS: usize = 1_000;
const CALL_BYTES: usize = 1 << 20;
/// Staging calls in flight at once.
const IN_FLIGHT: usize = 4;
/// Longest a failed add spends taking back what it staged before it returns its error.
const TAKE_BACK_LIMIT: Duration = Duration::from_secs(5);

/// Adds flows (trees of jobs across queues) to one Redis under one key prefix.
#[derive(Clone, Debug)]
pub struct FlowProducer {
    redis: Redis,
    prefix: String,
}

impl FlowProducer {
    /// Connects to the configured Redis.
    pub async fn connect(config: Config) -> Result<FlowProducer> {
        let redis = Redis::connect(&config).await?;
        Ok(FlowProducer::new(&redis, config.prefix()))
    }

    /// Adds flows on an existing connection, under `prefix`.
    pub fn new(redis: &Redis, prefix: &str) -> FlowProducer {
        FlowProducer {
            redis: redis.clone(),
            prefix: prefix.to_string(),
        }
    }

    /// Adds `flow`: every node is checked first (nothing is stored if one is wrong; the
    /// error names the node by its path, `root.children[2]`), then stored. All or nothing:
    /// no job of the flow can start before the whole tree is stored, and a flow that fails
    /// before its root is committed is taken back. A given `job_id` that is taken fails
    /// the add ([`Error::Flow`] naming the node). Returns the tree with every node's id.
    pub async fn add(&self, mut flow: FlowJob) -> Result<FlowTree> {
        crate::trace::inherit(every_opts(&mut flow).map(|o| &mut o.traceparent));
        let nodes = validate::check(&flow, self.redis.caps())?;
        let plan = Plan::new(&self.redis, &self.prefix, &nodes)?;
        let started = Instant::now();
        let staged = async {
            plan.stage_all().await?;
            // the queues are named in the registry only once nothing can refuse the flow
            for q in plan.stores.values() {
                registry::register(q).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(e) = staged.await {
            plan.take_back().await;
            return Err(e);
        }
        if started.elapsed() > COMMIT_DEADLINE {
            plan.take_back().await;
            return Err(Error::Refused(format!(
                "the flow took longer than {}s to store; nothing of it was kept",
                COMMIT_DEADLINE.as_secs()
            )));
        }
        plan.commit_root().await?;
        plan.commit_rest().await;
        Ok(plan.tree(0))
    }
}

impl FlowJob {
    /// Records `traceparent` (a W3C `traceparent`, checked by the add) as the trace context
    /// of every node that names none: all the flow's jobs join the producer's trace.
    pub fn with_traceparent(mut self, traceparent: &str) -> FlowJob {
        for opts in every_opts(&mut self) {
            opts.traceparent
                .get_or_insert_with(|| traceparent.to_string());
        }
        self
    }
}

/// The options of every node of `root`, walked as they are asked for.
fn every_opts(root: &mut FlowJob) -> impl Iterator<Item = &mut crate::job::JobOptions> {
    let mut stack = vec![root];
    std::iter::from_fn(move || {
        let FlowJob { opts, children, .. } = stack.pop()?;
        stack.extend(children.iter_mut());
        Some(opts)
    })
}

/// A checked flow on its way to Redis: its nodes, their ids, and a store per queue.
struct Plan<'a> {
    nodes: &'a [Node<'a>],
    ids: Vec<String>,
    /// Each node's children, in order.
    kids: Vec<Vec<usize>>,
    /// Each node's stored options.
    opts: Vec<String>,
    stores: BTreeMap<&'a str, QueueStore>,
    /// This add's mark on the jobs it stages (`stg`): it commits or takes back only those.
    token: String,
}

impl<'a> Plan<'a> {
    fn new(redis: &Redis, prefix: &str, nodes: &'a [Node<'a>]) -> Result<Self> {
        let ids = nodes
            .iter()
            .map(|n| n.job.opts.job_id.clone().unwrap_or_else(new_job_id))
            .collect();
        let mut kids = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            if let Some(p) = n.parent {
                kids[p].push(i);
            }
        }
        let opts = nodes
            .iter()
            .map(|n| n.job.opts.stored())
            .collect::<Result<_>>()?;
        let mut stores = BTreeMap::new();
        for n in nodes {
            stores
                .entry(n.job.queue.as_str())
                .or_insert_with(|| QueueStore::new(redis, prefix, &n.job.queue));
        }
        Ok(Plan {
            nodes,
            ids,
            kids,
            opts,
            stores,
            token: format!("{:016x}", rand::random::<u64>()),
        })
    }

    fn store(&self, i: usize) -> &QueueStore {
        &self.stores[self.nodes[i].job.queue.as_str()]
    }

    /// `<queue>/<id>` of node `i`.
    fn reference(&self, i: usize) -> String {
        format!("{}/{}", self.nodes[i].job.queue, self.ids[i])
    }

    /// Node `i` as `flow_stage` stores it.
    fn staged(&self, i: usize) -> Staged<'_> {
        let node = &self.nodes[i];
        let job = node.job;
        let mut fields: Vec<Cow<str>> = ["ts", "", "state", "waiting_children", "stg"]
            .into_iter()
            .map(Cow::Borrowed)
            .collect();
        fields.push(Cow::Borrowed(&self.token));
        fields.push(Cow::Borrowed("name"));
        fields.push(Cow::Borrowed(&job.name));
        push_long(&mut fields, "data", &node.data);
        if !self.opts[i].is_empty() {
            push_long(&mut fields, "opts", &self.opts[i]);
        }
        let mut pair = |k: &'static str, v: String| {
            fields.push(Cow::Borrowed(k));
            fields.push(Cow::Owned(v));
        };
        if job.opts.priority != 0 {
            pair("prio", job.opts.priority.to_string());
        }
        if let Some(g) = &job.opts.group {
            pair("grp", g.clone());
        }
        if let Some(tp) = &job.opts.traceparent {
            pair("tp", crate::trace::stored_form(tp).into_owned());
        }
        if let Some(p) = node.parent {
            pair("par", self.reference(p));
            pair("rt", self.reference(0));
        }
        if let Some(d) = job.opts.delay_ms.filter(|d| *d > 0) {
            pair("dly", d.to_string());
        }
        let kids = &self.kids[i];
        if !kids.is_empty() {
            pair("kp", kids.len().to_string());
            // kept for good: the workers commit a job left staged only under the parent (and
            // root) that its own add staged, never under one a later add reused the ids of
            pair("tok", self.token.clone());
            if job.opts.on_child_failure == Some(OnChildFailure::Ignore) {
                pair("ocf", "i".to_string());
            }
        }
        Staged {
            id: &self.ids[i],
            given: job.opts.job_id.is_some(),
            fields,
            // `<position> <name>`: the hash keeps no order, the position does
            children: kids
                .iter()
                .enumerate()
                .map(|(k, &c)| (self.reference(c), format!("{k} {}", self.nodes[c].job.name)))
                .collect(),
        }
    }

    /// The nodes cut into the calls that stage them: per queue, in tree order, each call
    /// bounded in jobs, arguments and bytes.
    fn stage_chunks(&self) -> Vec<Vec<usize>> {
        let mut by_queue: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            by_queue.entry(n.job.queue.as_str()).or_default().push(i);
        }
        let mut chunks = Vec::new();
        for list in by_queue.into_values() {
            let mut chunk: Vec<usize> = Vec::new();
            let (mut args, mut bytes) = (0, 0);
            for i in list {
                let a = 30 + 2 * self.kids[i].len();
                let b = self.nodes[i].data.len() + self.opts[i].len();
                if !chunk.is_empty()
                    && (chunk.len() == CALL_JOBS || args + a > STAGE_ARGS || bytes + b > CALL_BYTES)
                {
                    chunks.push(std::mem::take(&mut chunk));
                    args = 0;
                    bytes = 0;
                }
                chunk.push(i);
                args += a;
                bytes += b;
            }
            if !chunk.is_empty() {
                chunks.push(chunk);
            }
        }
        chunks
    }

    /// Stages every node; a taken id fails the add naming its node. The first failure
    /// stops it (the calls in flight are dropped: the take-back that follows covers them).
    async fn stage_all(&self) -> Result<()> {
        let chunks = self.stage_chunks();
        let calls: Vec<_> = chunks.iter().map(|c| self.stage_chunk(c)).collect();
        let mut calls = stream::iter(calls).buffer_unordered(IN_FLIGHT);
        while let Some(r) = calls.next().await {
            r?;
        }
        Ok(())
    }

    /// Stages the nodes `chunk` (of one queue) in one call.
    async fn stage_chunk(&self, chunk: &[usize]) -> Result<()> {
        let jobs: Vec<Staged> = chunk.iter().map(|&i| self.staged(i)).collect();
        let Some(id) = stage(self.store(chunk[0]), &jobs).await? else {
            return Ok(());
        };
        let i = chunk
            .iter()
            .copied()
            .find(|&i| self.ids[i] == id)
            .unwrap_or(chunk[0]);
        Err(at(
            &self.nodes[i].path,
            Error::Refused(format!(
                "job id {id:?} is taken in queue {:?}",
                self.nodes[i].job.queue
            )),
        ))
    }

    /// Deletes every job this add staged that is still staged, one queue at a time in
    /// parallel, for at most [`TAKE_BACK_LIMIT`] (best effort: what is left, Redis being
    /// unreachable, the workers take back).
    async fn take_back(&self) {
        let all: Vec<_> = self
            .stores
            .keys()
            .map(|name| self.take_back_in(name))
            .collect();
        if tokio::time::timeout(TAKE_BACK_LIMIT, futures_util::future::join_all(all))
            .await
            .is_err()
        {
            tracing::warn!("a failed flow add could not take back all it stored: workers will");
        }
    }

    /// Deletes this add's staged jobs of queue `name`.
    async fn take_back_in(&self, name: &str) {
        let q = &self.stores[name];
        let ids: Vec<&str> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].job.queue == name)
            .map(|i| self.ids[i].as_str())
            .collect();
        for chunk in ids.chunks(CALL_JOBS) {
            if let Err(e) = commit(q, chunk, Commit::Drop, Some(&self.token)).await {
                tracing::warn!(
                    queue = %name, error = %e,
                    "could not take back the jobs of a failed flow add: workers will"
                );
                return;
            }
        }
    }

    /// Commits the root: from here on the flow exists. When the call fails, the root is
    /// read back: committed after all (only the reply was lost) goes on; still staged is
    /// taken back.
    async fn commit_root(&self) -> Result<()> {
        let root = self.store(0);
        let Err(e) = commit(root, &[&self.ids[0]], Commit::Commit, Some(&self.token)).await else {
            return Ok(());
        };
        match kids::job_fields(root, &self.ids[0], &["name", "stg"]).await {
            // stored, and no longer staged (a root without children is waiting: no `state`)
            Ok(f) if f[0].is_some() && f[1].is_none() => Ok(()),
            Ok(_) => {
                self.take_back().await;
                Err(e)
            }
            // unknown: the workers commit it or take it back by the root's state
            Err(_) => Err(e),
        }
    }

    /// Commits the other nodes, a level at a time from the top (a parent waits before its
    /// children can run). A call that keeps failing is left to the workers, which commit
    /// jobs of a committed flow that stayed staged.
    async fn commit_rest(&self) {
        let mut depth = vec![0usize; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(p) = n.parent {
                depth[i] = depth[p] + 1;
            }
        }
        let deepest = depth.iter().copied().max().unwrap_or(0);
        let mut wrote = Vec::new();
        for level in 1..=deepest {
            let mut by_queue: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for i in (0..self.nodes.len()).filter(|&i| depth[i] == level) {
                by_queue
                    .entry(self.nodes[i].job.queue.as_str())
                    .or_default()
                    .push(&self.ids[i]);
            }
            let calls: Vec<(&str, &[&str])> = by_queue
                .iter()
                .flat_map(|(q, ids)| ids.chunks(CALL_JOBS).map(move |c| (*q, c)))
                .collect();
            let calls: Vec<_> = calls
                .into_iter()
                .map(|(name, ids)| self.commit_chunk(name, ids))
                .collect();
            let mut results = stream::iter(calls).buffer_unordered(IN_FLIGHT);
            while let Some((name, r)) = results.next().await {
                match r {
                    Ok(true) => wrote.push(name),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(
                        queue = %name, error = %e,
                        "could not commit part of a flow: the workers of its queues will"
                    ),
                }
            }
        }
        for name in wrote {
            let q = &self.stores[name];
            if let Err(e) = deliver::pump(&q.redis, &q.prefix, &q.name).await {
                tracing::debug!(queue = %name, error = %e, "flow outcomes left to the workers");
            }
        }
    }

    /// Commits the nodes `ids` of queue `name` in one call, tried three times; whether the
    /// queue's outbox was written.
    async fn commit_chunk<'b>(&self, name: &'b str, ids: &[&str]) -> (&'b str, Result<bool>) {
        let q = &self.stores[name];
        let mut last = None;
        for attempt in 0..3u32 {
            match commit(q, ids, Commit::Commit, Some(&self.token)).await {
                Ok((_, wrote)) => return (name, Ok(wrote)),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        (name, Err(last.expect("three attempts")))
    }

    /// Node `i`'s tree, with ids.
    fn tree(&self, i: usize) -> FlowTree {
        FlowTree {
            queue: self.nodes[i].job.queue.clone(),
            name: self.nodes[i].job.name.clone(),
            id: self.ids[i].clone(),
            children: self.kids[i].iter().map(|&c| self.tree(c)).collect(),
        }
    }
}
