//! The verifier: the cached key set, the revocation lists, and the two
//! background tasks that keep them current.
//!
//! The hot path ([`Verifier::verify_cached`]) takes two uncontended read
//! locks and never waits on I/O. Only a token whose `kid` is not cached
//! reaches the network, through one fetch shared by every caller waiting
//! for it (single flight) and spaced by the refetch cooldown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AGE, CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::claims::Claims;
use crate::error::{BuildError, RevokedBy, StaleSource, Staleness, VerifyError};
use crate::fail_mode::FailMode;
use crate::feed_auth::Credentials;
use crate::jwks::{self, Freshness, KeySet};
use crate::revocation::{Entry, Page, Revocations};
use crate::settings::{DEFAULT_POLL, Settings};
use crate::stats::Stats;
use crate::token;

/// Largest JWKS body read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Largest metadata or feed page read.
const MAX_FEED_BYTES: usize = 8 * 1024 * 1024;
/// Pages read in one poll before yielding to the next interval.
const MAX_PAGES_PER_POLL: usize = 100;
/// The background refresh never revalidates the JWKS more often than this.
const MIN_REFRESH: Duration = Duration::from_secs(1);
/// Longest wait between retries of a failing JWKS refresh.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Most `kid`s remembered as unknown at once.
const NEGATIVE_CACHE_CAPACITY: usize = 4096;

/// Verifies Sigil access tokens.
///
/// Cheap to clone (an `Arc`); clones share the key cache, the revocation
/// lists and the background tasks, which stop when the last clone is
/// dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use sigil_verify::Verifier;
///
/// let verifier = Verifier::builder()
///     .issuer("https://sigil.example.com")
///     .audience("notes-api")
///     .build()
///     .await?;
/// # let token = "";
/// let claims = verifier.verify(token).await?;
/// if claims.has_scope("notes:read") {
///     println!("{} may read notes", claims.sub);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.inner.settings;
        f.debug_struct("Verifier")
            .field("issuer", &s.policy.issuer)
            .field("audiences", &s.policy.audiences)
            .field("jwks_uri", &s.jwks_uri)
            .field("fail_mode", &s.fail_mode)
            .finish_non_exhaustive()
    }
}

struct Inner {
    settings: Settings,
    /// The key set in use; replaced whole.
    keys: RwLock<Arc<KeySet>>,
    /// Held for the length of every JWKS fetch: one at a time, and callers
    /// that queue behind a fetch see its result instead of fetching again.
    fetch: tokio::sync::Mutex<FetchState>,
    /// Wakes the refresh task when a fetch outside it changed the set.
    keys_changed: Arc<Notify>,
    /// `kid`s that a JWKS fetched after their token arrived did not list,
    /// with when to forget them.
    unknown_kids: Mutex<HashMap<String, Instant>>,
    revocations: RwLock<Revocations>,
    feed: Option<Feed>,
    /// Set while the fail mode applies, so the change is logged once.
    stale_logged: AtomicBool,
    counters: Counters,
    /// The background tasks, stopped when the last clone is dropped.
    tasks: Mutex<Vec<AbortHandle>>,
    /// DPoP proofs seen (their `jti`), each accepted once.
    proofs: crate::dpop::SeenProofs,
}

struct FetchState {
    /// When the latest JWKS fetch started.
    last_started: Option<Instant>,
    /// When the latest successful JWKS fetch started: only a set actually
    /// received proves that a `kid` does not exist.
    last_ok_started: Option<Instant>,
    /// Consecutive failed fetches, for the refresh task's backoff.
    failures: u32,
}

/// The revocation feed's state.
struct Feed {
    url: String,
    client_id: String,
    credentials: Credentials,
    /// The cursor of the last page applied; also serialises polls.
    cursor: tokio::sync::Mutex<String>,
    /// The interval the feed advertises, in milliseconds (0: none yet).
    advertised_ms: AtomicU64,
    /// When the last successful poll started, as milliseconds after `epoch`.
    last_ok_ms: AtomicU64,
    epoch: Instant,
}

impl Feed {
    fn since_ok(&self, now: Instant) -> Duration {
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        Duration::from_millis(now_ms.saturating_sub(self.last_ok_ms.load(Ordering::Acquire)))
    }

    fn mark_ok(&self, started: Instant) {
        let ms = started.saturating_duration_since(self.epoch).as_millis() as u64;
        self.last_ok_ms.fetch_max(ms, Ordering::AcqRel);
    }
}

#[derive(Default)]
struct Counters {
    jwks_fetches: AtomicU64,
    jwks_not_modified: AtomicU64,
    jwks_errors: AtomicU64,
    unknown_kid_fetches: AtomicU64,
    unknown_kid_rejections: AtomicU64,
    feed_polls: AtomicU64,
    feed_errors: AtomicU64,
    fail_open_accepts: AtomicU64,
    fail_closed_rejections: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// How a check on the cached state ended.
enum Failure {
    Error(VerifyError),
    /// The `kid` is not in the cached set: a fetch may help.
    UnknownKid,
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Self {
        Failure::Error(e)
    }
}

impl Verifier {
    pub(crate) async fn start(mut settings: Settings) -> Result<Verifier, BuildError> {
        let static_jwks = settings.static_jwks.take();
        if static_jwks.is_none() && settings.jwks_uri.is_none() {
            settings.jwks_uri = Some(discover(&settings).await?);
        }
        let feed = settings.feed.take().map(|(client_id, credentials)| Feed {
            url: format!("{}/oauth/revocations", settings.base_url()),
            client_id,
            credentials,
            cursor: tokio::sync::Mutex::new("0".to_string()),
            advertised_ms: AtomicU64::new(0),
            last_ok_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let placeholder = KeySet {
            keys: Arc::new(HashMap::new()),
            etag: None,
            confirmed_at: Instant::now(),
            max_age: Duration::ZERO,
            usable_until: None,
        };
        let inner = Arc::new(Inner {
            settings,
            keys: RwLock::new(Arc::new(placeholder)),
            fetch: tokio::sync::Mutex::new(FetchState {
                last_started: None,
                last_ok_started: None,
                failures: 0,
            }),
            keys_changed: Arc::new(Notify::new()),
            unknown_kids: Mutex::new(HashMap::new()),
            revocations: RwLock::new(Revocations::default()),
            feed,
            stale_logged: AtomicBool::new(false),
            counters: Counters::default(),
            tasks: Mutex::new(Vec::new()),
            proofs: crate::dpop::SeenProofs::default(),
        });

        match static_jwks {
            Some(body) => {
                let (keys, skipped) = jwks::parse(&body).map_err(|reason| BuildError::Jwks {
                    url: "static_jwks".into(),
                    reason,
                })?;
                log_key_set(keys.len(), skipped);
                inner.store_keys(KeySet {
                    keys: Arc::new(keys),
                    etag: None,
                    confirmed_at: Instant::now(),
                    max_age: Duration::ZERO,
                    usable_until: None,
                });
            }
            None => {
                let mut state = inner.fetch.lock().await;
                inner
                    .fetch_jwks(&mut state)
                    .await
                    .map_err(|reason| BuildError::Jwks {
                        url: inner.settings.jwks_uri.clone().unwrap_or_default(),
                        reason,
                    })?;
            }
        }
        if let Some(feed) = &inner.feed {
            inner
                .poll_feed()
                .await
                .map_err(|reason| BuildError::RevocationFeed {
                    url: feed.url.clone(),
                    reason,
                })?;
        }

        let weak = Arc::downgrade(&inner);
        let mut tasks = Vec::new();
        if inner.settings.jwks_uri.is_some() {
            tasks.push(tokio::spawn(refresh_jwks(weak.clone())).abort_handle());
        }
        if inner.feed.is_some() {
            tasks.push(tokio::spawn(poll_revocations(weak)).abort_handle());
        }
        *inner.tasks.lock().unwrap_or_else(PoisonError::into_inner) = tasks;
        Ok(Verifier { inner })
    }

    /// Verifies `token` (the compact JWS, without `Bearer `) and returns its
    /// claims.
    ///
    /// With the signing key cached (the normal case: Sigil publishes keys
    /// well before they sign) this does no I/O. A `kid` not in the cache
    /// triggers one JWKS fetch, shared by every concurrent caller and spaced
    /// by the refetch cooldown; a `kid` a fresh fetch did not list is then
    /// refused without fetching for the negative-cache TTL.
    ///
    /// ```no_run
    /// # async fn run(verifier: sigil_verify::Verifier, token: &str) {
    /// use sigil_verify::VerifyError;
    ///
    /// match verifier.verify(token).await {
    ///     Ok(claims) => println!("hello {}", claims.sub),
    ///     Err(VerifyError::Unavailable(why)) => eprintln!("503: {why}"),
    ///     Err(e) => eprintln!("401: {e}"),
    /// }
    /// # }
    /// ```
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.verify_any(token).await?;
        // RFC 9449 §7.2: a bound token is no bearer token.
        if claims.cnf.is_some() {
            return Err(VerifyError::DpopRequired);
        }
        Ok(claims)
    }

    /// Verifies a DPoP-bound token presented with the `DPoP` scheme
    /// (RFC 9449 §7): the token as [`Verifier::verify`] does, then `proof`
    /// (the request's `DPoP` header): signed by the token's key (`cnf.jkt`),
    /// for this request (`method`, and `path` under the public URL given
    /// to [`VerifierBuilder::dpop`](crate::VerifierBuilder::dpop)), for this
    /// token (`ath`), at most 60 s old, never seen before.
    ///
    /// ```no_run
    /// # async fn run(verifier: sigil_verify::Verifier, token: &str, proof: &str) {
    /// let claims = verifier.verify_dpop(token, proof, "GET", "/notes").await;
    /// # }
    /// ```
    pub async fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        path: &str,
    ) -> Result<Claims, VerifyError> {
        let Some(base) = &self.inner.settings.dpop_url else {
            return Err(VerifyError::InvalidDpopProof(
                "this service does not accept DPoP-bound tokens".into(),
            ));
        };
        let claims = self.verify_any(token).await?;
        let Some(cnf) = &claims.cnf else {
            return Err(VerifyError::NotDpopBound);
        };
        let now = self.inner.settings.clock.now();
        let leeway = self.inner.settings.policy.leeway;
        let htu = format!("{base}{path}");
        let (id, iat) = crate::dpop::check(proof, method, &htu, token, &cnf.jkt, now, leeway)
            .map_err(VerifyError::InvalidDpopProof)?;
        let until = iat + crate::dpop::PROOF_MAX_AGE + leeway;
        if !self.inner.proofs.first_use(id, until, now) {
            return Err(VerifyError::InvalidDpopProof(
                "the proof was used before".into(),
            ));
        }
        Ok(claims)
    }

    /// Whether this verifier accepts DPoP-bound tokens.
    pub fn accepts_dpop(&self) -> bool {
        self.inner.settings.dpop_url.is_some()
    }

    async fn verify_any(&self, token: &str) -> Result<Claims, VerifyError> {
        let arrived = Instant::now();
        match self.inner.check(token) {
            Ok(claims) => return Ok(claims),
            Err(Failure::Error(e)) => return Err(e),
            Err(Failure::UnknownKid) => {}
        }
        self.inner.learn_kid(token, arrived).await?;
        self.inner.check(token).map_err(|failure| match failure {
            Failure::Error(e) => e,
            Failure::UnknownKid => VerifyError::UnknownKey,
        })
    }

    /// Verifies `token` with the cached keys only, never waiting on I/O: for
    /// synchronous contexts such as a gRPC interceptor. A token signed by a
    /// key not yet cached gets [`VerifyError::UnknownKey`]; the background
    /// refresh normally caches keys before they sign.
    ///
    /// ```no_run
    /// # fn run(verifier: &sigil_verify::Verifier, token: &str) {
    /// let ok = verifier.verify_cached(token).is_ok();
    /// # }
    /// ```
    pub fn verify_cached(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.inner.check(token).map_err(|failure| match failure {
            Failure::Error(e) => e,
            Failure::UnknownKid => VerifyError::UnknownKey,
        })?;
        if claims.cnf.is_some() {
            return Err(VerifyError::DpopRequired);
        }
        Ok(claims)
    }

    /// Counters and ages that show the verifier's health, for a metrics
    /// endpoint or a health check.
    ///
    /// ```no_run
    /// # fn run(verifier: &sigil_verify::Verifier) {
    /// let stats = verifier.stats();
    /// if stats.stale {
    ///     eprintln!("Sigil unreachable; failing {:?}", stats.fail_mode);
    /// }
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.settings.policy.issuer
    }

    /// The `realm` of RFC 6750 challenges.
    pub fn realm(&self) -> &str {
        &self.inner.settings.realm
    }

    /// The configured fail mode.
    pub fn fail_mode(&self) -> FailMode {
        self.inner.settings.fail_mode
    }

    /// Polls the revocation feed now, instead of waiting for the next
    /// interval. Returns the number of entries applied. Polls are
    /// serialised with the background poller.
    ///
    /// ```no_run
    /// # async fn run(verifier: sigil_verify::Verifier) {
    /// let applied = verifier.poll_revocations().await.unwrap_or(0);
    /// # }
    /// ```
    pub async fn poll_revocations(&self) -> Result<usize, String> {
        self.inner.poll_feed().await
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Inner {
    fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn store_keys(&self, set: KeySet) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
    }

    /// Drops emergency-removed keys from the cached set at once, so that
    /// they stop verifying even if the JWKS cannot be re-fetched and the
    /// feed's entry for them is later pruned.
    fn forget_keys(&self, kids: &[String]) {
        let mut slot = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if !kids.iter().any(|kid| slot.keys.contains_key(kid)) {
            return;
        }
        let mut keys = (*slot.keys).clone();
        for kid in kids {
            if keys.remove(kid).is_some() {
                tracing::warn!(%kid, "the revocation feed removed a signing key; it no longer verifies");
            }
        }
        *slot = Arc::new(KeySet {
            keys: Arc::new(keys),
            // The next fetch must be a full one.
            etag: None,
            confirmed_at: slot.confirmed_at,
            max_age: slot.max_age,
            usable_until: slot.usable_until,
        });
    }

    /// Every check against the cached state (RFC 9068 §4, RFC 8725 §3).
    fn check(&self, token: &str) -> Result<Claims, Failure> {
        let parts = token::split(token)?;
        let mut header_buf = token::new_header_buf();
        let header = token::parse_header(parts.header, &mut header_buf)?;
        let keys = self.keys();
        let Some(key) = keys.keys.get(header.kid.as_ref()) else {
            let removed = self
                .revocations
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .key_revoked(&header.kid);
            if removed {
                return Err(VerifyError::Revoked(RevokedBy::Key).into());
            }
            return Err(Failure::UnknownKid);
        };
        if key.alg != header.alg {
            return Err(VerifyError::AlgorithmMismatch.into());
        }
        let valid = jsonwebtoken::crypto::verify(
            parts.signature,
            parts.signing_input.as_bytes(),
            &key.decoding,
            key.alg.jsonwebtoken(),
        )
        .unwrap_or(false);
        if !valid {
            return Err(VerifyError::BadSignature.into());
        }
        let claims = token::parse_claims(parts.payload)?;
        token::check_claims(&claims, &self.settings.policy, self.settings.clock.now())?;
        let revoked = self
            .revocations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .check(&claims, &header.kid);
        if let Some(by) = revoked {
            return Err(VerifyError::Revoked(by).into());
        }
        self.apply_fail_mode(&keys)?;
        Ok(claims)
    }

    /// Refuses (fail closed) or counts (fail open) when Sigil has been out
    /// of reach for too long.
    fn apply_fail_mode(&self, keys: &KeySet) -> Result<(), VerifyError> {
        let Some(stale) = self.staleness(keys, Instant::now()) else {
            if self.stale_logged.load(Ordering::Relaxed) {
                self.stale_logged.store(false, Ordering::Relaxed);
            }
            return Ok(());
        };
        if !self.stale_logged.swap(true, Ordering::Relaxed) {
            tracing::error!(%stale, "Sigil is out of reach beyond the staleness bound");
        }
        match stale.fail_mode {
            FailMode::Closed => {
                bump(&self.counters.fail_closed_rejections);
                Err(VerifyError::Unavailable(stale))
            }
            FailMode::Open => {
                bump(&self.counters.fail_open_accepts);
                Ok(())
            }
        }
    }

    fn staleness(&self, keys: &KeySet, now: Instant) -> Option<Staleness> {
        let fail_mode = self.settings.fail_mode;
        if let Some(feed) = &self.feed {
            let since = feed.since_ok(now);
            if since > self.settings.staleness_bound {
                return Some(Staleness {
                    source: StaleSource::RevocationFeed,
                    since,
                    fail_mode,
                });
            }
        }
        match keys.usable_until {
            Some(until) if now > until => Some(Staleness {
                source: StaleSource::Jwks,
                since: now.saturating_duration_since(keys.confirmed_at),
                fail_mode,
            }),
            _ => None,
        }
    }

    /// Tries to learn the `kid` of `token` from a fresh JWKS. Succeeds when
    /// the key is now cached.
    async fn learn_kid(&self, token: &str, arrived: Instant) -> Result<(), VerifyError> {
        let parts = token::split(token)?;
        let mut header_buf = token::new_header_buf();
        let kid = token::parse_header(parts.header, &mut header_buf)?
            .kid
            .into_owned();
        // Claims that would fail anyway are not worth a fetch; an attacker
        // minting kids must at least copy a plausible payload.
        let plausible = token::parse_claims(parts.payload).is_ok_and(|claims| {
            token::check_claims(&claims, &self.settings.policy, self.settings.clock.now()).is_ok()
        });
        if !plausible || self.settings.jwks_uri.is_none() || self.known_unknown(&kid) {
            bump(&self.counters.unknown_kid_rejections);
            return Err(VerifyError::UnknownKey);
        }

        let mut state = self.fetch.lock().await;
        if self.keys().keys.contains_key(&kid) {
            return Ok(()); // a fetch we queued behind brought it
        }
        // A fetch that started after this token arrived saw every key that
        // could have signed it.
        if state
            .last_ok_started
            .is_some_and(|started| started >= arrived)
        {
            self.remember_unknown(kid);
            bump(&self.counters.unknown_kid_rejections);
            return Err(VerifyError::UnknownKey);
        }
        // Otherwise wait out the cooldown and fetch: the caller waits at most
        // the cooldown, and is never refused because of it.
        if let Some(started) = state.last_started {
            tokio::time::sleep_until(started + self.settings.refetch_cooldown).await;
        }
        bump(&self.counters.unknown_kid_fetches);
        let fetched = self.fetch_jwks(&mut state).await;
        drop(state);
        if self.keys().keys.contains_key(&kid) {
            return Ok(());
        }
        if fetched.is_ok() {
            self.remember_unknown(kid);
        }
        bump(&self.counters.unknown_kid_rejections);
        Err(VerifyError::UnknownKey)
    }

    fn known_unknown(&self, kid: &str) -> bool {
        let cache = self
            .unknown_kids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.get(kid).is_some_and(|until| *until > Instant::now())
    }

    fn remember_unknown(&self, kid: String) {
        let mut cache = self
            .unknown_kids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if cache.len() >= NEGATIVE_CACHE_CAPACITY {
            cache.retain(|_, until| *until > now);
        }
        // Still full of live entries: the cooldown alone bounds the fetches.
        if cache.len() < NEGATIVE_CACHE_CAPACITY {
            cache.insert(kid, now + self.settings.negative_cache_ttl);
        }
    }

    /// Fetches the JWKS (conditionally, with the ETag) and installs it. The
    /// caller holds the fetch lock.
    async fn fetch_jwks(&self, state: &mut FetchState) -> Result<(), String> {
        let result = self.fetch_jwks_once(state).await;
        match &result {
            Ok(()) => {
                state.last_ok_started = state.last_started;
                if state.failures > 0 {
                    tracing::info!("the JWKS is reachable again");
                }
                state.failures = 0;
                self.keys_changed.notify_waiters();
            }
            Err(reason) => {
                bump(&self.counters.jwks_errors);
                if state.failures == 0 {
                    tracing::warn!(%reason, "fetching the JWKS failed; keeping the cached keys");
                }
                state.failures = state.failures.saturating_add(1);
            }
        }
        result
    }

    async fn fetch_jwks_once(&self, state: &mut FetchState) -> Result<(), String> {
        let Some(url) = self.settings.jwks_uri.as_deref() else {
            return Ok(());
        };
        let started = Instant::now();
        state.last_started = Some(started);
        bump(&self.counters.jwks_fetches);
        let current = self.keys();
        let mut request = self
            .settings
            .http
            .get(url)
            .header(ACCEPT, "application/jwk-set+json, application/json");
        if let Some(etag) = &current.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = request.send().await.map_err(describe)?;
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
        };
        let fresh = jwks::freshness(header(CACHE_CONTROL), header(AGE));
        let etag = header(ETAG).map(str::to_string);
        let keys = if status == StatusCode::NOT_MODIFIED && current.etag.is_some() {
            bump(&self.counters.jwks_not_modified);
            Arc::clone(&current.keys)
        } else if status == StatusCode::OK {
            let body = read_limited(response, MAX_JWKS_BYTES).await?;
            let (keys, skipped) = jwks::parse(&body)?;
            log_key_set(keys.len(), skipped);
            Arc::new(keys)
        } else {
            return Err(format!("HTTP {status}"));
        };
        let etag = etag.or_else(|| current.etag.clone().filter(|_| status.as_u16() == 304));
        self.store_keys(self.key_set(keys, etag, started, fresh));
        Ok(())
    }

    fn key_set(
        &self,
        keys: Arc<HashMap<String, jwks::Key>>,
        etag: Option<String>,
        confirmed_at: Instant,
        fresh: Freshness,
    ) -> KeySet {
        // Past max-age the set may still be used while Sigil errs, for as
        // long as its stale-if-error allows (RFC 5861) but never longer than
        // the configured staleness bound: then the fail mode applies.
        let bound = self.settings.staleness_bound;
        let allowance = fresh.stale_if_error.map_or(bound, |s| s.min(bound));
        KeySet {
            keys,
            etag,
            confirmed_at,
            max_age: fresh.max_age,
            usable_until: Some(confirmed_at + fresh.max_age + allowance),
        }
    }

    /// Reads the revocation feed from the cursor until it has no more, and
    /// applies what it says.
    async fn poll_feed(&self) -> Result<usize, String> {
        let Some(feed) = &self.feed else {
            return Ok(0);
        };
        let mut cursor = feed.cursor.lock().await;
        let started = Instant::now();
        bump(&self.counters.feed_polls);
        let result = self.read_feed(feed, &mut cursor).await;
        match &result {
            Ok(_) => {
                if feed.since_ok(started) > self.settings.staleness_bound {
                    tracing::info!("the revocation feed is reachable again");
                }
                feed.mark_ok(started);
            }
            Err(reason) => {
                bump(&self.counters.feed_errors);
                tracing::warn!(%reason, "polling the revocation feed failed");
            }
        }
        result
    }

    async fn read_feed(&self, feed: &Feed, cursor: &mut String) -> Result<usize, String> {
        let mut applied = 0;
        for _ in 0..MAX_PAGES_PER_POLL {
            let now = self.settings.clock.now();
            let response = feed
                .credentials
                .request(&self.settings.http, &feed.url, &feed.client_id, cursor, now)?
                .header(ACCEPT, "application/json")
                .send()
                .await
                .map_err(describe)?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                return Err(format!(
                    "Sigil refused the credentials of client {:?} (401): {}, and that the \
                     client is confidential",
                    feed.client_id,
                    feed.credentials.hint()
                ));
            }
            if status != StatusCode::OK {
                return Err(format!("HTTP {status}"));
            }
            let body = read_limited(response, MAX_FEED_BYTES).await?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| format!("not a revocation feed page: {e}"))?;
            let now = self.settings.clock.now();
            let mut removed_keys = Vec::new();
            {
                let mut list = self
                    .revocations
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                applied += page.entries.len();
                for entry in page.entries {
                    if let Entry::Key { kid, .. } = &entry {
                        removed_keys.push(kid.clone());
                    }
                    list.apply(entry);
                }
                list.prune(now, self.settings.policy.leeway);
            }
            self.forget_keys(&removed_keys);
            if let Some(seconds) = page.poll_interval {
                feed.advertised_ms
                    .store(seconds.saturating_mul(1000), Ordering::Relaxed);
            }
            *cursor = page.cursor;
            if !page.more {
                break;
            }
        }
        Ok(applied)
    }

    fn poll_interval(&self) -> Duration {
        if let Some(interval) = self.settings.poll_interval {
            return interval;
        }
        match self
            .feed
            .as_ref()
            .map(|f| f.advertised_ms.load(Ordering::Relaxed))
        {
            // What the feed advertises, but often enough that a poll or
            // two may fail before the staleness bound passes.
            Some(ms) if ms > 0 => Duration::from_millis(ms.max(1000))
                .min(self.settings.staleness_bound / 3)
                .max(Duration::from_millis(50)),
            _ => DEFAULT_POLL,
        }
    }

    fn stats(&self) -> Stats {
        let now = Instant::now();
        let keys = self.keys();
        let stale = self.staleness(&keys, now);
        let c = &self.counters;
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            fail_mode: self.settings.fail_mode,
            stale: stale.is_some(),
            stale_source: stale.map(|s| match s.source {
                StaleSource::RevocationFeed => "revocation_feed",
                StaleSource::Jwks => "jwks",
            }),
            keys: keys.keys.len(),
            jwks_age_seconds: self.settings.jwks_uri.as_ref().map(|_| {
                now.saturating_duration_since(keys.confirmed_at)
                    .as_secs_f64()
            }),
            jwks_fetches: read(&c.jwks_fetches),
            jwks_not_modified: read(&c.jwks_not_modified),
            jwks_errors: read(&c.jwks_errors),
            unknown_kid_fetches: read(&c.unknown_kid_fetches),
            unknown_kid_rejections: read(&c.unknown_kid_rejections),
            revocation_feed: self.feed.is_some(),
            feed_age_seconds: self.feed.as_ref().map(|f| f.since_ok(now).as_secs_f64()),
            feed_polls: read(&c.feed_polls),
            feed_errors: read(&c.feed_errors),
            revocations: self
                .revocations
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            fail_open_accepts: read(&c.fail_open_accepts),
            fail_closed_rejections: read(&c.fail_closed_rejections),
        }
    }
}

/// Keeps the JWKS fresh: revalidates a little before `max-age` runs out,
/// and retries failures with backoff (the cached keys stay in use).
async fn refresh_jwks(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        // Only a Weak is held while sleeping, so dropping the last Verifier
        // drops the state (and aborts this task).
        let changed_signal = Arc::clone(&inner.keys_changed);
        let changed = changed_signal.notified();
        let due = {
            let state = inner.fetch.lock().await;
            match (state.failures, state.last_started) {
                (0, _) | (_, None) => inner.keys().refresh_due(MIN_REFRESH),
                (n, Some(started)) => {
                    started + (Duration::from_secs(1) * 2u32.pow(n.min(5))).min(MAX_BACKOFF)
                }
            }
        };
        drop(inner);
        let elapsed = tokio::select! {
            _ = tokio::time::sleep_until(due) => true,
            _ = changed => false,
        };
        if !elapsed {
            continue; // a fetch elsewhere replaced the set: recompute
        }
        let Some(inner) = weak.upgrade() else { return };
        let mut state = inner.fetch.lock().await;
        // Another fetch may have revalidated the set meanwhile.
        if state.failures > 0 || inner.keys().refresh_due(MIN_REFRESH) <= Instant::now() {
            let _ = inner.fetch_jwks(&mut state).await;
        }
    }
}

/// Polls the revocation feed at the configured (or advertised) interval.
async fn poll_revocations(weak: Weak<Inner>) {
    loop {
        let interval = match weak.upgrade() {
            Some(inner) => inner.poll_interval(),
            None => return,
        };
        tokio::time::sleep(interval).await;
        let Some(inner) = weak.upgrade() else { return };
        let _ = inner.poll_feed().await;
    }
}

/// Finds `jwks_uri` in the issuer's RFC 8414 metadata, whose `issuer` must
/// be the configured issuer exactly (RFC 8414 §3.3).
async fn discover(settings: &Settings) -> Result<String, BuildError> {
    let url = format!(
        "{}/.well-known/oauth-authorization-server",
        settings.base_url()
    );
    let fail = |reason: String| BuildError::Discovery {
        url: url.clone(),
        reason,
    };
    let response = settings
        .http
        .get(&url)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| fail(describe(e)))?;
    if response.status() != StatusCode::OK {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    let body = read_limited(response, MAX_FEED_BYTES)
        .await
        .map_err(&fail)?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| fail(format!("not JSON: {e}")))?;
    let issuer = metadata["issuer"].as_str().unwrap_or_default();
    if issuer != settings.policy.issuer {
        return Err(fail(format!(
            "the metadata names issuer {issuer:?}, not {:?}: configure the issuer exactly as Sigil's `issuer` setting",
            settings.policy.issuer
        )));
    }
    let jwks_uri = metadata["jwks_uri"]
        .as_str()
        .ok_or_else(|| fail("the metadata has no jwks_uri".into()))?;
    reqwest::Url::parse(jwks_uri).map_err(|e| fail(format!("jwks_uri is not a URL: {e}")))?;
    Ok(jwks_uri.to_string())
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(format!("the response is larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > limit {
            return Err(format!("the response is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error with its cause (reqwest's own message is terse).
fn describe(e: reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn log_key_set(usable: usize, skipped: usize) {
    if usable == 0 {
        tracing::warn!(skipped, "the JWKS has no key this verifier can use");
    } else {
        tracing::debug!(usable, skipped, "installed a JWKS");
    }
}
