//! What DPoP (RFC 9449) costs at Sigil's endpoints, each beside what
//! bounds it (docs/BENCHMARKS.md records the figures):
//!
//! | group | sigil | bounded by |
//! |---|---|---|
//! | `dpop/check` | `dpop::check` of an ES256 proof; remembering its `jti` | one `ring` P-256 verification of the same bytes |
//! | `dpop/http` | client_credentials (EdDSA) with a proof; `/users/me` with a bound token and a proof | the same requests with a bearer token |
//!
//! The `http` group runs a real `Sigil` on SQLite in a temporary folder
//! and calls the router with `oneshot`, as `hot_paths` does. Each proof is
//! made fresh outside the measured time (a proof is accepted once).
//!
//! Run: cargo bench -p sigil --bench dpop   (about a minute)

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use sigil::clients::{GrantType, NewClient, create_client};
use sigil::clock::{Clock, SystemClock};
use sigil::config::{Config, PasswordPolicy};
use sigil::dpop::Expected;
use sigil::keys::Alg;
use sigil::oauth::{Grant, issue_access_token};
use sigil::scope::Scopes;
use tower::ServiceExt;

const CLIENT_ID: &str = "bench-dpop";
const CLIENT_SECRET: &str = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz";

/// A client's P-256 DPoP key.
struct ProofKey {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl ProofKey {
    fn generate() -> ProofKey {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        });
        ProofKey { pair, jwk }
    }

    fn thumbprint(&self) -> String {
        sigil::tokens::jose::thumbprint(&self.jwk).expect("thumbprint")
    }

    /// A fresh proof for `method url`, naming `token` when given.
    fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({
            "jti": sigil::tokens::random_b64::<12>(), "htm": method, "htu": url,
            "iat": SystemClock.now(),
        });
        if let Some(token) = token {
            let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
            claims["ath"] = json!(B64.encode(digest.as_ref()));
        }
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("sign");
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    sigil: Arc<sigil::Sigil>,
    _dir: tempfile::TempDir,
    key: ProofKey,
    /// A user's EdDSA access token, and one bound to `key`.
    bearer: String,
    bound: String,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        database_url: format!("sqlite://{}", dir.path().join("sigil.db").display()),
        keys_dir: dir.path().join("keys"),
        ..Config::default()
    }
    .validated()
    .expect("config");
    let sigil = rt
        .block_on(sigil::Sigil::open(config, Arc::new(SystemClock)))
        .expect("open sigil");
    let key = ProofKey::generate();
    let jkt = key.thumbprint();
    let now = SystemClock.now();
    let (bearer, bound) = rt.block_on(async {
        let store = sigil.store.as_ref();
        let user = sigil::users::create(
            store,
            &sigil.passwords,
            &PasswordPolicy::default(),
            sigil::users::Registration {
                username: "alice".into(),
                email: "alice@example.com".into(),
                password: SecretString::from("correct horse battery staple"),
            },
            now,
        )
        .await
        .expect("user");
        let (client, _) = create_client(
            store,
            &sigil.config.max_client_lifetimes(),
            NewClient {
                id: CLIENT_ID.into(),
                grant_types: vec![GrantType::ClientCredentials],
                scopes: Scopes::parse("profile").expect("scope"),
                alg: Some(Alg::EdDSA),
                secret: Some(SecretString::from(CLIENT_SECRET)),
                ..NewClient::default()
            },
            now,
        )
        .await
        .expect("client");
        let scope = Scopes::parse("profile").expect("scope");
        let issue = |grant| issue_access_token(&sigil, &client, grant, now).expect("token");
        let (bearer, _) = issue(Grant::new(&user.id, &scope));
        let (bound, _) = issue(Grant {
            jkt: Some(&jkt),
            ..Grant::new(&user.id, &scope)
        });
        (bearer, bound)
    });
    Fixture {
        rt,
        sigil,
        _dir: dir,
        key,
        bearer,
        bound,
    }
}

/// `dpop::check` against one raw P-256 verification of the same proof.
fn check(c: &mut Criterion, fx: &Fixture) {
    let uri = format!("{}/oauth/token", fx.sigil.config.base_url());
    let proof = fx.key.proof("POST", &uri, None);
    let expected = Expected {
        method: "POST",
        uri: &uri,
        access_token: None,
        nonces: None,
    };
    let config = &fx.sigil.config.dpop;
    let now = SystemClock.now();
    assert!(sigil::dpop::check(&proof, &expected, config, now).is_ok());
    let (input, signature) = proof.rsplit_once('.').expect("jws");
    let signature = B64.decode(signature).expect("base64url");
    let public = UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_FIXED,
        fx.key.pair.public_key().as_ref().to_vec(),
    );
    public
        .verify(input.as_bytes(), &signature)
        .expect("raw verify");

    let mut group = c.benchmark_group("dpop/check (ES256 proof)");
    group.bench_function("ring P-256 verify of the proof (raw)", |b| {
        b.iter(|| public.verify(black_box(input.as_bytes()), &signature))
    });
    group.bench_function("sigil::dpop::check", |b| {
        b.iter(|| sigil::dpop::check(black_box(&proof), &expected, config, now).expect("proof"))
    });
    // The proof's jti, remembered once (memory only on SQLite). A guard
    // of its own, filled to capacity within the run, so each call here
    // also evicts one: the worst case. The node's stays as a node's is.
    let store = fx.sigil.store.as_ref();
    let guard = sigil::replay::ReplayGuard::new(false);
    let mut n = 0u64;
    group.bench_function("sigil::replay::ReplayGuard::first_use (a new jti)", |b| {
        b.iter(|| {
            n += 1;
            let jti = n.to_string();
            let first = fx
                .rt
                .block_on(guard.first_use(store, "bench", "key", &jti, now + 90, now));
            assert!(first.expect("replay guard"));
        })
    });
    group.finish();
}

/// Whole requests through the router, bearer against DPoP.
fn http(c: &mut Criterion, fx: &Fixture) {
    let app = sigil::http::app(Arc::clone(&fx.sigil));
    let base = fx.sigil.config.base_url().to_string();
    let call = |request: Request<Body>| -> StatusCode {
        fx.rt
            .block_on(app.clone().oneshot(request))
            .expect("infallible")
            .status()
    };
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let token_request = |proof: Option<String>| {
        let mut request = Request::post("/oauth/token")
            .header(header::AUTHORIZATION, &basic)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request
            .body(Body::from("grant_type=client_credentials"))
            .expect("request")
    };
    let me = |scheme: &str, token: &str, proof: Option<String>| {
        let mut request =
            Request::get("/users/me").header(header::AUTHORIZATION, format!("{scheme} {token}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.body(Body::empty()).expect("request")
    };
    let token_url = format!("{base}/oauth/token");
    let me_url = format!("{base}/users/me");
    let token_proof = || fx.key.proof("POST", &token_url, None);
    let me_proof = || fx.key.proof("GET", &me_url, Some(&fx.bound));
    assert_eq!(call(token_request(Some(token_proof()))), StatusCode::OK);
    assert_eq!(
        call(me("DPoP", &fx.bound, Some(me_proof()))),
        StatusCode::OK
    );

    let mut group = c.benchmark_group("dpop/http (in-process, no socket)");
    group.bench_function("POST /oauth/token client_credentials EdDSA, bearer", |b| {
        b.iter(|| assert_eq!(call(token_request(None)), StatusCode::OK))
    });
    group.bench_function("POST /oauth/token client_credentials EdDSA, DPoP", |b| {
        b.iter_batched(
            token_proof,
            |proof| assert_eq!(call(token_request(Some(proof))), StatusCode::OK),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("GET /users/me EdDSA, bearer", |b| {
        b.iter(|| assert_eq!(call(me("Bearer", &fx.bearer, None)), StatusCode::OK))
    });
    group.bench_function("GET /users/me EdDSA, DPoP", |b| {
        b.iter_batched(
            me_proof,
            |proof| assert_eq!(call(me("DPoP", &fx.bound, Some(proof))), StatusCode::OK),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn with_fixture(c: &mut Criterion) {
    let fx = fixture();
    check(c, &fx);
    http(c, &fx);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = with_fixture
}
criterion_main!(benches);
