//! `chain-example`: runs the gateway, service A and service B in one
//! process, each on its own port, against a Sigil. See README.md.
//!
//! Environment: `SIGIL_ISSUER` (default `http://127.0.0.1:8080`),
//! `SERVICE_A_CLIENT_ID` (default `service-a`), `SERVICE_A_CLIENT_SECRET`
//! (required), `SERVICE_B_AUDIENCE` (default `service-b`), and the
//! addresses `GATEWAY_LISTEN`, `SERVICE_A_LISTEN`, `SERVICE_B_LISTEN`
//! (default `127.0.0.1:8090`, `:8091`, `:8092`).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::process::ExitCode;

use chain_example::service_a::ServiceA;
use chain_example::{Settings, gateway, service_a, service_b};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

async fn listen(name: &str, default: &str) -> Result<(TcpListener, String), String> {
    let text = var(name, default);
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("{name}={text:?} is not an address like {default}"))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({name}): {e}"))?;
    let url = format!("http://{}", listener.local_addr().unwrap_or(addr));
    Ok((listener, url))
}

async fn run() -> Result<(), String> {
    let secret = var("SERVICE_A_CLIENT_SECRET", "");
    if secret.is_empty() {
        return Err(
            "SERVICE_A_CLIENT_SECRET is not set: the secret `sigil clients create service-a` \
             printed"
                .into(),
        );
    }
    let (gateway_listener, gateway_url) = listen("GATEWAY_LISTEN", "127.0.0.1:8090").await?;
    let (a_listener, service_a_url) = listen("SERVICE_A_LISTEN", "127.0.0.1:8091").await?;
    let (b_listener, service_b_url) = listen("SERVICE_B_LISTEN", "127.0.0.1:8092").await?;
    let settings = Settings {
        issuer: var("SIGIL_ISSUER", "http://127.0.0.1:8080"),
        service_a_client_id: var("SERVICE_A_CLIENT_ID", "service-a"),
        service_a_client_secret: secret,
        service_b_audience: var("SERVICE_B_AUDIENCE", "service-b"),
        service_a_url,
        service_b_url,
    };
    let verifier = |audience: &str| {
        let builder = settings.verifier(audience);
        async move {
            builder
                .build()
                .await
                .map_err(|e| format!("cannot start a verifier: {e}"))
        }
    };
    // The gateway and service A accept the users' tokens, addressed to A.
    let gateway = gateway::router(
        verifier(&settings.service_a_client_id).await?,
        &settings.service_a_url,
    );
    let service_a = ServiceA::new(&settings, verifier(&settings.service_a_client_id).await?)
        .await
        .map_err(|e| format!("cannot start service A: {e}"))?;
    let service_b = service_b::router(verifier(&settings.service_b_audience).await?);
    tracing::info!(
        gateway = %gateway_url,
        service_a = %settings.service_a_url,
        service_b = %settings.service_b_url,
        issuer = %settings.issuer,
        "the chain is serving: GET {gateway_url}/api/report"
    );
    let serving = async {
        tokio::try_join!(
            axum::serve(gateway_listener, gateway).into_future(),
            axum::serve(a_listener, service_a::router(service_a)).into_future(),
            axum::serve(b_listener, service_b).into_future(),
        )
    };
    tokio::select! {
        served = serving => served.map(|_| ()).map_err(|e| e.to_string()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chain-example: {e}");
            ExitCode::FAILURE
        }
    }
}
