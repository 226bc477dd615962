//! Operator actions on keys, shared by the CLI and the admin API. Each one
//! can be dry-run (it then says what it would do and changes nothing) and
//! each one that changes state is recorded as an audit event. The service
//! layer (`service::keys`) calls them and makes the node follow.

use serde_json::json;
use zeroize::Zeroizing;

use super::generate::from_pkcs8;
use super::schedule::{
    KeyPolicy, apply_emergency, apply_rotation, plan_emergency, plan_retire, plan_rotation,
};
use super::{Alg, Kek, LifecycleError};
use crate::audit::By;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum KeyOpError {
    /// The request cannot be carried out as asked (bad kid, nothing to do…).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Failed(#[from] LifecycleError),
}

impl From<crate::store::StoreError> for KeyOpError {
    fn from(e: crate::store::StoreError) -> Self {
        KeyOpError::Failed(e.into())
    }
}

/// What an operation did, or would do on a dry run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyOpOutcome {
    pub dry_run: bool,
    pub description: String,
    /// The key created by the operation, if any.
    pub new_kid: Option<String>,
}

fn outcome(dry_run: bool, description: String, new_kid: Option<String>) -> KeyOpOutcome {
    KeyOpOutcome {
        dry_run,
        description,
        new_kid,
    }
}

/// Schedules a normal rotation of `alg`: a new key published now, signing
/// after the pending lead, the current key retiring then.
pub async fn rotate(
    store: &dyn Store,
    kek: &Kek,
    policy: &KeyPolicy,
    alg: Alg,
    by: By<'_>,
    dry_run: bool,
) -> Result<KeyOpOutcome, KeyOpError> {
    let now = by.at;
    let keys = store.list_keys().await?;
    let plan = plan_rotation(&keys, policy, alg, now).ok_or_else(|| {
        KeyOpError::Refused(format!(
            "a {alg} rotation is already scheduled (a key is pending)"
        ))
    })?;
    if dry_run {
        return Ok(outcome(true, format!("would {}", plan.describe()), None));
    }
    let kid = apply_rotation(store, kek, policy, &plan, None, now)
        .await?
        .ok_or_else(|| {
            KeyOpError::Refused(format!("a {alg} rotation was scheduled concurrently"))
        })?;
    by.record(
        "key.rotation_scheduled",
        &kid,
        json!({"alg": alg, "activates_at": plan.activates_at}),
    );
    Ok(outcome(false, plan.describe(), Some(kid)))
}

/// Removes a compromised key at once and revokes what it signed.
pub async fn emergency_rotate(
    store: &dyn Store,
    kek: &Kek,
    policy: &KeyPolicy,
    kid: &str,
    by: By<'_>,
    dry_run: bool,
) -> Result<KeyOpOutcome, KeyOpError> {
    let now = by.at;
    let keys = store.list_keys().await?;
    let plan = plan_emergency(&keys, kid, now).map_err(KeyOpError::Refused)?;
    let description = format!(
        "remove {kid} from the JWKS now, erase its private half, revoke every token it signed, \
         and make a new {} key active at once if it was signing",
        plan.alg
    );
    if dry_run {
        return Ok(outcome(true, format!("would {description}"), None));
    }
    let replacement = apply_emergency(store, kek, policy, &plan, now).await?;
    by.record(
        "key.emergency_rotation",
        kid,
        json!({"alg": plan.alg, "replacement": replacement}),
    );
    Ok(outcome(false, description, replacement))
}

/// Retires a key now; it stays published until its last token expires.
pub async fn retire(
    store: &dyn Store,
    policy: &KeyPolicy,
    kid: &str,
    by: By<'_>,
    dry_run: bool,
) -> Result<KeyOpOutcome, KeyOpError> {
    let now = by.at;
    let keys = store.list_keys().await?;
    let r = plan_retire(&keys, policy, kid, now).map_err(KeyOpError::Refused)?;
    let description = format!(
        "stop signing with {kid} now; remove it from the JWKS at {}",
        r.removes_at
    );
    if dry_run {
        return Ok(outcome(true, format!("would {description}"), None));
    }
    store
        .set_key_times(kid, r.retires_at, r.removes_at, false)
        .await?;
    by.record("key.retired", kid, json!({"removes_at": r.removes_at}));
    Ok(outcome(false, description, None))
}

/// Imports an existing private key (PEM: PKCS#8, or PKCS#1 for RSA) as the
/// next signing key of `alg`, scheduled like a normal rotation, so that it is
/// published before it signs.
pub async fn import_pem(
    store: &dyn Store,
    kek: &Kek,
    policy: &KeyPolicy,
    alg: Alg,
    pem: &str,
    by: By<'_>,
    dry_run: bool,
) -> Result<KeyOpOutcome, KeyOpError> {
    let now = by.at;
    let key = parse_pem(alg, pem).map_err(KeyOpError::Refused)?;
    let keys = store.list_keys().await?;
    if keys.iter().any(|k| k.kid == key.kid) {
        return Err(KeyOpError::Refused(format!(
            "key {} is already stored",
            key.kid
        )));
    }
    let plan = plan_rotation(&keys, policy, alg, now).ok_or_else(|| {
        KeyOpError::Refused(format!(
            "a {alg} rotation is already scheduled (a key is pending)"
        ))
    })?;
    let description = format!(
        "import {} and {}",
        key.kid,
        plan.describe()
            .replacen("create a new", "use it as the new", 1)
    );
    if dry_run {
        return Ok(outcome(true, format!("would {description}"), None));
    }
    let kid = apply_rotation(store, kek, policy, &plan, Some(key), now)
        .await?
        .ok_or_else(|| {
            KeyOpError::Refused(format!("a {alg} rotation was scheduled concurrently"))
        })?;
    by.record(
        "key.imported",
        &kid,
        json!({"alg": alg, "activates_at": plan.activates_at}),
    );
    Ok(outcome(false, description, Some(kid)))
}

fn parse_pem(alg: Alg, pem: &str) -> Result<super::GeneratedKey, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    use rsa::traits::PublicKeyParts;

    let der: Zeroizing<Vec<u8>> = match alg {
        Alg::RS256 => {
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
                .map_err(|_| "not an RSA private key in PKCS#8 or PKCS#1 PEM".to_string())?;
            if key.size() * 8 < 2048 {
                return Err(format!(
                    "RSA keys must have at least 2048 bits (this one has {})",
                    key.size() * 8
                ));
            }
            let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
            Zeroizing::new(der.as_bytes().to_vec())
        }
        Alg::EdDSA => {
            let (label, doc) = rsa::pkcs8::SecretDocument::from_pem(pem)
                .map_err(|_| "not a PKCS#8 PEM private key".to_string())?;
            if label != "PRIVATE KEY" {
                return Err(format!("expected a PRIVATE KEY PEM block, found {label}"));
            }
            Zeroizing::new(doc.as_bytes().to_vec())
        }
    };
    from_pkcs8(alg, der).map_err(|_| format!("the key is not a valid {alg} private key"))
}

/// Re-encrypts every stored private key under `new_kek`, all or nothing.
pub async fn rewrap(
    store: &dyn Store,
    old: &Kek,
    new: &Kek,
    by: By<'_>,
    dry_run: bool,
) -> Result<KeyOpOutcome, KeyOpError> {
    let keys = store.list_keys().await?;
    let mut sealed = Vec::new();
    for key in &keys {
        if let Some(private) = &key.private_key {
            let plaintext = old.open(&key.kid, private).map_err(LifecycleError::from)?;
            sealed.push((
                key.kid.clone(),
                new.seal(&key.kid, &plaintext)
                    .map_err(LifecycleError::from)?,
            ));
        }
    }
    // The users' TOTP secrets are sealed under the same KEK.
    let mut totp = Vec::new();
    for (user_id, secret) in store.totp_secrets().await? {
        let plaintext = old
            .open_totp(&user_id, &secret)
            .map_err(LifecycleError::from)?;
        totp.push((
            user_id.clone(),
            new.seal_totp(&user_id, &plaintext)
                .map_err(LifecycleError::from)?,
        ));
    }
    let description = format!(
        "re-encrypt {} private key(s) and {} TOTP secret(s) under the new key-encryption key",
        sealed.len(),
        totp.len()
    );
    if dry_run {
        return Ok(outcome(true, format!("would {description}"), None));
    }
    store.rewrap_keys(&sealed, &totp).await?;
    by.record(
        "key.rewrapped",
        "kek",
        json!({"keys": sealed.len(), "totp_secrets": totp.len()}),
    );
    Ok(outcome(false, description, None))
}
