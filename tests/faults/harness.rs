//! A `sigil` process the tests can start, kill -9 and restart on the same
//! database, and the HTTP calls they make to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

/// Every node of a test uses this issuer, whatever port it got, so tokens
/// stay valid across restarts and between nodes.
pub const ISSUER: &str = "http://sigil.faults.test";
pub const APP: &str = "app";
pub const ADMIN: &str = "ops";
pub const ADMIN_SECRET: &str = "ops-secret-0123456789abcdef0123456789";

/// How long the tests run: `FAULTS_SCALE=quick` (CI) or `full`.
pub struct Scale {
    pub kill_rounds: usize,
    pub soak: Duration,
    pub outages: usize,
    pub rotation_kills: usize,
}

pub fn scale() -> Scale {
    match std::env::var("FAULTS_SCALE").as_deref() {
        Ok("full") => Scale {
            kill_rounds: 40,
            soak: Duration::from_secs(300),
            outages: 3,
            rotation_kills: 8,
        },
        _ => Scale {
            kill_rounds: 8,
            soak: Duration::from_secs(45),
            // A clean stop and a crash of the server.
            outages: 2,
            rotation_kills: 3,
        },
    }
}

pub struct Node {
    dir: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    api: Api,
    log: Arc<Mutex<Vec<String>>>,
}

/// The HTTP calls, cheap to clone into load tasks; they outlive a kill.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: Client,
}

impl std::ops::Deref for Node {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Node {
    /// Starts `sigil serve` with the fault tests' settings plus `env`.
    pub async fn start(dir: &Path, database_url: &str, env: &[(&str, &str)]) -> Node {
        let mut all: Vec<(String, String)> = [
            ("SIGIL_LISTEN", "127.0.0.1:0"),
            ("SIGIL_ISSUER", ISSUER),
            ("SIGIL_DATABASE_URL", database_url),
            ("SIGIL_KEYS_DIR", "keys"),
            ("SIGIL_ARGON2__MEMORY_KIB", "256"),
            ("SIGIL_ARGON2__ITERATIONS", "1"),
            // Every request comes from 127.0.0.1: the per-address limits
            // would measure the test, not the fault.
            ("SIGIL_THROTTLE__ENABLED", "false"),
            // Without a retry window a spent token presented again is
            // always reuse, which makes "never works again" checkable.
            ("SIGIL_REFRESH_REUSE_GRACE", "0s"),
            ("SIGIL_RSA_BITS", "2048"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in env {
            all.retain(|(key, _)| key != k);
            all.push((k.to_string(), v.to_string()));
        }
        let mut node = Node {
            dir: dir.to_path_buf(),
            env: all,
            child: None,
            api: Api {
                base: String::new(),
                http: Client::builder()
                    .timeout(Duration::from_secs(40))
                    .build()
                    .unwrap(),
            },
            log: Arc::new(Mutex::new(Vec::new())),
        };
        node.spawn().await;
        node
    }

    async fn spawn(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sigil"));
        command
            .arg("serve")
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("sigil starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listen=").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
                log.lock().unwrap().push(line);
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap();
        let addr = match addr {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("sigil did not start; its log:\n{}", self.log_text());
            }
        };
        self.api.base = format!("http://{addr}");
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no shutdown, no flush, whatever was in flight is cut.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// A handle for load tasks; it keeps pointing at this incarnation.
    pub fn api(&self) -> Api {
        self.api.clone()
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Waits until `/readyz` answers 200, up to `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        eventually(
            limit,
            async || matches!(self.get("/readyz").await, Ok(r) if r.status() == StatusCode::OK),
        )
        .await
    }
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<Response> {
        self.http.get(self.url(path)).send().await
    }

    pub async fn register(&self, username: &str, password: &str) -> reqwest::Result<Response> {
        let body = serde_json::json!({
            "username": username,
            "email": format!("{username}@faults.test"),
            "password": password,
        });
        self.http.post(self.url("/users")).json(&body).send().await
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Result<Response> {
        let mut form = form.to_vec();
        form.push(("client_id", APP));
        self.http
            .post(self.url("/oauth/token"))
            .form(&form)
            .send()
            .await
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Result<Response> {
        self.token(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .await
    }

    pub async fn refresh(&self, token: &str) -> reqwest::Result<Response> {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .await
    }

    pub async fn revoke(&self, token: &str) -> reqwest::Result<Response> {
        self.http
            .post(self.url("/oauth/revoke"))
            .form(&[("token", token), ("client_id", APP)])
            .send()
            .await
    }

    pub async fn me(&self, access_token: &str) -> reqwest::Result<Response> {
        self.http
            .get(self.url("/users/me"))
            .bearer_auth(access_token)
            .send()
            .await
    }

    /// A `sigil:admin` token by client_credentials.
    pub async fn admin_token(&self) -> String {
        self.try_admin_token().await.expect("an admin token")
    }

    /// As [`Api::admin_token`], `None` while the node cannot issue one.
    pub async fn try_admin_token(&self) -> Option<String> {
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .basic_auth(ADMIN, Some(ADMIN_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "sigil:admin"),
            ])
            .send()
            .await
            .ok()?;
        if response.status() != StatusCode::OK {
            return None;
        }
        let body: Value = response.json().await.ok()?;
        Some(body["access_token"].as_str()?.to_string())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs a `sigil` operator command in `dir` with the node's database.
/// Registers [`APP`], the public password-grant client the suites log in with.
pub fn create_app_client(dir: &Path, database_url: &str) {
    let args = [
        "clients",
        "create",
        APP,
        "--public",
        "--grant-types",
        "password,refresh_token",
    ];
    sigil_command(dir, database_url, &args, None);
}

pub fn sigil_command(dir: &Path, database_url: &str, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("SIGIL_DATABASE_URL", database_url)
        .env("SIGIL_KEYS_DIR", "keys")
        .env("SIGIL_ISSUER", ISSUER)
        .env("SIGIL_ARGON2__MEMORY_KIB", "256")
        .env("SIGIL_ARGON2__ITERATIONS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sigil runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "sigil {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Prepares `dir` for nodes on `database_url`: on Postgres a shared KEK
/// (Sigil never invents one there), then the schema, the public app client
/// and a confidential admin client.
pub fn provision(dir: &Path, database_url: &str) {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    if database_url.starts_with("postgres") {
        let kek = sigil_command(dir, database_url, &["keys", "new-kek"], None);
        std::fs::write(dir.join("keys/kek"), kek.trim()).unwrap();
    }
    sigil_command(dir, database_url, &["migrate"], None);
    create_app_client(dir, database_url);
    sigil_command(
        dir,
        database_url,
        &[
            "clients",
            "create",
            ADMIN,
            "--grant-types",
            "client_credentials",
            "--scopes",
            "sigil:admin",
            "--alg",
            "RS256",
            "--secret-stdin",
        ],
        Some(ADMIN_SECRET),
    );
}

pub async fn json_of(response: Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
}

pub fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_string()
}

/// The value of an unlabelled metric from `/metrics` (0 when absent).
pub async fn metric(api: &Api, name: &str) -> f64 {
    let text = api.get("/metrics").await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts a 503 in the error format: JSON `temporarily_unavailable` with
/// `Retry-After`.
pub async fn assert_unavailable(response: Response, what: &str) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert!(
        response.headers().contains_key("retry-after"),
        "{what}: 503 without Retry-After"
    );
    let body = json_of(response).await;
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
}
