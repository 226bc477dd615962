//! Checking a second factor at sign-in: a TOTP code (RFC 6238) or a
//! recovery code, with the throttling, lockout and audit a password gets
//! (the same counters: a guessed code counts as a guessed password).

use std::net::IpAddr;

use super::OAuthError;
use crate::authn::Factor;
use crate::mfa::{recovery, totp};
use crate::state::Sigil;
use crate::store::UserRecord;

/// What the user typed as their second factor.
#[derive(Debug, Clone, Copy)]
pub enum SecondFactor<'a> {
    Totp(&'a str),
    RecoveryCode(&'a str),
}

/// Which second factors a user has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Factors {
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes: i64,
    pub passkeys: usize,
}

impl Factors {
    /// Whether the user can add a second factor to a password.
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// What `user` has enrolled.
pub async fn factors(sigil: &Sigil, user_id: &str) -> Result<Factors, OAuthError> {
    let store = sigil.store.as_ref();
    let totp = store
        .totp(user_id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some());
    Ok(Factors {
        totp,
        recovery_codes: if totp {
            store.unused_recovery_codes(user_id).await?
        } else {
            0
        },
        passkeys: store.passkeys(user_id).await?.len(),
    })
}

/// Checks `presented` for `user`. A wrong code, a code already used, a
/// user without the factor and a locked-out attempt all get one answer.
pub async fn check_second_factor(
    sigil: &Sigil,
    user: &UserRecord,
    presented: SecondFactor<'_>,
    from: Option<IpAddr>,
    now: i64,
) -> Result<Factor, OAuthError> {
    let store = sigil.store.as_ref();
    let mut attempt = sigil.throttle.attempt(from, &user.username);
    let lockout = sigil.throttle.lockout(store, &mut attempt, now).await?;
    let accepted =
        lockout.is_none() && !user.disabled && accepts(sigil, user, presented, now).await?;
    if !accepted {
        let delay = sigil.throttle.failed(store, &attempt, now).await?;
        let (kind, event) = match presented {
            SecondFactor::Totp(_) => ("totp", "login.second_factor_failed"),
            SecondFactor::RecoveryCode(_) => ("recovery_code", "login.second_factor_failed"),
        };
        let detail = serde_json::json!({
            "factor": kind,
            "lockout": lockout.map(|l| l.as_str()),
            "client_addr": from.map(|ip| ip.to_string()),
        });
        sigil
            .audit
            .record(now, "anonymous", event, Some(&user.id), detail);
        metrics::counter!(crate::metrics::LOGIN_FAILURES, "reason" => "invalid_grant", "grant" => "second_factor").increment(1);
        tokio::time::sleep(delay).await;
        return Err(OAuthError::InvalidGrant("the code is incorrect".into()));
    }
    sigil.throttle.succeeded(store, &attempt).await?;
    if let SecondFactor::RecoveryCode(_) = presented {
        let left = store.unused_recovery_codes(&user.id).await?;
        sigil.audit.record(
            now,
            &format!("user:{}", user.id),
            "recovery_code.used",
            Some(&user.id),
            serde_json::json!({ "left": left }),
        );
    }
    Ok(Factor::OneTimeCode)
}

async fn accepts(
    sigil: &Sigil,
    user: &UserRecord,
    presented: SecondFactor<'_>,
    now: i64,
) -> Result<bool, OAuthError> {
    let store = sigil.store.as_ref();
    match presented {
        SecondFactor::Totp(code) => {
            let Some(factor) = store.totp(&user.id).await? else {
                return Ok(false);
            };
            if factor.confirmed_at.is_none() {
                return Ok(false);
            }
            let secret = sigil
                .keys
                .kek()
                .open_totp(&user.id, &factor.secret)
                .map_err(|e| OAuthError::ServerError(e.to_string()))?;
            let Some(step) = totp::matching_step(&secret, code, now) else {
                return Ok(false);
            };
            // RFC 6238 §5.2: a code is accepted once; the store takes the
            // step only if no code of it (or a later one) was taken before.
            Ok(store.use_totp_step(&user.id, step).await?)
        }
        SecondFactor::RecoveryCode(code) => match recovery::digest(code) {
            Some(digest) => Ok(store.use_recovery_code(&user.id, &digest, now).await?),
            None => Ok(false),
        },
    }
}
