//! The worker's Prometheus endpoint (`--metrics-bind`): an axum router with `GET /metrics`
//! (the Prometheus text exposition format) and `GET /healthz`, 404 for any other path and
//! 405 for any other method, served by hyper one request per connection, with bounds so
//! that clients which connect and send nothing cannot hold it:
//!
//! - a request's headers must arrive within [`HEADER_TIMEOUT`];
//! - a connection is closed after [`CONNECTION_TIMEOUT`] whatever it is doing (a client
//!   that stopped reading the answer);
//! - at most [`MAX_CONNECTIONS`] are served at once; more wait in the listen backlog.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Produces the metrics text on each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Longest a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection is served.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// Binds `addr` (failing at once with a message naming it) and serves scrapes until the
/// process ends. Returns the bound address (useful with port 0).
pub async fn serve(addr: &str, render: Render) -> Result<SocketAddr, String> {
    serve_within(addr, render, Limits::default()).await
}

/// Bounds of the endpoint's connections.
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_timeout: Duration,
    connection_timeout: Duration,
    max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: HEADER_TIMEOUT,
            connection_timeout: CONNECTION_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

async fn serve_within(addr: &str, render: Render, limits: Limits) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics-bind {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("--metrics-bind {addr}: {e}"))?;
    tokio::spawn(accept(listener, router(render), limits));
    Ok(local)
}

/// The endpoint's routes.
fn router(render: Render) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = render();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                        )],
                        text,
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .method_not_allowed_fallback(|| async { only_get() })
        .fallback(|method: Method| async move {
            if method == Method::GET {
                (StatusCode::NOT_FOUND, "not found\n").into_response()
            } else {
                only_get().into_response()
            }
        })
}

fn only_get() -> (StatusCode, &'static str) {
    (StatusCode::METHOD_NOT_ALLOWED, "only GET\n")
}

/// Accepts connections while a slot is free, each served on a task of its own.
async fn accept(listener: TcpListener, app: Router, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let app = app.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        limits.connection_timeout,
                        serve_connection(stream, app, limits.header_timeout),
                    )
                    .await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One connection: one request (no keep-alive), its headers within `header_timeout`.
async fn serve_connection(stream: TcpStream, app: Router, header_timeout: Duration) {
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
        .await;
    if let Err(e) = served {
        // a header timeout, a reset, a malformed request: the client's business
        tracing::debug!(error = %e, "metrics endpoint: connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: Limits) -> SocketAddr {
        let render: Render = Arc::new(|| "jobq_worker_running_jobs 0\n".to_string());
        serve_within("127.0.0.1:0", render, limits).await.unwrap()
    }

    /// Sends `request` on a new connection; the answer, read until the server closes it.
    async fn ask(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// The status of an answer: its first line after the protocol.
    fn status(answer: &str) -> &str {
        answer
            .lines()
            .next()
            .and_then(|line| line.split_once(' '))
            .map_or("", |(_, status)| status)
    }

    #[tokio::test]
    async fn answers_metrics_and_health_404_and_405_one_request_per_connection() {
        let addr = start(Limits::default()).await;
        let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        let metrics = ask(addr, &get("/metrics?x=1")).await;
        assert_eq!(status(&metrics), "200 OK", "{metrics}");
        assert!(
            metrics.contains("content-type: text/plain; version=0.0.4"),
            "{metrics}"
        );
        assert!(
            metrics.ends_with("\r\n\r\njobq_worker_running_jobs 0\n"),
            "{metrics}"
        );
        let health = ask(addr, &get("/healthz")).await;
        assert_eq!(status(&health), "200 OK", "{health}");
        assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
        let missing = ask(addr, &get("/nope")).await;
        assert_eq!(status(&missing), "404 Not Found", "{missing}");
        for request in [
            "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
            "DELETE /nope HTTP/1.1\r\nHost: t\r\n\r\n",
        ] {
            let refused = ask(addr, request).await;
            assert_eq!(status(&refused), "405 Method Not Allowed", "{refused}");
            assert!(refused.ends_with("only GET\n"), "{refused}");
        }
    }

    #[tokio::test]
    async fn headers_that_do_not_arrive_in_time_close_the_connection() {
        let addr = start(Limits {
            header_timeout: Duration::from_millis(300),
            ..Limits::default()
        })
        .await;
        let mut loris = TcpStream::connect(addr).await.unwrap();
        loris
            .write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
            .await
            .unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), loris.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "a half-sent header held the connection for 5s"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn connections_over_the_cap_wait_for_a_free_slot() {
        let addr = start(Limits {
            header_timeout: Duration::from_millis(800),
            max_connections: 2,
            ..Limits::default()
        })
        .await;
        let held = [
            TcpStream::connect(addr).await.unwrap(),
            TcpStream::connect(addr).await.unwrap(),
        ];
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let answer = ask(addr, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert!(answer.ends_with("ok\n"), "{answer}");
        // served once a held connection's header timeout freed its slot
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "served at once: {:?}",
            started.elapsed()
        );
        drop(held);
    }
}
