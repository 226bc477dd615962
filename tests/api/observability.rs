//! Request ids, health, metrics, the audit trail, logs without secrets,
//! graceful shutdown and TLS.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{Backend, PASSWORD, TestApp, json};
use crate::on_both_backends;

on_both_backends!(
    every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept,
    health_and_readiness_report_the_database_keys_and_schema,
    metrics_count_requests_tokens_failures_and_describe_state,
    the_audit_trail_records_logins_tokens_and_revocations,
    draining_the_audit_queue_stores_every_event_before_shutdown,
    methods_a_client_makes_up_share_one_metric_label,
);

/// What `sigil serve` does before closing its pool: every event recorded
/// is in the database when `drain` returns.
async fn draining_the_audit_queue_stores_every_event_before_shutdown(app: TestApp) {
    let now = sigil::clock::Clock::now(&app.clock);
    for i in 0..50 {
        let target = format!("drain-{i}");
        app.sigil.audit.record(
            now,
            "test",
            "test.drained",
            Some(&target),
            serde_json::json!({}),
        );
    }
    app.sigil.audit.drain(Duration::from_secs(10)).await;
    let stored = app.sigil.store.recent_audit(1000).await.unwrap();
    let drained = stored.iter().filter(|e| e.action == "test.drained").count();
    assert_eq!(
        drained, 50,
        "every recorded event is stored once drain returns"
    );
}

async fn every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept(app: TestApp) {
    // A generated id is a random (version 4) UUID, fresh for each request.
    let generated = |response: &reqwest::Response| {
        let id = response.headers()["x-request-id"].to_str().unwrap();
        let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("{id:?}: {e}"));
        assert_eq!(uuid.get_version_num(), 4, "{id}");
        uuid
    };
    let fresh = app.get("/healthz").send().await.unwrap();
    let id = generated(&fresh);
    let kept = app
        .get("/.well-known/jwks.json")
        .header("x-request-id", "trace-42.a:b")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-42.a:b");
    let hostile = app
        .get("/healthz")
        .header("x-request-id", "evil\" injected=1")
        .send()
        .await
        .unwrap();
    // Replaced by a generated one, not echoed nor dropped.
    let replaced = generated(&hostile);
    let missing = app.get("/nope").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let other = generated(&missing);
    assert!(id != replaced && replaced != other && id != other);
}

async fn health_and_readiness_report_the_database_keys_and_schema(app: TestApp) {
    let health = app.get("/healthz").send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body = json(ready).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["checks"],
        serde_json::json!({"database": true, "migrations": true, "keys": true})
    );
}

async fn metrics_count_requests_tokens_failures_and_describe_state(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    app.access_token(&client, "alice").await;
    assert_eq!(
        app.password_grant(&client, "alice", "wrong password")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let response = app.get("/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for needle in [
        r#"sigil_http_requests_total{route="/oauth/token",method="POST",status="200"}"#,
        "sigil_http_request_duration_seconds_bucket",
        r#"sigil_tokens_issued_total{grant="password",alg="RS256"}"#,
        r#"sigil_login_failures_total{reason="invalid_grant",grant="password"}"#,
        r#"sigil_keys{state="active"}"#,
        "sigil_argon2_queue_depth",
        r#"sigil_db_pool_connections{state="max"}"#,
        "sigil_denylist_entries",
        "sigil_key_next_transition_seconds",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

async fn methods_a_client_makes_up_share_one_metric_label(app: TestApp) {
    // Any token is a valid method; each must not become a series of its own.
    for made_up in ["SIGILXA", "SIGILXB", "SIGILXC"] {
        let method = reqwest::Method::from_bytes(made_up.as_bytes()).unwrap();
        let response = app
            .http
            .request(method, app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("SIGILX"), "a made-up method became a label");
    assert!(
        text.contains(
            r#"sigil_http_requests_total{route="/.well-known/jwks.json",method="other",status="405"}"#
        ),
        "{text}"
    );
}

async fn the_audit_trail_records_logins_tokens_and_revocations(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let session = app.login(&client, "alice").await;
    app.password_grant(&client, "alice", "not the password")
        .await;
    app.revoke(&client, session["refresh_token"].as_str().unwrap())
        .await;
    let wanted = [
        "user.registered",
        "token.issued",
        "login.failed",
        "token.revoked",
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events = app.sigil.store.recent_audit(50).await.unwrap();
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        if wanted.iter().all(|w| actions.contains(w)) {
            let issued = events.iter().find(|e| e.action == "token.issued").unwrap();
            assert_eq!(issued.actor, "client:web");
            let detail: serde_json::Value = serde_json::from_str(&issued.detail).unwrap();
            assert_eq!(detail["grant"], "password");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "audit events not stored: {actions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn with_an_admin_listener_metrics_leave_the_public_one() {
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.admin_listen = Some(admin_port))
        .await
        .unwrap();
    assert_eq!(
        app.get("/metrics").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let listener = tokio::net::TcpListener::bind(admin_port).await.unwrap();
    let router = sigil::http::admin_app(Arc::clone(&app.sigil));
    tokio::spawn(sigil::http::serve_router(
        listener,
        router,
        app.sigil.config.http.clone(),
        std::future::pending(),
    ));
    let admin = reqwest::get(format!("http://{admin_port}/metrics"))
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    assert!(admin.text().await.unwrap().contains("sigil_keys"));
}

/// `sigil serve` as a child process, with its stderr collected.
struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(envs: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sigil"))
            .arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .env("SIGIL_LISTEN", "127.0.0.1:0")
            .envs(envs.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listen=").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    let _ = tx.send(addr);
                } else if let Some(rest) = line.split(r#""listen":""#).nth(1) {
                    let _ = tx.send(rest.split('"').next().unwrap_or_default().to_string());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("sigil started");
        Server {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(server_dir: &std::path::Path, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(args)
        .current_dir(server_dir)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn no_password_secret_or_token_ever_reaches_the_logs() {
    let server = Server::start(&[
        ("RUST_LOG", "trace"),
        ("SIGIL_LOG_FORMAT", "json"),
        ("SIGIL_ARGON2__MEMORY_KIB", "256"),
        ("SIGIL_ARGON2__ITERATIONS", "1"),
    ]);
    let dir = server._dir.path();
    let created = cli(
        dir,
        &[
            "clients",
            "create",
            "web",
            "--grant-types",
            "password,refresh_token",
            "--scopes",
            "read",
        ],
        "",
    );
    let secret = created
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .to_string();
    let http = reqwest::Client::new();
    let register = http
        .post(server.url("/users"))
        .json(&serde_json::json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), StatusCode::CREATED);
    let login: serde_json::Value = http
        .post(server.url("/oauth/token"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["access_token"].as_str().unwrap().to_string();
    let refresh = login["refresh_token"].as_str().unwrap().to_string();
    http.get(server.url("/users/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    http.post(server.url("/oauth/token"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    http.post(server.url("/oauth/introspect"))
        .basic_auth("web", Some(&secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    http.post(server.url("/oauth/token"))
        .basic_auth("web", Some("wrong-secret-xyz"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.contains("token.issued"),
        "the test captured the request logs"
    );
    let signature = access.rsplit('.').next().unwrap();
    for (what, needle) in [
        ("password", PASSWORD),
        ("client secret", secret.as_str()),
        ("wrong secret", "wrong-secret-xyz"),
        ("access token signature", signature),
        ("refresh token", &refresh[9..]),
        ("Authorization header", "Basic "),
        ("Authorization header", "Bearer ey"),
    ] {
        assert!(!log.contains(needle), "the logs contain the {what}");
    }
}

#[tokio::test]
async fn sigterm_under_load_lets_every_request_in_flight_finish() {
    let server = Server::start(&[
        // Slow hashes with one slot: logins queue, so many are in flight.
        ("SIGIL_ARGON2__MEMORY_KIB", "8192"),
        ("SIGIL_ARGON2__ITERATIONS", "3"),
        ("SIGIL_ARGON2__MAX_CONCURRENT", "1"),
    ]);
    cli(
        server._dir.path(),
        &[
            "clients",
            "create",
            "app",
            "--public",
            "--grant-types",
            "password,refresh_token",
        ],
        "",
    );
    let http = reqwest::Client::new();
    let register = http
        .post(server.url("/users"))
        .json(&serde_json::json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), StatusCode::CREATED);
    let mut in_flight = Vec::new();
    for _ in 0..16 {
        let request = http
            .post(server.url("/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send();
        in_flight.push(tokio::spawn(request));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.signal("TERM");
    let mut finished = 0;
    for request in in_flight {
        let response = request.await.unwrap().expect("no in-flight request fails");
        assert_eq!(response.status(), StatusCode::OK);
        finished += 1;
    }
    assert_eq!(finished, 16);
    let mut server = server;
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exits cleanly after draining: {status:?}");
    assert!(server.log.lock().unwrap().contains("sigil stopped"));
}

#[tokio::test]
async fn with_a_certificate_the_listener_speaks_https() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let server = Server::start(&[
        ("SIGIL_TLS_CERT", cert_path.to_str().unwrap()),
        ("SIGIL_TLS_KEY", key_path.to_str().unwrap()),
        ("SIGIL_ISSUER", "https://localhost"),
    ]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(root)
        .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let response = https
        .get(format!("https://localhost:{port}/.well-known/jwks.json"))
        .send()
        .await;
    let response = response.unwrap_or_else(|e| panic!("{e:?}\n{}", server.log.lock().unwrap()));
    assert_eq!(response.status(), StatusCode::OK);
    // The request-head limits hold over TLS too.
    let mut crowded = reqwest::header::HeaderMap::new();
    for i in 0..200 {
        crowded.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_static("x"),
        );
    }
    let refused = https
        .get(format!("https://localhost:{port}/healthz"))
        .headers(crowded)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let oversized = https
        .get(format!("https://localhost:{port}/healthz"))
        .header("x-filler", "a".repeat(64 * 1024))
        .send()
        .await;
    assert!(
        oversized.is_err()
            || oversized.unwrap().status() == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "an oversized head is not served over TLS"
    );
    let plain = reqwest::get(server.url("/healthz")).await;
    assert!(
        plain.is_err() || plain.unwrap().status() != StatusCode::OK,
        "plain HTTP is not served"
    );
}

async fn failed_login_address(app: &TestApp, forwarded: &str) -> String {
    let client = crate::helpers::TestClient {
        id: "web".into(),
        secret: None,
    };
    let response = app
        .post("/oauth/token")
        .header("x-forwarded-for", forwarded)
        .form(&[
            ("grant_type", "password"),
            ("client_id", client.id.as_str()),
            ("username", "alice"),
            ("password", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events = app.sigil.store.recent_audit(10).await.unwrap();
        if let Some(e) = events.iter().rev().find(|e| e.action == "login.failed") {
            let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
            return detail["client_addr"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "login.failed not audited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    let direct = TestApp::spawn(Backend::Sqlite).await.unwrap();
    direct
        .client(
            "web",
            true,
            &[sigil::clients::GrantType::Password],
            "",
            None,
        )
        .await;
    assert_eq!(
        failed_login_address(&direct, "203.0.113.9").await,
        "127.0.0.1",
        "a spoofed header is ignored"
    );

    let proxied = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".into()]
    })
    .await
    .unwrap();
    proxied
        .client(
            "web",
            true,
            &[sigil::clients::GrantType::Password],
            "",
            None,
        )
        .await;
    // The client's own claim (198.51.100.1) is to the left of what the proxy saw.
    assert_eq!(
        failed_login_address(&proxied, "198.51.100.1, 203.0.113.9").await,
        "203.0.113.9"
    );
}
