//! Actions on a user's sign-in factors: TOTP enrolment and removal,
//! recovery codes, passkeys added, renamed and removed, and an admin's
//! reset of them all. The account page, the admin API and the CLI call
//! these, so each writes its audit event the same way.

use serde_json::json;
use zeroize::Zeroizing;

use super::Ops;
use crate::keys::Kek;
use crate::mfa::passkeys::parse_name;
use crate::mfa::{recovery, totp};
use crate::store::{
    FactorsRemoved, PasskeyRecord, PasskeyRemoval, StoreError, TotpRecord, UserRecord,
};

/// Why a factor could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A TOTP enrolment begun: the secret to show (text and QR code). It
/// signs no one in until confirmed with a first code.
pub struct TotpEnrolment {
    pub secret: Zeroizing<Vec<u8>>,
}

/// Begins (or begins again) a TOTP enrolment for `user`. Refused while a
/// confirmed authenticator exists: it must be removed first.
pub async fn start_totp(
    ops: &Ops<'_>,
    kek: &Kek,
    user: &UserRecord,
) -> Result<TotpEnrolment, FactorError> {
    let secret = totp::new_secret();
    let sealed = kek
        .seal_totp(&user.id, &secret)
        .map_err(|e| StoreError::Other(e.to_string()))?;
    let record = TotpRecord {
        user_id: user.id.clone(),
        secret: sealed,
        created_at: ops.now(),
        confirmed_at: None,
        last_step: 0,
    };
    match ops.store.put_totp(&record).await {
        Ok(()) => Ok(TotpEnrolment { secret }),
        Err(StoreError::Conflict(_)) => Err(FactorError::Invalid(
            "an authenticator app is set up already; remove it first".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The secret of the enrolment in progress, to show it again (a wrong
/// first code re-renders the page).
pub async fn pending_totp_secret(
    ops: &Ops<'_>,
    kek: &Kek,
    user: &UserRecord,
) -> Result<Option<Zeroizing<Vec<u8>>>, FactorError> {
    let Some(record) = ops.store.totp(&user.id).await? else {
        return Ok(None);
    };
    if record.confirmed_at.is_some() {
        return Ok(None);
    }
    kek.open_totp(&user.id, &record.secret)
        .map(Some)
        .map_err(|e| FactorError::Store(StoreError::Other(e.to_string())))
}

/// Confirms the enrolment with its first code (RFC 6238, ±1 step) and
/// returns the new recovery codes, shown once.
pub async fn confirm_totp(
    ops: &Ops<'_>,
    kek: &Kek,
    user: &UserRecord,
    code: &str,
) -> Result<Vec<String>, FactorError> {
    let secret = pending_totp_secret(ops, kek, user)
        .await?
        .ok_or_else(|| FactorError::Invalid("there is no authenticator being set up".into()))?;
    let step = totp::matching_step(&secret, code, ops.now()).ok_or_else(|| {
        FactorError::Invalid(
            "that code is not the one the app shows; check the device's clock and try again".into(),
        )
    })?;
    let codes = recovery::generate();
    let digests: Vec<Vec<u8>> = codes.iter().filter_map(|c| recovery::digest(c)).collect();
    if !ops
        .store
        .confirm_totp(&user.id, step, &digests, ops.now())
        .await?
    {
        return Err(FactorError::Invalid(
            "there is no authenticator being set up".into(),
        ));
    }
    ops.record(
        "totp.enrolled",
        &user.id,
        json!({ "username": user.username, "recovery_codes": codes.len() }),
    );
    Ok(codes)
}

/// Removes the user's authenticator and recovery codes. Returns whether
/// there was one.
pub async fn remove_totp(ops: &Ops<'_>, user: &UserRecord) -> Result<bool, FactorError> {
    let removed = ops.store.delete_totp(&user.id).await?;
    if removed {
        ops.record(
            "totp.removed",
            &user.id,
            json!({ "username": user.username }),
        );
    }
    Ok(removed)
}

/// A new set of recovery codes (the old ones stop working), shown once.
pub async fn new_recovery_codes(
    ops: &Ops<'_>,
    user: &UserRecord,
) -> Result<Vec<String>, FactorError> {
    let confirmed = ops
        .store
        .totp(&user.id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some());
    if !confirmed {
        return Err(FactorError::Invalid(
            "recovery codes go with an authenticator app; set one up first".into(),
        ));
    }
    let codes = recovery::generate();
    let digests: Vec<Vec<u8>> = codes.iter().filter_map(|c| recovery::digest(c)).collect();
    ops.store
        .replace_recovery_codes(&user.id, &digests, ops.now())
        .await?;
    ops.record(
        "recovery_codes.replaced",
        &user.id,
        json!({ "username": user.username, "count": codes.len() }),
    );
    Ok(codes)
}

/// Stores a passkey just registered (see `oauth::passkey`).
pub async fn add_passkey(
    ops: &Ops<'_>,
    user: &UserRecord,
    passkey: &PasskeyRecord,
) -> Result<(), FactorError> {
    match ops.store.insert_passkey(passkey).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(FactorError::Invalid(
                "this passkey is registered already".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    ops.record(
        "passkey.added",
        &user.id,
        json!({
            "username": user.username,
            "passkey": passkey.id,
            "name": passkey.name,
            "backup_eligible": passkey.backup_eligible,
        }),
    );
    Ok(())
}

/// Renames one of the user's passkeys. Returns whether it was theirs.
pub async fn rename_passkey(
    ops: &Ops<'_>,
    user: &UserRecord,
    id: &str,
    name: &str,
) -> Result<bool, FactorError> {
    let name = parse_name(name).map_err(FactorError::Invalid)?;
    let renamed = ops.store.rename_passkey(&user.id, id, &name).await?;
    if renamed {
        ops.record(
            "passkey.renamed",
            &user.id,
            json!({ "username": user.username, "passkey": id, "name": name }),
        );
    }
    Ok(renamed)
}

/// Removes one of the user's passkeys. A passkey-only account keeps its
/// last one (it would have no way to sign in), however many removals race;
/// an admin's reset may still remove it. Returns whether it was theirs.
pub async fn remove_passkey(
    ops: &Ops<'_>,
    user: &UserRecord,
    id: &str,
) -> Result<bool, FactorError> {
    let removed = match ops.store.delete_passkey(&user.id, id, true).await? {
        PasskeyRemoval::Removed => true,
        PasskeyRemoval::NotFound => false,
        PasskeyRemoval::LastWayIn => {
            return Err(FactorError::Invalid(
                "this is the account's only way to sign in: add another passkey or a password first"
                    .into(),
            ));
        }
    };
    if removed {
        ops.record(
            "passkey.removed",
            &user.id,
            json!({ "username": user.username, "passkey": id }),
        );
    }
    Ok(removed)
}

/// An admin's reset of every factor of the user (a lost phone): the
/// authenticator, recovery codes and passkeys.
pub async fn reset(ops: &Ops<'_>, user: &UserRecord) -> Result<FactorsRemoved, FactorError> {
    let removed = ops.store.reset_factors(&user.id).await?;
    ops.record(
        "factors.reset",
        &user.id,
        json!({
            "username": user.username,
            "totp": removed.totp,
            "recovery_codes": removed.recovery_codes,
            "passkeys": removed.passkeys,
        }),
    );
    Ok(removed)
}

/// A passkey-only account, created with its passkey in one transaction.
pub async fn sign_up_with_passkey(
    ops: &Ops<'_>,
    user: &UserRecord,
    passkey: &PasskeyRecord,
) -> Result<(), FactorError> {
    match ops.store.insert_user_with_passkey(user, passkey).await {
        Ok(()) => {}
        Err(StoreError::Conflict(field)) => {
            return Err(FactorError::Invalid(format!(
                "that {field} is already registered"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    ops.record(
        "user.registered",
        &user.id,
        json!({ "username": user.username, "passkey": passkey.id, "password": false }),
    );
    Ok(())
}
