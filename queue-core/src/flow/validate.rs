//! Checks a whole flow before anything of it is stored: every node's queue, name, options
//! and sizes, the shape of the tree (children per node, depth, size) and its ids (two nodes
//! with one id in one queue, or a node with its ancestor's id). Every error names the node
//! by its path in the tree.

use std::collections::HashMap;

use crate::config::JobCaps;
use crate::error::{Error, Result};
use crate::job::NewJob;
use crate::queue::checked_data;
use crate::validate::validate_queue_name;

use super::types::FlowJob;

/// Most children one node may have.
pub const MAX_CHILDREN: usize = 10_000;
/// Most levels a flow may have (the root is level 1).
pub const MAX_DEPTH: usize = 32;
/// Most jobs one flow may have.
pub const MAX_NODES: usize = 100_000;

/// What a node breaks of a flow's limits on its size, if anything: reached after `seen`
/// other nodes, at `depth` (the root is 1). The JSON form's reader (`job_spec`) and the
/// tree's check word the limits alike through this and [`width_problem`].
pub(crate) fn size_problem(seen: usize, depth: usize) -> Option<String> {
    if seen >= MAX_NODES {
        return Some(format!("more than {MAX_NODES} jobs in one flow: split it"));
    }
    (depth > MAX_DEPTH).then(|| format!("more than {MAX_DEPTH} levels of children: flatten it"))
}

/// What a node of `children` children breaks of the limit per job, if anything.
pub(crate) fn width_problem(children: usize) -> Option<String> {
    (children > MAX_CHILDREN)
        .then(|| format!("{children} children, over the limit of {MAX_CHILDREN} per job"))
}

/// One node of a checked flow, in pre-order (a parent before its children).
pub(crate) struct Node<'a> {
    pub job: &'a FlowJob,
    /// Its index in the list, and its parent's (None for the root).
    pub parent: Option<usize>,
    /// Where it is in the tree, for error messages.
    pub path: String,
    /// Its data as the JSON text stored.
    pub data: String,
}

/// The error of node `path`.
pub(crate) fn at(path: &str, e: Error) -> Error {
    Error::Flow {
        path: path.to_string(),
        source: Box::new(e),
    }
}

impl FlowJob {
    /// Checks the whole tree as [`crate::FlowProducer::add`] does before it stores
    /// anything (queue names, job names, options, sizes against `caps`, the shape of the
    /// tree, ids), without Redis: an error names the node by its path.
    pub fn validate(&self, caps: JobCaps) -> Result<()> {
        check(self, caps).map(|_| ())
    }
}

/// Checks `root` and returns its nodes in pre-order.
pub(crate) fn check(root: &FlowJob, caps: JobCaps) -> Result<Vec<Node<'_>>> {
    let mut nodes: Vec<Node> = Vec::new();
    // (queue, given id) → the node that has it
    let mut ids: HashMap<(&str, &str), usize> = HashMap::new();
    // depth-first, a parent before its children, children in order
    let mut stack: Vec<(&FlowJob, Option<usize>, String, usize)> =
        vec![(root, None, "root".to_string(), 1)];
    while let Some((job, parent, path, depth)) = stack.pop() {
        if let Some(problem) = size_problem(nodes.len(), depth) {
            return Err(at(&path, Error::invalid("flow", problem)));
        }
        validate_queue_name(&job.queue).map_err(|e| at(&path, e))?;
        if job.opts.dedup.is_some() {
            return Err(at(
                &path,
                Error::invalid("option dedup", "a job of a flow cannot be deduplicated"),
            ));
        }
        if job.opts.debounce.is_some() {
            return Err(at(
                &path,
                Error::invalid("option debounce", "a job of a flow cannot be debounced"),
            ));
        }
        if let Some(problem) = width_problem(job.children.len()) {
            return Err(at(&path, Error::invalid("children", problem)));
        }
        let new = NewJob {
            name: job.name.clone(),
            data: job.data.clone(),
            opts: job.opts.clone(),
        };
        let data = checked_data(&new, caps).map_err(|e| at(&path, e))?;
        let index = nodes.len();
        if let Some(id) = job.opts.job_id.as_deref() {
            if let Some(&other) = ids.get(&(job.queue.as_str(), id)) {
                let kind = if is_ancestor(&nodes, other, parent) {
                    "a cycle: it has the id of its ancestor"
                } else {
                    "a duplicate id: it has the id of"
                };
                return Err(at(
                    &path,
                    Error::invalid(
                        "job id",
                        format!(
                            "{id:?} in queue {:?} makes {kind} {}",
                            job.queue, nodes[other].path
                        ),
                    ),
                ));
            }
            ids.insert((job.queue.as_str(), id), index);
        }
        for (i, child) in job.children.iter().enumerate().rev() {
            stack.push((
                child,
                Some(index),
                format!("{path}.children[{i}]"),
                depth + 1,
            ));
        }
        nodes.push(Node {
            job,
            parent,
            path,
            data,
        });
    }
    Ok(nodes)
}

/// Whether node `candidate` is `parent` or one of its ancestors.
fn is_ancestor(nodes: &[Node], candidate: usize, mut parent: Option<usize>) -> bool {
    while let Some(p) = parent {
        if p == candidate {
            return true;
        }
        parent = nodes[p].parent;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobOptions;
    use serde_json::json;

    fn node(queue: &str, id: Option<&str>) -> FlowJob {
        let mut opts = JobOptions::new();
        if let Some(id) = id {
            opts = opts.job_id(id);
        }
        FlowJob::new(queue, "n", &json!(1)).unwrap().opts(opts)
    }

    #[test]
    fn pre_order_with_paths_and_parents() {
        let tree = node("a", None)
            .child(node("b", None).child(node("c", None)))
            .child(node("d", None));
        let nodes = check(&tree, JobCaps::default()).unwrap();
        let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "root",
                "root.children[0]",
                "root.children[0].children[0]",
                "root.children[1]"
            ]
        );
        let parents: Vec<Option<usize>> = nodes.iter().map(|n| n.parent).collect();
        assert_eq!(parents, [None, Some(0), Some(1), Some(0)]);
    }

    #[test]
    fn names_the_node_and_the_problem() {
        let cases = [
            (
                node("a", None).child(node("bad queue", None)),
                "root.children[0]",
                "bad queue",
            ),
            (
                node("a", Some("x")).child(node("b", None).child(node("a", Some("x")))),
                "root.children[0].children[0]",
                "cycle",
            ),
            (
                node("a", None)
                    .child(node("b", Some("x")))
                    .child(node("b", Some("x"))),
                "root.children[1]",
                "duplicate id",
            ),
            (
                node("a", None).children((0..=MAX_CHILDREN).map(|_| node("b", None))),
                "root",
                "10001 children",
            ),
        ];
        for (tree, path, needle) in cases {
            let e = check(&tree, JobCaps::default()).err().unwrap().to_string();
            assert!(e.contains(&format!("flow node {path}:")), "{e}");
            assert!(e.contains(needle), "{e}");
        }
        let mut unnamed = node("a", None);
        unnamed.name.clear();
        let e = check(&node("a", None).child(unnamed), JobCaps::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("root.children[0]") && e.contains("job name"),
            "{e}"
        );
        let caps = JobCaps {
            max_data_bytes: 10,
            ..JobCaps::default()
        };
        let big = FlowJob::new("b", "n", &"x".repeat(100)).unwrap();
        let e = check(&node("a", None).child(big), caps)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("root.children[0]") && e.contains("102 bytes"),
            "{e}"
        );
    }
}
