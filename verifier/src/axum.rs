//! axum and tower integration (feature `axum`, on by default).
//!
//! - [`Claims`] is an extractor: a handler that takes it runs only for a
//!   request with a valid bearer token. `Option<Claims>` makes the token
//!   optional (a present but invalid token is still refused).
//! - [`RequireScope`] also demands a scope, named by a type made with
//!   [`scope!`](crate::scope).
//! - [`VerifyLayer`] does the same for any tower stack, putting the
//!   [`Claims`] in the request extensions.
//!
//! Refusals follow RFC 6750 §3: 401 with `WWW-Authenticate: Bearer
//! realm="…"` (and `error="invalid_token"` when a token was sent), 403 with
//! `error="insufficient_scope", scope="…"`, and a JSON body `{error,
//! error_description}`; a token whose sign-in was too weak for the route
//! gets RFC 9470's 401 `error="insufficient_user_authentication",
//! acr_values="…"`, which tells the app to step the user up. While the
//! verifier fails closed the answer is 503.
//!
//! The extractors find the [`Verifier`] in the router state through
//! [`FromRef`], so the state is either the verifier itself or a struct
//! with a `FromRef` impl for it.

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;

use crate::{Claims, Staleness, Verifier, VerifyError};

/// Seconds a client is told to wait while the verifier fails closed.
const RETRY_AFTER_SECONDS: &str = "5";

/// Why a request was refused; renders the RFC 6750 response.
///
/// Handlers can return it too, e.g. after their own check:
///
/// ```
/// use sigil_verify::Claims;
/// use sigil_verify::axum::Rejection;
///
/// async fn delete_note(claims: Claims) -> Result<&'static str, Rejection> {
///     claims.require_scope("notes:admin")?;
///     Ok("deleted")
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Rejection {
    realm: Option<String>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// No `Authorization: Bearer` header: a bare challenge (RFC 6750 §3.1).
    MissingToken,
    /// More than one `Authorization` header.
    InvalidRequest(&'static str),
    InvalidToken(VerifyError),
    InsufficientScope(Cow<'static, str>),
    /// RFC 9470 §3: the sign-in behind the token was weaker than the
    /// `acr` the route requires.
    InsufficientUserAuthentication(Cow<'static, str>),
    Unavailable(Staleness),
}

impl Rejection {
    /// The refusal for a request that carried no bearer token.
    pub fn missing_token() -> Rejection {
        Rejection {
            realm: None,
            kind: Kind::MissingToken,
        }
    }

    /// The refusal for a valid token that lacks `scope` (403).
    pub fn insufficient_scope(scope: impl Into<Cow<'static, str>>) -> Rejection {
        Rejection {
            realm: None,
            kind: Kind::InsufficientScope(scope.into()),
        }
    }

    /// The refusal for a valid token whose sign-in did not reach `acr`
    /// (RFC 9470: 401 `insufficient_user_authentication` with `acr_values`).
    pub fn insufficient_user_authentication(acr: impl Into<Cow<'static, str>>) -> Rejection {
        Rejection {
            realm: None,
            kind: Kind::InsufficientUserAuthentication(acr.into()),
        }
    }

    /// Sets the `realm` of the challenge.
    #[must_use]
    pub fn with_realm(mut self, realm: impl Into<String>) -> Rejection {
        self.realm = Some(realm.into());
        self
    }

    /// The HTTP status: 400, 401, 403 or 503.
    ///
    /// ```
    /// use sigil_verify::VerifyError;
    /// use sigil_verify::axum::Rejection;
    /// assert_eq!(Rejection::from(VerifyError::Expired).status(), 401);
    /// assert_eq!(Rejection::insufficient_scope("notes:write").status(), 403);
    /// ```
    pub fn status(&self) -> StatusCode {
        match &self.kind {
            Kind::MissingToken
            | Kind::InvalidToken(_)
            | Kind::InsufficientUserAuthentication(_) => StatusCode::UNAUTHORIZED,
            Kind::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Kind::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Kind::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The verification error behind a 401 or 503, if any.
    pub fn verify_error(&self) -> Option<VerifyError> {
        match &self.kind {
            Kind::InvalidToken(e) => Some(e.clone()),
            Kind::Unavailable(s) => Some(VerifyError::Unavailable(s.clone())),
            _ => None,
        }
    }

    /// Renders the response with any body type that can be made from a
    /// `String` (for tower stacks other than axum).
    pub fn to_response<B: From<String>>(&self) -> Response<B> {
        let (code, description) = match &self.kind {
            Kind::MissingToken => ("unauthorized", "a bearer token is required".to_string()),
            Kind::InvalidRequest(why) => ("invalid_request", why.to_string()),
            Kind::InvalidToken(e @ VerifyError::InvalidDpopProof(_)) => {
                ("invalid_dpop_proof", e.to_string())
            }
            Kind::InvalidToken(e) => ("invalid_token", e.to_string()),
            Kind::InsufficientScope(scope) => (
                "insufficient_scope",
                format!("this endpoint requires the {scope} scope"),
            ),
            Kind::InsufficientUserAuthentication(acr) => (
                "insufficient_user_authentication",
                format!("this endpoint requires a sign-in of at least {acr}"),
            ),
            Kind::Unavailable(s) => ("temporarily_unavailable", s.to_string()),
        };
        let body = serde_json::json!({"error": code, "error_description": description});
        let mut response = Response::new(B::from(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(value) = self
            .challenge(code, &description)
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if matches!(self.kind, Kind::Unavailable(_)) {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }

    /// RFC 6750 §3 `WWW-Authenticate` value.
    fn challenge(&self, code: &str, description: &str) -> Option<String> {
        let mut params = Vec::with_capacity(4);
        if let Some(realm) = &self.realm {
            params.push(format!("realm=\"{}\"", quote(realm)));
        }
        // RFC 9449 §7.1: the DPoP scheme's challenge, for its own errors.
        let dpop = matches!(
            &self.kind,
            Kind::InvalidToken(
                VerifyError::InvalidDpopProof(_)
                    | VerifyError::DpopRequired
                    | VerifyError::NotDpopBound
            )
        );
        if dpop {
            params.push(r#"algs="ES256 EdDSA RS256 PS256""#.to_string());
        }
        match &self.kind {
            Kind::MissingToken => {}
            Kind::InvalidRequest(_) | Kind::InvalidToken(_) => {
                params.push(format!("error=\"{code}\""));
                params.push(format!("error_description=\"{}\"", quote(description)));
            }
            Kind::InsufficientScope(scope) => {
                params.push(format!("error=\"{code}\""));
                params.push(format!("scope=\"{}\"", quote(scope)));
            }
            Kind::InsufficientUserAuthentication(acr) => {
                params.push(format!("error=\"{code}\""));
                params.push(format!("error_description=\"{}\"", quote(description)));
                params.push(format!("acr_values=\"{}\"", quote(acr)));
            }
            Kind::Unavailable(_) => return None,
        }
        let scheme = if dpop { "DPoP" } else { "Bearer" };
        Some(if params.is_empty() {
            scheme.to_string()
        } else {
            format!("{scheme} {}", params.join(", "))
        })
    }
}

/// RFC 9110 §5.6.4 quoted-string content: escapes `"` and `\`, drops
/// control characters.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || !c.is_ascii() => {}
            c => out.push(c),
        }
    }
    out
}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        let kind = match e {
            VerifyError::Unavailable(s) => Kind::Unavailable(s),
            other => Kind::InvalidToken(other),
        };
        Rejection { realm: None, kind }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> axum::response::Response {
        self.to_response::<axum::body::Body>()
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::MissingToken => f.write_str("no bearer token"),
            Kind::InvalidRequest(why) => f.write_str(why),
            Kind::InvalidToken(e) => write!(f, "{e}"),
            Kind::InsufficientScope(s) => write!(f, "the token lacks the {s} scope"),
            Kind::InsufficientUserAuthentication(a) => {
                write!(f, "the sign-in behind the token did not reach {a}")
            }
            Kind::Unavailable(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for Rejection {}

impl Claims {
    /// Refuses with 403 `insufficient_scope` unless the token carries
    /// `scope`. The challenge carries no realm; [`RequireScope`] adds the
    /// verifier's.
    ///
    /// ```
    /// # let claims: sigil_verify::Claims = serde_json::from_value(serde_json::json!({
    /// #   "iss": "i", "sub": "s", "aud": "a", "exp": 2, "iat": 1, "jti": "j",
    /// #   "client_id": "c", "scope": "notes:read"})).unwrap();
    /// assert!(claims.require_scope("notes:read").is_ok());
    /// assert_eq!(claims.require_scope("notes:write").unwrap_err().status(), 403);
    /// ```
    pub fn require_scope(&self, scope: &'static str) -> Result<(), Rejection> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Rejection::insufficient_scope(scope))
        }
    }

    /// Refuses with RFC 9470's 401 `insufficient_user_authentication`
    /// unless the user's sign-in reached `acr` ([`Claims::acr_at_least`]):
    /// the app then asks Sigil again with `acr_values`.
    ///
    /// ```
    /// # let claims: sigil_verify::Claims = serde_json::from_value(serde_json::json!({
    /// #   "iss": "i", "sub": "s", "aud": "a", "exp": 2, "iat": 1, "jti": "j",
    /// #   "client_id": "c", "acr": "urn:sigil:acr:1fa", "amr": ["pwd"]})).unwrap();
    /// assert!(claims.require_acr("urn:sigil:acr:1fa").is_ok());
    /// let refused = claims.require_acr("urn:sigil:acr:mfa").unwrap_err();
    /// assert_eq!(refused.status(), 401);
    /// ```
    pub fn require_acr(&self, acr: &'static str) -> Result<(), Rejection> {
        if self.acr_at_least(acr) {
            Ok(())
        } else {
            Err(Rejection::insufficient_user_authentication(acr))
        }
    }
}

/// How the request presented its token.
enum Scheme {
    Bearer,
    /// RFC 9449 §7.1: with a `DPoP` proof header.
    Dpop,
}

/// Reads `Authorization: Bearer <token>` (RFC 6750 §2.1) or
/// `Authorization: DPoP <token>` (RFC 9449 §7.1).
fn bearer_token(headers: &HeaderMap) -> Result<Option<(Scheme, &str)>, Kind> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Kind::InvalidRequest("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| Kind::InvalidToken(VerifyError::Malformed))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        // Another scheme is not a bearer token: challenge for one.
        return Ok(None);
    };
    let token = token.trim();
    let token68 = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
    if !token68 {
        return Err(Kind::InvalidToken(VerifyError::Malformed));
    }
    Ok(Some((scheme, token)))
}

/// What of a request the token checks read: its headers, and for a DPoP
/// proof its method and path.
struct Presented<'a> {
    headers: &'a HeaderMap,
    method: &'a str,
    path: &'a str,
}

/// Verifies the request's access token, if it has one: a bearer token, or
/// a DPoP-bound one with its proof.
async fn authenticate(
    verifier: &Verifier,
    request: &Presented<'_>,
) -> Result<Option<Claims>, Rejection> {
    let realm = || Some(verifier.realm().to_string());
    let token = bearer_token(request.headers).map_err(|kind| Rejection {
        realm: realm(),
        kind,
    })?;
    let Some((scheme, token)) = token else {
        return Ok(None);
    };
    let verified = match scheme {
        Scheme::Bearer => verifier.verify(token).await,
        Scheme::Dpop => {
            let mut proofs = request.headers.get_all("dpop").iter();
            match (proofs.next().map(|p| p.to_str()), proofs.next()) {
                (Some(Ok(proof)), None) => {
                    verifier
                        .verify_dpop(token, proof, request.method, request.path)
                        .await
                }
                _ => Err(VerifyError::InvalidDpopProof(
                    "one DPoP header with the proof is required".into(),
                )),
            }
        }
    };
    match verified {
        Ok(claims) => Ok(Some(claims)),
        Err(e) => {
            tracing::debug!(error = %e, "refused a bearer token");
            let mut rejection = Rejection::from(e);
            rejection.realm = realm();
            Err(rejection)
        }
    }
}

async fn require_token(verifier: &Verifier, request: &Presented<'_>) -> Result<Claims, Rejection> {
    authenticate(verifier, request)
        .await?
        .ok_or_else(|| Rejection::missing_token().with_realm(verifier.realm()))
}

/// The claims of the request's verified bearer token.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use sigil_verify::{Claims, Verifier};
///
/// async fn me(claims: Claims) -> String {
///     format!("hello {}", claims.sub)
/// }
///
/// # async fn run(verifier: Verifier) {
/// let app: Router = Router::new().route("/me", get(me)).with_state(verifier);
/// # }
/// ```
impl<S> FromRequestParts<S> for Claims
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    #[tracing::instrument(name = "bearer_token", skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Already verified by a VerifyLayer further out.
        if let Some(claims) = parts.extensions.get::<Claims>() {
            return Ok(claims.clone());
        }
        let verifier = Verifier::from_ref(state);
        let request = Presented {
            headers: &parts.headers,
            method: parts.method.as_str(),
            path: parts.uri.path(),
        };
        require_token(&verifier, &request).await
    }
}

/// `Option<Claims>`: `None` without a bearer token, a refusal for a
/// present but invalid one.
impl<S> OptionalFromRequestParts<S> for Claims
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    #[tracing::instrument(name = "optional_bearer_token", skip_all)]
    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(claims) = parts.extensions.get::<Claims>() {
            return Ok(Some(claims.clone()));
        }
        let verifier = Verifier::from_ref(state);
        let request = Presented {
            headers: &parts.headers,
            method: parts.method.as_str(),
            path: parts.uri.path(),
        };
        authenticate(&verifier, &request).await
    }
}

/// A scope a route requires, as a type; made with [`scope!`](crate::scope).
pub trait Scope: Send + Sync + 'static {
    /// The scope token, e.g. `notes:write`.
    const NAME: &'static str;
}

/// Declares a [`Scope`] type for [`RequireScope`].
///
/// ```
/// sigil_verify::scope!(
///     /// May create notes.
///     pub NotesWrite = "notes:write"
/// );
/// use sigil_verify::axum::Scope;
/// assert_eq!(NotesWrite::NAME, "notes:write");
/// ```
#[macro_export]
macro_rules! scope {
    ($(#[$meta:meta])* $vis:vis $name:ident = $scope:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default)]
        $vis struct $name;

        impl $crate::axum::Scope for $name {
            const NAME: &'static str = $scope;
        }
    };
}

/// The claims of a verified token that carries scope `S`; 401 without a
/// valid token, 403 `insufficient_scope` without the scope.
///
/// ```no_run
/// use axum::{Router, routing::post};
/// use sigil_verify::Verifier;
/// use sigil_verify::axum::RequireScope;
///
/// sigil_verify::scope!(NotesWrite = "notes:write");
///
/// async fn create(caller: RequireScope<NotesWrite>) -> String {
///     format!("note created by {}", caller.sub)
/// }
///
/// # async fn run(verifier: Verifier) {
/// let app: Router = Router::new().route("/notes", post(create)).with_state(verifier);
/// # }
/// ```
pub struct RequireScope<S: Scope> {
    /// The verified claims.
    pub claims: Claims,
    scope: PhantomData<fn() -> S>,
}

impl<S: Scope> RequireScope<S> {
    /// The claims, by value.
    pub fn into_claims(self) -> Claims {
        self.claims
    }
}

impl<S: Scope> Deref for RequireScope<S> {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.claims
    }
}

impl<S: Scope> std::fmt::Debug for RequireScope<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireScope")
            .field("scope", &S::NAME)
            .field("claims", &self.claims)
            .finish()
    }
}

impl<St, S> FromRequestParts<St> for RequireScope<S>
where
    Verifier: FromRef<St>,
    St: Send + Sync,
    S: Scope,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let claims = <Claims as FromRequestParts<St>>::from_request_parts(parts, state).await?;
        if !claims.has_scope(S::NAME) {
            let realm = Verifier::from_ref(state).realm().to_string();
            return Err(Rejection::insufficient_scope(S::NAME).with_realm(realm));
        }
        Ok(RequireScope {
            claims,
            scope: PhantomData,
        })
    }
}

/// A tower [`Layer`](tower::Layer) that verifies the bearer token of every
/// request (and optionally demands scopes) before the inner service runs.
/// The inner service finds the [`Claims`] in the request extensions.
///
/// ```no_run
/// use axum::{Extension, Router, routing::get};
/// use sigil_verify::{Claims, Verifier};
/// use sigil_verify::axum::VerifyLayer;
///
/// async fn report(Extension(claims): Extension<Claims>) -> String {
///     format!("report for {}", claims.sub)
/// }
///
/// # async fn run(verifier: Verifier) {
/// let app: Router = Router::new()
///     .route("/reports", get(report))
///     .layer(VerifyLayer::new(verifier).require_scope("reports:read"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct VerifyLayer {
    verifier: Verifier,
    scopes: Arc<[Cow<'static, str>]>,
    /// The authentication context class the user's sign-in must reach.
    acr: Option<Cow<'static, str>>,
}

impl VerifyLayer {
    /// Verifies tokens with `verifier`; no scope required.
    pub fn new(verifier: Verifier) -> VerifyLayer {
        VerifyLayer {
            verifier,
            scopes: Arc::new([]),
            acr: None,
        }
    }

    /// Also requires `scope` (every required scope must be present).
    #[must_use]
    pub fn require_scope(self, scope: impl Into<Cow<'static, str>>) -> VerifyLayer {
        let mut scopes = self.scopes.to_vec();
        scopes.push(scope.into());
        VerifyLayer {
            scopes: scopes.into(),
            ..self
        }
    }

    /// Also requires a sign-in of at least `acr` (see
    /// [`Claims::acr_at_least`]); a weaker one gets RFC 9470's 401
    /// `insufficient_user_authentication`.
    #[must_use]
    pub fn require_acr(self, acr: impl Into<Cow<'static, str>>) -> VerifyLayer {
        VerifyLayer {
            acr: Some(acr.into()),
            ..self
        }
    }
}

impl<S> tower::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> VerifyService<S> {
        VerifyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`VerifyLayer`].
#[derive(Clone, Debug)]
pub struct VerifyService<S> {
    inner: S,
    layer: VerifyLayer,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for VerifyService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let verifier = &layer.verifier;
            let presented = Presented {
                headers: request.headers(),
                method: request.method().as_str(),
                path: request.uri().path(),
            };
            let claims = match require_token(verifier, &presented).await {
                Ok(claims) => claims,
                Err(rejection) => return Ok(rejection.to_response()),
            };
            if let Some(missing) = layer.scopes.iter().find(|s| !claims.has_scope(s)) {
                let rejection =
                    Rejection::insufficient_scope(missing.clone()).with_realm(verifier.realm());
                return Ok(rejection.to_response());
            }
            if let Some(acr) = &layer.acr
                && !claims.acr_at_least(acr)
            {
                let rejection = Rejection::insufficient_user_authentication(acr.clone())
                    .with_realm(verifier.realm());
                return Ok(rejection.to_response());
            }
            request.extensions_mut().insert(claims);
            inner.call(request).await
        })
    }
}
