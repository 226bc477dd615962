//! `sigil serve`: bind the listeners, open Sigil, serve until SIGTERM or
//! SIGINT, then finish the requests in flight and close the pool.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::SystemClock;
use crate::config::ValidConfig;
use crate::state::Sigil;

pub async fn serve(mut config: ValidConfig) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let listen = listener.local_addr().unwrap_or(config.listen);
    if config.issuer_from_listen {
        let mut bound = config.into_inner();
        bound.listen = listen;
        config = bound.validated()?;
    }
    let admin = match config.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (admin_listen)"))?,
        ),
        None => None,
    };
    let sigil = Sigil::open(config, Arc::new(SystemClock)).await?;
    crate::service::background::spawn_background(&sigil);

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let admin_server = match admin {
        Some(listener) => {
            let admin_addr = listener.local_addr().ok();
            tracing::info!(admin_listen = ?admin_addr, "metrics and health on the admin listener");
            let router = crate::http::admin_app(Arc::clone(&sigil));
            Some(tokio::spawn(crate::http::serve_router(
                listener,
                router,
                sigil.config.http.clone(),
                stopped(),
            )))
        }
        None => None,
    };
    tracing::info!(
        %listen,
        issuer = %sigil.config.issuer,
        startup_ms = started.elapsed().as_millis() as u64,
        "sigil is listening"
    );
    let tls = match (&sigil.config.tls_cert, &sigil.config.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => None,
    };
    match tls {
        Some((cert, key)) => {
            crate::http::tls::serve_tls(listener, Arc::clone(&sigil), &cert, &key, stopped())
                .await?
        }
        None => crate::http::serve(listener, Arc::clone(&sigil), stopped()).await?,
    }
    if let Some(admin) = admin_server {
        let _ = admin.await;
    }
    // Store what the audit queue still holds (it waits through a database
    // outage), then close the pool.
    sigil.audit.drain(std::time::Duration::from_secs(5)).await;
    sigil.store.close().await;
    tracing::info!("sigil stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}
