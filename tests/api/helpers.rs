//! The test harness: a Sigil server on port 0 over a fresh database (a
//! SQLite file in a temp dir, or a throwaway Postgres database), with a
//! manual clock, and typed calls for the API.

use std::io::Write;
use std::sync::{Arc, Once};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use sigil::Sigil;
use sigil::clients::{GrantType, NewClient, create_client};
use sigil::clock::ManualClock;
use sigil::config::Config;
use sigil::keys::Alg;
use sigil::scope::Scopes;
use tokio::sync::{OnceCell, oneshot};

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn(TestApp)` once per backend, as
/// `<name>::sqlite` and `<name>::postgres` (which passes, saying so, where
/// no Postgres is configured). The app comes from `TestApp::spawn`, or from
/// the `async fn(Backend) -> Option<TestApp>` given first as
/// `spawn = path;` (for a configuration of the test's own). The one way to
/// run a test on both backends.
#[macro_export]
macro_rules! on_both_backends {
    (spawn = $spawn:path; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $spawn($crate::helpers::Backend::Sqlite).await;
                    super::$name(app.expect("SQLite is always available")).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $spawn($crate::helpers::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(spawn = $crate::helpers::TestApp::spawn; $($name),*);
    };
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub sigil: Arc<Sigil>,
    pub database_url: String,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    _db: Option<TestDatabase>,
}

/// A client registered for a test, with its secret when confidential.
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts a server after `customize` has adjusted the test config.
    pub async fn spawn_with(
        backend: Backend,
        customize: impl FnOnce(&mut Config),
    ) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, db) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("sigil.db").display()),
                None,
            ),
            Backend::Postgres => {
                let db = TestDatabase::create().await?;
                (db.url.clone(), Some(db))
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = test_config(&database_url, dir.path());
        if backend == Backend::Postgres {
            // Nodes on Postgres share a KEK supplied by the operator.
            let (_, kek) = sigil::keys::Kek::generate().expect("kek");
            config.kek = Some(kek);
        }
        config.issuer = format!("http://{addr}");
        customize(&mut config);
        let config = config.validated().expect("valid test config");
        let clock = ManualClock::starting_now();
        let sigil = Sigil::open(config, Arc::new(clock.clone()))
            .await
            .expect("sigil starts");
        Some(Self::serve(listener, sigil, clock, database_url, dir, db))
    }

    fn serve(
        listener: tokio::net::TcpListener,
        sigil: Arc<Sigil>,
        clock: ManualClock,
        database_url: String,
        dir: tempfile::TempDir,
        db: Option<TestDatabase>,
    ) -> TestApp {
        let addr = listener.local_addr().expect("addr");
        sigil::service::background::spawn_background(&sigil);
        let (tx, rx) = oneshot::channel::<()>();
        let server = Arc::clone(&sigil);
        tokio::spawn(async move {
            let _ = sigil::http::serve(listener, server, async {
                let _ = rx.await;
            })
            .await;
        });
        TestApp {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            clock,
            sigil,
            database_url,
            dir,
            shutdown: Some(tx),
            _db: db,
        }
    }

    /// A second Sigil node on the same database, issuer, KEK and clock, as
    /// in a multi-node deployment.
    pub async fn spawn_node(&self) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let clock = self.clock.clone();
        let sigil = Sigil::open(self.sigil.config.clone(), Arc::new(clock.clone()))
            .await
            .expect("second node starts");
        Self::serve(
            listener,
            sigil,
            clock,
            self.database_url.clone(),
            tempfile::tempdir().expect("dir"),
            None,
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path))
    }

    pub async fn register(&self, username: &str, email: &str, password: &str) -> Response {
        self.post("/users")
            .json(&serde_json::json!({"username": username, "email": email, "password": password}))
            .send()
            .await
            .expect("request")
    }

    /// Registers `username` with [`PASSWORD`] and checks it worked.
    pub async fn user(&self, username: &str) {
        let response = self
            .register(username, &format!("{username}@example.com"), PASSWORD)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registering {username}"
        );
    }

    /// Registers a client the way the CLI does.
    pub async fn client(
        &self,
        id: &str,
        public: bool,
        grants: &[GrantType],
        scopes: &str,
        alg: Option<Alg>,
    ) -> TestClient {
        self.client_from(NewClient {
            id: id.to_string(),
            public,
            grant_types: grants.to_vec(),
            scopes: Scopes::parse(scopes).expect("scopes"),
            alg,
            ..NewClient::default()
        })
        .await
    }

    /// Registers `new` (validated against the server's config, as the CLI
    /// and the admin API do).
    pub async fn client_from(&self, new: NewClient) -> TestClient {
        let (client, secret) = create_client(
            self.sigil.store.as_ref(),
            &self.sigil.config.max_client_lifetimes(),
            new,
            self.clock.now_secs(),
        )
        .await
        .expect("client created");
        TestClient {
            id: client.id,
            secret: secret.map(|s| secrecy::ExposeSecret::expose_secret(&s).to_string()),
        }
    }

    /// A confidential client allowed the password grant, scopes "read write".
    pub async fn confidential_client(&self, id: &str) -> TestClient {
        self.client(
            id,
            false,
            &[GrantType::Password, GrantType::RefreshToken],
            "read write",
            None,
        )
        .await
    }

    /// POSTs form `params` to the token endpoint, authenticating `client`
    /// with HTTP Basic when it has a secret, else with `client_id`.
    pub async fn token(&self, client: &TestClient, params: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        let mut request = self.post("/oauth/token");
        match &client.secret {
            Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
            None => form.push(("client_id", &client.id)),
        }
        request.form(&form).send().await.expect("request")
    }

    pub async fn password_grant(
        &self,
        client: &TestClient,
        username: &str,
        password: &str,
    ) -> Response {
        self.token(
            client,
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Logs `username` in with [`PASSWORD`] and returns the access token.
    pub async fn access_token(&self, client: &TestClient, username: &str) -> String {
        let response = self.password_grant(client, username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Logs in and returns the whole token response.
    pub async fn login(&self, client: &TestClient, username: &str) -> Value {
        let response = self.password_grant(client, username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    pub async fn refresh(
        &self,
        client: &TestClient,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Response {
        let mut params = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(scope) = scope {
            params.push(("scope", scope));
        }
        self.token(client, &params).await
    }

    /// Posts to an endpoint that authenticates clients like the token
    /// endpoint does (`/oauth/revoke`, `/oauth/introspect`).
    pub async fn client_post(
        &self,
        path: &str,
        client: &TestClient,
        params: &[(&str, &str)],
    ) -> Response {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        let mut request = self.post(path);
        match &client.secret {
            Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
            None => form.push(("client_id", &client.id)),
        }
        request.form(&form).send().await.expect("request")
    }

    pub async fn revoke(&self, client: &TestClient, token: &str) -> Response {
        self.client_post("/oauth/revoke", client, &[("token", token)])
            .await
    }

    pub async fn introspect(&self, client: &TestClient, token: &str) -> Value {
        let response = self
            .client_post("/oauth/introspect", client, &[("token", token)])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        response.json().await.expect("json")
    }

    pub async fn feed(&self, client: &TestClient, since: &str) -> Value {
        let response = self
            .get(&format!("/oauth/revocations?since={since}"))
            .basic_auth(&client.id, client.secret.as_deref())
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    /// Waits until this node honours a client change made elsewhere (another
    /// node, the CLI). On Postgres the change signal carries it, usually in
    /// milliseconds; the 5 s allowed leave room for a loaded machine and for
    /// the throttle, which delays the refused attempts of the polling itself.
    /// SQLite has no signal, so it holds once the node's cached copy is
    /// older than `CLIENT_CACHE_TTL` (the clock is moved on, nothing sleeps).
    pub async fn until_client_change_holds<F, Fut>(&self, what: &str, mut holds: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        if self.database_url.starts_with("sqlite") {
            self.clock.advance(sigil::client_cache::CLIENT_CACHE_TTL);
            assert!(holds().await, "{what}: not honoured after the cache TTL");
            return;
        }
        let started = std::time::Instant::now();
        while !holds().await {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{what}: not honoured within 5 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Gives `username` a new password the way `sigil users set-password`
    /// does (which revokes every session of the user).
    pub async fn set_password(&self, username: &str, password: &str) {
        let sigil = &self.sigil;
        sigil::users::set_password(
            sigil.store.as_ref(),
            &sigil.passwords,
            &sigil.config.password,
            username,
            password.to_string().into(),
            sigil.config.revocation_window(),
            sigil::clock::Clock::now(&self.clock),
        )
        .await
        .expect("password changed");
    }

    pub async fn me(&self, token: &str) -> Response {
        self.get("/users/me")
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn jwks(&self) -> JwkSet {
        self.get("/.well-known/jwks.json")
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JWKS JSON")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Seconds on the manual clock.
pub trait NowSecs {
    fn now_secs(&self) -> i64;
}

impl NowSecs for ManualClock {
    fn now_secs(&self) -> i64 {
        sigil::clock::Clock::now(self)
    }
}

/// The config every test starts from: cheap argon2 so tests run fast.
pub fn test_config(database_url: &str, dir: &std::path::Path) -> Config {
    let mut config = Config {
        database_url: database_url.to_string(),
        database_max_connections: 4,
        keys_dir: dir.join("keys"),
        ..Config::default()
    };
    config.argon2.memory_kib = 256;
    config.argon2.iterations = 1;
    config
}

/// Verifies a token using only the JWKS JSON and the independent
/// `jsonwebtoken` library (not Sigil's signing code).
pub fn verify_with_jwks(
    jwks: &JwkSet,
    token: &str,
    issuer: &str,
    audience: &str,
) -> jsonwebtoken::errors::Result<Value> {
    let header = jsonwebtoken::decode_header(token)?;
    let kid = header.kid.expect("kid in header");
    let jwk = jwks.find(&kid).expect("kid published in JWKS");
    let key = DecodingKey::from_jwk(jwk)?;
    let alg = jwk.common.key_algorithm.expect("alg on every JWK");
    let alg = jsonwebtoken::Algorithm::from_str(&alg.to_string()).expect("alg");
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf", "iat"]);
    Ok(jsonwebtoken::decode::<Value>(token, &key, &validation)?.claims)
}

use std::str::FromStr;

// ---- Postgres -------------------------------------------------------------

static POSTGRES: OnceCell<Option<String>> = OnceCell::const_new();
static SKIP_NOTICE: Once = Once::new();

/// The admin URL of a reachable Postgres server, or `None` (tests skip).
/// `SIGIL_TEST_POSTGRES_URL` names the server (default: the local one);
/// with `SIGIL_TEST_REQUIRE_POSTGRES=1` an unreachable server fails the test.
async fn postgres_admin_url() -> Option<String> {
    POSTGRES
        .get_or_init(|| async {
            let url = std::env::var("SIGIL_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
            let reachable = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                use sqlx::Connection;
                sqlx::PgConnection::connect(&url).await
            })
            .await;
            match reachable {
                Ok(Ok(_)) => Some(url),
                Ok(Err(e)) => unavailable(&url, &e.to_string()),
                Err(_) => unavailable(&url, "timed out"),
            }
        })
        .await
        .clone()
}

fn unavailable(url: &str, why: &str) -> Option<String> {
    if std::env::var("SIGIL_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("SIGIL_TEST_REQUIRE_POSTGRES=1 but Postgres at {url} is unreachable: {why}");
    }
    SKIP_NOTICE.call_once(|| {
        // Written straight to stderr: the test harness captures print macros.
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTE: Postgres at {url} is unreachable ({why}); the Postgres variants of the tests \
             were SKIPPED. Set SIGIL_TEST_POSTGRES_URL to run them.\n"
        );
    });
    None
}

/// A database created for one test and dropped after it.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> Option<TestDatabase> {
        use sqlx::{Connection, Executor};
        let admin_url = postgres_admin_url().await?;
        let name = format!("sigil_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("admin connection");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        Some(TestDatabase {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside async; use a private runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                use sqlx::{Connection, Executor};
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}

pub async fn json(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

// ---- Direct database access (what a test checks behind Sigil's back) -------

/// Runs `statements` (one or several, `;`-separated) on the database at `url`.
pub async fn execute_sql(url: &str, statements: &str) {
    use sqlx::{Connection, Executor};
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.expect("connect");
        db.execute(statements).await.expect("SQL runs");
        db.close().await.expect("close");
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.expect("connect");
        db.execute(statements).await.expect("SQL runs");
        db.close().await.expect("close");
    }
}

/// One number from `query` (e.g. `SELECT count(*) FROM …`).
pub async fn scalar(url: &str, query: &str) -> i64 {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::query_scalar(query)
            .fetch_one(&mut db)
            .await
            .expect("query runs")
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query_scalar(query)
            .fetch_one(&mut db)
            .await
            .expect("query runs")
    }
}

/// The row count of every table (`_sqlx_migrations` included), by name.
pub async fn row_counts(url: &str) -> std::collections::BTreeMap<String, i64> {
    use sqlx::Connection;
    let tables: Vec<String> = if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&mut db)
        .await
        .expect("tables")
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(&mut db)
        .await
        .expect("tables")
    };
    let mut counts = std::collections::BTreeMap::new();
    for table in tables {
        let count = scalar(url, &format!("SELECT count(*) FROM {table}")).await;
        counts.insert(table, count);
    }
    counts
}

/// The records a login stores for a session `id` of `user_id` at `client_id`
/// begun at `at` (scope "read", an hour to live), and its refresh token: for
/// tests that store a session behind Sigil's back, as a racing login would.
pub fn session_records(
    id: &str,
    user_id: &str,
    client_id: &str,
    at: i64,
) -> (
    String,
    sigil::store::FamilyRecord,
    sigil::store::RefreshRecord,
) {
    let token = sigil::tokens::mint_refresh_token();
    let family = sigil::store::FamilyRecord {
        id: id.into(),
        user_id: user_id.into(),
        client_id: client_id.into(),
        scope: "read".into(),
        created_at: at,
        expires_at: at + 3600,
        revoked_at: None,
        amr: Some("pwd".into()),
        acr: Some("urn:sigil:acr:1fa".into()),
        dpop_jkt: None,
    };
    let first = sigil::store::RefreshRecord {
        hash: sigil::tokens::hash_refresh_token(&token),
        family_id: id.into(),
        scope: "read".into(),
        issued_at: at,
        expires_at: at + 3600,
        spent_at: None,
        successor_hash: None,
    };
    (token, family, first)
}

/// The newest audit event `action`, waiting (up to 10 s) for the batch
/// writer to store it.
pub async fn until_audited(app: &TestApp, action: &str) -> sigil::store::AuditRecord {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = app.sigil.store.recent_audit(1000).await.expect("audit");
        if let Some(event) = events.into_iter().rev().find(|e| e.action == action) {
            return event;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {action} in the audit trail"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The payload of a JWT, unverified (for tests that read claims of a
/// token whose signature is checked elsewhere).
pub fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
