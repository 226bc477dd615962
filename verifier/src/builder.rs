//! Configuration of a [`Verifier`]: every setting, its default, and the
//! checks made before anything is fetched.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::BuildError;
use crate::fail_mode::FailMode;
use crate::feed_auth::FeedAuth;
use crate::settings::{DEFAULT_POLL, Settings};
use crate::token::Policy;
use crate::verifier::Verifier;

/// Default tolerance for clock skew between Sigil and this service.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Default time without a successful feed poll before the fail mode applies.
pub const DEFAULT_STALENESS_BOUND: Duration = Duration::from_secs(300);
/// Default minimum time between two JWKS fetches made for unknown `kid`s.
pub const DEFAULT_REFETCH_COOLDOWN: Duration = Duration::from_secs(1);
/// Default time a `kid` that a fresh JWKS did not list is refused without
/// another fetch.
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(30);

/// Builds a [`Verifier`]; made by [`Verifier::builder`].
///
/// The issuer and at least one audience are required. Keys come from the
/// issuer's RFC 8414 metadata unless [`jwks_uri`](Self::jwks_uri) or
/// [`static_jwks`](Self::static_jwks) says otherwise.
///
/// ```no_run
/// # async fn run() -> Result<(), sigil_verify::BuildError> {
/// use std::time::Duration;
/// use sigil_verify::{FailMode, Verifier};
///
/// let verifier = Verifier::builder()
///     .issuer("https://sigil.example.com")
///     .audience("notes-api")
///     .revocation_feed("notes-api", std::env::var("FEED_SECRET").unwrap_or_default())
///     .poll_interval(Duration::from_secs(2))
///     .staleness_bound(Duration::from_secs(120))
///     .fail_mode(FailMode::Closed)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct VerifierBuilder {
    pub(crate) issuer: Option<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) static_jwks: Option<Vec<u8>>,
    pub(crate) feed: Option<(String, FeedAuth)>,
    pub(crate) poll_interval: Option<Duration>,
    pub(crate) leeway: Duration,
    pub(crate) staleness_bound: Duration,
    pub(crate) fail_mode: FailMode,
    pub(crate) refetch_cooldown: Duration,
    pub(crate) negative_cache_ttl: Duration,
    pub(crate) realm: Option<String>,
    pub(crate) dpop_url: Option<String>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: Option<reqwest::Client>,
}

impl std::fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("jwks_uri", &self.jwks_uri)
            .field("static_jwks", &self.static_jwks.is_some())
            .field("feed_client_id", &self.feed.as_ref().map(|(id, _)| id))
            .field("fail_mode", &self.fail_mode)
            .finish_non_exhaustive()
    }
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        VerifierBuilder {
            issuer: None,
            audiences: Vec::new(),
            jwks_uri: None,
            static_jwks: None,
            feed: None,
            poll_interval: None,
            leeway: DEFAULT_LEEWAY,
            staleness_bound: DEFAULT_STALENESS_BOUND,
            fail_mode: FailMode::Closed,
            refetch_cooldown: DEFAULT_REFETCH_COOLDOWN,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            realm: None,
            dpop_url: None,
            clock: Arc::new(SystemClock),
            http: None,
        }
    }
}

impl VerifierBuilder {
    /// The issuer URL, exactly as Sigil's `issuer` setting (and the tokens'
    /// `iss`) spell it. Required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// An audience this service accepts (the `aud` Sigil puts in tokens for
    /// the clients that call it). Required; call again to accept several.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Fetch keys from this URL instead of discovering `jwks_uri` from
    /// `{issuer}/.well-known/oauth-authorization-server`.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// Use this JWK Set and never fetch one: for tests of a resource
    /// service and for offline tools. The set never goes stale.
    pub fn static_jwks(mut self, jwks_json: impl Into<Vec<u8>>) -> Self {
        self.static_jwks = Some(jwks_json.into());
        self
    }

    /// Poll `{issuer}/oauth/revocations` with these confidential-client
    /// credentials (HTTP Basic), and refuse revoked tokens. Without it,
    /// revocations are not seen until the tokens expire.
    pub fn revocation_feed(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.feed = Some((client_id.into(), FeedAuth::Secret(client_secret.into())));
        self
    }

    /// Poll the revocation feed as a `private_key_jwt` client (RFC 7523):
    /// each poll is a POST with a new assertion signed with this private
    /// key (PEM: PKCS#8, or PKCS#1 for RSA), `alg` one of `ES256`, `EdDSA`,
    /// `RS256`, `PS256`. Sigil must know the public half (the client was
    /// created with `--jwks-file` or `--jwks-uri`); `kid` names it there.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let verifier = sigil_verify::Verifier::builder()
    ///     .issuer("https://sigil.example.com")
    ///     .audience("notes-api")
    ///     .revocation_feed_with_key("notes-api", "ES256", std::fs::read("feed-key.pem")?, Some("2026-12"))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn revocation_feed_with_key(
        mut self,
        client_id: impl Into<String>,
        alg: &str,
        private_key_pem: impl Into<Vec<u8>>,
        kid: Option<&str>,
    ) -> Self {
        let auth = FeedAuth::Pem {
            alg: alg.to_string(),
            pem: private_key_pem.into(),
            kid: kid.map(str::to_string),
        };
        self.feed = Some((client_id.into(), auth));
        self
    }

    /// How often to poll the revocation feed. Default: the `poll_interval`
    /// the feed advertises (1 s on a default Sigil). A revocation takes
    /// effect here within about this time.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// Clock-skew tolerance for `exp`, `nbf` and `iat`. Default 30 s, at
    /// most 5 minutes.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How long the revocation feed may go unanswered before the
    /// [`FailMode`] applies. Default 5 minutes, at most 7 days. The cached
    /// JWKS, too, is used past its `max-age` while Sigil is unreachable for
    /// as long as its `stale-if-error` allows, and never longer than this.
    pub fn staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness_bound = bound;
        self
    }

    /// What to do once the staleness bound has passed. Default
    /// [`FailMode::Closed`].
    pub fn fail_mode(mut self, mode: FailMode) -> Self {
        self.fail_mode = mode;
        self
    }

    /// Minimum time between two JWKS fetches triggered by unknown `kid`s.
    /// Default 1 s. Callers with an unknown `kid` wait for the next fetch
    /// rather than being refused, so a freshly rotated key is never
    /// rejected because of the cooldown.
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.refetch_cooldown = cooldown;
        self
    }

    /// How long a `kid` missing from a JWKS fetched after the token arrived
    /// is refused without another fetch. Default 30 s, at most 1 hour.
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_cache_ttl = ttl;
        self
    }

    /// Accepts DPoP-bound tokens (RFC 9449) with a proof, this service
    /// being reached at `public_url` (`https://notes.example.com`, or with
    /// a path prefix): a proof's `htu` must be it followed by the request's
    /// path. Without it, a bound token is refused (a bound token is never
    /// good as a bearer token).
    pub fn dpop(mut self, public_url: impl Into<String>) -> Self {
        self.dpop_url = Some(public_url.into());
        self
    }

    /// The `realm` of RFC 6750 challenges. Default: the first audience.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// The clock token times are checked against (default: the system
    /// clock). See [`Clock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The HTTP client for discovery, the JWKS and the feed (default: one
    /// with a 5 s connect and 10 s request timeout that follows no
    /// redirects).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the settings, discovers the JWKS, fetches it, reads the
    /// revocation feed once, and starts the background refresh and polling
    /// tasks (on the current Tokio runtime). Fails with a message naming
    /// the setting or URL at fault; nothing keeps running after a failure.
    pub async fn build(self) -> Result<Verifier, BuildError> {
        let settings = check(self)?;
        Verifier::start(settings).await
    }
}

impl Verifier {
    /// Starts configuring a verifier. See [`VerifierBuilder`].
    ///
    /// ```
    /// let builder = sigil_verify::Verifier::builder()
    ///     .issuer("https://sigil.example.com")
    ///     .audience("notes-api");
    /// # let _ = builder;
    /// ```
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }
}

/// Checks every setting and turns the builder into the [`Settings`] a
/// verifier starts from. Fetches nothing.
fn check(b: VerifierBuilder) -> Result<Settings, BuildError> {
    let config = |msg: &str| Err(BuildError::Config(msg.to_string()));
    let Some(issuer) = b.issuer else {
        return config("the issuer is required: .issuer(\"https://sigil.example.com\")");
    };
    check_issuer(&issuer)?;
    if b.audiences.is_empty() || b.audiences.iter().any(String::is_empty) {
        return config(
            "an audience is required (RFC 9068 §4): .audience(..) with the `aud` Sigil issues for this service",
        );
    }
    if b.static_jwks.is_some() && b.jwks_uri.is_some() {
        return config("static_jwks and jwks_uri exclude each other");
    }
    if b.leeway > Duration::from_secs(300) {
        return config("the leeway must be at most 5 minutes");
    }
    if b.poll_interval
        .is_some_and(|p| p < Duration::from_millis(50))
    {
        return config("the poll interval must be at least 50 ms");
    }
    if b.feed.as_ref().is_some_and(|(id, _)| id.is_empty()) {
        return config("the revocation feed needs a client id");
    }
    let poll = b.poll_interval.unwrap_or(DEFAULT_POLL);
    if b.feed.is_some() && b.staleness_bound <= poll {
        return config("the staleness bound must be longer than the poll interval");
    }
    if b.staleness_bound > Duration::from_secs(7 * 24 * 3600) {
        return config("the staleness bound must be at most 7 days");
    }
    if b.negative_cache_ttl > Duration::from_secs(3600) {
        return config("the negative cache ttl must be at most 1 hour");
    }
    if b.refetch_cooldown > Duration::from_secs(60) {
        return config("the refetch cooldown must be at most 60 s");
    }
    let http = match b.http {
        Some(client) => client,
        None => reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sigil-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BuildError::Config(format!("cannot build the HTTP client: {e}")))?,
    };
    let realm = b.realm.unwrap_or_else(|| b.audiences[0].clone());
    if let Some(url) = &b.dpop_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return config("dpop: the public URL must be an http(s) URL");
    }
    let feed = match b.feed {
        Some((id, auth)) => Some((id, auth.check().map_err(BuildError::Config)?)),
        None => None,
    };
    Ok(Settings {
        policy: Policy {
            issuer,
            audiences: b.audiences,
            leeway: b.leeway.as_secs() as i64,
        },
        jwks_uri: b.jwks_uri,
        static_jwks: b.static_jwks,
        feed,
        poll_interval: b.poll_interval,
        staleness_bound: b.staleness_bound,
        fail_mode: b.fail_mode,
        refetch_cooldown: b.refetch_cooldown,
        negative_cache_ttl: b.negative_cache_ttl,
        realm,
        dpop_url: b.dpop_url.map(|u| u.trim_end_matches('/').to_string()),
        clock: b.clock,
        http,
    })
}

/// Checks that `issuer` is an absolute http(s) URL without query or fragment.
pub(crate) fn check_issuer(issuer: &str) -> Result<(), BuildError> {
    let url = reqwest::Url::parse(issuer)
        .map_err(|e| BuildError::Config(format!("issuer {issuer:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(BuildError::Config(format!(
            "issuer {issuer:?} must be an http(s) URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BuildError::Config(format!(
            "issuer {issuer:?} must not have a query or fragment (RFC 8414 §2)"
        )));
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        tracing::warn!(%issuer, "the issuer is plain http: keys and revocations travel unauthenticated");
    }
    Ok(())
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
