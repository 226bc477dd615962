//! The `sigil` command line: serve, migrate, prune, and operator tasks on
//! users, clients, keys and the audit trail (a file each). Actions go
//! through `service`, as the admin API's do, with the actor `cli`. Secrets are read from standard input, never from
//! arguments (which other users can see in the process list).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use secrecy::SecretString;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store;

mod audit;
mod clients;
mod keys;
mod offline;
mod serve;
mod users;

use offline::Offline;

#[derive(Parser)]
#[command(name = "sigil", version, about = "A standalone identity provider")]
pub struct Cli {
    /// Configuration file (TOML). Environment variables SIGIL_* override it.
    #[arg(long, env = "SIGIL_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (creating the database and keys on first start).
    Serve,
    /// Bring the database schema up to date and exit (back it up first).
    Migrate,
    /// Delete now what the background pruning deletes every prune_interval:
    /// expired revocations, dead refresh sessions, old throttle counters,
    /// audit events past audit_retention.
    Prune {
        /// Print the counts as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Manage users.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(clients::ClientsCommand),
    /// Signing keys: list, rotate, retire, import, rewrap.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve::serve(config).await,
        Command::Migrate => {
            match store::migrate(&config.database_url).await? {
                store::SchemaState::Older { at, needs } => {
                    println!(
                        "migrated the database from migration {at} to {needs}; database is up to date"
                    )
                }
                store::SchemaState::Empty => println!("created the schema; database is up to date"),
                _ => println!("database is up to date"),
            }
            Ok(())
        }
        Command::Prune { json } => {
            let now = SystemClock.now();
            let store = store::connect(&config.database_url, &config.cli_pool_settings()).await?;
            let cut = crate::prune::Cutoffs::at(&config.prune_ages(), now);
            let report = crate::prune::prune_store(store.as_ref(), cut).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "pruned {} revocations, {} refresh tokens, {} refresh families, {} throttle counters, {} audit events",
                    report.revocations,
                    report.refresh_tokens,
                    report.refresh_families,
                    report.throttle,
                    report.audit
                );
            }
            Ok(())
        }
        Command::Users(command) => users::run(config, command).await,
        Command::Clients(command) => clients::run(config, command).await,
        Command::Keys(command) => keys::run(config, command).await,
        Command::Audit(command) => audit::run(config, command).await,
    }
}

pub(crate) fn read_stdin_secret(what: &str) -> anyhow::Result<SecretString> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(SecretString::from(text.to_string()))
}
