//! DPoP-bound tokens (RFC 9449) from a real Sigil, verified by
//! sigil-verify: refused as bearer tokens, accepted with a proof by their
//! key, and each bad proof refused, directly and through the notes
//! service's extractors.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::clients::GrantType;
use sigil::keys::Alg;
use sigil_verify::VerifyError;

use crate::helpers::{AUDIENCE, PASSWORD, ProofKey, TestSigil, field, spawn_notes};

/// Where the notes service is reached, as its clients name it in `htu`.
const PUBLIC_URL: &str = "https://notes.example.com";

/// A user's token bound to `key`: the password grant with a proof.
async fn bound_token(sigil: &TestSigil, client_id: &str, key: &ProofKey) -> Value {
    let url = format!("{}/oauth/token", sigil.base);
    let response = sigil
        .http
        .post(&url)
        .header("DPoP", key.proof("POST", &url, None, sigil.now()))
        .form(&[
            ("grant_type", "password"),
            ("client_id", client_id),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK, "token endpoint");
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_token_needs_a_proof_by_its_key() {
    let sigil = TestSigil::start().await;
    sigil.user("alice").await;
    sigil
        .public_client(
            "notes-cli",
            &[GrantType::Password, GrantType::RefreshToken],
            "notes:read",
            Alg::EdDSA,
            AUDIENCE,
        )
        .await;
    let key = ProofKey::generate();
    let body = bound_token(&sigil, "notes-cli", &key).await;
    assert_eq!(body["token_type"], "DPoP");
    let token = field(&body, "access_token");
    let verifier = sigil
        .verifier_without_feed()
        .dpop(PUBLIC_URL)
        .build()
        .await
        .unwrap();
    let url = format!("{PUBLIC_URL}/notes");
    let now = sigil.now();

    // Never as a bearer token (§7.2).
    assert_eq!(
        verifier.verify(&token).await,
        Err(VerifyError::DpopRequired)
    );
    // With a proof by its key, naming the request and the token.
    let proof = key.proof("GET", &url, Some(&token), now);
    let claims = verifier
        .verify_dpop(&token, &proof, "GET", "/notes")
        .await
        .expect("a good proof");
    assert_eq!(claims.cnf.expect("cnf").jkt, key.thumbprint());
    // Each proof once.
    let replayed = verifier.verify_dpop(&token, &proof, "GET", "/notes").await;
    assert!(
        matches!(&replayed, Err(VerifyError::InvalidDpopProof(why)) if why.contains("used before")),
        "{replayed:?}"
    );

    let other_key = ProofKey::generate();
    let refused = [
        (
            "another key",
            other_key.proof("GET", &url, Some(&token), now),
        ),
        ("htm POST", key.proof("POST", &url, Some(&token), now)),
        (
            "htu of another service",
            key.proof("GET", "https://evil.example/notes", Some(&token), now),
        ),
        ("no ath", key.proof("GET", &url, None, now)),
        (
            "ath of another token",
            key.proof("GET", &url, Some("another.token.value"), now),
        ),
        (
            "iat two minutes old",
            key.proof("GET", &url, Some(&token), now - 120),
        ),
        (
            "typ JWT",
            key.sign_typed(
                "JWT",
                &json!({"jti": "j1", "htm": "GET", "htu": url, "iat": now}),
            ),
        ),
        ("not a JWT", "not-a-proof".to_string()),
    ];
    for (what, proof) in refused {
        let result = verifier.verify_dpop(&token, &proof, "GET", "/notes").await;
        assert!(
            matches!(result, Err(VerifyError::InvalidDpopProof(_))),
            "{what}: {result:?}"
        );
    }
    // The query string is not part of htu.
    let with_query = key.proof("GET", &format!("{url}?page=2"), Some(&token), now);
    assert!(
        verifier
            .verify_dpop(&token, &with_query, "GET", "/notes")
            .await
            .is_ok()
    );

    // A bearer token under the DPoP scheme is refused too.
    let app = sigil.notes_app("notes-web", "notes:read", Alg::EdDSA).await;
    let bearer = sigil.access_token(&app, "alice").await;
    let proof = key.proof("GET", &url, Some(&bearer), now);
    assert_eq!(
        verifier.verify_dpop(&bearer, &proof, "GET", "/notes").await,
        Err(VerifyError::NotDpopBound)
    );
    // A verifier not told where its service is refuses bound tokens.
    let plain = sigil.verifier_without_feed().build().await.unwrap();
    let proof = key.proof("GET", &url, Some(&token), now);
    assert!(matches!(
        plain.verify_dpop(&token, &proof, "GET", "/notes").await,
        Err(VerifyError::InvalidDpopProof(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extractors_read_the_dpop_scheme_and_answer_its_challenge() {
    let sigil = TestSigil::start().await;
    sigil.user("alice").await;
    sigil
        .public_client(
            "notes-cli",
            &[GrantType::Password],
            "notes:read",
            Alg::RS256,
            AUDIENCE,
        )
        .await;
    let key = ProofKey::generate();
    let token = field(
        &bound_token(&sigil, "notes-cli", &key).await,
        "access_token",
    );
    let verifier = sigil
        .verifier_without_feed()
        .dpop(PUBLIC_URL)
        .build()
        .await
        .unwrap();
    let notes = spawn_notes(verifier).await;
    let url = format!("{PUBLIC_URL}/notes");
    let get = |scheme: &str, proof: Option<String>| {
        let mut request = sigil
            .http
            .get(format!("{notes}/notes"))
            .header("Authorization", format!("{scheme} {token}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send()
    };

    let ok = get(
        "DPoP",
        Some(key.proof("GET", &url, Some(&token), sigil.now())),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    for (what, scheme, proof) in [
        ("as a bearer token", "Bearer", None),
        ("no proof", "DPoP", None),
        (
            "a proof by another key",
            "DPoP",
            Some(ProofKey::generate().proof("GET", &url, Some(&token), sigil.now())),
        ),
    ] {
        let response = get(scheme, proof).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains(r#"algs="ES256"#),
            "{what}: {challenge}"
        );
    }
}
