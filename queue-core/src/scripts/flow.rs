//! `flow.lua`: the helpers and key layout the flow scripts share (`flow_stage`,
//! `flow_commit`, `settle`). Their calls start the same way: the queue's ten flow keys, then
//! its base, the group and the events bound.

use redis::ScriptInvocation;

use super::EVENTS_MAXLEN;
use crate::keys::{QueueKeys, GROUP};

/// A flow script: the prelude, then `flow.lua`, then the script itself.
macro_rules! flow_script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: std::sync::LazyLock<redis::Script> =
            std::sync::LazyLock::new(|| {
                redis::Script::new(concat!(
                    include_str!("prelude.lua"),
                    include_str!("flow.lua"),
                    include_str!($file)
                ))
            });
    };
}
pub(crate) use flow_script;

/// Starts a flow script's call on queue `keys`: its KEYS and its first three ARGV.
pub(crate) fn flow_call<'a>(script: &'a redis::Script, keys: &QueueKeys) -> ScriptInvocation<'a> {
    let mut inv = script.prepare_invoke();
    inv.key(keys.meta())
        .key(keys.lanes())
        .key(keys.delayed())
        .key(keys.marker())
        .key(keys.events())
        .key(keys.waiting_children())
        .key(keys.staged())
        .key(keys.failed())
        .key(keys.metrics_failed())
        .key(keys.outbox());
    inv.arg(keys.base()).arg(GROUP).arg(EVENTS_MAXLEN);
    inv
}
