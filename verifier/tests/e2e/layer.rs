//! The pieces a service assembles itself: a verifier on a static JWKS, the
//! tower layer, the optional extractor, and RFC 6750 edge cases.

use axum::routing::get;
use axum::{Extension, Router};
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use sigil::keys::Alg;
use sigil_verify::axum::VerifyLayer;
use sigil_verify::{Claims, Verifier};

use crate::helpers::{AUDIENCE, TestSigil};

async fn report(Extension(claims): Extension<Claims>) -> String {
    format!("report for {}", claims.client_id)
}

async fn maybe(claims: Option<Claims>) -> String {
    claims.map_or("anonymous".into(), |c| c.client_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tower_layer_and_the_optional_extractor_answer_as_rfc_6750_says() {
    let sigil = TestSigil::start().await;
    let reader = sigil.notes_app("reader", "notes:read", Alg::EdDSA).await;
    let profile = sigil.notes_app("profile-app", "profile", Alg::RS256).await;
    let jwks = sigil
        .http
        .get(format!("{}/.well-known/jwks.json", sigil.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let clock = sigil.clock.clone();
    let verifier = Verifier::builder()
        .issuer(&sigil.base)
        .audience(AUDIENCE)
        .static_jwks(jwks.to_vec())
        .clock(move || sigil::clock::Clock::now(&clock))
        .build()
        .await
        .unwrap();
    let guarded = Router::new()
        .route("/report", get(report))
        .layer(VerifyLayer::new(verifier.clone()).require_scope("notes:read"));
    let app = Router::new()
        .route("/maybe", get(maybe))
        .with_state(verifier.clone())
        .merge(guarded);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let get = |path: &str, auth: &[String]| {
        let mut request = http.get(format!("{base}{path}"));
        for value in auth {
            request = request.header(AUTHORIZATION, value);
        }
        request.send()
    };
    let bearer = |token: &str| vec![format!("Bearer {token}")];
    let read = sigil.service_token(&reader).await;
    let unscoped = sigil.service_token(&profile).await;

    let ok = get("/report", &bearer(&read)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "report for reader");

    let forbidden = get("/report", &bearer(&unscoped)).await.unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.headers()["www-authenticate"],
        r#"Bearer realm="notes-api", error="insufficient_scope", scope="notes:read""#
    );
    assert_eq!(forbidden.headers()["cache-control"], "no-store");

    for (name, auth) in [
        ("no header", vec![]),
        ("another scheme", vec!["Basic dXNlcjpwYXNz".to_string()]),
    ] {
        let response = get("/report", &auth).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="notes-api""#
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized", "{name}");
    }
    let two = get("/report", &[bearer(&read), bearer(&read)].concat())
        .await
        .unwrap();
    assert_eq!(two.status(), StatusCode::BAD_REQUEST);
    let malformed = get("/report", &bearer("not a token68!")).await.unwrap();
    assert_eq!(malformed.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(
        get("/maybe", &[]).await.unwrap().text().await.unwrap(),
        "anonymous"
    );
    let named = get("/maybe", &bearer(&read)).await.unwrap();
    assert_eq!(named.text().await.unwrap(), "reader");
    let bad = get("/maybe", &bearer(&format!("{read}x"))).await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);

    // A static set never fetches and never goes stale.
    let stats = verifier.stats();
    assert_eq!(
        (stats.jwks_fetches, stats.stale, stats.jwks_age_seconds),
        (0, false, None)
    );
}

/// RFC 9470 step-up: a route that requires a stronger sign-in than the
/// token's answers 401 `insufficient_user_authentication` with the
/// `acr_values` to ask Sigil for; a strong enough one passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_requiring_a_second_factor_asks_for_step_up_as_rfc_9470_says() {
    let sigil = TestSigil::start().await;
    sigil.user("alice").await;
    let app = sigil.notes_app("notes-web", "notes:read", Alg::EdDSA).await;
    let feed = sigil.feed_client().await;
    let verifier = sigil.verifier(&feed).build().await.unwrap();
    let router = Router::new()
        .route(
            "/payments",
            get(report).layer(VerifyLayer::new(verifier.clone()).require_acr("urn:sigil:acr:mfa")),
        )
        .route(
            "/notes",
            get(report).layer(VerifyLayer::new(verifier.clone()).require_acr("urn:sigil:acr:1fa")),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();
    let get = |path: &str, token: &str| {
        http.get(format!("{base}{path}"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
    };

    // A password login: acr urn:sigil:acr:1fa, amr ["pwd"].
    let password = sigil.access_token(&app, "alice").await;
    let (_, claims) = crate::helpers::decode(&password);
    assert_eq!(claims["acr"], "urn:sigil:acr:1fa");
    assert_eq!(
        get("/notes", &password).await.unwrap().status(),
        StatusCode::OK
    );
    let refused = get("/payments", &password).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.headers()["www-authenticate"],
        r#"Bearer realm="notes", error="insufficient_user_authentication", error_description="this endpoint requires a sign-in of at least urn:sigil:acr:mfa", acr_values="urn:sigil:acr:mfa""#
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_user_authentication");

    // A client's own token says nothing of a user's sign-in: refused too.
    let service = sigil.service_token(&app).await;
    assert_eq!(
        get("/notes", &service).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // The same user after a passkey sign-in (the claims as Sigil signs
    // them): phr is stronger than mfa.
    let (header, mut claims) = crate::helpers::decode(&password);
    claims["acr"] = serde_json::json!("phr");
    claims["amr"] = serde_json::json!(["swk", "user", "mfa"]);
    claims["jti"] = serde_json::json!("stepped-up");
    let key = sigil.signing_key(Alg::EdDSA);
    let stepped = crate::helpers::forge(&header, &claims, Some(&key));
    let ok = get("/payments", &stepped).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let verified = verifier.verify(&stepped).await.unwrap();
    assert!(verified.has_amr("mfa") && verified.acr_at_least("phr"));
}
