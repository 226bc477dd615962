//! `notes-service`: serves the notes API. Configuration comes from the
//! environment (see `config.rs` and README.md).

use std::process::ExitCode;

use notes_service::config::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("notes-service: {e}");
            return ExitCode::from(2);
        }
    };
    if config.feed.is_none() {
        tracing::warn!(
            "NOTES_FEED_CLIENT_ID/NOTES_FEED_CLIENT_SECRET are not set: revoked tokens keep \
             working until they expire"
        );
    }
    let verifier = match config.verifier().build().await {
        Ok(verifier) => verifier,
        Err(e) => {
            eprintln!("notes-service: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("notes-service: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().map_or(config.listen, |a| a);
    tracing::info!(listen = %addr, issuer = %config.issuer, audience = %config.audience, "notes-service is serving");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, notes_service::app(verifier))
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notes-service: {e}");
            ExitCode::from(1)
        }
    }
}
