//! The plain-HTTP listener: an accept loop over hyper's HTTP/1.1 server,
//! so that the connection-level limits `axum::serve` does not expose apply
//! (`http.header_read_timeout`, `http.max_header_bytes`), and graceful
//! shutdown. It must never serve a request whose head broke a limit.
//!
//! HTTP/1.1 only: HTTP/2 is offered over TLS (ALPN, `tls.rs`), where
//! clients negotiate it; cleartext HTTP/2 (h2c) is not offered.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::SHUTDOWN_GRACE;
use crate::config::HttpConfig;

/// The HTTP/1.1 settings every plain connection gets.
fn http1_builder(limits: &HttpConfig) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        // The header-read timeout runs from the connection's start, and
        // again after each response (so it also closes idle keep-alive
        // connections); it needs a timer.
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Longer request heads get 431 and the connection is closed.
        // Header fields are limited to hyper's default of 100 (also 431).
        .max_header_size(limits.max_header_bytes);
    builder
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish (at most [`SHUTDOWN_GRACE`]).
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    limits: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = http1_builder(&limits);
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses are small and written at once: no reason to wait for
        // more to coalesce.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // What `into_make_service_with_connect_info` would insert: the
            // peer address, for throttling and logs.
            request.extensions_mut().insert(ConnectInfo(remote));
            router.clone().oneshot(request)
        });
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Timeouts, oversized heads and clients going away end here;
            // none of them is the server's fault.
            if let Err(e) = connection.await {
                tracing::debug!(peer = %remote, error = %e, "connection closed with an error");
            }
        });
    }
    // Stop accepting at once: a connection the kernel queued now would
    // otherwise wait for an accept that never comes.
    drop(listener);
    tokio::select! {
        () = connections.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still in flight after the shutdown grace period; stopping anyway");
        }
    }
    Ok(())
}

/// An accept error either concerns one connection (the peer gave up: try
/// the next) or the process (out of file descriptors: back off a moment,
/// as busy-looping on it would only burn the CPU the other requests need).
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
