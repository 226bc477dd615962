//! Passkey ceremonies (WebAuthn Level 3 §7) against the store: signing in
//! with a passkey (the discoverable flow, for the button and for the
//! autofill of conditional UI alike), registering one for a signed-in
//! user, and signing up with one. webauthn-rs checks the client data
//! (challenge, origin, type), the RP id hash, the flags (user present and
//! verified), the signature and the counter; this module keeps each
//! ceremony's state between its two requests, single-use, and binds
//! credentials to users.

use crate::authn::Factor;
use crate::mfa::passkeys::{
    CEREMONY_TTL, Ceremony, CreationChallengeResponse, MAX_PER_USER, Passkey, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Webauthn, parse_name,
};
use crate::state::Sigil;
use crate::store::{CeremonyRecord, PasskeyRecord, StoreError, UserRecord};
use crate::tokens::{hash_secret, random_b64};
use crate::users::{Email, Username};

/// Why a ceremony failed, in words for the page.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The browser's answer does not verify, or names something unknown.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(why: &str) -> PasskeyError {
    PasskeyError::Refused(why.to_string())
}

/// The relying party, or why passkeys are off.
fn rp(sigil: &Sigil) -> Result<&Webauthn, PasskeyError> {
    sigil.webauthn.as_ref().ok_or_else(|| {
        refused("passkeys are not available on this server (its address is not a domain name)")
    })
}

/// Starts a ceremony: stores its state under a fresh id and returns the id.
async fn keep(
    sigil: &Sigil,
    ceremony: &Ceremony,
    user_id: Option<&str>,
    now: i64,
) -> Result<String, PasskeyError> {
    let id = random_b64::<32>();
    let state = serde_json::to_string(ceremony)
        .map_err(|e| PasskeyError::Store(StoreError::Other(e.to_string())))?;
    sigil
        .store
        .insert_ceremony(&CeremonyRecord {
            id_hash: hash_secret(&id),
            purpose: ceremony.purpose().to_string(),
            user_id: user_id.map(str::to_string),
            state,
            expires_at: now + CEREMONY_TTL,
        })
        .await?;
    Ok(id)
}

/// Takes a ceremony's state (once: a second finish finds nothing), with
/// the user it was started for.
async fn take(
    sigil: &Sigil,
    id: &str,
    now: i64,
) -> Result<(Ceremony, Option<String>), PasskeyError> {
    let expired = || refused("this passkey request has expired; try again");
    if id.len() > 64 {
        return Err(expired());
    }
    let record = sigil
        .store
        .take_ceremony(&hash_secret(id), now)
        .await?
        .ok_or_else(expired)?;
    let ceremony = serde_json::from_str(&record.state).map_err(|_| expired())?;
    Ok((ceremony, record.user_id))
}

/// WebAuthn §7.2, started: options for `navigator.credentials.get` that
/// let the user pick any passkey of this site (no username first).
pub async fn start_sign_in(
    sigil: &Sigil,
    now: i64,
) -> Result<(String, RequestChallengeResponse), PasskeyError> {
    let (options, state) = rp(sigil)?
        .start_discoverable_authentication()
        .map_err(|e| refused(&e.to_string()))?;
    let id = keep(sigil, &Ceremony::SignIn { state }, None, now).await?;
    Ok((id, options))
}

/// WebAuthn §7.2, finished: the user the passkey belongs to, and the
/// factor it was. The credential must be registered, to the user its user
/// handle names, who must be enabled. The stored counter moves on.
pub async fn finish_sign_in(
    sigil: &Sigil,
    ceremony: &str,
    credential: &PublicKeyCredential,
    now: i64,
) -> Result<(UserRecord, Factor), PasskeyError> {
    let (Ceremony::SignIn { state }, _) = take(sigil, ceremony, now).await? else {
        return Err(refused("this is not a sign-in request"));
    };
    let unknown = || refused("this passkey is not registered here");
    let (user_handle, credential_id) = rp(sigil)?
        .identify_discoverable_authentication(credential)
        .map_err(|_| unknown())?;
    let store = sigil.store.as_ref();
    let record = store
        .passkey_by_credential_id(credential_id)
        .await?
        .ok_or_else(unknown)?;
    // The user handle the authenticator returned must be the owner's: a
    // credential cannot speak for another account.
    if record.user_id != user_handle.to_string() {
        audit_refusal(sigil, &record, "user handle of another user", now);
        return Err(unknown());
    }
    let mut passkey: Passkey =
        serde_json::from_str(&record.credential).map_err(|e| StoreError::Other(e.to_string()))?;
    let result = rp(sigil)?
        .finish_discoverable_authentication_v2(credential, state, &passkey)
        .map_err(|e| {
            audit_refusal(sigil, &record, &e.to_string(), now);
            refused("the passkey's answer could not be verified")
        })?;
    let user = store
        .user_by_id(&record.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(unknown)?;
    passkey.update_credential(&result);
    let stored = serde_json::to_string(&passkey).map_err(|e| StoreError::Other(e.to_string()))?;
    store.passkey_used(&record.id, &stored, now).await?;
    Ok((
        user,
        Factor::Passkey {
            synced: result.backup_eligible(),
        },
    ))
}

fn audit_refusal(sigil: &Sigil, record: &PasskeyRecord, why: &str, now: i64) {
    sigil.audit.record(
        now,
        "anonymous",
        "passkey.sign_in_refused",
        Some(&record.user_id),
        serde_json::json!({ "passkey": record.id, "why": why }),
    );
}

/// WebAuthn §7.1, started for a signed-in user: options for
/// `navigator.credentials.create`, excluding the passkeys they have.
pub async fn start_registration(
    sigil: &Sigil,
    user: &UserRecord,
    now: i64,
) -> Result<(String, CreationChallengeResponse), PasskeyError> {
    let existing = sigil.store.passkeys(&user.id).await?;
    if existing.len() >= MAX_PER_USER {
        return Err(refused(&format!(
            "an account can have at most {MAX_PER_USER} passkeys; remove one first"
        )));
    }
    let exclude = existing.iter().map(|p| p.credential_id.clone()).collect();
    let user_id = uuid::Uuid::parse_str(&user.id).map_err(|_| refused("unusual user id"))?;
    let (options, state) = rp(sigil)?
        .start_passkey_registration(user_id, &user.username, &user.username, Some(exclude))
        .map_err(|e| refused(&e.to_string()))?;
    let id = keep(sigil, &Ceremony::Register { state }, Some(&user.id), now).await?;
    Ok((id, options))
}

/// WebAuthn §7.1, finished: the new passkey's record, not yet stored (see
/// `service::factors::add_passkey`). Refused when the ceremony was started
/// for another user.
pub async fn finish_registration(
    sigil: &Sigil,
    user: &UserRecord,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
    name: &str,
    now: i64,
) -> Result<PasskeyRecord, PasskeyError> {
    let name = parse_name(name).map_err(PasskeyError::Refused)?;
    let (Ceremony::Register { state }, started_for) = take(sigil, ceremony, now).await? else {
        return Err(refused("this is not a passkey registration"));
    };
    // Started in another user's session: not this user's to finish.
    if started_for.as_deref() != Some(user.id.as_str()) {
        return Err(refused("this passkey request belongs to another session"));
    }
    let passkey = rp(sigil)?
        .finish_passkey_registration(credential, &state)
        .map_err(|e| refused(&format!("the passkey could not be registered: {e}")))?;
    passkey_record(&user.id, name, &passkey, now)
}

fn passkey_record(
    user_id: &str,
    name: String,
    passkey: &Passkey,
    now: i64,
) -> Result<PasskeyRecord, PasskeyError> {
    let credential =
        serde_json::to_string(passkey).map_err(|e| StoreError::Other(e.to_string()))?;
    // The serialised form names the flags; the credential id is public.
    let backup_eligible = serde_json::from_str::<serde_json::Value>(&credential)
        .ok()
        .and_then(|v| v["cred"]["backup_eligible"].as_bool())
        .unwrap_or(false);
    Ok(PasskeyRecord {
        id: random_b64::<9>(),
        user_id: user_id.to_string(),
        credential_id: AsRef::<[u8]>::as_ref(passkey.cred_id()).to_vec(),
        name,
        credential,
        backup_eligible,
        created_at: now,
        last_used_at: None,
    })
}

/// A new account's details, before its passkey is made.
pub struct SignUp {
    pub username: String,
    pub email: String,
}

/// Starts a passkey-only sign-up: the username and email are checked (and
/// the username must be free) before the browser is asked for a passkey.
pub async fn start_sign_up(
    sigil: &Sigil,
    input: SignUp,
    now: i64,
) -> Result<(String, CreationChallengeResponse), PasskeyError> {
    let username = Username::parse(&input.username).map_err(PasskeyError::Refused)?;
    let email = Email::parse(&input.email).map_err(PasskeyError::Refused)?;
    if sigil
        .store
        .user_by_username(username.as_str())
        .await?
        .is_some()
    {
        return Err(refused("that username is taken"));
    }
    let user_id = uuid::Uuid::new_v4();
    let (options, state) = rp(sigil)?
        .start_passkey_registration(user_id, username.as_str(), username.as_str(), None)
        .map_err(|e| refused(&e.to_string()))?;
    let ceremony = Ceremony::SignUp {
        state,
        user_id: user_id.to_string(),
        username: username.as_str().to_string(),
        email: email.as_str().to_string(),
    };
    let id = keep(sigil, &ceremony, None, now).await?;
    Ok((id, options))
}

/// Finishes a passkey-only sign-up: the account to create (with no
/// password) and its passkey, both to be stored in one transaction (see
/// `service::factors::sign_up_with_passkey`).
pub async fn finish_sign_up(
    sigil: &Sigil,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
    now: i64,
) -> Result<(UserRecord, PasskeyRecord), PasskeyError> {
    let (
        Ceremony::SignUp {
            state,
            user_id,
            username,
            email,
        },
        _,
    ) = take(sigil, ceremony, now).await?
    else {
        return Err(refused("this is not a sign-up"));
    };
    let passkey = rp(sigil)?
        .finish_passkey_registration(credential, &state)
        .map_err(|e| refused(&format!("the passkey could not be registered: {e}")))?;
    let user = UserRecord {
        id: user_id,
        username,
        email,
        password_hash: String::new(),
        disabled: false,
        created_at: now,
        updated_at: now,
        sessions_revoked_at: None,
    };
    let mut record = passkey_record(&user.id, "Passkey".into(), &passkey, now)?;
    // It signs the new account in at once.
    record.last_used_at = Some(now);
    Ok((user, record))
}

/// Whether the user has a password (a passkey-only account has none).
pub fn has_password(user: &UserRecord) -> bool {
    !user.password_hash.is_empty()
}
