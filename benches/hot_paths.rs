//! Criterion micro-benchmarks of Sigil's hot paths, each next to the raw
//! primitive that bounds it, so that the ratio to the limit is visible in
//! one run (docs/BENCHMARKS.md records the figures):
//!
//! | group | sigil | bounded by |
//! |---|---|---|
//! | `sign/{RS256,EdDSA}` | `tokens::sign_access_token` | one `ring` signature of the same bytes |
//! | `refresh` | mint, hash, successor of a refresh token | `ring` random fill, SHA-256, HMAC-SHA256 |
//! | `password` | `Passwords::verify` (semaphore + blocking pool) | one raw argon2id hash at the configured defaults |
//! | `verify/{RS256,EdDSA}` | `tokens::verify_access_token` | `jsonwebtoken::decode` with the same key |
//! | `deny_list` | `DenyList::is_revoked` (100k entries) | one `moka` lookup |
//! | `http` | whole requests through `http::app` (no socket) | an axum router serving a static body |
//!
//! The `http` group runs a real `Sigil` on SQLite in a temporary folder
//! and calls the router with `oneshot`: the in-process cost of each
//! endpoint without the TCP and HTTP/1 parsing that the load harness
//! (scripts/load/run.sh) adds.
//!
//! Run: cargo bench -p sigil --bench hot_paths   (about two minutes)

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, Validation};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use secrecy::SecretString;
use sigil::clients::{GrantType, NewClient, create_client, find_client};
use sigil::clock::{Clock, SystemClock};
use sigil::config::{Argon2Config, Config, PasswordPolicy};
use sigil::keys::{Alg, SigningKey, generate};
use sigil::oauth::{Params, introspect};
use sigil::passwords::{Password, Passwords};
use sigil::scope::Scopes;
use sigil::tokens::{
    AccessClaims, hash_refresh_token, mint_refresh_token, sign_access_token,
    successor_refresh_token, verify_access_token,
};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const CLIENT_SECRET: &str = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz";
const PASSWORD: &str = "correct horse battery staple";
/// Deny-list entries loaded before the lookups are measured.
const DENY_LIST_ENTRIES: usize = 100_000;

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: "0ea1bbbc-5b1c-4a39-8f43-6c1b0f1f5a3e".into(),
        aud: "http://127.0.0.1:8080".into(),
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: "U7Fs-aNnS5vh8UblzAOSEA".into(),
        client_id: "bench-app".into(),
        scope: Some("profile notes:read".into()),
        sid: Some("8c0e3f0e-64c3-4c0b-9e55-0f6b1a0c2d11".into()),
        acr: Some("urn:sigil:acr:1fa".into()),
        amr: Some(vec!["pwd".into()]),
        cnf: None,
        act: None,
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Access-token signing against one raw `ring` signature of the same
/// signing input (`header.payload`) with the same pre-parsed key.
fn sign(c: &mut Criterion) {
    let now = SystemClock.now();
    let claims = claims(now);
    for alg in [Alg::RS256, Alg::EdDSA] {
        let generated = generate(alg, 2048).expect("key");
        let key = SigningKey::from_pkcs8(&generated.kid, alg, &generated.pkcs8).expect("key");
        let token = sign_access_token(&key, &claims).expect("token");
        let signing_input = token.rsplit_once('.').expect("jws").0.as_bytes().to_vec();
        let mut group = c.benchmark_group(format!("sign/{alg}"));
        match alg {
            Alg::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(&generated.pkcs8).expect("rsa");
                let rng = SystemRandom::new();
                let mut signature = vec![0u8; pair.public().modulus_len()];
                group.bench_function("ring::RsaKeyPair::sign (raw)", |b| {
                    b.iter(|| {
                        pair.sign(
                            &RSA_PKCS1_SHA256,
                            &rng,
                            black_box(&signing_input),
                            &mut signature,
                        )
                        .expect("sign")
                    })
                });
            }
            Alg::EdDSA => {
                let pair =
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&generated.pkcs8).expect("ed25519");
                group.bench_function("ring::Ed25519KeyPair::sign (raw)", |b| {
                    b.iter(|| pair.sign(black_box(&signing_input)))
                });
            }
        }
        group.bench_function("sigil::tokens::sign_access_token", |b| {
            b.iter(|| sign_access_token(&key, black_box(&claims)).expect("token"))
        });
        group.finish();
    }
}

/// Refresh tokens: minting (256 random bits), the stored SHA-256, and the
/// derived successor (HMAC-SHA256), each against its bare primitive.
fn refresh(c: &mut Criterion) {
    let mut group = c.benchmark_group("refresh");
    let rng = SystemRandom::new();
    let token = mint_refresh_token();
    let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7u8; 32]);
    group.bench_function("ring SystemRandom::fill 32 bytes (raw)", |b| {
        b.iter(|| {
            let mut bytes = [0u8; 32];
            rng.fill(&mut bytes).expect("random");
            bytes
        })
    });
    group.bench_function("sigil::tokens::mint_refresh_token", |b| {
        b.iter(mint_refresh_token)
    });
    group.bench_function("ring::digest SHA-256 (raw)", |b| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA256, black_box(token.as_bytes())))
    });
    group.bench_function("sigil::tokens::hash_refresh_token", |b| {
        b.iter(|| hash_refresh_token(black_box(&token)))
    });
    group.bench_function("ring::hmac::sign HMAC-SHA256 (raw)", |b| {
        b.iter(|| ring::hmac::sign(&mac, black_box(token.as_bytes())))
    });
    group.bench_function("sigil::tokens::successor_refresh_token", |b| {
        b.iter(|| successor_refresh_token(&mac, black_box(&token)))
    });
    group.finish();
}

/// Password verification at the configured default argon2id parameters,
/// against one raw argon2id hash with the same parameters.
fn password(c: &mut Criterion) {
    let rt = runtime();
    let defaults = Argon2Config::default();
    let policy = PasswordPolicy::default();
    let passwords = Passwords::new(&defaults, &policy).expect("passwords");
    let parsed = Password::parse(SecretString::from(PASSWORD), &policy).expect("password");
    let stored = rt.block_on(passwords.hash(&parsed)).expect("hash");
    let params = argon2::Params::new(
        defaults.memory_kib,
        defaults.iterations,
        defaults.parallelism,
        Some(32),
    )
    .expect("params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = [42u8; 16];
    let presented = SecretString::from(PASSWORD);

    let mut group = c.benchmark_group(format!(
        "password/argon2id m={} t={} p={}",
        defaults.memory_kib, defaults.iterations, defaults.parallelism
    ));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("argon2::hash_password_into (raw)", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            argon
                .hash_password_into(black_box(PASSWORD.as_bytes()), &salt, &mut out)
                .expect("argon2");
            out
        })
    });
    group.bench_function("sigil::passwords::Passwords::verify", |b| {
        b.iter(|| {
            let ok = rt
                .block_on(passwords.verify(&presented, Some(black_box(&stored))))
                .expect("verify");
            assert!(ok);
        })
    });
    group.finish();
}

/// An in-process Sigil on SQLite with one confidential client per
/// algorithm, one user, and a deny-list of `DENY_LIST_ENTRIES` entries.
struct Fixture {
    rt: Runtime,
    sigil: Arc<sigil::Sigil>,
    _dir: tempfile::TempDir,
    /// An access token per algorithm, issued to the user through `bench-{alg}`.
    user_tokens: Vec<(Alg, String)>,
}

fn fixture() -> Fixture {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("sigil.db");
    let database_url = format!("sqlite://{}", db.display());
    let config = Config {
        database_url: database_url.clone(),
        keys_dir: dir.path().join("keys"),
        revocation_cache_capacity: DENY_LIST_ENTRIES as u64 * 2,
        ..Config::default()
    }
    .validated()
    .expect("config");
    let sigil = rt
        .block_on(sigil::Sigil::open(config, Arc::new(SystemClock)))
        .expect("open sigil");
    let now = SystemClock.now();
    let store = sigil.store.as_ref();
    let policy = PasswordPolicy::default();
    let user_tokens = rt.block_on(async {
        let user = sigil::users::create(
            store,
            &sigil.passwords,
            &policy,
            sigil::users::Registration {
                username: "alice".into(),
                email: "alice@example.com".into(),
                password: SecretString::from(PASSWORD),
            },
            now,
        )
        .await
        .expect("user");
        let mut tokens = Vec::new();
        for alg in [Alg::RS256, Alg::EdDSA] {
            let (client, _) = create_client(
                store,
                &sigil.config.max_client_lifetimes(),
                NewClient {
                    id: format!("bench-{alg}"),
                    grant_types: vec![
                        GrantType::Password,
                        GrantType::RefreshToken,
                        GrantType::ClientCredentials,
                    ],
                    scopes: Scopes::parse("profile").expect("scope"),
                    alg: Some(alg),
                    secret: Some(SecretString::from(CLIENT_SECRET)),
                    ..NewClient::default()
                },
                now,
            )
            .await
            .expect("client");
            let scope = Scopes::parse("profile").expect("scope");
            let grant = sigil::oauth::Grant::new(&user.id, &scope);
            let (token, _) =
                sigil::oauth::issue_access_token(&sigil, &client, grant, now).expect("token");
            tokens.push((alg, token));
        }
        // Fill the deny-list in one transaction, then load it the way a
        // node does at start-up.
        let pool = sqlx::SqlitePool::connect(&database_url)
            .await
            .expect("pool");
        let mut tx = pool.begin().await.expect("tx");
        for i in 0..DENY_LIST_ENTRIES {
            sqlx::query(
                "INSERT INTO revocations (kind, value, not_before, expires_at, created_at)
                 VALUES ('token', ?, NULL, ?, ?)",
            )
            .bind(format!("revoked-jti-{i}"))
            .bind(now + 3600)
            .bind(now)
            .execute(&mut *tx)
            .await
            .expect("insert revocation");
        }
        tx.commit().await.expect("commit");
        pool.close().await;
        sigil
            .deny_list
            .sync(store, now)
            .await
            .expect("deny-list sync");
        tokens
    });
    Fixture {
        rt,
        sigil,
        _dir: dir,
        user_tokens,
    }
}

/// Verification (what introspection and `/users/me` do first) against a
/// bare `jsonwebtoken::decode` with the same key and checks.
fn verify(c: &mut Criterion, fx: &Fixture) {
    let keys = fx.sigil.keys.current();
    let issuer = fx.sigil.config.issuer.clone();
    let now = SystemClock.now();
    for (alg, token) in &fx.user_tokens {
        let header = jsonwebtoken::decode_header(token).expect("header");
        let kid = header.kid.expect("kid");
        let key = keys.verifying_key(&kid).expect("verifying key");
        let mut validation = Validation::new(match alg {
            Alg::RS256 => Algorithm::RS256,
            Alg::EdDSA => Algorithm::EdDSA,
        });
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&issuer]);
        validation.validate_nbf = true;
        assert!(jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation).is_ok());
        assert!(verify_access_token(&keys, token, &issuer, Some(&[&issuer]), now).is_ok());

        let mut group = c.benchmark_group(format!("verify/{alg}"));
        group.bench_function("jsonwebtoken::decode (raw)", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<AccessClaims>(black_box(token), &key.decoding, &validation)
                    .expect("decode")
            })
        });
        group.bench_function("sigil::tokens::verify_access_token", |b| {
            b.iter(|| {
                verify_access_token(&keys, black_box(token), &issuer, Some(&[&issuer]), now)
                    .expect("verify")
            })
        });
        // Introspection's logic with the client already authenticated:
        // verify, deny-list lookup, render the claims as JSON.
        let client = fx
            .rt
            .block_on(find_client(
                fx.sigil.store.as_ref(),
                &format!("bench-{alg}"),
            ))
            .expect("client")
            .expect("client exists");
        let params = Params::from_pairs([("token", token.as_str())]).expect("params");
        group.bench_function("sigil::oauth::introspect (client known)", |b| {
            b.iter(|| {
                let body = fx
                    .rt
                    .block_on(introspect(&fx.sigil, &client, black_box(&params), now))
                    .expect("introspect");
                assert_eq!(body["active"], true);
            })
        });
        group.finish();
    }
}

/// Deny-list lookup with `DENY_LIST_ENTRIES` entries: a token that is not
/// revoked (three misses: jti, sid, user) and one that is (first probe
/// hits), against one bare moka lookup of a cache of the same size.
fn deny_list(c: &mut Criterion, fx: &Fixture) {
    let store = fx.sigil.store.as_ref();
    let list = &fx.sigil.deny_list;
    assert!(list.len() >= DENY_LIST_ENTRIES as u64);
    let now = SystemClock.now();
    let live = claims(now);
    let revoked = AccessClaims {
        jti: format!("revoked-jti-{}", DENY_LIST_ENTRIES / 2),
        ..claims(now)
    };
    assert!(
        !fx.rt
            .block_on(list.is_revoked(store, &live, now))
            .expect("lookup")
    );
    assert!(
        fx.rt
            .block_on(list.is_revoked(store, &revoked, now))
            .expect("lookup")
    );

    let bare: moka::sync::Cache<String, ()> = moka::sync::Cache::new(DENY_LIST_ENTRIES as u64 * 2);
    for i in 0..DENY_LIST_ENTRIES {
        bare.insert(format!("j:revoked-jti-{i}"), ());
    }
    bare.run_pending_tasks();
    let probe = format!("j:{}", live.jti);

    let mut group = c.benchmark_group(format!("deny_list/{DENY_LIST_ENTRIES} entries"));
    group.bench_function("moka::sync::Cache::contains_key (raw, 1 probe)", |b| {
        b.iter(|| bare.contains_key(black_box(&probe)))
    });
    group.bench_function("sigil DenyList::is_revoked (not revoked: 3 probes)", |b| {
        b.iter(|| {
            fx.rt
                .block_on(list.is_revoked(store, black_box(&live), now))
                .expect("lookup")
        })
    });
    group.bench_function("sigil DenyList::is_revoked (revoked jti: 1 probe)", |b| {
        b.iter(|| {
            fx.rt
                .block_on(list.is_revoked(store, black_box(&revoked), now))
                .expect("lookup")
        })
    });
    group.finish();
}

/// Whole requests through Sigil's router, without a socket, against the
/// same router machinery serving a static body.
fn http(c: &mut Criterion, fx: &Fixture) {
    let app = sigil::http::app(Arc::clone(&fx.sigil));
    let jwks_body = fx.sigil.keys.current().jwks_body().clone();
    let etag = fx.sigil.keys.current().etag().to_string();
    let bare: axum::Router = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let body = jwks_body.clone();
            async move { body }
        }),
    );
    let call = |router: &axum::Router, request: Request<Body>| -> StatusCode {
        fx.rt
            .block_on(router.clone().oneshot(request))
            .expect("infallible")
            .status()
    };
    let get = |uri: &str| Request::get(uri).body(Body::empty()).expect("request");
    let basic = |alg: Alg| {
        format!(
            "Basic {}",
            STANDARD.encode(format!("bench-{alg}:{CLIENT_SECRET}"))
        )
    };
    let form_post = |uri: &str, auth: &str, body: String| {
        Request::post(uri)
            .header(header::AUTHORIZATION, auth)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request")
    };

    let mut group = c.benchmark_group("http (in-process, no socket)");
    group.bench_function("bare axum GET static body (raw)", |b| {
        b.iter(|| assert_eq!(call(&bare, get("/.well-known/jwks.json")), StatusCode::OK))
    });
    group.bench_function("GET /.well-known/jwks.json 200", |b| {
        b.iter(|| assert_eq!(call(&app, get("/.well-known/jwks.json")), StatusCode::OK))
    });
    group.bench_function("GET /.well-known/jwks.json 304", |b| {
        b.iter(|| {
            let request = Request::get("/.well-known/jwks.json")
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .expect("request");
            assert_eq!(call(&app, request), StatusCode::NOT_MODIFIED)
        })
    });
    for alg in [Alg::RS256, Alg::EdDSA] {
        group.bench_function(
            BenchmarkId::new("POST /oauth/token client_credentials", alg),
            |b| {
                b.iter(|| {
                    let request = form_post(
                        "/oauth/token",
                        &basic(alg),
                        "grant_type=client_credentials".into(),
                    );
                    assert_eq!(call(&app, request), StatusCode::OK)
                })
            },
        );
    }
    for (alg, token) in &fx.user_tokens {
        group.bench_function(BenchmarkId::new("POST /oauth/introspect", alg), |b| {
            b.iter(|| {
                let request =
                    form_post("/oauth/introspect", &basic(*alg), format!("token={token}"));
                assert_eq!(call(&app, request), StatusCode::OK)
            })
        });
        group.bench_function(BenchmarkId::new("GET /users/me", alg), |b| {
            b.iter(|| {
                let request = Request::get("/users/me")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::empty())
                    .expect("request");
                assert_eq!(call(&app, request), StatusCode::OK)
            })
        });
    }
    group.finish();

    // What the database adds to introspection and /users/me: the client and
    // user lookups on SQLite, alone.
    let store = fx.sigil.store.as_ref();
    let user_id = verify_access_token(
        &fx.sigil.keys.current(),
        &fx.user_tokens[0].1,
        &fx.sigil.config.issuer,
        None,
        SystemClock.now(),
    )
    .expect("verify")
    .sub;
    let mut group = c.benchmark_group("store (SQLite)");
    group.bench_function("client_by_id", |b| {
        b.iter(|| {
            fx.rt
                .block_on(store.client_by_id(black_box("bench-EdDSA")))
                .expect("client")
        })
    });
    group.bench_function("user_by_id", |b| {
        b.iter(|| {
            fx.rt
                .block_on(store.user_by_id(black_box(&user_id)))
                .expect("user")
        })
    });
    group.finish();
}

fn with_fixture(c: &mut Criterion) {
    let fx = fixture();
    verify(c, &fx);
    deny_list(c, &fx);
    http(c, &fx);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = sign, refresh, password, with_fixture
}
criterion_main!(benches);
