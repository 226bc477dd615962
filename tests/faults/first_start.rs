//! `kill -9` at every moment of the very first start: creating the schema
//! is all-or-nothing, so whatever the kill interrupted, the next `serve`
//! starts on it (creating the schema again if it must) and works.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sqlx::Connection;

use crate::harness::{ISSUER, Node, create_app_client, json_of, sigil_command};
use crate::pg::PgCluster;

/// This sigil's migrations (the files of one backend; both have the same
/// list): a schema killed half-way would show fewer.
fn migrations() -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("store/migrations/sqlite");
    std::fs::read_dir(dir)
        .expect("the store's migrations")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count() as i64
}

/// When, after the first `serve` is spawned, it is killed. Creating the
/// schema takes some 10-40 ms here and generating the RSA key longer, so
/// these land before, during and after both (the report says where).
fn delays() -> Vec<u64> {
    let step = match crate::harness::scale().kill_rounds {
        n if n > 8 => 2,
        _ => 5,
    };
    (0..=60)
        .step_by(step)
        .chain([80, 100, 150, 200, 300])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_kill_at_any_moment_of_the_first_start_leaves_a_database_serve_accepts() {
    let mut stages = Vec::new();
    for delay in delays() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sigil.db").display());
        stages.push(kill_then_start(dir.path(), &url, delay).await);
    }
    report("SQLite", &stages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_kill_at_any_moment_of_the_first_start_leaves_a_database_serve_accepts() {
    let Some(pg) = PgCluster::start() else { return };
    let mut admin = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let mut stages = Vec::new();
    for (i, delay) in delays().into_iter().enumerate() {
        let name = format!("first_start_{i}");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = pg.url();
        let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
        let dir = tempfile::tempdir().unwrap();
        // Nodes on Postgres are given their KEK; everything else is the
        // first start's to create.
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        let kek = sigil_command(dir.path(), &url, &["keys", "new-kek"], None);
        std::fs::write(dir.path().join("keys/kek"), kek.trim()).unwrap();
        stages.push(kill_then_start(dir.path(), &url, delay).await);
    }
    report("Postgres", &stages);
}

/// How far a killed first start got: the migrations it recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stage {
    delay: u64,
    migrations: i64,
}

async fn kill_then_start(dir: &Path, url: &str, delay: u64) -> Stage {
    let mut first = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("SIGIL_LISTEN", "127.0.0.1:0")
        .env("SIGIL_ISSUER", ISSUER)
        .env("SIGIL_DATABASE_URL", url)
        .env("SIGIL_KEYS_DIR", "keys")
        .env("SIGIL_RSA_BITS", "2048")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sigil starts");
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let _ = first.kill();
    let _ = first.wait();

    let migrations = recorded_migrations(url).await;
    let all = self::migrations();
    assert!(
        migrations == 0 || migrations == all,
        "killed {delay} ms into the first start: {migrations} of {all} migrations recorded \
         (creating the schema must be all-or-nothing)"
    );
    // The next start accepts what the kill left (Node::start fails the
    // test with sigil's log if it exits), and the server works.
    let node = Node::start(dir, url, &[]).await;
    assert!(
        node.wait_ready(Duration::from_secs(30)).await,
        "ready after a kill {delay} ms into the first start"
    );
    create_app_client(dir, url);
    let registered = node.register("first", "password-first").await.unwrap();
    assert_eq!(registered.status(), 201, "after a kill at {delay} ms");
    let session = json_of(node.login("first", "password-first").await.unwrap()).await;
    assert!(session["access_token"].is_string(), "{session}");
    Stage { delay, migrations }
}

/// Rows of `_sqlx_migrations`, or 0 when the table does not exist (the
/// database as it was, or the file not even created).
async fn recorded_migrations(url: &str) -> i64 {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if !Path::new(path).exists() {
            return 0;
        }
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        let exists: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE name = '_sqlx_migrations'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if exists == 0 {
            return 0;
        }
        return sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    }
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    if !exists {
        return 0;
    }
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

fn report(backend: &str, stages: &[Stage]) {
    let before = stages.iter().filter(|s| s.migrations == 0).count();
    let after = stages.len() - before;
    let last_before = stages
        .iter()
        .filter(|s| s.migrations == 0)
        .map(|s| s.delay)
        .max();
    println!(
        "FAULTS first start {backend}: {} kills from 0 to {} ms; {before} left no schema (the last at \
         {last_before:?} ms), {after} the whole schema, none a part; every restart ready and serving",
        stages.len(),
        stages.iter().map(|s| s.delay).max().unwrap_or(0)
    );
}
