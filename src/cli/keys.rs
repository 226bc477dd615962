//! `sigil keys …`: the operator's view of the key schedule and the actions
//! on it. Every action that changes state takes `--dry-run` and is audited.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Subcommand;
use secrecy::ExposeSecret;

use super::Offline;
use crate::clock::{Clock, SystemClock};
use crate::config::ValidConfig;
use crate::keys::ops::KeyOpOutcome;
use crate::keys::{Alg, Kek, KeyState};
use crate::service;
use crate::state::Sigil;
use crate::store::{self, Backend, KeyRecord};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List signing keys with their schedule.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Schedule a rotation (a new key, published now, signing after the
    /// pending lead), or with --emergency remove a compromised key at once.
    Rotate {
        /// Only this algorithm (default: both).
        #[arg(long)]
        alg: Option<String>,
        /// The kid of a compromised key: removed from the JWKS now, its
        /// tokens revoked, a new key active at once.
        // A kid is base64url, so it may start with '-'.
        #[arg(long, value_name = "KID", allow_hyphen_values = true)]
        emergency: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Stop signing with a key now; it stays published until its tokens expire.
    Retire {
        // A kid is base64url, so it may start with '-'.
        #[arg(allow_hyphen_values = true)]
        kid: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Import a PEM private key (PKCS#8, or PKCS#1 for RSA) from standard
    /// input as the next signing key, scheduled like a rotation.
    Import {
        #[arg(long)]
        alg: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-encrypt every private key under a new key-encryption key. With
    /// the KEK in keys/kek, a new one is generated and the file replaced;
    /// with SIGIL_KEK, the new KEK is read from standard input.
    Rewrap {
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the public JWKS.
    ExportPublic,
    /// Print a new random key-encryption key (base64url) for SIGIL_KEK or keys/kek.
    NewKek,
}

pub async fn run(config: ValidConfig, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::List { json } => list(config, json).await,
        KeysCommand::NewKek => {
            let (_, encoded) = Kek::generate()?;
            println!("{}", encoded.expose_secret());
            Ok(())
        }
        KeysCommand::ExportPublic => {
            let sigil = Sigil::open(config, Arc::new(SystemClock)).await?;
            println!(
                "{}",
                String::from_utf8_lossy(sigil.keys.current().jwks_body())
            );
            Ok(())
        }
        KeysCommand::Rotate {
            alg,
            emergency,
            dry_run,
        } => {
            let (offline, kek) = open(config).await?;
            let policy = offline.config.key_policy();
            let done = async {
                let ops = offline.ops();
                if let Some(kid) = emergency {
                    return report(
                        service::keys::emergency_rotate(&ops, &kek, &policy, &kid, dry_run).await?,
                    );
                }
                let algs = match alg {
                    Some(alg) => vec![alg.parse::<Alg>().map_err(anyhow::Error::msg)?],
                    None => Alg::ALL.to_vec(),
                };
                for alg in algs {
                    report(service::keys::rotate(&ops, &kek, &policy, alg, dry_run).await?)?;
                }
                Ok(())
            }
            .await;
            offline.finish().await;
            done
        }
        KeysCommand::Retire { kid, dry_run } => {
            let (offline, _) = open(config).await?;
            let policy = offline.config.key_policy();
            let done = service::keys::retire(&offline.ops(), &policy, &kid, dry_run).await;
            offline.finish().await;
            report(done?)
        }
        KeysCommand::Import { alg, dry_run } => {
            let alg = alg.parse::<Alg>().map_err(anyhow::Error::msg)?;
            let mut pem = String::new();
            std::io::stdin()
                .read_to_string(&mut pem)
                .context("cannot read the PEM key from standard input")?;
            let pem = zeroize::Zeroizing::new(pem);
            let (offline, kek) = open(config).await?;
            let policy = offline.config.key_policy();
            let done =
                service::keys::import_pem(&offline.ops(), &kek, &policy, alg, &pem, dry_run).await;
            offline.finish().await;
            report(done?)
        }
        KeysCommand::Rewrap { dry_run } => rewrap(config, dry_run).await,
    }
}

/// The store and the current KEK, checked against the stored keys.
async fn open(config: ValidConfig) -> anyhow::Result<(Offline, Kek)> {
    let offline = Offline::open(config).await?;
    let kek = Kek::load(
        offline.config.kek.as_ref(),
        &offline.config.kek_file(),
        false,
    )?;
    for key in offline.store.list_keys().await? {
        if let Some(sealed) = &key.private_key {
            kek.open(&key.kid, sealed)?;
        }
    }
    Ok((offline, kek))
}

fn report(outcome: KeyOpOutcome) -> anyhow::Result<()> {
    println!(
        "{}{}",
        if outcome.dry_run { "dry run: " } else { "" },
        outcome.description
    );
    if let Some(kid) = outcome.new_kid {
        println!("new key: {kid}");
    }
    Ok(())
}

async fn rewrap(config: ValidConfig, dry_run: bool) -> anyhow::Result<()> {
    let (offline, old) = open(config).await?;
    let done = rewrap_with(&offline, &old, dry_run).await;
    offline.finish().await;
    done
}

async fn rewrap_with(offline: &Offline, old: &Kek, dry_run: bool) -> anyhow::Result<()> {
    let config = &offline.config;
    let ops = offline.ops();
    if config.kek.is_some() {
        // The KEK lives outside Sigil: the operator supplies the new one
        // (already stored where SIGIL_KEK comes from) on standard input.
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the new KEK from standard input")?;
        let new = Kek::parse(&zeroize::Zeroizing::new(text), "read from standard input")?;
        report(service::keys::rewrap(&ops, old, &new, dry_run).await?)?;
        if !dry_run {
            println!("now set SIGIL_KEK to the new key on every node and restart them");
        }
        return Ok(());
    }
    if dry_run {
        let (new, _) = Kek::generate()?;
        return report(service::keys::rewrap(&ops, old, &new, true).await?);
    }
    if Backend::of(&config.database_url) == Some(Backend::Postgres) {
        bail!(
            "with several nodes the KEK must change everywhere at once: set SIGIL_KEK and pass the new KEK on standard input"
        );
    }
    // The new KEK is staged next to the old one before the database changes;
    // start-up promotes the staged file if the stored keys need it (a crash
    // between the two steps loses nothing).
    let new = Kek::stage_new(&config.kek_file())?;
    report(service::keys::rewrap(&ops, old, &new, false).await?)?;
    Kek::promote_staged(&config.kek_file())?;
    println!(
        "the new key-encryption key is in {}",
        config.kek_file().display()
    );
    Ok(())
}

async fn list(config: ValidConfig, json: bool) -> anyhow::Result<()> {
    let store = store::connect(&config.database_url, &config.cli_pool_settings()).await?;
    let now = SystemClock.now();
    let keys = store.list_keys().await?;
    let state = |k: &KeyRecord| KeyState::at(now, k.activates_at, k.retires_at, k.removes_at);
    if json {
        let rows: Vec<_> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kid": k.kid, "alg": k.alg, "state": state(k),
                    "created_at": k.created_at, "activates_at": k.activates_at,
                    "retires_at": k.retires_at, "removes_at": k.removes_at,
                    "private_key_present": k.private_key.is_some(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<44} {:<6} {:<8} {:<21} {:<21} {:<21} REMOVES",
        "KID", "ALG", "STATE", "CREATED", "ACTIVATES", "RETIRES"
    );
    let opt = |t: Option<i64>| t.map_or("-".to_string(), time);
    for k in &keys {
        println!(
            "{:<44} {:<6} {:<8} {:<21} {:<21} {:<21} {}",
            k.kid,
            k.alg,
            state(k).as_str(),
            time(k.created_at),
            time(k.activates_at),
            opt(k.retires_at),
            opt(k.removes_at)
        );
    }
    Ok(())
}

/// Unix seconds as RFC 3339 (UTC).
pub fn time(at: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(at.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Keys {
        #[command(subcommand)]
        command: KeysCommand,
    }

    #[test]
    fn a_kid_starting_with_a_hyphen_is_a_kid_not_a_flag() {
        // A kid is a base64url thumbprint: one in 64 starts with '-'.
        for args in [
            ["keys", "retire", "-gAbc", "--dry-run"],
            ["keys", "retire", "--dry-run", "-gAbc"],
        ] {
            let parsed = Keys::try_parse_from(args).expect("parsed").command;
            let KeysCommand::Retire { kid, dry_run } = parsed else {
                panic!("not retire");
            };
            assert_eq!((kid.as_str(), dry_run), ("-gAbc", true));
        }
        let parsed = Keys::try_parse_from(["keys", "rotate", "--emergency", "-gAbc", "--dry-run"])
            .expect("parsed")
            .command;
        let KeysCommand::Rotate {
            emergency, dry_run, ..
        } = parsed
        else {
            panic!("not rotate");
        };
        assert_eq!((emergency.as_deref(), dry_run), (Some("-gAbc"), true));
    }
}
