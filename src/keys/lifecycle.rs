//! Creating keys and putting them on the schedule.

use super::{Alg, Kek, KeyState, generate};
use crate::store::{KeyRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kek(#[from] super::KekError),
    #[error(transparent)]
    Generate(#[from] super::GenerateError),
    /// The blocking task that generates a key panicked or was cancelled.
    #[error("the key-generation task did not finish: {0}")]
    Task(String),
    #[error("another node created a key at the same moment")]
    Raced,
}

/// Generates a key for `alg`, encrypts it and stores it to activate at
/// `activates_at`. Returns the stored record.
pub async fn create_key(
    store: &dyn Store,
    kek: &Kek,
    alg: Alg,
    rsa_bits: usize,
    now: i64,
    activates_at: i64,
) -> Result<KeyRecord, LifecycleError> {
    // RSA generation takes tens to hundreds of milliseconds: keep it off the
    // async workers.
    let generated = tokio::task::spawn_blocking(move || generate(alg, rsa_bits))
        .await
        .map_err(|e| LifecycleError::Task(e.to_string()))??;
    let record = KeyRecord {
        kid: generated.kid.clone(),
        alg: alg.as_str().to_string(),
        public_jwk: generated.public_jwk.to_string(),
        private_key: Some(kek.seal(&generated.kid, &generated.pkcs8)?),
        created_at: now,
        activates_at,
        retires_at: None,
        removes_at: None,
    };
    // Of several nodes starting together on an empty database, one creates
    // the first key; the others find it and use it.
    if !store
        .schedule_key(&record, None, Some(i64::MIN), now)
        .await?
    {
        return Err(LifecycleError::Raced);
    }
    tracing::info!(kid = %record.kid, %alg, activates_at, event = "key.created", "created a signing key");
    Ok(record)
}

/// Makes sure every algorithm has a key that signs now, creating one that is
/// active at once where none exists (first start: no verifier can have
/// cached anything yet, so there is nothing to pre-publish for).
pub async fn ensure_active_keys(
    store: &dyn Store,
    kek: &Kek,
    rsa_bits: usize,
    now: i64,
) -> Result<Vec<KeyRecord>, LifecycleError> {
    let mut records = store.list_keys().await?;
    for alg in Alg::ALL {
        let has_active = records.iter().any(|r| {
            r.alg == alg.as_str()
                && r.private_key.is_some()
                && KeyState::at(now, r.activates_at, r.retires_at, r.removes_at) == KeyState::Active
        });
        if !has_active {
            match create_key(store, kek, alg, rsa_bits, now, now).await {
                Ok(record) => records.push(record),
                Err(LifecycleError::Raced) => {}
                Err(e) => return Err(e),
            }
        }
    }
    // Re-read: another node may have created the first keys meanwhile.
    Ok(store.list_keys().await?)
}
