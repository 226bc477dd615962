//! `sigil audit tail`: the newest audit events, and with `--follow` the
//! ones stored after them.

use clap::Subcommand;

use crate::config::ValidConfig;
use crate::store;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Show the newest audit events, oldest first.
    Tail {
        /// How many of the newest events.
        #[arg(long, short = 'n', default_value_t = 50)]
        limit: i64,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
        /// Keep printing new events as they are stored (polls every second).
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

pub async fn run(config: ValidConfig, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Tail {
            limit,
            json,
            follow,
        } => tail(config, limit, json, follow).await,
    }
}

async fn tail(config: ValidConfig, limit: i64, json: bool, follow: bool) -> anyhow::Result<()> {
    let store = store::connect(&config.database_url, &config.cli_pool_settings()).await?;
    let mut last = 0;
    for e in store.recent_audit(limit.clamp(1, 10_000)).await? {
        last = e.id;
        print_audit(e, json);
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        // Events are numbered in insertion order; read the newest page and
        // print what is past the last one shown.
        for e in store.recent_audit(1_000).await? {
            if e.id > last {
                last = e.id;
                print_audit(e, json);
            }
        }
    }
}

fn print_audit(e: store::AuditRecord, json: bool) {
    if json {
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let line = serde_json::json!({
            "id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target, "detail": detail,
        });
        println!("{line}");
    } else {
        println!(
            "{}  {:<24} {:<28} {:<44} {}",
            super::keys::time(e.at),
            e.actor,
            e.action,
            e.target.unwrap_or_default(),
            e.detail
        );
    }
}
