//! Cost of verifying a Sigil access token whose key is cached, against a
//! bare `jsonwebtoken::decode` of the same token (signature, `iss`, `aud`,
//! `exp`, `nbf`), for RS256 and EdDSA.
//!
//! `sigil-verify` does more (header policy, `typ`, revocation lists, the
//! staleness check); the budget is to stay within 10% of the bare decode.
//!
//! The `DPoP` group verifies an EdDSA token bound to a P-256 key with a
//! fresh ES256 proof each time (`verify_dpop`), against the same token's
//! bearer check plus one raw P-256 signature verification: what the proof
//! adds beyond its signature is the parsing, thumbprint, `ath` and the
//! replay set.
//!
//! Run: cargo bench -p sigil-verify --bench verify

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use sigil::keys::{Alg, SigningKey, generate};
use sigil::tokens::{AccessClaims, Cnf, sign_access_token};
use sigil_verify::{SystemClock, Verifier};

const ISSUER: &str = "https://sigil.example.com";
const AUDIENCE: &str = "notes-api";

/// The claims the bare decode deserializes: the same fields as
/// `sigil_verify::Claims`, so both do the same parsing work.
#[allow(dead_code)]
#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    client_id: String,
    scope: Option<String>,
    sid: Option<String>,
}

/// Polls a future that completes without waiting (a cached key) once.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("verification of a cached-key token waited"),
    }
}

struct Case {
    token: String,
    jwk: serde_json::Value,
    decoding: DecodingKey,
    alg: jsonwebtoken::Algorithm,
}

fn case(alg: Alg) -> Case {
    case_bound(alg, None)
}

fn case_bound(alg: Alg, jkt: Option<&str>) -> Case {
    let generated = generate(alg, 2048).expect("key");
    let key = SigningKey::from_pkcs8(&generated.kid, alg, &generated.pkcs8).expect("signing key");
    let now = SystemClock.now_secs();
    let claims = AccessClaims {
        iss: ISSUER.into(),
        sub: "0ea1bbbc-5b1c-4a39-8f43-6c1b0f1f5a3e".into(),
        aud: AUDIENCE.into(),
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: "U7Fs-aNnS5vh8UblzAOSEA".into(),
        client_id: "notes-web".into(),
        scope: Some("notes:read notes:write".into()),
        sid: Some("8c0e3f0e-64c3-4c0b-9e55-0f6b1a0c2d11".into()),
        acr: Some("urn:sigil:acr:1fa".into()),
        amr: Some(vec!["pwd".into()]),
        cnf: jkt.map(|jkt| Cnf {
            jkt: jkt.to_string(),
        }),
        act: None,
    };
    let token = sign_access_token(&key, &claims).expect("token");
    let jwk = generated.public_jwk;
    let field = |name: &str| jwk[name].as_str().expect("jwk member").to_string();
    let (decoding, alg) = match alg {
        Alg::RS256 => (
            DecodingKey::from_rsa_components(&field("n"), &field("e")).expect("rsa"),
            jsonwebtoken::Algorithm::RS256,
        ),
        Alg::EdDSA => (
            DecodingKey::from_ed_components(&field("x")).expect("ed"),
            jsonwebtoken::Algorithm::EdDSA,
        ),
    };
    Case {
        token,
        jwk,
        decoding,
        alg,
    }
}

/// A client's P-256 DPoP key.
struct ProofKey {
    pair: EcdsaKeyPair,
    jwk: serde_json::Value,
}

impl ProofKey {
    fn generate() -> ProofKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
        let point = pair.public_key().as_ref();
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        });
        ProofKey { pair, jwk }
    }

    /// RFC 7638: the required members in order, hashed.
    fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            self.jwk["x"], self.jwk["y"]
        );
        B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    /// A fresh proof for `GET url`, naming `token`.
    fn proof(&self, url: &str, token: &str, n: u64) -> String {
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let ath = B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            token.as_bytes(),
        ));
        let claims = serde_json::json!({
            "jti": format!("proof-{n}"), "htm": "GET", "htu": url,
            "iat": SystemClock.now_secs(), "ath": ath,
        });
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

trait NowSecs {
    fn now_secs(&self) -> i64;
}

impl NowSecs for SystemClock {
    fn now_secs(&self) -> i64 {
        sigil_verify::Clock::now(self)
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cases = [("RS256", case(Alg::RS256)), ("EdDSA", case(Alg::EdDSA))];
    let jwks =
        serde_json::json!({"keys": cases.iter().map(|(_, c)| c.jwk.clone()).collect::<Vec<_>>()});
    let verifier = runtime
        .block_on(
            Verifier::builder()
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .static_jwks(jwks.to_string())
                .build(),
        )
        .expect("verifier");

    for (name, case) in &cases {
        let mut validation = Validation::new(case.alg);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        assert!(
            jsonwebtoken::decode::<RawClaims>(&case.token, &case.decoding, &validation).is_ok()
        );
        assert!(ready(verifier.verify(&case.token)).is_ok());

        let mut group = c.benchmark_group(*name);
        group.bench_function("jsonwebtoken::decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<RawClaims>(
                    black_box(&case.token),
                    &case.decoding,
                    &validation,
                )
            })
        });
        group.bench_function("sigil_verify::verify", |b| {
            b.iter(|| ready(verifier.verify(black_box(&case.token))))
        });
        group.bench_function("sigil_verify::verify_cached", |b| {
            b.iter(|| verifier.verify_cached(black_box(&case.token)))
        });
        group.finish();
    }
    dpop(c, &runtime);
}

fn dpop(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    const SERVICE: &str = "https://notes.example.com";
    let key = ProofKey::generate();
    let bound = case_bound(Alg::EdDSA, Some(&key.thumbprint()));
    let bearer = case(Alg::EdDSA);
    let jwks = serde_json::json!({"keys": [bound.jwk, bearer.jwk]});
    let verifier = runtime
        .block_on(
            Verifier::builder()
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .static_jwks(jwks.to_string())
                .dpop(SERVICE)
                .build(),
        )
        .expect("verifier");
    let url = format!("{SERVICE}/notes");
    let mut n = 0u64;
    let mut next_proof = || {
        n += 1;
        key.proof(&url, &bound.token, n)
    };
    assert!(ready(verifier.verify(&bearer.token)).is_ok());
    assert!(ready(verifier.verify_dpop(&bound.token, &next_proof(), "GET", "/notes")).is_ok());
    // One proof's signature, verified raw.
    let sample = next_proof();
    let (input, signature) = sample.rsplit_once('.').expect("jws");
    let signature = B64.decode(signature).expect("b64");
    let public = UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_FIXED,
        key.pair.public_key().as_ref().to_vec(),
    );
    public
        .verify(input.as_bytes(), &signature)
        .expect("raw verify");

    let mut group = c.benchmark_group("DPoP (EdDSA token, ES256 proof)");
    group.bench_function("sigil_verify::verify (bearer token)", |b| {
        b.iter(|| ready(verifier.verify(black_box(&bearer.token))))
    });
    group.bench_function("aws-lc-rs P-256 verify of a proof (raw)", |b| {
        b.iter(|| public.verify(black_box(input.as_bytes()), &signature))
    });
    group.bench_function("sigil_verify::verify_dpop (bound token + proof)", |b| {
        b.iter_batched(
            &mut next_proof,
            |proof| {
                let claims = ready(verifier.verify_dpop(&bound.token, &proof, "GET", "/notes"));
                assert!(claims.is_ok());
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
