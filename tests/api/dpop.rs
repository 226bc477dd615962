//! DPoP (RFC 9449) at Sigil's endpoints: proofs at the token endpoint for
//! every grant, tokens bound by `cnf.jkt`, a public client's refresh
//! tokens bound to its key, `dpop_jkt` binding a code, clients that must
//! use DPoP, server nonces, and the DPoP scheme at `/users/me` and
//! `/userinfo`, with each refusal of §4.3 and §7.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sigil::clients::{ClientKeys, GrantType, NewClient, parse_jwks};
use sigil::scope::Scopes;

use crate::browser::{Browser, REDIRECT, code_client, jwt_claims, pkce, request};
use crate::client_keys::{ClientKey, jwks};
use crate::helpers::{Backend, NowSecs, PASSWORD, TestApp, TestClient};
use crate::on_both_backends;

on_both_backends!(
    a_proof_binds_the_token_to_the_key_and_only_that_key_can_use_it,
    the_token_endpoint_refuses_each_bad_proof,
    the_resource_endpoints_refuse_each_bad_proof,
    a_public_clients_refresh_token_is_bound_to_its_key,
    dpop_jkt_binds_the_authorization_code,
    a_client_may_be_required_to_use_dpop,
    introspection_and_discovery_speak_of_dpop,
);

on_both_backends!(spawn = super::with_nonces; server_nonces_are_handed_out_and_required);

async fn with_nonces(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| c.dpop.require_nonce = true).await
}

async fn legacy(app: &TestApp, public: bool) -> TestClient {
    app.client(
        if public { "mobile" } else { "backend" },
        public,
        &[GrantType::Password, GrantType::RefreshToken],
        "openid profile",
        None,
    )
    .await
}

fn token_url(app: &TestApp) -> String {
    format!("{}/oauth/token", app.sigil.config.issuer)
}

/// A token request with `DPoP` headers (none, one, or more).
async fn token_with(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
    proofs: &[&str],
) -> Response {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut request = app.post("/oauth/token");
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => form.push(("client_id", &client.id)),
    }
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    request.form(&form).send().await.unwrap()
}

async fn password_login(app: &TestApp, client: &TestClient, proof: Option<&str>) -> Response {
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    token_with(app, client, &form, proof.as_slice()).await
}

/// `GET /users/me` with `Authorization: <scheme> <token>` and proofs.
async fn me(app: &TestApp, scheme: &str, token: &str, proofs: &[&str]) -> Response {
    let mut request = app
        .get("/users/me")
        .header("Authorization", format!("{scheme} {token}"));
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    request.send().await.unwrap()
}

fn me_url(app: &TestApp) -> String {
    format!("{}/users/me", app.sigil.config.issuer)
}

async fn error_of(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

async fn a_proof_binds_the_token_to_the_key_and_only_that_key_can_use_it(app: TestApp) {
    app.user("alice").await;
    let client = legacy(&app, false).await;
    let key = ClientKey::es256("k1");
    let now = app.clock.now_secs();
    let proof = key.proof("POST", &token_url(&app), None, None, now);
    let response = password_login(&app, &client, Some(&proof)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(token)["cnf"]["jkt"], key.thumbprint());

    // With its key, for this request and token: accepted.
    let ok = key.proof("GET", &me_url(&app), Some(token), None, now);
    let response = me(&app, "DPoP", token, &[&ok]).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Stolen, it is of no use: as a bearer token, or with a thief's key.
    let (status, error) = error_of(me(&app, "Bearer", token, &[]).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let thief = ClientKey::es256("t");
    let theirs = thief.proof("GET", &me_url(&app), Some(token), None, now);
    let response = me(&app, "DPoP", token, &[&theirs]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("DPoP algs="), "{challenge}");
    assert!(
        challenge.contains(r#"error="invalid_dpop_proof""#),
        "{challenge}"
    );
    // A proof is good once.
    let (status, error) = error_of(me(&app, "DPoP", token, &[&ok]).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof")
    );

    // Without a proof the same login is a bearer token, as before.
    let plain: Value = password_login(&app, &client, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["token_type"], "Bearer");
    let plain = plain["access_token"].as_str().unwrap();
    assert!(jwt_claims(plain).get("cnf").is_none());
    let fresh = key.proof("GET", &me_url(&app), Some(plain), None, now);
    let (status, error) = error_of(me(&app, "DPoP", plain, &[&fresh]).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token"),
        "an unbound token with the DPoP scheme"
    );

    // client_credentials binds too; and on Postgres a proof used on one
    // node is refused on another.
    let service = app
        .client("svc", false, &[GrantType::ClientCredentials], "read", None)
        .await;
    let proof = key.proof("POST", &token_url(&app), None, None, now);
    let response = token_with(
        &app,
        &service,
        &[("grant_type", "client_credentials")],
        &[&proof],
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    if app.database_url.starts_with("postgres") {
        let other = app.spawn_node().await;
        let form = [("grant_type", "client_credentials")];
        let response = other
            .post("/oauth/token")
            .basic_auth(&service.id, service.secret.as_deref())
            .header("DPoP", &proof)
            .form(&form)
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_dpop_proof")
        );
    }
}

async fn the_token_endpoint_refuses_each_bad_proof(app: TestApp) {
    app.user("alice").await;
    let client = legacy(&app, false).await;
    let key = ClientKey::es256("k1");
    let now = app.clock.now_secs();
    let url = token_url(&app);
    let claims = |htm: &str, htu: &str, iat: i64| json!({"jti": sigil::tokens::random_b64::<12>(), "htm": htm, "htu": htu, "iat": iat});
    let mut private = key.public();
    private["d"] = json!("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I");
    let bad: Vec<(&str, String)> = vec![
        ("not a JWT", "not.a.jwt".to_string()),
        (
            "typ JWT",
            key.sign(
                json!({"typ": "JWT", "jwk": key.public()}),
                &claims("POST", &url, now),
            ),
        ),
        (
            "no jwk",
            key.sign(json!({"typ": "dpop+jwt"}), &claims("POST", &url, now)),
        ),
        (
            "a private jwk",
            key.sign(
                json!({"typ": "dpop+jwt", "jwk": private}),
                &claims("POST", &url, now),
            ),
        ),
        (
            "another key in the header",
            key.sign(
                json!({"typ": "dpop+jwt", "jwk": ClientKey::es256("x").public()}),
                &claims("POST", &url, now),
            ),
        ),
        ("htm GET", key.proof("GET", &url, None, None, now)),
        (
            "htu of another endpoint",
            key.proof(
                "POST",
                &format!("{}/oauth/revoke", app.sigil.config.issuer),
                None,
                None,
                now,
            ),
        ),
        (
            "htu of another server",
            key.proof("POST", "https://evil.example/oauth/token", None, None, now),
        ),
        (
            "iat a minute old",
            key.proof("POST", &url, None, None, now - 61),
        ),
        (
            "iat in the future",
            key.proof("POST", &url, None, None, now + 120),
        ),
        (
            "no jti",
            key.sign(
                json!({"typ": "dpop+jwt", "jwk": key.public()}),
                &json!({"htm": "POST", "htu": url, "iat": now}),
            ),
        ),
    ];
    for (what, proof) in bad {
        let (status, error) = error_of(password_login(&app, &client, Some(&proof)).await).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_dpop_proof"),
            "{what}"
        );
    }
    // alg none and HS256 (a MAC "keyed" with anything) are never accepted.
    for alg in ["none", "HS256"] {
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            json!({"typ": "dpop+jwt", "alg": alg, "jwk": key.public()}).to_string(),
        );
        let body = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims("POST", &url, now).to_string(),
        );
        let proof = format!("{header}.{body}.");
        let (_, error) = error_of(password_login(&app, &client, Some(&proof)).await).await;
        assert_eq!(error, "invalid_dpop_proof", "alg {alg}");
    }
    // Two DPoP headers; a replayed proof; the query and a default port are
    // ignored in htu.
    let one = key.proof("POST", &url, None, None, now);
    let two = key.proof("POST", &url, None, None, now);
    let (_, error) = error_of(
        token_with(
            &app,
            &client,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            &[&one, &two],
        )
        .await,
    )
    .await;
    assert_eq!(error, "invalid_dpop_proof");
    let with_query = key.proof("POST", &format!("{url}?x=1"), None, None, now);
    assert_eq!(
        password_login(&app, &client, Some(&with_query))
            .await
            .status(),
        StatusCode::OK
    );
    let (_, error) = error_of(password_login(&app, &client, Some(&with_query)).await).await;
    assert_eq!(error, "invalid_dpop_proof", "replayed");
    // What RFC 9449 allows and clients send is accepted: a fractional iat
    // (a NumericDate, RFC 7519 §2), typ in another case (a media type), an
    // htu equal after RFC 3986 normalisation.
    let fractional = key.sign(
        json!({"typ": "dpop+jwt", "jwk": key.public()}),
        &json!({"jti": sigil::tokens::random_b64::<12>(), "htm": "POST", "htu": url,
                "iat": now as f64 + 0.52}),
    );
    let upper = key.sign(
        json!({"typ": "DPoP+JWT", "jwk": key.public()}),
        &claims("POST", &url, now),
    );
    let base = &app.sigil.config.issuer;
    let encoded = key.proof("POST", &format!("{base}/oauth/%74oken"), None, None, now);
    let dotted = key.proof("POST", &format!("{base}/oauth/x/../token"), None, None, now);
    for (what, proof) in [
        ("fractional iat", fractional),
        ("typ DPoP+JWT", upper),
        ("%74oken", encoded),
        ("x/../token", dotted),
    ] {
        let response = password_login(&app, &client, Some(&proof)).await;
        assert_eq!(response.status(), StatusCode::OK, "{what}");
    }
}

async fn the_resource_endpoints_refuse_each_bad_proof(app: TestApp) {
    app.user("alice").await;
    let client = legacy(&app, false).await;
    let key = ClientKey::ed25519("k1");
    let now = app.clock.now_secs();
    let proof = key.proof("POST", &token_url(&app), None, None, now);
    let body: Value = password_login(&app, &client, Some(&proof))
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap();
    let url = me_url(&app);
    let other_token = {
        let proof = key.proof("POST", &token_url(&app), None, None, now);
        let body: Value = password_login(&app, &client, Some(&proof))
            .await
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_string()
    };
    let bad = [
        ("no proof", None),
        (
            "htm POST",
            Some(key.proof("POST", &url, Some(token), None, now)),
        ),
        (
            "htu /userinfo",
            Some(key.proof(
                "GET",
                &format!("{}/userinfo", app.sigil.config.issuer),
                Some(token),
                None,
                now,
            )),
        ),
        ("no ath", Some(key.proof("GET", &url, None, None, now))),
        (
            "ath of another token",
            Some(key.proof("GET", &url, Some(&other_token), None, now)),
        ),
        (
            "iat two minutes old",
            Some(key.proof("GET", &url, Some(token), None, now - 120)),
        ),
    ];
    for (what, proof) in bad {
        let proofs: Vec<&str> = proof.iter().map(String::as_str).collect();
        let (status, error) = error_of(me(&app, "DPoP", token, &proofs).await).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_dpop_proof"),
            "{what}"
        );
    }
    // /userinfo takes the DPoP scheme too (the token needs openid).
    let userinfo = format!("{}/userinfo", app.sigil.config.issuer);
    let proof = key.proof("GET", &userinfo, Some(token), None, now);
    let response = app
        .get("/userinfo")
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A 401 without any token offers both schemes.
    let bare = app.get("/users/me").send().await.unwrap();
    let challenges: Vec<&str> = bare
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("DPoP algs=")),
        "{challenges:?}"
    );
}

async fn a_public_clients_refresh_token_is_bound_to_its_key(app: TestApp) {
    app.user("alice").await;
    let mobile = legacy(&app, true).await;
    let key = ClientKey::es256("k1");
    let now = app.clock.now_secs();
    let proof = key.proof("POST", &token_url(&app), None, None, now);
    let login: Value = password_login(&app, &mobile, Some(&proof))
        .await
        .json()
        .await
        .unwrap();
    let refresh = login["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    // Without a proof, or with another key: refused, and nothing spent.
    let (_, error) = error_of(token_with(&app, &mobile, &form, &[]).await).await;
    assert_eq!(error, "invalid_dpop_proof");
    let thief = ClientKey::es256("t");
    let theirs = thief.proof("POST", &token_url(&app), None, None, now);
    let (_, error) = error_of(token_with(&app, &mobile, &form, &[&theirs]).await).await;
    assert_eq!(error, "invalid_grant");
    let mine = key.proof("POST", &token_url(&app), None, None, now);
    let response = token_with(&app, &mobile, &form, &[&mine]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.thumbprint()
    );

    // A confidential client's refresh token is not bound (its secret
    // binds it): it refreshes without a proof, to a bearer token.
    let backend = legacy(&app, false).await;
    let proof = key.proof("POST", &token_url(&app), None, None, now);
    let login: Value = password_login(&app, &backend, Some(&proof))
        .await
        .json()
        .await
        .unwrap();
    let refreshed = app
        .refresh(&backend, login["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
}

async fn dpop_jkt_binds_the_authorization_code(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "spa", true, true).await;
    let key = ClientKey::es256("k1");
    let jkt = key.thumbprint();
    let get_code = |challenge: String| {
        let client = &client;
        let app = &app;
        let jkt = jkt.clone();
        async move {
            let mut browser = Browser::new(app);
            let mut params = request(client, &challenge);
            params.push(("dpop_jkt", &jkt));
            let params: Vec<(String, String)> = params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let pairs: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let form = browser.authorize(&pairs).await;
            let page = browser.sign_in(&form, "alice", PASSWORD).await;
            page.redirect_params()["code"].clone()
        }
    };
    let now = app.clock.now_secs();
    let exchange = |code: &str, verifier: &str, proof: Option<String>| {
        let form = [
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", REDIRECT.to_string()),
            ("code_verifier", verifier.to_string()),
        ];
        let app = &app;
        let client = &client;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let proofs: Vec<&str> = proof.iter().map(String::as_str).collect();
            token_with(app, client, &pairs, &proofs).await
        }
    };
    for (what, proof) in [
        ("no proof", None),
        (
            "another key",
            Some(ClientKey::es256("x").proof("POST", &token_url(&app), None, None, now)),
        ),
    ] {
        let (verifier, challenge) = pkce();
        let code = get_code(challenge).await;
        let (_, error) = error_of(exchange(&code, &verifier, proof).await).await;
        assert_eq!(error, "invalid_grant", "{what}");
    }
    let (verifier, challenge) = pkce();
    let code = get_code(challenge).await;
    let proof = key.proof("POST", &token_url(&app), None, None, now);
    let response = exchange(&code, &verifier, Some(proof)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    // A malformed dpop_jkt goes back to the client as invalid_request.
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let mut params = request(&client, &challenge);
    params.push(("dpop_jkt", "not-a-thumbprint"));
    let page = browser.authorize(&params).await;
    assert_eq!(page.redirect_params()["error"], "invalid_request");
}

async fn a_client_may_be_required_to_use_dpop(app: TestApp) {
    app.user("alice").await;
    let strict = app
        .client_from(NewClient {
            id: "strict".into(),
            grant_types: vec![GrantType::Password, GrantType::RefreshToken],
            scopes: Scopes::parse("profile").unwrap(),
            require_dpop: true,
            ..NewClient::default()
        })
        .await;
    let (status, error) = error_of(password_login(&app, &strict, None).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof")
    );
    let key = ClientKey::es256("k1");
    let proof = key.proof("POST", &token_url(&app), None, None, app.clock.now_secs());
    assert_eq!(
        password_login(&app, &strict, Some(&proof)).await.status(),
        StatusCode::OK
    );
}

async fn server_nonces_are_handed_out_and_required(app: TestApp) {
    app.user("alice").await;
    let client = legacy(&app, false).await;
    let key = ClientKey::es256("k1");
    let now = app.clock.now_secs();
    let proof = key.proof("POST", &token_url(&app), None, None, now);
    let response = password_login(&app, &client, Some(&proof)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let nonce = response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_string();
    let (_, error) = error_of(response).await;
    assert_eq!(error, "use_dpop_nonce");
    let proof = key.proof("POST", &token_url(&app), None, Some(&nonce), now);
    let response = password_login(&app, &client, Some(&proof)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("dpop-nonce"));
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    // At a resource: 401 use_dpop_nonce with a nonce, then accepted.
    let bare = key.proof("GET", &me_url(&app), Some(token), None, now);
    let response = me(&app, "DPoP", token, &[&bare]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let nonce = response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("use_dpop_nonce")
    );
    let proof = key.proof("GET", &me_url(&app), Some(token), Some(&nonce), now);
    assert_eq!(
        me(&app, "DPoP", token, &[&proof]).await.status(),
        StatusCode::OK
    );
    // A nonce of ten minutes ago is stale.
    app.clock.advance(601);
    let later = app.clock.now_secs();
    let proof = key.proof("POST", &token_url(&app), None, Some(&nonce), later);
    let response = password_login(&app, &client, Some(&proof)).await;
    let fresh = response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_string();
    let (_, error) = error_of(response).await;
    assert_eq!(error, "use_dpop_nonce");

    // A private_key_jwt client told use_dpop_nonce sends the same body
    // again with a new proof: its assertion was not spent on the refusal.
    let signer = ClientKey::ed25519("svc-1");
    app.client_from(NewClient {
        id: "svc".into(),
        grant_types: vec![GrantType::ClientCredentials],
        keys: Some(ClientKeys::Inline(
            parse_jwks(&jwks(&[&signer]).to_string()).unwrap(),
        )),
        ..NewClient::default()
    })
    .await;
    let assertion = signer.sign(
        json!({"kid": "svc-1"}),
        &json!({"iss": "svc", "sub": "svc", "aud": token_url(&app), "iat": later,
                "exp": later + 60, "jti": sigil::tokens::random_b64::<12>()}),
    );
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let send = |proof: String| {
        app.post("/oauth/token")
            .header("DPoP", proof)
            .form(&form)
            .send()
    };
    let first = send(key.proof("POST", &token_url(&app), None, None, later))
        .await
        .unwrap();
    assert_eq!(error_of(first).await.1, "use_dpop_nonce");
    let retry = send(key.proof("POST", &token_url(&app), None, Some(&fresh), later))
        .await
        .unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    let body: Value = retry.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
}

async fn introspection_and_discovery_speak_of_dpop(app: TestApp) {
    app.user("alice").await;
    let client = legacy(&app, false).await;
    let key = ClientKey::es256("k1");
    let proof = key.proof("POST", &token_url(&app), None, None, app.clock.now_secs());
    let body: Value = password_login(&app, &client, Some(&proof))
        .await
        .json()
        .await
        .unwrap();
    let introspected = app
        .introspect(&client, body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"]["jkt"], key.thumbprint());
    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
}
