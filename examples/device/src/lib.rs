//! `device-login`: signs in to Sigil from a device that has no browser (a
//! CLI, a TV, a build agent) with the device authorization grant, RFC 8628.
//! The device shows a short code; the user opens Sigil's `/device` page on
//! their phone or laptop, signs in there and approves the code; meanwhile
//! the device polls Sigil's token endpoint until it is given tokens.
//!
//! Everything OAuth and OpenID Connect is done by the standard
//! `openidconnect` crate: discovery from the issuer URL, the device
//! authorization request, the polling (which honours `interval` and
//! `slow_down`), and the ID token's signature (through the JWKS) and claims.
//! This crate only shows the code and reads the answer.

use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreDeviceAuthorizationResponse, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, DeviceAuthorizationUrl, DeviceCodeErrorResponseType,
    IssuerUrl, Nonce, OAuth2TokenResponse, ProviderMetadata, RequestTokenError, Scope,
    TokenResponse, reqwest,
};

/// Where Sigil is and who this app is there.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sigil's issuer URL, exactly as Sigil spells it.
    pub issuer: String,
    /// A public client allowed the device grant (no secret: a device
    /// cannot keep one).
    pub client_id: String,
}

/// What to show the user while the device waits.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// The page where the user enters the code (`{issuer}/device`).
    pub verification_uri: String,
    /// The same page with the code filled in, for a link or a QR code.
    pub verification_uri_complete: Option<String>,
    /// The code to enter, e.g. `BCDF-GHJK`.
    pub user_code: String,
    /// How long the code is good for.
    pub expires_in: Duration,
}

/// Who signed in, and how, from the verified ID token (the username from
/// UserInfo if the ID token lacks it); and the tokens.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub subject: String,
    pub username: Option<String>,
    /// How the user authenticated in the browser (`pwd`, `otp`, `hwk`…).
    pub amr: Vec<String>,
    /// The assurance level of that authentication.
    pub acr: Option<String>,
    /// When the user authenticated, in seconds since the Unix epoch.
    pub auth_time: Option<i64>,
    /// For the APIs this app calls on the user's behalf.
    pub access_token: String,
    /// For a new access token later without asking the user again, when
    /// the client may refresh.
    pub refresh_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user pressed "Deny" (`access_denied`).
    #[error("the sign-in was denied")]
    Denied,
    /// Nobody approved the code in time (`expired_token`): start again.
    #[error("the code expired before it was approved; run me again")]
    Expired,
    #[error("{0}")]
    Failed(String),
}

// The device authorization endpoint is not among the discovery fields that
// openidconnect knows, so it is read as additional metadata (RFC 8628 §4).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
struct DeviceEndpoint {
    device_authorization_endpoint: DeviceAuthorizationUrl,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

type DeviceProviderMetadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Signs a user in: asks Sigil for a code, calls `show` with what the user
/// must do, waits until they approve (or deny) it, and verifies the ID token.
pub async fn sign_in(settings: &Settings, show: impl FnOnce(&Prompt)) -> Result<SignedIn, Error> {
    // No redirects: openidconnect's advice, so that a redirect cannot send
    // a token request elsewhere (SSRF).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| failed("HTTP client", &e))?;

    // Discovery: the endpoints and the JWKS.
    let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| failed("issuer", &e))?;
    let metadata = DeviceProviderMetadata::discover_async(issuer, &http)
        .await
        .map_err(|e| failed(&format!("discovery at {}", settings.issuer), &e))?;
    let device_endpoint = metadata
        .additional_metadata()
        .device_authorization_endpoint
        .clone();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(settings.client_id.clone()),
        None,
    )
    .set_device_authorization_url(device_endpoint);

    // RFC 8628 §3.1: a device code and a user code (`openid` is added by
    // openidconnect; add the scopes your app needs).
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .request_async(&http)
        .await
        .map_err(|e| failed("device authorization", &e))?;
    show(&Prompt {
        verification_uri: details.verification_uri().to_string(),
        verification_uri_complete: details
            .verification_uri_complete()
            .map(|uri| uri.secret().clone()),
        user_code: details.user_code().secret().clone(),
        expires_in: details.expires_in(),
    });

    // RFC 8628 §3.4-3.5: poll the token endpoint until the user decides
    // (or the code expires), sleeping `interval`, longer after `slow_down`.
    let tokens = client
        .exchange_device_access_token(&details)
        .map_err(|e| failed("no token endpoint", &e))?
        .request_async(&http, tokio::time::sleep, None)
        .await
        .map_err(|e| match &e {
            RequestTokenError::ServerResponse(answer) => match answer.error() {
                DeviceCodeErrorResponseType::AccessDenied => Error::Denied,
                DeviceCodeErrorResponseType::ExpiredToken => Error::Expired,
                _ => failed("token request", &e),
            },
            _ => failed("token request", &e),
        })?;

    // The ID token: signature (JWKS), issuer, audience, expiry. The device
    // grant sends no nonce, so none is expected back.
    let id_token = tokens
        .id_token()
        .ok_or_else(|| Error::Failed("no ID token in the token response".into()))?;
    let no_nonce = |nonce: Option<&Nonce>| match nonce {
        None => Ok(()),
        Some(_) => Err("a nonce nobody sent".to_string()),
    };
    let claims = id_token
        .claims(&client.id_token_verifier(), no_nonce)
        .map_err(|e| failed("ID token", &e))?;

    // The username, from the ID token if it has it, else from UserInfo
    // (where Sigil puts the `profile` claims); openidconnect checks that
    // UserInfo speaks of the same subject.
    let mut username = claims.preferred_username().map(|u| u.to_string());
    if username.is_none() {
        let info: CoreUserInfoClaims = client
            .user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .map_err(|e| failed("no userinfo endpoint", &e))?
            .request_async(&http)
            .await
            .map_err(|e| failed("userinfo", &e))?;
        username = info.preferred_username().map(|u| u.to_string());
    }
    Ok(SignedIn {
        subject: claims.subject().to_string(),
        username,
        amr: claims
            .auth_method_refs()
            .map(|amr| amr.iter().map(|m| m.to_string()).collect())
            .unwrap_or_default(),
        acr: claims.auth_context_ref().map(|acr| acr.to_string()),
        auth_time: claims.auth_time().map(|at| at.timestamp()),
        access_token: tokens.access_token().secret().clone(),
        refresh_token: tokens.refresh_token().map(|t| t.secret().clone()),
    })
}

/// A failure with what was being done and the error's causes.
fn failed(doing: &str, error: &dyn std::error::Error) -> Error {
    let mut text = format!("{doing}: {error}");
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    Error::Failed(text)
}
