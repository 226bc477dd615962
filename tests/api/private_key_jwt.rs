//! `private_key_jwt` (RFC 7523 §2.2 and §3, OIDC Core §9): clients that
//! authenticate with a JWT signed by their own key, registered inline or
//! at a `jwks_uri` Sigil fetches and caches; each claim's rule and each
//! refusal, at the token, revocation and introspection endpoints.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::clients::{ClientKeys, GrantType, NewClient, parse_jwks};
use sigil::scope::Scopes;

use crate::cli::{run, sigil};
use crate::client_keys::{ClientKey, jwks};
use crate::helpers::{NowSecs, TestApp};
use crate::on_both_backends;

// So many refusals in a row would lock the client's address out (the
// throttle counts failed assertions like failed secrets: tested in
// throttle.rs for secrets); each refusal here must be its own.
on_both_backends!(spawn = super::unthrottled; each_claim_of_the_assertion_is_checked);
on_both_backends!(spawn = super::strict; failed_assertions_count_against_the_throttle_like_secrets);

async fn strict(backend: crate::helpers::Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.throttle.pair_free_failures = 3;
        c.throttle.pair_limit = 3;
        c.throttle.max_delay = std::time::Duration::ZERO;
    })
    .await
}

async fn failed_assertions_count_against_the_throttle_like_secrets(app: TestApp) {
    let key = ClientKey::es256("k1");
    service(
        &app,
        ClientKeys::Inline(parse_jwks(&jwks(&[&key]).to_string()).unwrap()),
    )
    .await;
    let guesser = ClientKey::es256("k1");
    for _ in 0..3 {
        let (status, _) = grant(&app, &assertion(&app, &guesser, json!({}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Locked out from this address: even a good assertion is refused.
    let (status, _) = grant(&app, &assertion(&app, &key, json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn unthrottled(backend: crate::helpers::Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| c.throttle.enabled = false).await
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

on_both_backends!(
    a_client_signs_in_with_an_assertion_and_no_secret_is_stored,
    the_other_endpoints_and_methods_take_assertions_alike,
    keys_at_a_jwks_uri_are_fetched_cached_and_refetched_for_a_new_kid,
);

async fn service(app: &TestApp, keys: ClientKeys) {
    app.client_from(NewClient {
        id: "svc".into(),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: Scopes::parse("read").unwrap(),
        keys: Some(keys),
        ..NewClient::default()
    })
    .await;
}

/// An assertion by `key` with these claims changed from the good ones.
fn assertion(app: &TestApp, key: &ClientKey, changes: Value) -> String {
    let now = app.clock.now_secs();
    let mut claims = json!({
        "iss": "svc", "sub": "svc",
        "aud": format!("{}/oauth/token", app.sigil.config.issuer),
        "iat": now, "exp": now + 60,
        "jti": sigil::tokens::random_b64::<12>(),
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    key.sign(json!({"kid": key.jwk["kid"]}), &claims)
}

/// POSTs a form with the assertion to `path`.
async fn with_assertion(
    app: &TestApp,
    path: &str,
    jwt: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    form.push(("client_assertion_type", ASSERTION_TYPE));
    form.push(("client_assertion", jwt));
    app.post(path).form(&form).send().await.unwrap()
}

async fn grant(app: &TestApp, jwt: &str) -> (StatusCode, Value) {
    let response = with_assertion(
        app,
        "/oauth/token",
        jwt,
        &[("grant_type", "client_credentials")],
    )
    .await;
    (response.status(), response.json().await.unwrap())
}

async fn a_client_signs_in_with_an_assertion_and_no_secret_is_stored(app: TestApp) {
    let es = ClientKey::es256("es-1");
    let ed = ClientKey::ed25519("ed-1");
    let set = parse_jwks(&jwks(&[&es, &ed]).to_string()).unwrap();
    service(&app, ClientKeys::Inline(set)).await;
    for key in [&es, &ed] {
        let (status, body) = grant(&app, &assertion(&app, key, json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{} {body}", key.alg);
        assert_eq!(body["token_type"], "Bearer");
    }
    // No secret was made or stored, so none can authenticate it.
    let record = app.sigil.store.client_by_id("svc").await.unwrap().unwrap();
    assert_eq!(record.secret_hash, None);
    assert_eq!(
        record.token_endpoint_auth_method.as_deref(),
        Some("private_key_jwt")
    );
    let response = app
        .post("/oauth/token")
        .basic_auth("svc", Some("anything-at-all-0123456789abcdefghij"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .post("/oauth/token")
        .form(&[("grant_type", "client_credentials"), ("client_id", "svc")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "nor is it public"
    );
    // The operator's CLI: a client made with --jwks-file shows no secret,
    // and has none to rotate.
    let file = app.dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&es]).to_string()).unwrap();
    let cli = |args: &[&str]| {
        let mut command = sigil(app.dir.path());
        command
            .args(args)
            .env("SIGIL_DATABASE_URL", &app.database_url);
        run(command, None)
    };
    let out = cli(&[
        "clients",
        "create",
        "svc2",
        "--grant-types",
        "client_credentials",
        "--jwks-file",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains("client_secret:"), "{printed}");
    assert!(printed.contains("private_key_jwt"), "{printed}");
    let out = cli(&["clients", "rotate-secret", "svc2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("private_key_jwt"));
    let listed = cli(&["clients", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let svc2 = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == "svc2")
        .unwrap();
    assert_eq!(svc2["token_endpoint_auth_method"], "private_key_jwt");
    // A JWKS with a private key is refused at registration.
    let mut private = jwks(&[&es]);
    private["keys"][0]["d"] = json!("c2VjcmV0");
    std::fs::write(&file, private.to_string()).unwrap();
    let out = cli(&[
        "clients",
        "create",
        "svc3",
        "--grant-types",
        "client_credentials",
        "--jwks-file",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("private key"));
}

async fn each_claim_of_the_assertion_is_checked(app: TestApp) {
    let key = ClientKey::es256("k1");
    service(
        &app,
        ClientKeys::Inline(parse_jwks(&jwks(&[&key]).to_string()).unwrap()),
    )
    .await;
    let now = app.clock.now_secs();
    let issuer = app.sigil.config.issuer.clone();
    // aud may be the issuer or the token endpoint (RFC 7523 §3, OIDC §9).
    for aud in [
        json!(issuer),
        json!([issuer.clone(), "https://other.example"]),
    ] {
        let (status, _) = grant(&app, &assertion(&app, &key, json!({ "aud": aud }))).await;
        assert_eq!(status, StatusCode::OK, "aud {aud}");
    }
    // Times are NumericDates (RFC 7519 §2), which may have a fraction.
    let fractional =
        json!({"iat": now as f64 + 0.25, "nbf": now as f64 - 0.5, "exp": now as f64 + 60.5});
    let (status, body) = grant(&app, &assertion(&app, &key, fractional)).await;
    assert_eq!(status, StatusCode::OK, "fractional times: {body}");
    let stranger = ClientKey::es256("k1");
    let refused: Vec<(&str, String)> = vec![
        (
            "iss of another client",
            assertion(&app, &key, json!({"iss": "other"})),
        ),
        (
            "sub of another client",
            assertion(&app, &key, json!({"sub": "other"})),
        ),
        (
            "aud of another server",
            assertion(
                &app,
                &key,
                json!({"aud": "https://evil.example/oauth/token"}),
            ),
        ),
        ("no aud", assertion(&app, &key, json!({"aud": null}))),
        ("expired", assertion(&app, &key, json!({"exp": now - 120}))),
        ("no exp", assertion(&app, &key, json!({"exp": null}))),
        (
            "an hour long",
            assertion(&app, &key, json!({"exp": now + 3600})),
        ),
        (
            "not yet valid",
            assertion(&app, &key, json!({"nbf": now + 600})),
        ),
        ("no jti", assertion(&app, &key, json!({"jti": null}))),
        (
            "a key not registered",
            assertion(&app, &stranger, json!({})),
        ),
        (
            "a DPoP proof's typ",
            key.sign(
                json!({"typ": "dpop+jwt", "kid": "k1"}),
                &json!({"iss": "svc", "sub": "svc", "aud": issuer, "exp": now + 60, "jti": "x"}),
            ),
        ),
        ("not a JWT", "a.b".to_string()),
    ];
    for (what, jwt) in refused {
        let (status, body) = grant(&app, &jwt).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{what}"
        );
    }
    // Each assertion once (RFC 7523 §3 item 7).
    let once = assertion(&app, &key, json!({}));
    assert_eq!(grant(&app, &once).await.0, StatusCode::OK);
    assert_eq!(
        grant(&app, &once).await.0,
        StatusCode::UNAUTHORIZED,
        "replayed"
    );
    // The wrong assertion type; an assertion and a secret at once.
    let response = app
        .post("/oauth/token")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:other"),
            ("client_assertion", &assertion(&app, &key, json!({}))),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = with_assertion(
        &app,
        "/oauth/token",
        &assertion(&app, &key, json!({})),
        &[("grant_type", "client_credentials"), ("client_secret", "x")],
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

async fn the_other_endpoints_and_methods_take_assertions_alike(app: TestApp) {
    app.user("alice").await;
    let key = ClientKey::ed25519("k1");
    service(
        &app,
        ClientKeys::Inline(parse_jwks(&jwks(&[&key]).to_string()).unwrap()),
    )
    .await;
    let (_, body) = grant(&app, &assertion(&app, &key, json!({}))).await;
    let token = body["access_token"].as_str().unwrap();
    // Introspection and revocation, aud naming each endpoint.
    let base = app.sigil.config.issuer.clone();
    let response = with_assertion(
        &app,
        "/oauth/introspect",
        &assertion(
            &app,
            &key,
            json!({"aud": format!("{base}/oauth/introspect")}),
        ),
        &[("token", token)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], true);
    let response = with_assertion(
        &app,
        "/oauth/revoke",
        &assertion(&app, &key, json!({"aud": format!("{base}/oauth/revoke")})),
        &[("token", token)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    // An assertion made for the revocation endpoint is no good elsewhere.
    let response = with_assertion(
        &app,
        "/oauth/introspect",
        &assertion(&app, &key, json!({"aud": format!("{base}/oauth/revoke")})),
        &[("token", token)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The revocation feed, POSTed with the cursor in the form, shows the
    // token just revoked; a GET has nowhere to put an assertion.
    let feed = format!("{base}/oauth/revocations");
    let response = with_assertion(
        &app,
        "/oauth/revocations",
        &assertion(&app, &key, json!({"aud": feed})),
        &[("since", "0")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await.unwrap();
    let jti = crate::helpers::claims_of(token)["jti"].clone();
    assert!(
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "token" && e["jti"] == jti),
        "{page}"
    );
    let response = with_assertion(
        &app,
        "/oauth/revocations",
        &assertion(&app, &key, json!({"aud": feed})),
        &[("since", "yesterday")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let response = app.get("/oauth/revocations?since=0").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Discovery lists the method and its algorithms everywhere it applies.
    let metadata: Value = app
        .get("/.well-known/openid-configuration")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        assert!(
            metadata[field]
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt")),
            "{field}"
        );
    }
    assert_eq!(
        metadata["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
    // The admin API registers such a client with an inline JWKS.
    let admin = crate::admin::admin_token(&app).await;
    let response = app
        .post("/admin/clients")
        .bearer_auth(&admin)
        .json(&json!({
            "client_id": "svc-api",
            "grant_types": ["client_credentials"],
            "jwks": jwks(&[&key]),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("client_secret").is_none(), "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
}

/// A client's JWKS server: what it serves can be changed, and it counts
/// its requests.
#[derive(Clone, Default)]
struct KeyServer {
    body: Arc<Mutex<String>>,
    hits: Arc<Mutex<u32>>,
}

async fn keys_at_a_jwks_uri_are_fetched_cached_and_refetched_for_a_new_kid(app: TestApp) {
    let old = ClientKey::es256("2026-01");
    let new = ClientKey::es256("2026-02");
    let server = KeyServer::default();
    // The client publishes an encryption key beside its signing key
    // (RFC 7517 §5: keys Sigil cannot use are ignored, not fatal).
    let with_enc = |keys: &[&ClientKey]| {
        let mut set = jwks(keys);
        set["keys"].as_array_mut().unwrap().push(json!({
            "kty": "OKP", "crv": "X25519", "use": "enc", "kid": "enc-1",
            "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"
        }));
        set.to_string()
    };
    *server.body.lock().unwrap() = with_enc(&[&old]);
    let state = server.clone();
    let router = Router::new().route(
        "/jwks.json",
        get(move || {
            let state = state.clone();
            async move {
                *state.hits.lock().unwrap() += 1;
                let body = state.body.lock().unwrap().clone();
                (
                    [
                        ("content-type", "application/json"),
                        ("cache-control", "max-age=3600"),
                    ],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    service(&app, ClientKeys::Uri(uri)).await;

    for _ in 0..3 {
        assert_eq!(
            grant(&app, &assertion(&app, &old, json!({}))).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        *server.hits.lock().unwrap(),
        1,
        "fetched once, then cached (max-age)"
    );
    // The client rotates its key: the new kid is not cached, so Sigil
    // fetches again (not within 10 s of the last fetch, though).
    *server.body.lock().unwrap() = with_enc(&[&old, &new]);
    assert_eq!(
        grant(&app, &assertion(&app, &new, json!({}))).await.0,
        StatusCode::UNAUTHORIZED,
        "within the cooldown"
    );
    app.clock.advance(11);
    assert_eq!(
        grant(&app, &assertion(&app, &new, json!({}))).await.0,
        StatusCode::OK
    );
    assert_eq!(*server.hits.lock().unwrap(), 2);
    // Forged kids cost at most one fetch per 10 s.
    for i in 0..5 {
        let forged = ClientKey::es256(&format!("forged-{i}"));
        assert_eq!(
            grant(&app, &assertion(&app, &forged, json!({}))).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(*server.hits.lock().unwrap() <= 3);
}
