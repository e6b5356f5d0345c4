//! Serving connections with bounds, so clients that connect and then send nothing, or too
//! little, cannot hold an exposed dashboard open (what `axum::serve` has no knobs for):
//!
//! - at most [`ConnLimits::max_connections`] at once: one more is answered 503 (JSON) once
//!   its request arrives and closed, and the refusals are logged at most every 10 seconds;
//! - a request's headers must arrive within [`ConnLimits::header_timeout`] (hyper's header
//!   read timeout, which also runs while a kept-alive connection waits for its next
//!   request, so an idle connection closes then too);
//! - a connection on which no byte moves either way for [`ConnLimits::idle_timeout`] is
//!   dropped: a client that stopped reading a response, or stopped sending a body. The
//!   `/events` stream sends a keep-alive comment often enough (`sse::keep_alive_every`)
//!   that a live one is never idle.
//!
//! Each request carries the peer's address as a [`ClientAddr`] extension (the failed-auth
//! backoff of `throttle.rs` keys on it). At shutdown, no new connection is accepted, each
//! open one finishes its request in progress, and the server waits at most [`SHUTDOWN_GRACE`]
//! for them.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use queue_core::worker::CancellationToken;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower_service::Service;

use crate::config::ConnLimits;

/// Longest the server waits at shutdown for open connections to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Most refusals (over the connection cap) being written at once; past it a connection is
/// just closed.
const MAX_REFUSING: usize = 64;

/// The peer address of the connection a request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Serves `app` on `listener` within `limits` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut last_warned: Option<Instant> = None;
    let mut refused_since_warned = 0u64;
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // out of file descriptors and the like: wait rather than spin
                    tracing::warn!("cannot accept connections: {e}; retrying in 1s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused_since_warned += 1;
            if last_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                tracing::warn!(
                    client = %peer,
                    refused = refused_since_warned,
                    "{} connections open (--max-connections): refusing more",
                    limits.max_connections
                );
                last_warned = Some(Instant::now());
                refused_since_warned = 0;
            }
            if let Ok(permit) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream, limits.max_connections).await;
                    drop(permit);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, app, limits, shutdown).await;
            drop(slot);
        });
    }
    // every slot back: every connection has ended
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            "{} connection(s) still open after {}: closing them",
            limits.max_connections - slots.available_permits(),
            queue_core::format_duration(SHUTDOWN_GRACE)
        );
    }
    Ok(())
}

/// Accept errors that concern one connection only.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Answers 503 (JSON, `retry-after: 1`) to the request of a connection over the cap,
/// through hyper, then closes it (with a [`linger`]). The client gets [`LINGER`] to send
/// its request's headers, and the whole refusal is bounded by it too.
async fn refuse(stream: TcpStream, max: usize) {
    let error = format!(
        "too many connections: this dashboard serves at most {max} at once \
         (--max-connections); try again shortly"
    );
    // a ready future (Unpin, as `without_shutdown` wants), answering whatever was asked
    let service = hyper::service::service_fn(move |_: hyper::Request<Incoming>| {
        std::future::ready(Ok::<_, std::convert::Infallible>(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                Json(serde_json::json!({ "error": error })),
            )
                .into_response(),
        ))
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(LINGER)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .without_shutdown();
    if let Ok(Ok(parts)) = tokio::time::timeout(LINGER, conn).await {
        linger(parts.io.into_inner()).await;
    }
}

/// One connection: HTTP/1 with the header timeout, dropped once idle, shut down gracefully
/// with the server, and closed with a linger (see [`linger`]) once hyper is done with it.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer));
        let mut app = app.clone();
        // boxed: `poll_without_shutdown` wants an Unpin future
        Box::pin(async move { app.call(req.map(Body::new)).await })
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut conn = builder.serve_connection(io, service);
    let mut shutting_down = false;
    loop {
        let idle_left = limits.idle_timeout.saturating_sub(activity.idle_for());
        let step = tokio::select! {
            ended = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => Step::Ended(ended),
            _ = tokio::time::sleep(idle_left) => Step::Tick,
            _ = shutdown.cancelled(), if !shutting_down => Step::Shutdown,
        };
        match step {
            // at shutdown, no lingering: the process is about to exit
            Step::Ended(Ok(())) if shutting_down => return,
            Step::Ended(Ok(())) => {
                linger(conn.into_parts().io.into_inner().inner).await;
                return;
            }
            Step::Ended(Err(e)) => {
                // a header timeout, a reset, a malformed request: the client's business
                tracing::debug!(client = %peer, "connection ended: {e}");
                return;
            }
            Step::Tick if activity.idle_for() >= limits.idle_timeout => {
                tracing::debug!(
                    client = %peer,
                    "closing a connection idle for {}",
                    queue_core::format_duration(limits.idle_timeout)
                );
                return;
            }
            Step::Tick => {}
            Step::Shutdown => {
                shutting_down = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    }
}

/// What woke a connection's loop.
enum Step {
    Ended(hyper::Result<()>),
    Tick,
    Shutdown,
}

/// Longest a closing connection is read from (and what it sends discarded).
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes discarded while lingering.
const LINGER_BYTES: usize = 8 << 20;

/// Closes a connection hyper is done with: first our side (the client then has the whole
/// answer), then reading and discarding what the client still sends for a moment. A client
/// still sending a body that was refused (a 413 before it was read) would otherwise be
/// reset, and could lose the answer.
async fn linger(mut stream: TcpStream) {
    let _ = tokio::time::timeout(LINGER, async {
        stream.shutdown().await?;
        let mut sink = [0u8; 8192];
        let mut left = LINGER_BYTES;
        while left > 0 {
            let n = stream.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// When a connection last moved a byte, in milliseconds since it was accepted.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A stream that notes each byte it moves.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
