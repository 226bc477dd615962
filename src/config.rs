//! One typed configuration: defaults < TOML file < `SIGIL_*` environment.
//!
//! Unknown keys and bad values stop start-up with a message naming the key.
//! Nested keys come from the environment with `__` as the separator, e.g.
//! `SIGIL_ARGON2__MEMORY_KIB=65536`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::Deserialize;

pub use crate::browser::{Branding, SignInConfig};
pub use crate::dpop::DpopConfig;
use crate::keys::Alg;
pub use crate::mfa::MfaConfig;
pub use crate::passwords::{Argon2Config, PasswordPolicy};
pub use crate::throttle::ThrottleConfig;

/// Environment variables with the `SIGIL_` prefix that are not config keys
/// (`SIGIL_TEST_*` belong to the test suite).
const NOT_CONFIG_KEYS: &[&str] = &["config", "log_format"];
const NOT_CONFIG_PREFIX: &str = "test_";

/// How much longer than `jwks_max_age` a new key must be published before
/// it signs (see `Config::validate`).
pub const PENDING_LEAD_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP listener binds.
    pub listen: SocketAddr,
    /// The `iss` of every token and the base of every advertised endpoint.
    /// Defaults to `http://<listen>`.
    pub issuer: String,
    /// `sqlite://path` (embedded default) or `postgres://…`.
    pub database_url: String,
    /// Connection pool size for Postgres.
    pub database_max_connections: u32,
    /// Postgres `statement_timeout` for Sigil's connections: a query stuck
    /// behind a lock or an overloaded server is cancelled (answered 503)
    /// instead of holding a pooled connection indefinitely. `0s` disables.
    #[serde(with = "humantime_serde")]
    pub database_statement_timeout: Duration,
    /// Postgres: the longest a request waits for its 503 when the database
    /// goes away. A request that has waited this long for a connection has
    /// the health probe check the server at once; a refused or reset
    /// connection (or a server shutting down) closes the gate, and every
    /// waiting request answers 503 then. (A server that does not answer at
    /// all is taken as gone after two probes of 2 s each.)
    #[serde(with = "humantime_serde")]
    pub database_outage_wait: Duration,
    /// A second listener for `/metrics` (and health), kept off the public
    /// one; when unset, `/metrics` is served on `listen`.
    pub admin_listen: Option<SocketAddr>,
    /// PEM certificate chain and private key: with both set, the public
    /// listener speaks HTTPS (rustls).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Proxies (IPs or CIDR ranges) whose `X-Forwarded-For` is believed when
    /// working out a client's address; nobody's by default.
    pub trusted_proxies: Vec<String>,
    /// Where the key-encryption key lives (`kek` inside this folder).
    pub keys_dir: PathBuf,
    /// The key-encryption key itself (base64url, 32 bytes), instead of the file.
    pub kek: Option<SecretString>,
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    /// Signing algorithm for clients that do not choose one.
    pub default_alg: Alg,
    /// `aud` for clients that do not set one; defaults to the issuer.
    pub default_audience: Option<String>,
    /// Whether `POST /users` is open; when closed only the CLI creates users.
    pub registration: bool,
    /// RSA modulus size for generated keys: 2048, 3072 or 4096.
    pub rsa_bits: usize,
    /// A refresh token unused for this long expires.
    #[serde(with = "humantime_serde")]
    pub refresh_idle_ttl: Duration,
    /// Every refresh token of a login expires this long after the login.
    #[serde(with = "humantime_serde")]
    pub refresh_absolute_ttl: Duration,
    /// A spent refresh token presented again within this window is treated
    /// as a retry (same successor) rather than as reuse (family revoked).
    #[serde(with = "humantime_serde")]
    pub refresh_reuse_grace: Duration,
    /// Most deny-list entries held in memory per node.
    pub revocation_cache_capacity: u64,
    /// How often each node re-reads the deny-list (a backstop for
    /// Postgres notifications).
    #[serde(with = "humantime_serde")]
    pub revocation_poll_interval: Duration,
    /// How long a key signs before the next one takes over (0 disables
    /// automatic rotation).
    #[serde(with = "humantime_serde")]
    pub key_rotation_interval: Duration,
    /// How long a new key is published before it signs; at least
    /// `jwks_max_age`, so every verifier that honours the cache headers
    /// already holds it when it starts signing.
    #[serde(with = "humantime_serde")]
    pub key_pending_lead: Duration,
    /// Extra time a retired key stays published after the last token it
    /// signed has expired.
    #[serde(with = "humantime_serde")]
    pub key_retire_grace: Duration,
    /// Upper bound of the JWKS `Cache-Control: max-age`.
    #[serde(with = "humantime_serde")]
    pub jwks_max_age: Duration,
    /// How often each node deletes rows that can no longer matter (expired
    /// revocations, dead refresh sessions, old throttle counters and audit
    /// events); the first pass runs at start.
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
    /// Audit events older than this are deleted (`0s`: kept forever).
    #[serde(with = "humantime_serde")]
    pub audit_retention: Duration,
    pub password: PasswordPolicy,
    pub argon2: Argon2Config,
    pub throttle: ThrottleConfig,
    pub http: HttpConfig,
    /// Whether the resource owner password grant works at all. RFC 9700
    /// §2.4 says it MUST NOT be used; it stays for the clients that have
    /// it until they move to the authorization code flow.
    pub password_grant: bool,
    /// Browser sessions (`[sign_in]`).
    pub sign_in: SignInConfig,
    /// The hosted pages' look (`[branding]`).
    pub branding: Branding,
    /// Second factors and passkeys (`[mfa]`).
    pub mfa: MfaConfig,
    /// Sender-constrained tokens (`[dpop]`).
    pub dpop: DpopConfig,
    /// Set when `issuer` was derived from `listen`, so that `serve` can
    /// correct it to the address actually bound (`listen` port 0).
    #[serde(skip)]
    pub issuer_from_listen: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: String::new(),
            database_url: "sqlite://sigil.db".into(),
            database_max_connections: 10,
            database_statement_timeout: Duration::from_secs(10),
            database_outage_wait: Duration::from_millis(100),
            keys_dir: PathBuf::from("keys"),
            admin_listen: None,
            tls_cert: None,
            tls_key: None,
            trusted_proxies: Vec::new(),
            kek: None,
            access_token_ttl: Duration::from_secs(15 * 60),
            default_alg: Alg::RS256,
            default_audience: None,
            registration: true,
            rsa_bits: 2048,
            refresh_idle_ttl: Duration::from_secs(14 * 24 * 3600),
            refresh_absolute_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_reuse_grace: Duration::from_secs(5),
            revocation_cache_capacity: 200_000,
            revocation_poll_interval: Duration::from_secs(1),
            jwks_max_age: Duration::from_secs(15 * 60),
            key_rotation_interval: Duration::from_secs(30 * 24 * 3600),
            key_pending_lead: Duration::from_secs(3600),
            key_retire_grace: Duration::from_secs(5 * 60),
            prune_interval: Duration::from_secs(10 * 60),
            audit_retention: Duration::from_secs(90 * 24 * 3600),
            password: PasswordPolicy::default(),
            argon2: Argon2Config::default(),
            throttle: ThrottleConfig::default(),
            http: HttpConfig::default(),
            password_grant: true,
            sign_in: SignInConfig::default(),
            branding: Branding::default(),
            mfa: MfaConfig::default(),
            dpop: DpopConfig::default(),
            issuer_from_listen: false,
        }
    }
}

/// Limits on each HTTP request, against slow and oversized ones (request
/// bodies are limited to 16 KiB and header fields to 100 in code).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A request not answered this long after its headers arrived gets a
    /// 503 (this covers a body that trickles in).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// A connection that has not sent a complete request line and headers
    /// this long after it opened, or after its previous response (an idle
    /// keep-alive connection), is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// The longest request line plus headers, in bytes; longer is a 431.
    pub max_header_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Parse(String),
    #[error("configuration: `{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
}

/// A configuration that passed [`Config::validated`]: what start-up
/// ([`crate::Sigil::open`]) and the commands take, so that nothing runs on
/// settings nobody checked. Reads as a [`Config`]; to change a value, take
/// the config out ([`ValidConfig::into_inner`]) and validate it again.
#[derive(Debug, Clone)]
pub struct ValidConfig(Config);

impl ValidConfig {
    pub fn into_inner(self) -> Config {
        self.0
    }
}

impl std::ops::Deref for ValidConfig {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.0
    }
}

impl Config {
    /// Reads defaults, then `file` (if any), then `SIGIL_*` variables, and validates.
    pub fn load(file: Option<&Path>) -> Result<ValidConfig, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Parse(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = Env::prefixed("SIGIL_").split("__").filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            !NOT_CONFIG_KEYS.contains(&key.as_str()) && !key.starts_with(NOT_CONFIG_PREFIX)
        });
        figment = figment.merge(env);
        Self::from_figment(figment)
    }

    /// Builds a config from a TOML string alone (tests, examples).
    pub fn from_toml(text: &str) -> Result<ValidConfig, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::string(text)))
    }

    fn from_figment(figment: Figment) -> Result<ValidConfig, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validated()
    }

    /// Checks every value and fills the ones derived from others.
    pub fn validated(mut self) -> Result<ValidConfig, ConfigError> {
        if self.issuer.is_empty() || self.issuer_from_listen {
            self.issuer = format!("http://{}", self.listen);
            self.issuer_from_listen = true;
        }
        let issuer_ok = (self.issuer.starts_with("https://") || self.issuer.starts_with("http://"))
            && !self.issuer.contains(['?', '#', ' '])
            && self
                .issuer
                .split("://")
                .nth(1)
                .is_some_and(|rest| !rest.is_empty());
        if !issuer_ok {
            return invalid("issuer", "must be an http(s) URL without query or fragment");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("tls_cert", "tls_cert and tls_key must be set together");
        }
        if let Err(bad) = self.proxy_networks() {
            return invalid(
                "trusted_proxies",
                &format!("{bad:?} is not an IP address or CIDR range"),
            );
        }
        if crate::store::Backend::of(&self.database_url).is_none() {
            return invalid("database_url", "must start with sqlite:// or postgres://");
        }
        let sessions = &self.sign_in;
        if sessions.session_idle_ttl < Duration::from_secs(60) {
            return invalid("sign_in.session_idle_ttl", "must be at least 1m");
        }
        if sessions.session_absolute_ttl < sessions.session_idle_ttl {
            return invalid(
                "sign_in.session_absolute_ttl",
                "must be at least sign_in.session_idle_ttl",
            );
        }
        if self.branding.product_name.trim().is_empty() || self.branding.product_name.len() > 64 {
            return invalid("branding.product_name", "must be 1 to 64 characters");
        }
        if let Some(logo) = &self.branding.logo_file {
            if crate::browser::settings::logo_type(logo).is_none() {
                return invalid(
                    "branding.logo_file",
                    "must be a .png, .svg, .jpg, .jpeg or .webp file",
                );
            }
            if let Err(e) = std::fs::metadata(logo) {
                return invalid("branding.logo_file", &format!("cannot be read: {e}"));
            }
        }
        if let Some(css) = &self.branding.stylesheet_file
            && let Err(e) = std::fs::metadata(css)
        {
            return invalid("branding.stylesheet_file", &format!("cannot be read: {e}"));
        }
        let reauth = self.mfa.reauth_window;
        if reauth < Duration::from_secs(60) || reauth > Duration::from_secs(24 * 3600) {
            return invalid("mfa.reauth_window", "must be between 1m and 24h");
        }
        if self
            .mfa
            .totp_issuer
            .as_ref()
            .is_some_and(|i| i.trim().is_empty() || i.len() > 64 || i.contains(':'))
        {
            return invalid("mfa.totp_issuer", "must be 1 to 64 characters, without ':'");
        }
        let proof_age = self.dpop.proof_max_age;
        if proof_age < Duration::from_secs(5) || proof_age > Duration::from_secs(300) {
            return invalid("dpop.proof_max_age", "must be between 5s and 5m");
        }
        if self.database_max_connections == 0 {
            return invalid("database_max_connections", "must be at least 1");
        }
        let statement = self.database_statement_timeout;
        if !statement.is_zero()
            && (statement < Duration::from_millis(100) || statement > Duration::from_secs(600))
        {
            return invalid(
                "database_statement_timeout",
                "must be between 100ms and 10m, or 0s to disable it",
            );
        }
        let outage = self.database_outage_wait;
        if outage < Duration::from_millis(10) || outage > Duration::from_secs(2) {
            return invalid("database_outage_wait", "must be between 10ms and 2s");
        }
        let ttl = self.access_token_ttl.as_secs();
        if !(10..=24 * 3600).contains(&ttl) {
            return invalid("access_token_ttl", "must be between 10s and 24h");
        }
        if self.refresh_idle_ttl.as_secs() < 60 || self.refresh_idle_ttl > self.refresh_absolute_ttl
        {
            return invalid(
                "refresh_idle_ttl",
                "must be at least 1m and at most refresh_absolute_ttl",
            );
        }
        if self.refresh_reuse_grace.as_secs() > 60 {
            return invalid("refresh_reuse_grace", "must be at most 60s");
        }
        if self.revocation_cache_capacity < 1000 {
            return invalid("revocation_cache_capacity", "must be at least 1000");
        }
        let poll = self.revocation_poll_interval.as_millis();
        if !(100..=60_000).contains(&poll) {
            return invalid("revocation_poll_interval", "must be between 100ms and 60s");
        }
        if ![2048, 3072, 4096].contains(&self.rsa_bits) {
            return invalid("rsa_bits", "must be 2048, 3072 or 4096");
        }
        if self.jwks_max_age.as_secs() > 24 * 3600 {
            return invalid("jwks_max_age", "must be at most 24h");
        }
        // A node learns of a key scheduled elsewhere (another node, the
        // CLI) within its key re-read interval (5 s) and publishes it only
        // then; the margin keeps that delay, and clock skew between nodes,
        // out of the verifiers' cache window.
        if self.key_pending_lead < self.jwks_max_age + PENDING_LEAD_MARGIN {
            return invalid(
                "key_pending_lead",
                "must be at least jwks_max_age plus 60s, or verifiers could meet a key they have not fetched",
            );
        }
        let interval = self.key_rotation_interval;
        if !interval.is_zero() && interval <= self.key_pending_lead + self.access_token_ttl {
            return invalid(
                "key_rotation_interval",
                "must exceed key_pending_lead plus access_token_ttl (or be 0 to disable rotation)",
            );
        }
        let prune = self.prune_interval.as_secs();
        if !(10..=24 * 3600).contains(&prune) {
            return invalid("prune_interval", "must be between 10s and 24h");
        }
        let retention = self.audit_retention.as_secs();
        if retention != 0 && retention < 24 * 3600 {
            return invalid(
                "audit_retention",
                "must be at least 1d (or 0s to keep audit events forever)",
            );
        }
        let t = &self.throttle;
        if t.pair_limit == 0
            || t.account_limit < t.pair_limit
            || t.pair_free_failures > t.pair_limit
        {
            return invalid(
                "throttle",
                "needs pair_free_failures <= pair_limit <= account_limit, pair_limit >= 1",
            );
        }
        if t.window.is_zero() || t.lockout.is_zero() || t.window > Duration::from_secs(86400) {
            return invalid(
                "throttle",
                "window and lockout must be positive; window at most 24h",
            );
        }
        if t.max_delay > Duration::from_secs(10) {
            return invalid("throttle.max_delay", "must be at most 10s");
        }
        let h = &self.http;
        let second_to_five_minutes = Duration::from_secs(1)..=Duration::from_secs(300);
        if !second_to_five_minutes.contains(&h.request_timeout) {
            return invalid("http.request_timeout", "must be between 1s and 5m");
        }
        if !second_to_five_minutes.contains(&h.header_read_timeout) {
            return invalid("http.header_read_timeout", "must be between 1s and 5m");
        }
        // A bearer token alone is about 1 KiB; more than 1 MiB of headers is
        // never needed and costs memory per connection.
        if !(8192..=1024 * 1024).contains(&h.max_header_bytes) {
            return invalid("http.max_header_bytes", "must be between 8192 and 1048576");
        }
        let p = &self.password;
        if p.min_length == 0 || p.min_length > p.max_length || p.max_length > 1024 {
            return invalid("password", "needs 1 <= min_length <= max_length <= 1024");
        }
        let a = &self.argon2;
        if let Err(e) = argon2::Params::new(a.memory_kib, a.iterations, a.parallelism, None) {
            return invalid("argon2", &format!("parameters are not valid: {e}"));
        }
        if a.max_concurrent > 256 {
            return invalid(
                "argon2.max_concurrent",
                "must be at most 256 (0 = one per core)",
            );
        }
        if !(0..=19).contains(&a.thread_nice) {
            return invalid("argon2.thread_nice", "must be between 0 and 19");
        }
        Ok(ValidConfig(self))
    }

    /// `trusted_proxies` parsed; a bare address is a one-address network.
    pub fn proxy_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|text| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| text.clone())
            })
            .collect()
    }

    /// How the server's database pool is sized and bounded.
    pub fn pool_settings(&self) -> crate::store::PoolSettings {
        crate::store::PoolSettings {
            max_connections: self.database_max_connections,
            statement_timeout: self.database_statement_timeout,
            outage_wait: self.database_outage_wait,
        }
    }

    /// An operator command's pool: two connections, the configured timeout.
    pub fn cli_pool_settings(&self) -> crate::store::PoolSettings {
        crate::store::PoolSettings {
            max_connections: 2,
            ..self.pool_settings()
        }
    }

    /// What the key schedule follows.
    pub fn key_policy(&self) -> crate::keys::schedule::KeyPolicy {
        crate::keys::schedule::KeyPolicy {
            rotation_interval: self.key_rotation_interval,
            pending_lead: self.key_pending_lead,
            access_token_ttl: self.access_token_ttl,
            retire_grace: self.key_retire_grace,
            rsa_bits: self.rsa_bits,
        }
    }

    /// How long pruning keeps each kind of row.
    pub fn prune_ages(&self) -> crate::prune::Ages {
        crate::prune::Ages {
            access_token_ttl: self.access_token_ttl,
            refresh_reuse_grace: self.refresh_reuse_grace,
            throttle_window: self.throttle.window,
            audit_retention: self.audit_retention,
        }
    }

    /// The longest lifetimes a client may have: the server's.
    pub fn max_client_lifetimes(&self) -> crate::clients::Lifetimes {
        crate::clients::Lifetimes {
            access_token: Some(self.access_token_ttl),
            refresh_token: Some(self.refresh_absolute_ttl),
        }
    }

    /// What a revocation of a user's sessions must cover.
    pub fn revocation_window(&self) -> crate::revocation::RevocationWindow {
        crate::revocation::RevocationWindow {
            access_token_ttl: self.access_token_ttl,
            reuse_grace: self.refresh_reuse_grace,
        }
    }

    /// The issuer without a trailing slash, to which endpoint paths are appended.
    pub fn base_url(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    pub fn audience(&self) -> &str {
        self.default_audience.as_deref().unwrap_or(&self.issuer)
    }

    /// Path of the key-encryption-key file.
    pub fn kek_file(&self) -> PathBuf {
        self.keys_dir.join("kek")
    }
}

fn invalid<T>(key: &'static str, problem: &str) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid {
        key,
        problem: problem.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_limits_out_of_range_are_refused_by_name() {
        for (toml, key) in [
            ("[http]\nrequest_timeout = \"0s\"\n", "http.request_timeout"),
            (
                "[http]\nheader_read_timeout = \"10m\"\n",
                "http.header_read_timeout",
            ),
            ("[http]\nmax_header_bytes = 100\n", "http.max_header_bytes"),
        ] {
            let message = Config::from_toml(toml).expect_err(toml).to_string();
            assert!(message.contains(key), "{message}");
        }
        let accepted = Config::from_toml("[http]\nheader_read_timeout = \"1s\"\n");
        assert_eq!(
            accepted.expect("valid").http.header_read_timeout,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_hashing_nice_value_outside_0_to_19_is_refused() {
        for nice in ["-1", "20"] {
            let toml = format!("[argon2]\nthread_nice = {nice}\n");
            let message = Config::from_toml(&toml).expect_err(&toml).to_string();
            assert!(message.contains("argon2.thread_nice"), "{message}");
        }
        let accepted = Config::from_toml("[argon2]\nthread_nice = 0\n");
        assert_eq!(accepted.expect("valid").argon2.thread_nice, 0);
    }

    #[test]
    fn more_than_256_hashing_threads_are_refused() {
        let message = Config::from_toml("[argon2]\nmax_concurrent = 257\n")
            .expect_err("refused")
            .to_string();
        assert!(message.contains("argon2.max_concurrent"), "{message}");
        assert!(Config::from_toml("[argon2]\nmax_concurrent = 256\n").is_ok());
    }

    #[test]
    fn a_pending_lead_inside_the_jwks_cache_window_plus_margin_is_refused() {
        let refused = Config::from_toml("jwks_max_age = \"15m\"\nkey_pending_lead = \"15m\"\n");
        let message = refused.expect_err("refused").to_string();
        assert!(message.contains("key_pending_lead"), "{message}");

        let accepted = Config::from_toml("jwks_max_age = \"15m\"\nkey_pending_lead = \"16m\"\n");
        assert!(
            accepted.is_ok(),
            "{:?}",
            accepted.err().map(|e| e.to_string())
        );
    }
}
