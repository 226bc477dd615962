//! The optional HTTPS listener (rustls), for deployments without a
//! TLS-terminating proxy in front.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;

use super::{SHUTDOWN_GRACE, app};
use crate::state::Sigil;

/// Serves the public API over TLS on `listener` until `shutdown` resolves,
/// then lets requests in flight finish (at most [`SHUTDOWN_GRACE`]).
pub async fn serve_tls(
    listener: TcpListener,
    sigil: Arc<Sigil>,
    cert: &Path,
    key: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Choose the provider explicitly: with both of rustls' providers enabled
    // somewhere in a build (feature unification), none is picked by default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = RustlsConfig::from_pem_file(cert, key)
        .await
        .with_context(|| {
            format!(
                "cannot load the TLS certificate {} and key {}",
                cert.display(),
                key.display()
            )
        })?;
    let handle: Handle<SocketAddr> = Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let limits = sigil.config.http.clone();
    let listener = listener.into_std()?;
    let mut server = axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        // Covers the wait before the first request (after the TLS
        // handshake, which has its own 10 s bound), including the protocol
        // detection that precedes HTTP/1's own header-read timeout.
        .first_request_timeout(limits.header_read_timeout);
    let builder = server.http_builder();
    // The same limits as the plain listener (`server.rs`). hyper-util's
    // builder has no `max_header_size`: the read buffer bounds the request
    // head instead (at least hyper's minimum of 8 KiB), with the same 431.
    builder
        .http1()
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    server
        .serve(app(sigil).into_make_service_with_connect_info::<SocketAddr>())
        .await?;
    Ok(())
}
