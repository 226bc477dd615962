//! Access tokens at Sigil's own resource endpoints: RFC 6750 bearer
//! tokens, and DPoP-bound tokens presented with the `DPoP` scheme and a
//! proof (RFC 9449 §7). A bound token presented as a bearer token is
//! refused: a thief holding it lacks the key.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};

use super::AppState;
use super::error::ApiError;
use super::token::dpop_headers;
use crate::oauth::{OAuthError, dpop};
use crate::tokens::{AccessClaims, TokenError, verify_access_token};

/// The verified claims of the request's access token.
pub struct Authenticated(pub AccessClaims);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = presented_token(&parts.headers)?;
        // Sigil's own endpoints accept only tokens addressed to Sigil itself
        // (the default audience), not tokens minted for a resource service.
        let issuer = state.sigil.config.issuer.as_str();
        let request = Request {
            method: &parts.method,
            path: parts.uri.path(),
            headers: &parts.headers,
        };
        let claims = verify_presented(state, &request, presented, Some(&[issuer])).await?;
        Ok(Authenticated(claims))
    }
}

/// An access token as the request presented it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Presented<'a> {
    /// `Authorization: Bearer` (or a form field, RFC 6750 §2.2).
    Bearer(&'a str),
    /// `Authorization: DPoP`, with a `DPoP` proof header.
    Dpop(&'a str),
}

/// What a resource request is, for its DPoP proof's `htm`, `htu`, and
/// its `DPoP` header.
pub(super) struct Request<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

/// Verifies an access token for one of Sigil's endpoints: signature, `iss`,
/// `aud` among `audiences` (`None`: any), expiry, the deny-list, and for a
/// DPoP-bound token the proof of its key.
pub(super) async fn verify_presented(
    state: &AppState,
    request: &Request<'_>,
    presented: Presented<'_>,
    audiences: Option<&[&str]>,
) -> Result<AccessClaims, ApiError> {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let token = match presented {
        Presented::Bearer(t) | Presented::Dpop(t) => t,
    };
    let claims = verify_access_token(
        &sigil.keys.current(),
        token,
        &sigil.config.issuer,
        audiences,
        now,
    )
    .map_err(|e| ApiError::Bearer(Some(e)))?;
    match (presented, &claims.cnf) {
        (Presented::Bearer(_), None) => {}
        // RFC 9449 §7.2: a bound token is no bearer token.
        (Presented::Bearer(_), Some(_)) => {
            return Err(ApiError::Bearer(Some(TokenError::DpopBound)));
        }
        (Presented::Dpop(_), None) => {
            return Err(ApiError::Bearer(Some(TokenError::NotDpopBound)));
        }
        (Presented::Dpop(token), Some(cnf)) => {
            let proofs = dpop_headers(request.headers);
            let checked = dpop::check_request(
                sigil,
                &proofs,
                request.method.as_str(),
                request.path,
                Some(token),
                now,
            )
            .await
            .map_err(|e| dpop_refusal(state, e, now))?;
            match checked {
                Some(proof) if proof.jkt == cnf.jkt => {}
                Some(_) => {
                    let e = OAuthError::InvalidDpopProof(
                        "the proof is not made with the token's key".into(),
                    );
                    return Err(dpop_refusal(state, e, now));
                }
                None => {
                    let e = OAuthError::InvalidDpopProof("a DPoP proof is required".into());
                    return Err(dpop_refusal(state, e, now));
                }
            }
        }
    }
    if sigil
        .deny_list
        .is_revoked(sigil.store.as_ref(), &claims, now)
        .await?
    {
        return Err(ApiError::Bearer(Some(TokenError::Revoked)));
    }
    Ok(claims)
}

/// A DPoP refusal at a resource (RFC 9449 §7.1): 401 with a `DPoP`
/// challenge, and a fresh nonce when nonces are required.
fn dpop_refusal(state: &AppState, e: OAuthError, now: i64) -> ApiError {
    match e {
        OAuthError::InvalidDpopProof(_) | OAuthError::UseDpopNonce(_) => ApiError::Dpop {
            code: e.code(),
            description: e.description().to_string(),
            nonce: dpop::nonce_to_send(&state.sigil, now),
        },
        other => ApiError::OAuth(other),
    }
}

/// RFC 6750 §2.1 and RFC 9449 §7.1: `Authorization: Bearer <token68>` or
/// `Authorization: DPoP <token68>`. Anything else is "no token" (a
/// challenge without an error code) or a malformed token.
pub(super) fn presented_token(headers: &HeaderMap) -> Result<Presented<'_>, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Bearer(None))?
        .to_str()
        .map_err(|_| ApiError::Bearer(Some(TokenError::Malformed)))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Bearer(None));
    }
    let token = token.trim();
    let token68 = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
    if !token68 {
        return Err(ApiError::Bearer(Some(TokenError::Malformed)));
    }
    Ok(if dpop {
        Presented::Dpop(token)
    } else {
        Presented::Bearer(token)
    })
}

/// The scope that grants the admin API.
pub const ADMIN_SCOPE: &str = "sigil:admin";

/// A verified token carrying [`ADMIN_SCOPE`]. Without a token: 401; with a
/// token lacking the scope: 403 `insufficient_scope` (RFC 6750 §3.1).
pub struct Admin(pub AccessClaims);

impl Admin {
    /// Who acted, for the audit trail.
    pub fn actor(&self) -> String {
        if self.0.sub == self.0.client_id {
            format!("client:{}", self.0.client_id)
        } else {
            format!("user:{}", self.0.sub)
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        let allowed = claims
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|t| t == ADMIN_SCOPE));
        if !allowed {
            return Err(ApiError::InsufficientScope(ADMIN_SCOPE));
        }
        Ok(Admin(claims))
    }
}
