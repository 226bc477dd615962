//! Any string given to the access-token verifier: it never panics, and
//! nothing but the genuine token (in the seed corpus) ever verifies, since
//! the fuzzer has no private key.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use sigil::clock::{Clock, SystemClock};
use sigil::config::Config;
use sigil::keys::{Alg, KeySet};
use sigil::tokens::{AccessClaims, sign_access_token, verify_access_token};

struct Fixture {
    keys: Arc<KeySet>,
    issuer: String,
    now: i64,
    genuine: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let mut config = Config::default();
    config.database_url = format!("sqlite://{}", dir.join("sigil.db").display());
    config.keys_dir = dir.join("keys");
    config.issuer = "https://sigil.example".into();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sigil = runtime
        .block_on(sigil::Sigil::open(
            config.validated().expect("a valid config"),
            Arc::new(SystemClock),
        ))
        .expect("sigil opens");
    let keys = sigil.keys.current();
    let now = SystemClock.now();
    let genuine = [Alg::RS256, Alg::EdDSA]
        .into_iter()
        .map(|alg| {
            let claims = AccessClaims {
                iss: "https://sigil.example".into(),
                sub: "user-1".into(),
                aud: "https://sigil.example".into(),
                exp: now + 3600,
                iat: now,
                nbf: now,
                jti: format!("jti-{alg}"),
                client_id: "web".into(),
                scope: Some("read".into()),
                sid: None,
                acr: None,
                amr: None,
                cnf: None,
                act: None,
            };
            sign_access_token(keys.signing_key(alg).expect("key"), &claims).expect("signed")
        })
        .collect();
    Fixture { keys, issuer: "https://sigil.example".into(), now, genuine }
});

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if verify_access_token(&f.keys, text, &f.issuer, None, f.now).is_ok() {
        assert!(f.genuine.iter().any(|g| g == text), "a forged token verified: {text}");
    }
});
