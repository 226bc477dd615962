//! Start-up: what Sigil refuses to start with, and what it leaves untouched.

use std::sync::Arc;

use sigil::Sigil;
use sigil::clock::SystemClock;

use crate::helpers::{Backend, TestApp, TestDatabase, test_config};

#[tokio::test]
async fn a_wrong_kek_stops_start_up_and_changes_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let config = app.sigil.config.clone();
    let keys_before = app.sigil.store.list_keys().await.unwrap();
    let (_, other_kek) = sigil::keys::Kek::generate().unwrap();
    let mut wrong = config.clone();
    wrong.kek = Some(other_kek);
    let error = Sigil::open(wrong, Arc::new(SystemClock))
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
