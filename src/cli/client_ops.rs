//! `sigil clients rotate-secret | disable | enable`.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::clients;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store::{self, StoreError};

pub(super) async fn rotate_secret(
    config: Config,
    client_id: &str,
    overlap: Duration,
    given: Option<SecretString>,
    force: bool,
) -> anyhow::Result<()> {
    let store = store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
    let now = SystemClock.now();
    let until = now + overlap.as_secs() as i64;
    let generated = given.is_none();
    let secret =
        clients::rotate_secret(store.as_ref(), client_id, given, until, now, force).await?;
    // The new secret is printed before anything else can fail: it is the
    // only copy.
    if generated {
        println!("client_secret: {}", secret.expose_secret());
        eprintln!("Store the secret now: Sigil keeps only its hash and cannot show it again.");
    } else {
        println!("client_secret: (as given on standard input)");
    }
    println!(
        "the previous secret works until {} ({}s from now)",
        super::keys::time(until),
        overlap.as_secs()
    );
    let detail = serde_json::json!({ "previous_secret_valid_until": until });
    if let Err(e) = store
        .insert_audit(
            now,
            "cli",
            "client.secret_rotated",
            Some(client_id),
            &detail.to_string(),
        )
        .await
    {
        eprintln!("warning: the rotation is done but its audit event was not stored: {e}");
    }
    Ok(())
}

pub(super) async fn set_disabled(
    config: Config,
    client_id: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    let store = store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
    match store.set_client_disabled(client_id, disabled).await {
        Err(StoreError::NotFound) => anyhow::bail!("no client {client_id:?}"),
        other => other?,
    }
    let (action, word) = if disabled {
        ("client.disabled", "disabled")
    } else {
        ("client.enabled", "enabled")
    };
    store
        .insert_audit(SystemClock.now(), "cli", action, Some(client_id), "{}")
        .await?;
    println!("{word} client {client_id}");
    Ok(())
}
