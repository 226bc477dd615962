//! The authorization endpoint's protocol: RFC 6749 §4.1.1-§4.1.2, OIDC
//! Core §3.1.2, RFC 7636 (PKCE), RFC 9207 (`iss`), RFC 9700 §2.1.
//!
//! ```text
//!  browser ── GET /authorize?client_id&redirect_uri&... ──► parse()
//!     client or redirect_uri bad ──► Sigil's error page (never redirected)
//!     anything else bad          ──► redirect_uri?error=...&state&iss
//!  next(): no live session / prompt=login / max_age passed ──► sign-in page
//!          acr below acr_values or the client's requirement ──► second factor
//!            (or, with none enrolled and one required, set one up)
//!          consent missing (or prompt=consent)              ──► consent page
//!          otherwise ──► issue_code() ──► redirect_uri?code&state&iss
//! ```
//!
//! The pages carry the request itself (its parameters, re-parsed and
//! re-checked here on every step), so there is no pending-request state.

use std::sync::Arc;

use super::mfa::{Factors, factors};
use super::{OAuthError, Params};
use crate::authn::Acr;
use crate::browser::consent;
use crate::browser::session::LiveSession;
use crate::clients::{Client, GrantType, redirect_matches};
use crate::scope::Scopes;
use crate::state::Sigil;
use crate::store::AuthCodeRecord;
use crate::tokens::{hash_secret, random_b64};

/// How long an authorization code lives (RFC 6749 §4.1.2 recommends at
/// most 10 minutes; a browser redirect takes seconds).
pub const CODE_TTL: i64 = 60;
const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: Arc<Client>,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: Scopes,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    /// OIDC `max_age`: the user must have authenticated this recently.
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The authentication context class `acr_values` asks for at least
    /// (see `authn::Acr::requested`); voluntary (OIDC Core §3.1.2.1).
    pub acr_values: Option<Acr>,
    /// RFC 9449 §10: the DPoP key the code is bound to.
    pub dpop_jkt: Option<String>,
    /// The parameters as received, for the pages to carry to the next step.
    pub params: Params,
}

impl AuthorizationRequest {
    /// The class the sign-in must reach whatever the user has enrolled:
    /// a client or the server requiring a second factor.
    pub fn mandatory_acr(&self, sigil: &Sigil) -> Acr {
        mandatory_acr(sigil, &self.client)
    }
}

/// What `client` (or the server) requires of every sign-in to it.
pub fn mandatory_acr(sigil: &Sigil, client: &Client) -> Acr {
    if client.require_mfa || sigil.config.mfa.required {
        Acr::MultiFactor
    } else {
        Acr::OneFactor
    }
}

/// OIDC Core §3.1.2.1 `prompt` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// Why a request cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: said on Sigil's own
    /// page, never by a redirect (RFC 6749 §4.1.2.1, no open redirector).
    Page(String),
    /// Sent back to the client as `error`, `error_description`, `state`
    /// and `iss` (RFC 6749 §4.1.2.1, RFC 9207).
    Redirect(String),
}

impl AuthorizeError {
    fn back(request: &Target<'_>, issuer: &str, code: &str, description: &str) -> AuthorizeError {
        AuthorizeError::Redirect(redirect_url(
            request.redirect_uri,
            &[
                ("error", Some(code)),
                ("error_description", Some(description)),
                ("state", request.state),
                ("iss", Some(issuer)),
            ],
        ))
    }
}

/// Where errors go once the client and redirect URI are known good.
struct Target<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
}

/// Parses and checks an authorization request (query or form parameters,
/// `pairs` as decoded).
pub async fn parse(
    sigil: &Sigil,
    pairs: Vec<(String, String)>,
    now: i64,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let params =
        Params::from_pairs(pairs).map_err(|e| AuthorizeError::Page(e.description().to_string()))?;
    let client_id = params
        .get("client_id")
        .ok_or_else(|| AuthorizeError::Page("the request names no client (client_id)".into()))?;
    let client = sigil
        .clients
        .get(sigil.store.as_ref(), client_id, now)
        .await
        .map_err(|e| AuthorizeError::Page(OAuthError::from(e).description().to_string()))?
        .filter(|c| !c.disabled)
        .ok_or_else(|| AuthorizeError::Page(format!("there is no client {client_id:?}")))?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        AuthorizeError::Page("the request has no redirect_uri (it is required)".into())
    })?;
    if !redirect_matches(&client.redirect_uris, redirect_uri) {
        return Err(AuthorizeError::Page(format!(
            "{redirect_uri:?} is not a redirect URI registered for this client"
        )));
    }
    let target = Target {
        redirect_uri,
        state: params.get("state"),
    };
    let issuer = sigil.config.issuer.as_str();
    let fail =
        |code: &str, description: &str| AuthorizeError::back(&target, issuer, code, description);
    if target.state.is_some_and(|s| s.len() > MAX_STATE) {
        return Err(fail("invalid_request", "state is too long"));
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    match params.get("response_type") {
        None => return Err(fail("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    if params.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    let scope =
        super::requested_scope(&client, &params).map_err(|e| fail(e.code(), e.description()))?;
    let code_challenge =
        super::pkce::challenge(&client, &params).map_err(|d| fail("invalid_request", &d))?;
    let nonce = params.get("nonce").map(str::to_string);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(fail("invalid_request", "nonce is too long"));
    }
    let prompt = parse_prompt(params.get("prompt")).map_err(|d| fail("invalid_request", d))?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => Some(text.parse::<u32>().map_err(|_| {
            fail(
                "invalid_request",
                "max_age must be a whole number of seconds",
            )
        })? as i64),
    };
    let dpop_jkt = match params.get("dpop_jkt") {
        None => None,
        Some(text) => Some(crate::dpop::parse_jkt(text).ok_or_else(|| {
            fail(
                "invalid_request",
                "dpop_jkt must be the base64url SHA-256 thumbprint of a JWK",
            )
        })?),
    };
    let request = AuthorizationRequest {
        dpop_jkt,
        redirect_uri: redirect_uri.to_string(),
        state: target.state.map(str::to_string),
        scope,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        acr_values: params.get("acr_values").and_then(Acr::requested),
        client,
        params: params.clone(),
    };
    Ok(request)
}

fn parse_prompt(text: Option<&str>) -> Result<Prompt, &'static str> {
    let mut prompt = Prompt::default();
    for value in text
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // One account per session: there is nothing to select.
            "select_account" => {}
            _ => return Err("prompt may hold only none, login, consent and select_account"),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err("prompt=none cannot be combined with another value");
    }
    Ok(prompt)
}

/// What the request needs next.
#[derive(Debug)]
pub enum Next {
    /// The user must sign in (again).
    SignIn,
    /// The signed-in user must present a further factor to reach
    /// `needed`, and has one that can.
    StepUp { needed: Acr, factors: Factors },
    /// The client or the server requires a second factor and the user has
    /// none: they must set one up before going on.
    Enrol,
    /// The user must grant the client these scopes.
    Consent,
    /// Done: send the browser here (the code, or an error for the client).
    Redirect(String),
}

/// What the user just did on a page, so the step it satisfied is not asked
/// for again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Done {
    /// Signed in on this very request.
    pub signed_in: bool,
    /// Granted consent on this very request.
    pub consented: bool,
    /// Presented a further factor on this very request: `acr_values` is
    /// not asked for again (what the user had is what they have).
    pub stepped_up: bool,
}

/// Decides the next step for a checked request and the browser's session.
pub async fn next(
    sigil: &Sigil,
    request: &AuthorizationRequest,
    session: Option<&LiveSession>,
    done: Done,
    now: i64,
) -> Result<Next, AuthorizeError> {
    let issuer = sigil.config.issuer.as_str();
    let target = Target {
        redirect_uri: &request.redirect_uri,
        state: request.state.as_deref(),
    };
    let fail =
        |code: &str, description: &str| AuthorizeError::back(&target, issuer, code, description);
    let fresh_enough = |s: &LiveSession| {
        done.signed_in
            || (!request.prompt.login && request.max_age.is_none_or(|max| now - s.auth_time <= max))
    };
    let Some(session) = session.filter(|s| fresh_enough(s)) else {
        if request.prompt.none {
            return Err(fail("login_required", "the user is not signed in"));
        }
        return Ok(Next::SignIn);
    };
    if let Some(next) = step_up(sigil, request, session, done)
        .await
        .map_err(|e| unavailable_oauth(&fail, e))?
    {
        if request.prompt.none {
            return Err(fail(
                "interaction_required",
                "the user must present a further authentication factor",
            ));
        }
        return Ok(next);
    }
    let store = sigil.store.as_ref();
    let consented = done.consented
        || (!request.prompt.consent
            && consent::covers(store, &session.user.id, &request.client, &request.scope)
                .await
                .map_err(|e| unavailable(&fail, e))?);
    if !consented {
        if request.prompt.none {
            return Err(fail(
                "consent_required",
                "the user has not granted these scopes",
            ));
        }
        return Ok(Next::Consent);
    }
    let code = issue_code(sigil, request, session, now)
        .await
        .map_err(|e| unavailable(&fail, e))?;
    Ok(Next::Redirect(redirect_url(
        &request.redirect_uri,
        &[
            ("code", Some(&code)),
            ("state", request.state.as_deref()),
            ("iss", Some(issuer)),
        ],
    )))
}

/// Whether the session's authentication falls short of what the request
/// asks (`acr_values`, voluntary) or what the client or server requires
/// (mandatory), and what the user can do about it. A voluntary class the
/// user's factors cannot reach, or already tried for on this request, is
/// let go: the ID token's `acr` tells the client what it got.
async fn step_up(
    sigil: &Sigil,
    request: &AuthorizationRequest,
    session: &LiveSession,
    done: Done,
) -> Result<Option<Next>, OAuthError> {
    let voluntary = request.acr_values.filter(|_| !done.stepped_up);
    step_up_to(sigil, request.mandatory_acr(sigil), voluntary, session).await
}

/// [`step_up`] for what a client or the server requires (`mandatory`) and
/// what a request asks (`voluntary`): `None` when the session suffices,
/// else the step the user must take (`StepUp` or `Enrol`).
pub async fn step_up_to(
    sigil: &Sigil,
    mandatory: Acr,
    voluntary: Option<Acr>,
    session: &LiveSession,
) -> Result<Option<Next>, OAuthError> {
    let needed = voluntary.map_or(mandatory, |v| v.max(mandatory));
    let has = session.authn.acr;
    if has >= needed {
        return Ok(None);
    }
    let factors = factors(sigil, &session.user.id).await?;
    // A one-time code takes a password sign-in to MultiFactor; only a
    // passkey goes further.
    let reachable = if factors.passkeys > 0 {
        Acr::PhishingResistantHardware
    } else if factors.totp && has < Acr::MultiFactor {
        Acr::MultiFactor
    } else {
        has
    };
    if reachable > has && (reachable >= needed || has < mandatory) {
        return Ok(Some(Next::StepUp { needed, factors }));
    }
    if has < mandatory {
        return Ok(Some(Next::Enrol));
    }
    Ok(None)
}

fn unavailable_oauth(
    fail: &impl Fn(&str, &str) -> AuthorizeError,
    e: OAuthError,
) -> AuthorizeError {
    match e {
        OAuthError::TemporarilyUnavailable(d) => fail("temporarily_unavailable", &d),
        other => fail("server_error", other.description()),
    }
}

fn unavailable(
    fail: &impl Fn(&str, &str) -> AuthorizeError,
    e: crate::store::StoreError,
) -> AuthorizeError {
    let e = OAuthError::from(e);
    match e {
        OAuthError::TemporarilyUnavailable(d) => fail("temporarily_unavailable", &d),
        other => fail("server_error", other.description()),
    }
}

/// The user declined: RFC 6749 §4.1.2.1 `access_denied`.
pub fn denied(sigil: &Sigil, request: &AuthorizationRequest) -> String {
    redirect_url(
        &request.redirect_uri,
        &[
            ("error", Some("access_denied")),
            ("error_description", Some("the user declined")),
            ("state", request.state.as_deref()),
            ("iss", Some(&sigil.config.issuer)),
        ],
    )
}

/// Stores a code bound to everything the exchange must match, and returns it.
async fn issue_code(
    sigil: &Sigil,
    request: &AuthorizationRequest,
    session: &LiveSession,
    now: i64,
) -> Result<String, crate::store::StoreError> {
    let code = random_b64::<32>();
    let record = AuthCodeRecord {
        hash: hash_secret(&code),
        client_id: request.client.id.clone(),
        user_id: session.user.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scope.to_string(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time: session.auth_time,
        sid: Some(session.sid.clone()),
        created_at: now,
        expires_at: now + CODE_TTL,
        spent_at: None,
        family_id: None,
        amr: session.authn.amr_text(),
        acr: session.authn.acr.as_str().to_string(),
        dpop_jkt: request.dpop_jkt.clone(),
    };
    sigil.store.insert_authorization_code(&record).await?;
    Ok(code)
}

/// `base` with `pairs` (those with a value) added to its query.
pub fn redirect_url(base: &str, pairs: &[(&str, Option<&str>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        return base.to_string();
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_none_stands_alone() {
        assert_eq!(
            parse_prompt(Some("login consent")),
            Ok(Prompt {
                none: false,
                login: true,
                consent: true
            })
        );
        assert!(parse_prompt(Some("none login")).is_err());
        assert!(parse_prompt(Some("bogus")).is_err());
        assert_eq!(parse_prompt(None), Ok(Prompt::default()));
    }

    #[test]
    fn redirect_urls_keep_an_existing_query() {
        assert_eq!(
            redirect_url(
                "https://a.example/cb?x=1",
                &[("code", Some("a b")), ("state", None)]
            ),
            "https://a.example/cb?x=1&code=a+b"
        );
        // A logout without state: the registered URI as it is.
        assert_eq!(
            redirect_url("https://a.example/bye", &[("state", None)]),
            "https://a.example/bye"
        );
    }
}
