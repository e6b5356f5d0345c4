//! Panics inside handlers are job failures, reported once: the attempt fails with the panic
//! message (see `worker/run.rs`). [`install_panic_hook`] keeps Rust's default hook from also
//! printing them to stderr, while every other panic is reported as before.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

use super::job::HandlerFuture;

thread_local! {
    /// Set while this thread polls a handler's future.
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
    /// Where the last handler panic on this thread was raised, with its backtrace: the hook
    /// writes it, and the catch in `run.rs` (same poll, same thread) takes it as the
    /// attempt's stack trace.
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The location and backtrace of the handler panic just caught on this thread (recorded
/// when [`install_panic_hook`] is in place, as every worker installs it).
pub(crate) fn take_panic_trace() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

/// A handler's future, marking the thread as "in a handler" while it is polled.
pub(crate) struct InHandler(pub HandlerFuture);

/// Clears the mark when the poll ends, by return or by unwinding.
struct Mark;

impl Drop for Mark {
    fn drop(&mut self) {
        IN_HANDLER.with(|f| f.set(false));
    }
}

impl Future for InHandler {
    type Output = <HandlerFuture as Future>::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        IN_HANDLER.with(|f| f.set(true));
        let _mark = Mark;
        self.0.as_mut().poll(cx)
    }
}

/// Installs a process-wide panic hook (once) that logs panics raised inside job handlers at
/// debug level only — the worker records them as the attempt's failure and logs that — and
/// hands every other panic to the hook that was there before. Binaries call it at start.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_HANDLER.with(Cell::get) {
                tracing::debug!(%info, "handler panicked: the attempt fails");
                let at = info
                    .location()
                    .map(|l| format!("panicked at {}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_else(|| "panicked".into());
                let trace = std::backtrace::Backtrace::force_capture();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{at}\n{trace}")));
            } else {
                previous(info);
            }
        }));
    });
}
