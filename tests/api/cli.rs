//! The `sigil` binary: first start, configuration errors, and the operator
//! commands for clients and users.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{TestApp, TestClient, json};
use crate::on_both_backends;

/// The binary with a clean environment: only what a test passes applies.
pub(crate) fn sigil(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sigil"));
    command
        .current_dir(dir)
        .env_clear()
        .env("SIGIL_ARGON2__MEMORY_KIB", "256")
        .env("SIGIL_ARGON2__ITERATIONS", "1");
    command
}

pub(crate) fn run(mut command: Command, stdin: Option<&str>) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("sigil runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("sigil exits")
}

#[tokio::test]
async fn serve_on_a_fresh_directory_creates_its_database_kek_and_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = sigil(dir.path())
        .arg("serve")
        .env("SIGIL_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listen=").nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("sigil reports its address");

    let jwks: serde_json::Value = reqwest::get(format!("http://{addr}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert!(
        algs.contains(&"RS256") && algs.contains(&"EdDSA"),
        "{algs:?}"
    );
    let metadata: serde_json::Value = reqwest::get(format!(
        "http://{addr}/.well-known/oauth-authorization-server"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        metadata["issuer"],
        format!("http://{addr}"),
        "issuer defaults to http://<bound address>"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(
        dir.path().join("sigil.db").exists(),
        "SQLite database created"
    );
    let kek = dir.path().join("keys/kek");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // No private key material in plaintext anywhere on disk.
    let db = std::fs::read(dir.path().join("sigil.db")).unwrap();
    for marker in [&b"PRIVATE KEY"[..], &[0x30, 0x82, 0x04][..]] {
        assert!(
            !db.windows(marker.len()).any(|w| w == marker),
            "plaintext key material in the database"
        );
    }
}

#[test]
fn an_unknown_key_or_a_bad_value_stops_start_up_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("SIGIL_LISTNE", "127.0.0.1:1")], "listne"),
        (
            vec![("SIGIL_ACCESS_TOKEN_TTL", "forever")],
            "access_token_ttl",
        ),
        (vec![("SIGIL_DEFAULT_ALG", "HS256")], "default_alg"),
        (vec![("SIGIL_DATABASE_URL", "mysql://x")], "database_url"),
        (vec![("SIGIL_RSA_BITS", "1024")], "rsa_bits"),
    ];
    for (env, named) in cases {
        let mut command = sigil(dir.path());
        command.arg("migrate").envs(env.clone());
        let out = run(command, None);
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(!out.status.success(), "{env:?}");
        assert!(stderr.contains(named), "{env:?}: {stderr}");
    }
    std::fs::write(
        dir.path().join("sigil.toml"),
        "listen = \"127.0.0.1:0\"\n[argon2]\nmemry_kib = 1\n",
    )
    .unwrap();
    let mut command = sigil(dir.path());
    command.args(["--config", "sigil.toml", "migrate"]);
    let out = run(command, None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("memry_kib"));
    assert!(
        !dir.path().join("sigil.db").exists(),
        "a bad config touches nothing"
    );
}

on_both_backends!(
    clients_and_users_created_on_the_command_line_work_at_the_token_endpoint,
    a_rotated_client_secret_overlaps_then_expires_and_a_disabled_client_is_refused,
    client_lifetimes_on_the_command_line_are_stored_and_bounded_by_the_servers,
);

async fn client_lifetimes_on_the_command_line_are_stored_and_bounded_by_the_servers(app: TestApp) {
    let cli = |args: &[&str]| {
        let mut command = sigil(app.dir.path());
        command
            .args(args)
            .env("SIGIL_DATABASE_URL", &app.database_url)
            .env("SIGIL_ACCESS_TOKEN_TTL", "10m");
        run(command, None)
    };
    let out = cli(&[
        "clients",
        "create",
        "greedy",
        "--grant-types",
        "password,refresh_token",
        "--access-token-ttl",
        "11m",
    ]);
    assert!(!out.status.success(), "longer than the server's is refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("access_token_ttl"), "{stderr}");
    let out = cli(&[
        "clients",
        "create",
        "greedy",
        "--grant-types",
        "password,refresh_token",
        "--refresh-token-ttl",
        "31days",
    ]);
    assert!(
        !out.status.success(),
        "a login longer than the server's too"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refresh_token_ttl"), "{stderr}");

    let out = cli(&[
        "clients",
        "create",
        "brief",
        "--grant-types",
        "password,refresh_token",
        "--access-token-ttl",
        "5m",
        "--refresh-token-ttl",
        "8h",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .to_string();

    let out = cli(&["clients", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "nothing stored for refused clients: {list}");
    assert_eq!(rows[0]["access_token_ttl_seconds"], 300);
    assert_eq!(rows[0]["refresh_token_ttl_seconds"], 8 * 3600);
    let table = String::from_utf8_lossy(&cli(&["clients", "list"]).stdout).to_string();
    assert!(table.contains("5m") && table.contains("8h"), "{table}");

    app.user("alice").await;
    let brief = TestClient {
        id: "brief".into(),
        secret: Some(secret),
    };
    assert_eq!(app.login(&brief, "alice").await["expires_in"], 300);
}

async fn clients_and_users_created_on_the_command_line_work_at_the_token_endpoint(app: TestApp) {
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut command = sigil(app.dir.path());
        command
            .args(args)
            .env("SIGIL_DATABASE_URL", &app.database_url);
        run(command, stdin)
    };

    let out = cli(
        &[
            "users",
            "create",
            "Bob",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(
        &[
            "users",
            "create",
            "carol",
            "--email",
            "nope",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("email"));

    let out = cli(
        &[
            "clients",
            "create",
            "cli-app",
            "--scopes",
            "read write",
            "--grant-types",
            "password,refresh_token",
            "--alg",
            "EdDSA",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("secret printed")
        .to_string();
    assert!(secret.starts_with("sigil_cs_"));

    let chosen = "an operator-chosen secret of 40+ chars!!";
    let out = cli(
        &[
            "clients",
            "create",
            "automation",
            "--grant-types",
            "password,refresh_token",
            "--secret-stdin",
        ],
        Some(chosen),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(chosen),
        "a given secret is not echoed"
    );
    let out = cli(
        &[
            "clients",
            "create",
            "weak",
            "--grant-types",
            "password",
            "--secret-stdin",
        ],
        Some("short"),
    );
    assert!(!out.status.success(), "short secrets are refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 32"), "{stderr}");
    let out = cli(
        &["clients", "create", "cli-app", "--grant-types", "password"],
        None,
    );
    assert!(!out.status.success(), "duplicate client ids are refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already"), "{stderr}");

    for (id, secret) in [("cli-app", secret.as_str()), ("automation", chosen)] {
        let client = TestClient {
            id: id.into(),
            secret: Some(secret.into()),
        };
        let response = app
            .password_grant(&client, "bob", "a long enough password")
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{id}");
        if id == "cli-app" {
            let token = json(response).await["access_token"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(
                jsonwebtoken::decode_header(&token).unwrap().alg,
                jsonwebtoken::Algorithm::EdDSA
            );
        }
    }

    let out = cli(&["clients", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["automation", "cli-app"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("sigil_cs_"),
        "secrets are never listed"
    );
}

#[tokio::test]
async fn key_commands_show_dry_run_rotate_refuse_and_audit() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let keys_dir = app.sigil.config.keys_dir.display().to_string();
    let cli = |args: &[&str]| {
        let mut command = sigil(app.dir.path());
        command
            .args(args)
            .env("SIGIL_DATABASE_URL", &app.database_url)
            .env("SIGIL_KEYS_DIR", &keys_dir);
        run(command, None)
    };
    let list =
        |out: Output| -> Vec<serde_json::Value> { serde_json::from_slice(&out.stdout).unwrap() };

    let before = list(cli(&["keys", "list", "--json"]));
    assert_eq!(before.len(), 2);
    assert!(
        before
            .iter()
            .all(|k| k["state"] == "active" && k["private_key_present"] == true)
    );

    let dry = cli(&["keys", "rotate", "--alg", "EdDSA", "--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        String::from_utf8_lossy(&dry.stdout).starts_with("dry run: would create a new EdDSA key")
    );
    assert_eq!(
        list(cli(&["keys", "list", "--json"])).len(),
        2,
        "the dry run changed nothing"
    );

    let done = cli(&["keys", "rotate", "--alg", "EdDSA"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let after = list(cli(&["keys", "list", "--json"]));
    assert_eq!(after.iter().filter(|k| k["state"] == "pending").count(), 1);

    let rsa = before.iter().find(|k| k["alg"] == "RS256").unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = cli(&["keys", "retire", &rsa]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("only RS256 signing key"), "{why}");

    let table = cli(&["keys", "list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with("KID") && text.contains("pending") && text.contains("Z "),
        "{text}"
    );

    let audit = cli(&["audit", "tail", "--json"]);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "key.rotation_scheduled" && e["actor"] == "cli")
    );

    let jwks = cli(&["keys", "export-public"]);
    let jwks: serde_json::Value = serde_json::from_slice(&jwks.stdout).unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        3,
        "the pending key is published"
    );
}

#[tokio::test]
async fn audit_tail_follow_prints_events_as_they_are_stored() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let keys_dir = app.sigil.config.keys_dir.display().to_string();
    let command = |args: &[&str]| {
        let mut command = sigil(app.dir.path());
        command
            .args(args)
            .env("SIGIL_DATABASE_URL", &app.database_url)
            .env("SIGIL_KEYS_DIR", &keys_dir);
        command
    };
    let mut follower = command(&["audit", "tail", "--follow", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });

    let rotated = run(command(&["keys", "rotate", "--alg", "EdDSA"]), None);
    assert!(rotated.status.success());

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => {
                let event: serde_json::Value = serde_json::from_str(&line).unwrap();
                if event["action"] == "key.rotation_scheduled" {
                    break true;
                }
                seen.push(line);
            }
            Err(_) => break false,
        }
    };
    follower.kill().unwrap();
    follower.wait().unwrap();
    assert!(found, "the rotation never appeared; saw {seen:?}");
}

async fn a_rotated_client_secret_overlaps_then_expires_and_a_disabled_client_is_refused(
    app: TestApp,
) {
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut command = sigil(app.dir.path());
        command
            .args(args)
            .env("SIGIL_DATABASE_URL", &app.database_url);
        let out = run(command, stdin);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (old, new) = (
        "the-old-secret-0123456789abcdef-0123",
        "the-new-secret-0123456789abcdef-0123",
    );
    cli(
        &[
            "clients",
            "create",
            "svc",
            "--grant-types",
            "client_credentials",
            "--secret-stdin",
        ],
        Some(old),
    );
    let grant = |secret: &'static str| {
        app.post("/oauth/token")
            .basic_auth("svc", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(grant(old).await.unwrap().status(), StatusCode::OK);

    let out = cli(
        &[
            "clients",
            "rotate-secret",
            "svc",
            "--overlap",
            "1h",
            "--secret-stdin",
        ],
        Some(new),
    );
    assert!(out.contains("the previous secret works until"), "{out}");
    // The server holds clients in memory: a change by another process holds
    // once the change signal (Postgres) or the cache TTL (SQLite) says so.
    app.until_client_change_holds("the new secret", || async {
        grant(new).await.unwrap().status() == StatusCode::OK
    })
    .await;
    assert_eq!(
        grant(old).await.unwrap().status(),
        StatusCode::OK,
        "the overlap"
    );

    // The CLI stamped the overlap with the system clock, some seconds after
    // the app's manual clock started (more on a loaded machine): step well
    // past the hour.
    app.clock.advance(3600 + 300);
    let expired = grant(old).await.unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(expired).await["error"], "invalid_client");
    assert_eq!(grant(new).await.unwrap().status(), StatusCode::OK);

    cli(&["clients", "disable", "svc"], None);
    app.until_client_change_holds("disabling", || async {
        grant(new).await.unwrap().status() == StatusCode::UNAUTHORIZED
    })
    .await;
    cli(&["clients", "enable", "svc"], None);
    app.until_client_change_holds("enabling", || async {
        grant(new).await.unwrap().status() == StatusCode::OK
    })
    .await;

    // A generated secret is printed once; a public client has none to rotate.
    // The CLI's clock is the real one: the first rotation's overlap still
    // runs, so another rotation needs --force.
    let mut command = sigil(app.dir.path());
    command
        .args(["clients", "rotate-secret", "svc"])
        .env("SIGIL_DATABASE_URL", &app.database_url);
    let refused = run(command, None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("still works"));
    let printed = cli(&["clients", "rotate-secret", "svc", "--force"], None);
    assert!(printed.contains("client_secret: sigil_cs_"), "{printed}");
    cli(
        &[
            "clients",
            "create",
            "spa",
            "--public",
            "--grant-types",
            "password",
        ],
        None,
    );
    let mut command = sigil(app.dir.path());
    command
        .args(["clients", "rotate-secret", "spa"])
        .env("SIGIL_DATABASE_URL", &app.database_url);
    let public = run(command, None);
    assert!(!public.status.success());
    assert!(String::from_utf8_lossy(&public.stderr).contains("public client"));
}
