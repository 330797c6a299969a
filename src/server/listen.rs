//! The HTTP/1.1 accept loop of `vigil serve` and `vigil ats listen`, with the limits an
//! Internet-facing listener needs and `axum::serve` does not set:
//!
//! - **Header read timeout** (default 10 s): a client must send a request's whole head within it,
//!   counted from its first byte, and an idle keep-alive connection is closed after it — a
//!   connection trickling one header line every 5 s, or holding a socket open without a request,
//!   no longer keeps a task and a file descriptor forever.
//! - **Connection cap** (default 512): beyond it, new connections wait in the kernel's backlog
//!   until one closes.
//! - Graceful shutdown as `axum::serve` does it: stop accepting, let requests in flight finish.
//!
//! Slow *bodies* are bounded by the routes themselves (upload chunk size, the session's idle
//! timeout) and by [`body_timeout`].

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then waits for the connections'
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper::service::service_fn({
            let router = router.clone();
            move |req: hyper::Request<hyper::body::Incoming>| {
                let req: Request = req.map(axum::body::Body::new);
                tower::ServiceExt::oneshot(router.clone(), req)
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Timeouts and resets end here; they are the client's doing, not an error of ours.
            if let Err(e) = conn.await {
                tracing::debug!("connection closed: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A per-route limit on the whole request (head to response) for routes with small bodies:
/// a `POST` trickling one byte every 5 s is cut off with 408.
pub fn body_timeout(d: Duration) -> tower_http::timeout::TimeoutLayer {
    tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, d)
}
