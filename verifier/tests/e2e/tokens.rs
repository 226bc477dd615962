//! The notes service in front of Sigil: a valid token passes, a missing
//! scope is 403, and every bad token is 401 `invalid_token`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::keys::{Alg, SigningKey, generate};

use crate::helpers::{TestSigil, decode, forge, spawn_notes};

async fn post_note(
    http: &reqwest::Client,
    notes: &str,
    token: &str,
    text: &str,
) -> reqwest::Response {
    http.post(format!("{notes}/notes"))
        .bearer_auth(token)
        .json(&json!({"text": text}))
        .send()
        .await
        .expect("request")
}

async fn get_notes(http: &reqwest::Client, notes: &str, token: &str) -> reqwest::Response {
    http.get(format!("{notes}/notes"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_reads_and_writes_its_users_notes_and_a_missing_scope_is_403() {
    let sigil = TestSigil::start().await;
    sigil.user("alice").await;
    sigil.user("bob").await;
    let writer = sigil
        .notes_app("notes-web", "notes:read notes:write", Alg::RS256)
        .await;
    let reader = sigil
        .notes_app("notes-viewer", "notes:read", Alg::EdDSA)
        .await;
    let verifier = sigil
        .verifier(&sigil.feed_client().await)
        .build()
        .await
        .unwrap();
    let notes = spawn_notes(verifier).await;
    let http = reqwest::Client::new();

    let alice = sigil.access_token(&writer, "alice").await;
    let created = post_note(&http, &notes, &alice, "buy milk").await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let note: Value = created.json().await.unwrap();
    assert_eq!(note["text"], "buy milk");
    assert_eq!(note["client_id"], "notes-web");

    let listed = get_notes(&http, &notes, &alice).await;
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(listed.json::<Value>().await.unwrap(), json!([note]));

    // An EdDSA token of a read-only client reads, but cannot write.
    let alice_reader = sigil.access_token(&reader, "alice").await;
    assert_eq!(decode(&alice_reader).0["alg"], "EdDSA");
    let read = get_notes(&http, &notes, &alice_reader).await;
    assert_eq!(read.status(), StatusCode::OK);
    let refused = post_note(&http, &notes, &alice_reader, "nope").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&refused),
        r#"Bearer realm="notes", error="insufficient_scope", scope="notes:write""#
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    // Bob sees none of Alice's notes.
    let bob = sigil.access_token(&writer, "bob").await;
    let bobs = get_notes(&http, &notes, &bob).await;
    assert_eq!(bobs.json::<Value>().await.unwrap(), json!([]));
    let id = note["id"].as_u64().unwrap();
    let other = http
        .get(format!("{notes}/notes/{id}"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    // No token at all: a bare challenge, no error code (RFC 6750 §3.1).
    let anonymous = http.get(format!("{notes}/notes")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&anonymous), r#"Bearer realm="notes""#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_forged_alg_swapped_and_foreign_tokens_are_401() {
    let sigil = TestSigil::start().await;
    let foreign_sigil = TestSigil::start().await;
    let app = sigil
        .notes_app("notes-web", "notes:read notes:write", Alg::RS256)
        .await;
    let verifier = sigil
        .verifier(&sigil.feed_client().await)
        .build()
        .await
        .unwrap();
    let notes = spawn_notes(verifier.clone()).await;
    let http = reqwest::Client::new();

    let genuine = sigil.service_token(&app).await;
    assert_eq!(
        get_notes(&http, &notes, &genuine).await.status(),
        StatusCode::OK
    );
    let (_, claims) = decode(&genuine);
    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    let rsa = sigil.signing_key(Alg::RS256);
    let ed = sigil.signing_key(Alg::EdDSA);
    let header = |alg: &str, kid: &str| json!({"alg": alg, "kid": kid, "typ": "at+jwt"});

    // Issued an hour ago: long expired.
    sigil.clock.advance(-3600);
    let expired = sigil.service_token(&app).await;
    sigil.clock.advance(3600);

    // Another Sigil, same audience and client name: its keys are not ours.
    let foreign_app = foreign_sigil
        .notes_app("notes-web", "notes:read notes:write", Alg::RS256)
        .await;
    let foreign_issuer = foreign_sigil.service_token(&foreign_app).await;

    let stranger = generate(Alg::RS256, 2048).unwrap();
    let stranger_key = SigningKey::from_pkcs8(&stranger.kid, Alg::RS256, &stranger.pkcs8).unwrap();
    let impostor = SigningKey::from_pkcs8(&rsa.kid, Alg::RS256, &stranger.pkcs8).unwrap();
    let [h, p, s]: [&str; 3] = genuine.split('.').collect::<Vec<_>>().try_into().unwrap();
    let tampered = format!(
        "{h}.{}.{s}",
        B64.encode(with("sub", json!("someone-else")).to_string())
    );

    let cases: Vec<(&str, String)> = vec![
        ("expired", expired),
        ("another issuer's token", foreign_issuer),
        (
            "our key, another iss",
            forge(
                &header("RS256", &rsa.kid),
                &with("iss", json!("https://evil.example")),
                Some(&rsa),
            ),
        ),
        (
            "our key, another audience",
            forge(
                &header("RS256", &rsa.kid),
                &with("aud", json!("billing-api")),
                Some(&rsa),
            ),
        ),
        ("payload tampered", tampered),
        ("signature stripped", format!("{h}.{p}.")),
        (
            "alg none",
            forge(
                &json!({"alg": "none", "kid": rsa.kid, "typ": "at+jwt"}),
                &claims,
                None,
            ),
        ),
        (
            "RSA kid, EdDSA alg and signature",
            forge(&header("EdDSA", &rsa.kid), &claims, Some(&ed)),
        ),
        (
            "EdDSA kid, RS256 alg and signature",
            forge(&header("RS256", &ed.kid), &claims, Some(&rsa)),
        ),
        (
            "HS256",
            forge(&header("HS256", &rsa.kid), &claims, Some(&rsa)),
        ),
        (
            "a stranger's key under its own kid",
            forge(
                &header("RS256", &stranger.kid),
                &claims,
                Some(&stranger_key),
            ),
        ),
        (
            "a stranger's key under our kid",
            forge(&header("RS256", &rsa.kid), &claims, Some(&impostor)),
        ),
        (
            "embedded jwk",
            forge(
                &json!({"alg": "RS256", "kid": rsa.kid, "typ": "at+jwt", "jwk": stranger.public_jwk}),
                &claims,
                Some(&rsa),
            ),
        ),
        (
            "typ JWT",
            forge(
                &json!({"alg": "RS256", "kid": rsa.kid, "typ": "JWT"}),
                &claims,
                Some(&rsa),
            ),
        ),
        (
            "not yet valid",
            forge(
                &header("RS256", &rsa.kid),
                &with("nbf", json!(claims["nbf"].as_i64().unwrap() + 3600)),
                Some(&rsa),
            ),
        ),
        ("garbage", "not-a-token".to_string()),
    ];
    for (name, token) in cases {
        let response = get_notes(&http, &notes, &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        let challenge = challenge(&response);
        assert!(
            challenge
                .starts_with(r#"Bearer realm="notes", error="invalid_token", error_description=""#),
            "{name}: {challenge}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token", "{name}");
    }
    // The genuine token still works, and forged kids cost at most one fetch
    // (for the stranger's kid: the other issuer's token fails on its claims
    // before any fetch).
    assert_eq!(
        get_notes(&http, &notes, &genuine).await.status(),
        StatusCode::OK
    );
    assert!(
        verifier.stats().unknown_kid_fetches <= 1,
        "{:?}",
        verifier.stats()
    );
}
