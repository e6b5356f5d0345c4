//! Flows: jobs that wait for jobs. A flow is a tree of jobs, possibly across queues; a
//! parent stays `waiting_children` until every child has finished (completed, failed for
//! good, or removed), then becomes `waiting` (or `delayed`, with a delay) and its handler
//! reads the children's outcomes with [`crate::Ctx::children`].
//!
//! ```no_run
//! use queue_core::{Config, FlowJob, FlowProducer, JobOptions, OnChildFailure};
//! use serde_json::json;
//!
//! # async fn demo() -> queue_core::Result<()> {
//! let flows = FlowProducer::connect(Config::from_env()?).await?;
//! let publish = FlowJob::new("publish", "video.publish", &json!({"video": "v1"}))?
//!     .opts(JobOptions::new().on_child_failure(OnChildFailure::Ignore))
//!     .child(FlowJob::new("transcode", "video.transcode", &json!({
//!         "input": "/media/v1.mp4", "output": "/media/v1-720p.mp4", "preset": "720p"
//!     }))?)
//!     .child(FlowJob::new("thumbs", "video.thumbnail", &json!({
//!         "input": "/media/v1.mp4", "output": "/media/v1.jpg", "at_secs": 5
//!     }))?);
//! let tree = flows.add(publish).await?;
//! println!("parent {}/{}", tree.queue, tree.id);
//! # Ok(())
//! # }
//! ```
//!
//! How it stays right under crashes and across Redis Cluster masters is told in
//! ARCHITECTURE.md ("Flows").

mod add;
pub(crate) mod children;
pub(crate) mod deliver;
pub(crate) mod reconcile;
mod types;
pub(crate) mod validate;

pub use add::FlowProducer;
pub use types::{ChildOutcome, ChildState, FlowJob, FlowTree};
pub use validate::{MAX_CHILDREN, MAX_DEPTH, MAX_NODES};
