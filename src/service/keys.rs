//! Actions on signing keys: rotate, emergency-rotate, retire, import, and
//! re-encrypt under a new key-encryption key. The key operations themselves
//! (`keys::ops`) plan, write and audit; here the node follows at once.

use super::Ops;
use crate::keys::ops::{self, KeyOpError, KeyOpOutcome};
use crate::keys::schedule::KeyPolicy;
use crate::keys::{Alg, Kek};

/// Schedules a normal rotation of `alg` (see `keys::ops::rotate`).
pub async fn rotate(
    ops: &Ops<'_>,
    kek: &Kek,
    policy: &KeyPolicy,
    alg: Alg,
    dry_run: bool,
) -> Result<KeyOpOutcome, KeyOpError> {
    let outcome = ops::rotate(ops.store, kek, policy, alg, ops.by, dry_run).await?;
    keys_changed(ops, &outcome).await;
    Ok(outcome)
}

/// Removes a compromised key at once and revokes what it signed.
pub async fn emergency_rotate(
    ops: &Ops<'_>,
    kek: &Kek,
    policy: &KeyPolicy,
    kid: &str,
    dry_run: bool,
) -> Result<KeyOpOutcome, KeyOpError> {
    let outcome = ops::emergency_rotate(ops.store, kek, policy, kid, ops.by, dry_run).await?;
    if !outcome.dry_run {
        ops.revocations_changed().await;
    }
    keys_changed(ops, &outcome).await;
    Ok(outcome)
}

/// Retires a key now; it stays published until its last token expires.
pub async fn retire(
    ops: &Ops<'_>,
    policy: &KeyPolicy,
    kid: &str,
    dry_run: bool,
) -> Result<KeyOpOutcome, KeyOpError> {
    let outcome = ops::retire(ops.store, policy, kid, ops.by, dry_run).await?;
    keys_changed(ops, &outcome).await;
    Ok(outcome)
}

/// Imports a private key as the next signing key of `alg`.
pub async fn import_pem(
    ops: &Ops<'_>,
    kek: &Kek,
    policy: &KeyPolicy,
    alg: Alg,
    pem: &str,
    dry_run: bool,
) -> Result<KeyOpOutcome, KeyOpError> {
    let outcome = ops::import_pem(ops.store, kek, policy, alg, pem, ops.by, dry_run).await?;
    keys_changed(ops, &outcome).await;
    Ok(outcome)
}

/// Re-encrypts every stored private key under `new`, all or nothing (an
/// operator command: the nodes must be given the new KEK).
pub async fn rewrap(
    ops: &Ops<'_>,
    old: &Kek,
    new: &Kek,
    dry_run: bool,
) -> Result<KeyOpOutcome, KeyOpError> {
    ops::rewrap(ops.store, old, new, ops.by, dry_run).await
}

/// The keys changed: a serving node re-reads them at once. The change is
/// committed either way; should the re-read fail, the node's periodic one
/// (every 5 s) catches up.
async fn keys_changed(ops: &Ops<'_>, outcome: &KeyOpOutcome) {
    if outcome.dry_run {
        return;
    }
    if let Some(sigil) = ops.node()
        && let Err(e) = sigil.reload_keys().await
    {
        tracing::warn!(error = %e, "re-reading the keys after a key operation failed; the periodic re-read will catch up");
    }
}
