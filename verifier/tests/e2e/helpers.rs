//! The harness: a Sigil on port 0 over a fresh SQLite database with a
//! manual clock, the notes service, and typed calls for both.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::StatusCode;
use serde_json::Value;
use sigil::clients::{ClientKeys, GrantType, NewClient, create_client, parse_jwks};
use sigil::clock::{Clock, ManualClock};
use sigil::config::Config;
use sigil::keys::{Alg, SigningKey};
use sigil::scope::Scopes;
use sigil_verify::{Verifier, VerifierBuilder};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery staple";
/// The audience the notes service accepts.
pub const AUDIENCE: &str = "notes-api";
/// How often test verifiers poll the revocation feed.
pub const POLL: Duration = Duration::from_millis(100);

/// A running Sigil.
pub struct TestSigil {
    pub base: String,
    pub addr: SocketAddr,
    pub clock: ManualClock,
    pub sigil: Arc<sigil::Sigil>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

/// A registered client, with its secret when confidential.
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

impl TestSigil {
    pub async fn start() -> TestSigil {
        Self::start_with(|_| {}).await
    }

    /// Starts Sigil after `customize` has adjusted the config.
    pub async fn start_with(customize: impl FnOnce(&mut Config)) -> TestSigil {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = Config {
            database_url: format!("sqlite://{}", dir.path().join("sigil.db").display()),
            database_max_connections: 4,
            keys_dir: dir.path().join("keys"),
            issuer: format!("http://{addr}"),
            ..Config::default()
        };
        // Cheap password hashing: the tests are about tokens.
        config.argon2.memory_kib = 256;
        config.argon2.iterations = 1;
        customize(&mut config);
        let config = config.validated().expect("valid test config");
        let clock = ManualClock::starting_now();
        let sigil = sigil::Sigil::open(config, Arc::new(clock.clone()))
            .await
            .expect("sigil starts");
        sigil::service::background::spawn_background(&sigil);
        let mut app = TestSigil {
            base: format!("http://{addr}"),
            addr,
            clock,
            sigil,
            http: reqwest::Client::new(),
            _dir: dir,
            server: None,
        };
        app.serve(listener);
        app
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (tx, rx) = oneshot::channel::<()>();
        let sigil = Arc::clone(&self.sigil);
        let task = tokio::spawn(async move {
            let _ = sigil::http::serve(listener, sigil, async {
                let _ = rx.await;
            })
            .await;
        });
        self.server = Some((tx, task));
    }

    /// Stops serving HTTP (the database and keys stay), as if Sigil were down.
    pub async fn stop(&mut self) {
        if let Some((tx, task)) = self.server.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Serves again on the same address.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("rebind the same address");
        self.serve(listener);
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A key operation by the actor `test`, now, on the node's audit trail.
    pub fn by(&self) -> sigil::audit::By<'_> {
        sigil::audit::By {
            trail: &self.sigil.audit,
            actor: "test",
            at: self.now(),
        }
    }

    /// A verifier for this Sigil, configured as the notes service
    /// configures its own from the environment, plus the manual clock; it
    /// reads the feed as `feed_client` every [`POLL`].
    pub fn verifier(&self, feed_client: &TestClient) -> VerifierBuilder {
        let poll = POLL.as_millis().to_string();
        let secret = feed_client.secret.clone().expect("confidential");
        let config = notes_service::config::Config::from_lookup(|name| match name {
            "SIGIL_ISSUER" => Some(self.base.clone()),
            "NOTES_AUDIENCE" => Some(AUDIENCE.to_string()),
            "NOTES_FEED_CLIENT_ID" => Some(feed_client.id.clone()),
            "NOTES_FEED_CLIENT_SECRET" => Some(secret.clone()),
            "NOTES_POLL_INTERVAL_MS" => Some(poll.clone()),
            _ => None,
        })
        .expect("notes config");
        let clock = self.clock.clone();
        config
            .verifier()
            .clock(move || clock.now())
            .refetch_cooldown(Duration::from_millis(200))
    }

    pub async fn client(
        &self,
        id: &str,
        grants: &[GrantType],
        scopes: &str,
        alg: Option<Alg>,
        audience: Option<&str>,
    ) -> TestClient {
        self.create(NewClient {
            id: id.to_string(),
            grant_types: grants.to_vec(),
            scopes: Scopes::parse(scopes).expect("scopes"),
            alg,
            audience: audience.map(str::to_string),
            ..NewClient::default()
        })
        .await
    }

    async fn create(&self, new: NewClient) -> TestClient {
        let (client, secret) = create_client(
            self.sigil.store.as_ref(),
            &self.sigil.config.max_client_lifetimes(),
            new,
            self.now(),
        )
        .await
        .expect("client created");
        TestClient {
            id: client.id,
            secret: secret.map(|s| secrecy::ExposeSecret::expose_secret(&s).to_string()),
        }
    }

    /// A verifier for this Sigil and the notes audience, on the manual
    /// clock, with no revocation feed yet.
    pub fn verifier_without_feed(&self) -> VerifierBuilder {
        let clock = self.clock.clone();
        Verifier::builder()
            .issuer(self.base.clone())
            .audience(AUDIENCE)
            .clock(move || clock.now())
    }

    /// A public client (no secret).
    pub async fn public_client(
        &self,
        id: &str,
        grants: &[GrantType],
        scopes: &str,
        alg: Alg,
        audience: &str,
    ) -> TestClient {
        self.create(NewClient {
            id: id.to_string(),
            public: true,
            grant_types: grants.to_vec(),
            scopes: Scopes::parse(scopes).expect("scopes"),
            alg: Some(alg),
            audience: Some(audience.to_string()),
            ..NewClient::default()
        })
        .await
    }

    /// A confidential client that authenticates with `private_key_jwt`
    /// and these public keys.
    pub async fn key_client(&self, id: &str, jwks: &Value) {
        self.create(NewClient {
            id: id.to_string(),
            grant_types: vec![GrantType::ClientCredentials],
            keys: Some(ClientKeys::Inline(
                parse_jwks(&jwks.to_string()).expect("a public JWKS"),
            )),
            ..NewClient::default()
        })
        .await;
    }

    /// The confidential client the verifiers read the feed with.
    pub async fn feed_client(&self) -> TestClient {
        self.client(
            "notes-feed",
            &[GrantType::ClientCredentials],
            "",
            None,
            None,
        )
        .await
    }

    /// A client of the notes API: password and refresh grants, `scopes`,
    /// audience [`AUDIENCE`].
    pub async fn notes_app(&self, id: &str, scopes: &str, alg: Alg) -> TestClient {
        self.client(
            id,
            &[
                GrantType::Password,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
            ],
            scopes,
            Some(alg),
            Some(AUDIENCE),
        )
        .await
    }

    pub async fn user(&self, username: &str) {
        let response = self
            .http
            .post(format!("{}/users", self.base))
            .json(&serde_json::json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": PASSWORD,
            }))
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "register {username}"
        );
    }

    async fn token_request(&self, client: &TestClient, form: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(form)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "token endpoint");
        response.json().await.expect("json")
    }

    /// Logs `username` in; the response has `access_token` and `refresh_token`.
    pub async fn login(&self, client: &TestClient, username: &str) -> Value {
        self.token_request(
            client,
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", PASSWORD),
            ],
        )
        .await
    }

    pub async fn access_token(&self, client: &TestClient, username: &str) -> String {
        field(&self.login(client, username).await, "access_token")
    }

    /// A `client_credentials` token (no user, no session).
    pub async fn service_token(&self, client: &TestClient) -> String {
        let body = self
            .token_request(client, &[("grant_type", "client_credentials")])
            .await;
        field(&body, "access_token")
    }

    /// RFC 7009 revocation of an access or refresh token.
    pub async fn revoke(&self, client: &TestClient, token: &str) {
        let response = self
            .http
            .post(format!("{}/oauth/revoke", self.base))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&[("token", token)])
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "revoke");
    }

    /// The key that signs for `alg` right now.
    pub fn signing_key(&self, alg: Alg) -> Arc<SigningKey> {
        Arc::clone(
            self.sigil
                .keys
                .current()
                .signing_key(alg)
                .expect("a signing key"),
        )
    }
}

impl Drop for TestSigil {
    fn drop(&mut self) {
        if let Some((tx, _)) = self.server.take() {
            let _ = tx.send(());
        }
    }
}

pub fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {body}"))
        .to_string()
}

/// The notes service on port 0 in front of `verifier`; returns its base URL.
pub async fn spawn_notes(verifier: Verifier) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, notes_service::app(verifier)).await;
    });
    format!("http://{addr}")
}

/// The decoded header and claims of a token (no verification).
pub fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || {
        let bytes = B64.decode(parts.next().expect("part")).expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("json")
    };
    (part(), part())
}

pub fn kid_of(token: &str) -> String {
    field(&decode(token).0, "kid")
}

/// A compact JWS over `header` and `claims`, signed by `key` (or unsigned).
pub fn forge(header: &Value, claims: &Value, key: Option<&SigningKey>) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = key
        .map(|k| B64.encode(k.sign(input.as_bytes()).expect("sign")))
        .unwrap_or_default();
    format!("{input}.{signature}")
}

/// Polls `check` every 20 ms until it is true or `limit` has passed.
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An Ed25519 key pair of a client, as an operator would hold it: the
/// private half as PKCS#8 PEM, the public half as a JWKS.
pub struct FeedKey {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl FeedKey {
    pub fn generate(kid: &str) -> FeedKey {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        FeedKey {
            kid: kid.to_string(),
            pkcs8: pkcs8.as_ref().to_vec(),
            public: pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn pem(&self) -> Vec<u8> {
        let body = base64::engine::general_purpose::STANDARD.encode(&self.pkcs8);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64"))
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
        .into_bytes()
    }

    pub fn jwks(&self) -> Value {
        serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": B64.encode(&self.public)
        }]})
    }
}

/// A client's P-256 DPoP key (RFC 9449), making proofs as a client would.
pub struct ProofKey {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    pub jwk: Value,
}

impl ProofKey {
    pub fn generate() -> ProofKey {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
        let point = pair.public_key().as_ref();
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        });
        ProofKey { pair, jwk }
    }

    /// RFC 7638: the required members in lexicographic order, hashed.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            self.jwk["x"], self.jwk["y"]
        );
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        B64.encode(digest.as_ref())
    }

    /// A proof of `claims` (`typ`, `alg` and `jwk` in the header).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_typed("dpop+jwt", claims)
    }

    /// A JWT of `claims` with this `typ`, signed as a proof is.
    pub fn sign_typed(&self, typ: &str, claims: &Value) -> String {
        let header = serde_json::json!({"typ": typ, "alg": "ES256", "jwk": self.jwk});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .expect("sign");
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }

    /// A fresh proof for `method url` at `iat`, naming `token` (`ath`).
    pub fn proof(&self, method: &str, url: &str, token: Option<&str>, iat: i64) -> String {
        let mut claims = serde_json::json!({
            "jti": format!("{:x}", rand_u64()), "htm": method, "htu": url, "iat": iat,
        });
        if let Some(token) = token {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            claims["ath"] = B64.encode(digest.as_ref()).into();
        }
        self.sign(&claims)
    }
}

fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("randomness");
    u64::from_le_bytes(bytes)
}
