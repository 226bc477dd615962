//! DPoP at Sigil's own endpoints (RFC 9449): a request's `DPoP` header
//! checked against what the request is, the proof's `jti` used once (on
//! every node), and the server nonce when one is required.

use super::OAuthError;
use crate::dpop::{self, DpopError, Expected, Proof};
use crate::state::Sigil;

/// The purpose a proof's `jti` is remembered under.
const REPLAY_PURPOSE: &str = "dpop";

/// What a request's DPoP header said: nothing, or a proof that passed.
pub type Presented = Option<Proof>;

/// Checks the `DPoP` header values of a request to Sigil's endpoint
/// `path` with `method` (and, at a resource, the `access_token` it
/// carries). No header: `Ok(None)`. More than one: refused (§4.3 step 1).
/// Refusals are `invalid_dpop_proof` or `use_dpop_nonce`.
pub async fn check_request(
    sigil: &Sigil,
    headers: &[&str],
    method: &str,
    path: &str,
    access_token: Option<&str>,
    now: i64,
) -> Result<Presented, OAuthError> {
    let proof = match headers {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(OAuthError::InvalidDpopProof(
                "more than one DPoP header".into(),
            ));
        }
    };
    let uri = format!("{}{path}", sigil.config.base_url());
    let config = &sigil.config.dpop;
    let expected = Expected {
        method,
        uri: &uri,
        access_token,
        nonces: config.require_nonce.then_some(&sigil.dpop_nonces),
    };
    let checked = dpop::check(proof, &expected, config, now).map_err(|e| match e {
        DpopError::Invalid(why) => OAuthError::InvalidDpopProof(why),
        DpopError::UseNonce => OAuthError::UseDpopNonce(e.to_string()),
    })?;
    // §11.1: each proof once, for as long as its iat would be accepted.
    let until =
        checked.iat + config.proof_max_age.as_secs() as i64 + crate::clock::CLOCK_SKEW_LEEWAY;
    let first = sigil
        .replay
        .first_use(
            sigil.store.as_ref(),
            REPLAY_PURPOSE,
            &checked.jkt,
            &checked.jti,
            until,
            now,
        )
        .await?;
    if !first {
        return Err(OAuthError::InvalidDpopProof(
            "this DPoP proof was used before".into(),
        ));
    }
    Ok(Some(checked))
}

/// The nonce to send in `DPoP-Nonce` when nonces are required.
pub fn nonce_to_send(sigil: &Sigil, now: i64) -> Option<String> {
    sigil
        .config
        .dpop
        .require_nonce
        .then(|| sigil.dpop_nonces.current(now))
}
