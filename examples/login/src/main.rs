//! `login-with-sigil`: serves the example app. Configuration comes from the
//! environment (see README.md):
//!
//! - `LOGIN_ISSUER`: Sigil's issuer URL (default `http://127.0.0.1:8080`)
//! - `LOGIN_CLIENT_ID` (default `login-example`) and `LOGIN_CLIENT_SECRET`
//! - `LOGIN_LISTEN`: where this app listens (default `127.0.0.1:8082`)
//! - `LOGIN_BASE_URL`: the app's URL as browsers reach it (default
//!   `http://` and the address it listens on), e.g. behind a TLS proxy

use std::net::SocketAddr;
use std::process::ExitCode;

use login_with_sigil::{App, Settings, router};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let Ok(client_secret) = std::env::var("LOGIN_CLIENT_SECRET") else {
        eprintln!("login-with-sigil: set LOGIN_CLIENT_SECRET (printed by `sigil clients create`)");
        return ExitCode::from(2);
    };
    let listen: SocketAddr = match var("LOGIN_LISTEN", "127.0.0.1:8082").parse() {
        Ok(listen) => listen,
        Err(e) => {
            eprintln!("login-with-sigil: LOGIN_LISTEN: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("login-with-sigil: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().unwrap_or(listen);
    let settings = Settings {
        issuer: var("LOGIN_ISSUER", "http://127.0.0.1:8080"),
        client_id: var("LOGIN_CLIENT_ID", "login-example"),
        client_secret,
        base_url: var("LOGIN_BASE_URL", &format!("http://{addr}"))
            .trim_end_matches('/')
            .to_string(),
    };
    let app = match App::discover(settings.clone()).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("login-with-sigil: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(listen = %addr, issuer = %settings.issuer, "login-with-sigil is serving");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("login-with-sigil: {e}");
            ExitCode::from(1)
        }
    }
}
