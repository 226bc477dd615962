//! The `sigil` binary: logging set-up, then the command line.

use std::io::IsTerminal;

use clap::Parser;
use sigil::logging::{Batched, FlushGuard};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let log = init_logging();
    let result = run();
    // Whatever is still buffered comes out before the error line.
    drop(log);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = sigil::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(sigil::cli::run(cli))
}

/// Human-readable logs by default, JSON with `SIGIL_LOG_FORMAT=json`; the
/// level comes from `RUST_LOG` (default `info`). Logs go to standard error,
/// in batches (see `sigil::logging`), until the returned guard is dropped.
fn init_logging() -> FlushGuard<std::io::Stderr> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let (writer, guard) = Batched::new(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    if std::env::var("SIGIL_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
    guard
}
