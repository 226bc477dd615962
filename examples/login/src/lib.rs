//! `login-with-sigil`: a server-side web app that signs its users in with
//! Sigil, as any OpenID Connect relying party would. Everything OIDC is done
//! by the `openidconnect` crate: discovery from the issuer URL, the
//! authorization request with PKCE and a nonce, the code exchange with
//! client_secret_basic, the ID token's signature (through the JWKS) and
//! claims, UserInfo, and the RP-initiated logout URL. This app keeps only
//! its own session cookie and what it must remember between redirects.
//!
//! Routes: `GET /` (who is signed in), `GET /login` (off to Sigil),
//! `GET /callback` (back from Sigil), `POST /logout` (out of this app and of
//! Sigil).

mod pages;
mod sessions;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope,
    TokenResponse, reqwest,
};

pub use sessions::SignedIn;
use sessions::{Pending, Sessions};

/// The cookie naming this app's session (Sigil's own cookies are separate:
/// a browser keeps cookies per host, whatever the port).
const SESSION_COOKIE: &str = "login_example_session";
/// The cookie naming the sign-in in progress (state, nonce, PKCE verifier).
const PENDING_COOKIE: &str = "login_example_pending";

/// How the app reaches Sigil and where Sigil sends users back.
#[derive(Clone)]
pub struct Settings {
    /// Sigil's issuer URL, exactly as Sigil spells it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// This app's own URL (`http://127.0.0.1:8082`): the redirect URI is
    /// `{base_url}/callback`, the post-logout one `{base_url}/`. Under https
    /// the app's cookies are `Secure`.
    pub base_url: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

type SigilClient = CoreClient<
    EndpointSet,      // authorization endpoint
    EndpointNotSet,   // device authorization
    EndpointNotSet,   // introspection
    EndpointNotSet,   // revocation
    EndpointMaybeSet, // token endpoint
    EndpointMaybeSet, // userinfo endpoint
>;

pub struct App {
    client: SigilClient,
    end_session: Option<openidconnect::EndSessionUrl>,
    issuer: String,
    base_url: String,
    secure_cookies: bool,
    http: reqwest::Client,
    sessions: Sessions,
}

impl App {
    /// Reads Sigil's discovery document (and its JWKS) and builds the client.
    pub async fn discover(settings: Settings) -> Result<Arc<App>, String> {
        // No redirects: openidconnect's advice, so that a redirect cannot
        // send a token request elsewhere (SSRF).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| format!("issuer: {e}"))?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http)
            .await
            .map_err(|e| format!("discovery at {}: {}", settings.issuer, chain(&e)))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let redirect = RedirectUrl::new(format!("{}/callback", settings.base_url))
            .map_err(|e| format!("redirect URI: {e}"))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id),
            Some(ClientSecret::new(settings.client_secret)),
        )
        .set_redirect_uri(redirect);
        Ok(Arc::new(App {
            client,
            end_session,
            issuer: settings.issuer,
            secure_cookies: settings.base_url.starts_with("https://"),
            base_url: settings.base_url,
            http,
            sessions: Sessions::default(),
        }))
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .with_state(app)
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let user = cookie(&headers, SESSION_COOKIE).and_then(|id| app.sessions.user(id));
    pages::home(user.as_ref())
}

/// Off to Sigil's authorization endpoint, remembering what the callback
/// must check.
async fn login(State(app): State<Arc<App>>) -> Response {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = app
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let key = app.sessions.begin(Pending {
        state,
        nonce,
        verifier,
    });
    let mut response = Redirect::to(url.as_str()).into_response();
    set_cookie(&app, &mut response, PENDING_COOKIE, &key, 600);
    response
}

#[derive(serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Back from Sigil: check the response, exchange the code, verify the ID
/// token, read UserInfo, start this app's session.
async fn callback(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    back: Result<Query<Callback>, QueryRejection>,
) -> Response {
    // A malformed query (a repeated parameter, bad encoding) gets this
    // app's own page, not axum's plain-text rejection.
    let Ok(Query(back)) = back else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "The response from Sigil is malformed.",
        );
    };
    let Some(pending) = cookie(&headers, PENDING_COOKIE).and_then(|k| app.sessions.finish(k))
    else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "No sign-in is in progress in this browser.",
        );
    };
    if back.state.as_deref() != Some(pending.state.secret().as_str()) {
        return pages::error(StatusCode::BAD_REQUEST, "The state does not match.");
    }
    // RFC 9207: Sigil names itself in the response; a mix-up would not.
    if back.iss.as_deref() != Some(app.issuer.as_str()) {
        return pages::error(StatusCode::BAD_REQUEST, "The response is not from Sigil.");
    }
    if let Some(error) = back.error {
        let description = back.error_description.unwrap_or_default();
        return pages::error(
            StatusCode::FORBIDDEN,
            &format!("Sigil did not sign you in: {error} {description}"),
        );
    }
    let Some(code) = back.code else {
        return pages::error(StatusCode::BAD_REQUEST, "The response has no code.");
    };
    match sign_in(&app, code, pending).await {
        Ok(user) => {
            let id = app.sessions.start(user);
            let mut response = Redirect::to("/").into_response();
            set_cookie(&app, &mut response, SESSION_COOKIE, &id, 3600);
            set_cookie(&app, &mut response, PENDING_COOKIE, "", 0);
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "sign-in failed");
            pages::error(StatusCode::BAD_GATEWAY, &format!("Sign-in failed: {e}"))
        }
    }
}

async fn sign_in(app: &App, code: String, pending: Pending) -> Result<SignedIn, String> {
    let tokens = app
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| format!("no token endpoint: {e}"))?
        .set_pkce_verifier(pending.verifier)
        .request_async(&app.http)
        .await
        .map_err(|e| format!("code exchange: {}", chain(&e)))?;
    let id_token = tokens.id_token().ok_or("no ID token")?;
    let verifier = app.client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &pending.nonce)
        .map_err(|e| format!("ID token: {e}"))?;
    // OIDC Core §3.1.3.8: at_hash ties the access token to this ID token.
    let expected = claims
        .access_token_hash()
        .ok_or("ID token without at_hash")?;
    let alg = id_token
        .signing_alg()
        .map_err(|e| format!("ID token: {e}"))?;
    let key = id_token
        .signing_key(&verifier)
        .map_err(|e| format!("ID token: {e}"))?;
    let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
        .map_err(|e| format!("at_hash: {e}"))?;
    if actual != *expected {
        return Err("the access token does not match the ID token's at_hash".into());
    }
    let info: CoreUserInfoClaims = app
        .client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .map_err(|e| format!("no userinfo endpoint: {e}"))?
        .request_async(&app.http)
        .await
        .map_err(|e| format!("userinfo: {}", chain(&e)))?;
    Ok(SignedIn {
        subject: claims.subject().to_string(),
        username: info
            .preferred_username()
            .map(|u| u.to_string())
            .unwrap_or_default(),
        email: info.email().map(|e| e.to_string()),
        id_token: id_token.to_string(),
    })
}

/// Out of this app, then out of Sigil (RP-initiated logout), back to `/`.
async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let user = cookie(&headers, SESSION_COOKIE).and_then(|id| app.sessions.end(id));
    let target = match (&app.end_session, user) {
        (Some(endpoint), Some(user)) => {
            let hint: openidconnect::IdToken<
                openidconnect::EmptyAdditionalClaims,
                CoreGenderClaim,
                openidconnect::core::CoreJweContentEncryptionAlgorithm,
                openidconnect::core::CoreJwsSigningAlgorithm,
            > = match user.id_token.parse() {
                Ok(hint) => hint,
                Err(_) => return Redirect::to("/").into_response(),
            };
            let back = PostLogoutRedirectUrl::new(format!("{}/", app.base_url))
                .expect("the base URL was parsed at start");
            LogoutRequest::from(endpoint.clone())
                .set_id_token_hint(&hint)
                .set_post_logout_redirect_uri(back)
                .http_get_url()
                .to_string()
        }
        _ => "/".to_string(),
    };
    let mut response = Redirect::to(&target).into_response();
    set_cookie(&app, &mut response, SESSION_COOKIE, "", 0);
    response
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(app: &App, response: &mut Response, name: &str, value: &str, max_age: u32) {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// An error with its causes, for the log and the error page.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}
