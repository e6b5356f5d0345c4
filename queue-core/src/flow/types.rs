//! What a flow is made of: the nodes to add, the tree stored, a child's outcome.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::{JobOptions, JobState};

/// One node of a flow to add: a job (queue, handler name, data, options) and the jobs that
/// must finish before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowJob {
    /// The queue the job goes to.
    pub queue: String,
    /// Handler name.
    pub name: String,
    /// JSON payload.
    #[serde(default)]
    pub data: Value,
    /// Options (as for a single job; `delay` counts from the moment the last child
    /// finished; `dedup` and `debounce` are refused in a flow).
    #[serde(default)]
    pub opts: JobOptions,
    /// Jobs that must finish first (at most [`super::MAX_CHILDREN`]).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub children: Vec<FlowJob>,
}

impl FlowJob {
    /// A node with serialisable `data`, default options and no children.
    pub fn new(
        queue: impl Into<String>,
        name: impl Into<String>,
        data: &impl Serialize,
    ) -> crate::Result<Self> {
        Ok(FlowJob {
            queue: queue.into(),
            name: name.into(),
            data: serde_json::to_value(data)?,
            opts: JobOptions::default(),
            children: Vec::new(),
        })
    }

    /// With these options.
    pub fn opts(mut self, opts: JobOptions) -> Self {
        self.opts = opts;
        self
    }

    /// With one more child.
    pub fn child(mut self, child: FlowJob) -> Self {
        self.children.push(child);
        self
    }

    /// With these children added.
    pub fn children(mut self, children: impl IntoIterator<Item = FlowJob>) -> Self {
        self.children.extend(children);
        self
    }
}

/// A flow as stored: every node with the id it was given, in the shape of the [`FlowJob`]
/// it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowTree {
    /// Queue name.
    pub queue: String,
    /// Handler name.
    pub name: String,
    /// The job's id.
    pub id: String,
    /// The children's trees, in the order given.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub children: Vec<FlowTree>,
}

/// How a child of a flow's parent ended, or where it is while it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildState {
    /// Completed: its return value is in [`ChildOutcome::return_value`].
    Completed,
    /// Failed for good: the reason is in [`ChildOutcome::failed_reason`].
    Failed,
    /// Removed before it finished (it counts as finished).
    Removed,
    /// Cancelled ([`Queue::cancel`](crate::Queue::cancel); it counts as finished).
    Cancelled,
    /// Not finished yet: its state now.
    Unfinished(JobState),
}

impl ChildState {
    /// Whether the child counts as finished for its parent.
    pub fn is_finished(self) -> bool {
        !matches!(self, ChildState::Unfinished(_))
    }

    /// `completed`, `failed`, `removed`, `cancelled`, or the unfinished job's state.
    pub fn as_str(self) -> &'static str {
        match self {
            ChildState::Completed => "completed",
            ChildState::Failed => "failed",
            ChildState::Removed => "removed",
            ChildState::Cancelled => "cancelled",
            ChildState::Unfinished(s) => s.as_str(),
        }
    }
}

impl std::fmt::Display for ChildState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ChildState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One child of a flow's parent: where it is, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChildOutcome {
    /// The child's queue.
    pub queue: String,
    /// The child's id.
    pub id: String,
    /// The child's handler name.
    pub name: String,
    /// How it ended (or its state now, while it has not).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: ChildState,
    /// What a completed child returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_value: Option<Value>,
    /// Why a failed (or removed) child did not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_reason: Option<String>,
}
