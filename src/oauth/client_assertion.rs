//! `private_key_jwt` (RFC 7523 §2.2 and §3, OIDC Core §9): the client
//! proves who it is with a JWT it signs with one of its own keys. Sigil
//! keeps only the public keys, so no secret can leak from it.
//!
//! ```text
//!  client_assertion_type = urn:ietf:params:oauth:client-assertion-type:jwt-bearer
//!  client_assertion = JWT {iss = sub = client_id, aud = issuer or this endpoint,
//!                          exp (at most 5 minutes ahead), jti (once), iat?, nbf?}
//!  ──► the client's keys (inline, or its jwks_uri, cached) ──► signature
//!  ──► claims ──► jti not seen before (on every node) ──► the client
//! ```

use std::sync::Arc;

use serde_json::Value;

use super::{OAuthError, Params};
use crate::clients::{AuthMethod, Client, ClientKeys};
use crate::clock::CLOCK_SKEW_LEEWAY;
use crate::state::Sigil;
use crate::tokens::jose;

/// RFC 7523 §2.2's `client_assertion_type`.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may be valid for ahead of now.
const MAX_LIFETIME: i64 = 300;
/// What an assertion's `jti` is remembered under.
const REPLAY_PURPOSE: &str = "client_assertion";

fn failed() -> OAuthError {
    OAuthError::InvalidClient("client authentication failed".into())
}

/// The `client_id` an assertion claims to be from (`iss`, unverified), to
/// know whose keys to verify it with.
pub fn claimed_client(assertion: &str) -> Result<String, OAuthError> {
    let jwt = jose::decode(assertion).map_err(|_| failed())?;
    jwt.claims["iss"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(failed)
}

/// Authenticates the client of a request that carries an assertion, at
/// the endpoint `path` (`/oauth/token`, …). Every refusal reads the same
/// (`invalid_client`); the reason is logged at debug level.
pub async fn authenticate(
    sigil: &Sigil,
    params: &Params,
    path: &str,
    now: i64,
) -> Result<Arc<Client>, OAuthError> {
    if params.get("client_assertion_type") != Some(ASSERTION_TYPE) {
        return Err(OAuthError::InvalidClient(format!(
            "client_assertion_type must be {ASSERTION_TYPE}"
        )));
    }
    let assertion = params.require("client_assertion")?;
    if params.get("client_secret").is_some() {
        return Err(OAuthError::InvalidRequest(
            "use one client authentication method, not both an assertion and a secret".into(),
        ));
    }
    let client_id = claimed_client(assertion)?;
    if params.get("client_id").is_some_and(|id| id != client_id) {
        return Err(failed());
    }
    let client = sigil
        .clients
        .get(sigil.store.as_ref(), &client_id, now)
        .await?
        .filter(|c| !c.disabled)
        .ok_or_else(failed)?;
    match check(sigil, &client, assertion, path, now).await {
        Ok(()) => Ok(client),
        Err(Refusal::Store(e)) => Err(e),
        Err(Refusal::Invalid(why)) => {
            tracing::debug!(client_id = %client.id, %why, "refused a client assertion");
            Err(failed())
        }
    }
}

enum Refusal {
    Invalid(String),
    Store(OAuthError),
}

impl From<&str> for Refusal {
    fn from(why: &str) -> Self {
        Refusal::Invalid(why.to_string())
    }
}

async fn check(
    sigil: &Sigil,
    client: &Client,
    assertion: &str,
    path: &str,
    now: i64,
) -> Result<(), Refusal> {
    let AuthMethod::PrivateKeyJwt(keys) = &client.auth else {
        return Err("the client does not authenticate with private_key_jwt".into());
    };
    let jwt = jose::decode(assertion).map_err(|e| Refusal::Invalid(e.to_string()))?;
    if jwt.header["typ"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt") || t.eq_ignore_ascii_case("at+jwt"))
    {
        return Err("a DPoP proof or an access token is not a client assertion".into());
    }
    let kid = jwt.header["kid"].as_str();
    let candidates = match keys {
        ClientKeys::Inline(set) => serde_json::to_value(set)
            .map_err(|_| Refusal::Invalid("the registered keys cannot be read".into()))?,
        ClientKeys::Uri(uri) => sigil
            .client_keys
            .keys(uri, kid, now)
            .await
            .map_err(Refusal::Invalid)?
            .as_ref()
            .clone(),
    };
    let verified = candidates["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| kid.is_none_or(|kid| k["kid"].as_str() == Some(kid)))
        .any(|key| jwt.verify(key).is_ok());
    if !verified {
        return Err("no key of the client verifies the signature".into());
    }
    let claims = &jwt.claims;
    // RFC 7523 §3: iss and sub are the client id.
    if claims["iss"].as_str() != Some(client.id.as_str())
        || claims["sub"].as_str() != Some(client.id.as_str())
    {
        return Err("iss and sub must both be the client id".into());
    }
    // The issuer identifier, or the URL of the endpoint it is sent to (the
    // token endpoint's, as OIDC Core §9 says, or this one's).
    let base = sigil.config.base_url();
    let accepted = [
        sigil.config.issuer.clone(),
        format!("{base}/"),
        format!("{base}/oauth/token"),
        format!("{base}{path}"),
    ];
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => accepted.contains(aud),
        Value::Array(auds) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|a| accepted.iter().any(|b| b == a)),
        _ => false,
    };
    if !audience_ok {
        return Err("aud must be the issuer or the endpoint".into());
    }
    let exp = jose::numeric_date(&claims["exp"]).ok_or("exp is required")?;
    if now >= exp + CLOCK_SKEW_LEEWAY {
        return Err("the assertion has expired".into());
    }
    if exp > now + MAX_LIFETIME + CLOCK_SKEW_LEEWAY {
        return Err("the assertion lives too long (at most 5 minutes)".into());
    }
    if jose::numeric_date(&claims["nbf"]).is_some_and(|nbf| nbf > now + CLOCK_SKEW_LEEWAY) {
        return Err("the assertion is not yet valid".into());
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| (1..=256).contains(&j.len()))
        .ok_or("jti is required")?;
    // RFC 7523 §3 item 7: each assertion once, until it expires anyway.
    let first = sigil
        .replay
        .first_use(
            sigil.store.as_ref(),
            REPLAY_PURPOSE,
            &client.id,
            jti,
            exp + CLOCK_SKEW_LEEWAY,
            now,
        )
        .await
        .map_err(|e| Refusal::Store(e.into()))?;
    if !first {
        return Err("the assertion was used before (jti)".into());
    }
    Ok(())
}
