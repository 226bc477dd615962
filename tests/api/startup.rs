//! Start-up: what Sigil refuses to start with, and what it leaves untouched.

use std::sync::Arc;

use sigil::Sigil;
use sigil::clock::SystemClock;

use crate::helpers::{Backend, TestApp, TestDatabase, test_config};
use crate::on_both_backends;

#[tokio::test]
async fn a_wrong_kek_stops_start_up_and_changes_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let config = app.sigil.config.clone();
    let keys_before = app.sigil.store.list_keys().await.unwrap();
    let (_, other_kek) = sigil::keys::Kek::generate().unwrap();
    let mut wrong = config.clone().into_inner();
    wrong.kek = Some(other_kek);
    let error = Sigil::open(wrong.validated().unwrap(), Arc::new(SystemClock))
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("cannot be decrypted"), "{error}");

    // A missing KEK file with keys already stored is refused too, and no new
    // KEK is made up in its place.
    std::fs::remove_file(config.kek_file()).unwrap();
    let error = Sigil::open(config.clone(), Arc::new(SystemClock))
        .await
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("key-encryption key is missing"),
        "{error}"
    );
    assert!(!config.kek_file().exists());
    assert_eq!(
        app.sigil.store.list_keys().await.unwrap(),
        keys_before,
        "keys untouched"
    );
}

#[tokio::test]
async fn on_postgres_sigil_will_not_invent_a_kek_that_other_nodes_lack() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&db.url, dir.path()).validated().unwrap();
    let error = Sigil::open(config.clone(), Arc::new(SystemClock))
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("sigil keys new-kek"), "{error}");
    assert!(!config.kek_file().exists());
}

/// A first start that fails half-way through creating the schema (here: a
/// table of a later migration is in the way, as a kill would leave it
/// half-made) leaves the database as it found it, with no migration
/// recorded; once the obstacle is gone, the next start creates everything.
async fn a_first_start_that_fails_mid_schema_leaves_no_partial_schema(empty: Empty) {
    let (url, dir, kek) = (empty.url.as_str(), empty.dir.path(), empty.kek.clone());
    use crate::helpers::{execute_sql, scalar};
    execute_sql(url, "CREATE TABLE audit_events (in_the_way INTEGER)").await;
    let mut config = test_config(url, dir);
    config.kek = kek;
    let config = config.validated().unwrap();
    let error = Sigil::open(config.clone(), Arc::new(SystemClock))
        .await
        .err()
        .expect("the migration in the way fails");
    assert!(error.to_string().contains("migration"), "{error}");
    let recorded = if url.starts_with("sqlite:") {
        "SELECT count(*) FROM sqlite_master WHERE name IN ('_sqlx_migrations', 'users')"
    } else {
        "SELECT count(*) FROM pg_tables WHERE tablename IN ('_sqlx_migrations', 'users')"
    };
    assert_eq!(
        scalar(url, recorded).await,
        0,
        "neither the migration record nor an earlier migration's table is left"
    );
    execute_sql(url, "DROP TABLE audit_events").await;
    let sigil = Sigil::open(config, Arc::new(SystemClock))
        .await
        .expect("the next first start creates the schema");
    assert_eq!(sigil.store.list_keys().await.unwrap().len(), 2);
    sigil.store.close().await;
}

/// An empty database (and the directory for its keys) on `backend`, as a
/// first start finds it.
struct Empty {
    url: String,
    dir: tempfile::TempDir,
    /// Postgres needs a KEK given; SQLite creates its own.
    kek: Option<secrecy::SecretString>,
    _db: Option<TestDatabase>,
}

async fn empty(backend: Backend) -> Option<Empty> {
    let dir = tempfile::tempdir().unwrap();
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("sigil.db").display());
            // The file exists (empty) before the first start, as a kill leaves it.
            std::fs::write(dir.path().join("sigil.db"), b"").unwrap();
            Some(Empty {
                url,
                dir,
                kek: None,
                _db: None,
            })
        }
        Backend::Postgres => {
            let db = TestDatabase::create().await?;
            let (_, kek) = sigil::keys::Kek::generate().unwrap();
            Some(Empty {
                url: db.url.clone(),
                dir,
                kek: Some(kek),
                _db: Some(db),
            })
        }
    }
}

on_both_backends!(spawn = super::empty; a_first_start_that_fails_mid_schema_leaves_no_partial_schema);

/// Two nodes starting at once on one empty database: one creates the
/// schema, the other waits for it and finds it complete; both serve.
#[tokio::test]
async fn two_nodes_starting_together_on_an_empty_postgres_both_start() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (_, kek) = sigil::keys::Kek::generate().unwrap();
    let open = |dir: &std::path::Path| {
        let mut config = test_config(&db.url, dir);
        config.kek = Some(kek.clone());
        Sigil::open(config.validated().unwrap(), Arc::new(SystemClock))
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, second) = tokio::join!(open(a.path()), open(b.path()));
    let (first, second) = (
        first.expect("node A starts"),
        second.expect("node B starts"),
    );
    assert!(first.store.schema_is_current().await.unwrap());
    assert_eq!(
        first.store.list_keys().await.unwrap(),
        second.store.list_keys().await.unwrap(),
        "one key set"
    );
    first.store.close().await;
    second.store.close().await;
}
