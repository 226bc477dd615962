//! Token exchange (RFC 8693): a service trades the user's token it was
//! sent for a narrower one addressed to the next service, naming itself
//! as actor; each rule and each refusal, the audit event, and revocation
//! reaching the derived tokens.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::clients::{GrantType, NewClient};
use sigil::scope::Scopes;

use crate::browser::jwt_claims;
use crate::client_keys::ClientKey;
use crate::helpers::{NowSecs, TestApp, TestClient, until_audited};
use crate::on_both_backends;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

on_both_backends!(
    a_service_exchanges_a_users_token_for_a_narrower_one_naming_itself,
    actors_nest_down_a_chain_of_services,
    each_rule_of_an_exchange_is_enforced,
    revoking_the_users_session_revokes_the_derived_tokens,
);

/// The chain: `gateway` (the user's app, its tokens for `service-a`),
/// confidential `service-a` that may exchange for `service-b`, and
/// `service-b` that may exchange for `service-c`.
struct Chain {
    gateway: TestClient,
    a: TestClient,
    b: TestClient,
}

async fn chain(app: &TestApp) -> Chain {
    app.user("alice").await;
    let gateway = app
        .client_from(NewClient {
            id: "gateway".into(),
            grant_types: vec![GrantType::Password, GrantType::RefreshToken],
            scopes: Scopes::parse("notes:read notes:write profile").unwrap(),
            audience: Some("service-a".into()),
            ..NewClient::default()
        })
        .await;
    let service = |id: &str, target: &str| NewClient {
        id: id.into(),
        grant_types: vec![GrantType::ClientCredentials, GrantType::TokenExchange],
        scopes: Scopes::parse("internal").unwrap(),
        exchange_audiences: vec![target.into()],
        ..NewClient::default()
    };
    let a = app.client_from(service("service-a", "service-b")).await;
    let b = app.client_from(service("service-b", "service-c")).await;
    Chain { gateway, a, b }
}

async fn own_token(app: &TestApp, client: &TestClient) -> String {
    let response = app
        .token(client, &[("grant_type", "client_credentials")])
        .await;
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn exchange(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    form.push(("grant_type", EXCHANGE));
    let response = app.token(client, &form).await;
    (response.status(), response.json().await.unwrap())
}

async fn a_service_exchanges_a_users_token_for_a_narrower_one_naming_itself(app: TestApp) {
    let chain = chain(&app).await;
    let login = app.login(&chain.gateway, "alice").await;
    let user_token = login["access_token"].as_str().unwrap();
    let subject = jwt_claims(user_token);
    assert_eq!(subject["aud"], "service-a");
    let actor = own_token(&app, &chain.a).await;
    let (status, body) = exchange(
        &app,
        &chain.a,
        &[
            ("subject_token", user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &actor),
            ("actor_token_type", ACCESS_TOKEN),
            ("audience", "service-b"),
            ("scope", "notes:read"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let derived = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(derived["sub"], subject["sub"], "for the same user");
    assert_eq!(derived["aud"], "service-b");
    assert_eq!(derived["client_id"], "service-a");
    assert_eq!(derived["scope"], "notes:read");
    assert_eq!(
        derived["act"],
        json!({"sub": "service-a", "client_id": "service-a"})
    );
    assert_eq!(
        derived["sid"], subject["sid"],
        "revocable with the user's session"
    );
    assert_eq!(derived["acr"], subject["acr"]);
    assert_eq!(derived["amr"], subject["amr"]);
    assert!(derived["exp"].as_i64() <= subject["exp"].as_i64());
    // Without an actor token: the same, and no act (impersonation).
    let (status, body) = exchange(
        &app,
        &chain.a,
        &[
            ("subject_token", user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "service-b"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let plain = jwt_claims(body["access_token"].as_str().unwrap());
    assert!(plain.get("act").is_none());
    assert_eq!(
        plain["scope"], subject["scope"],
        "the subject's scope when none is asked"
    );
    // Audited with subject, actor and audience.
    let event = until_audited(&app, "token.exchanged").await;
    assert_eq!(event.actor, "client:service-a");
    let detail: Value = serde_json::from_str(&event.detail).unwrap();
    assert_eq!(detail["subject_jti"], subject["jti"]);
    assert_eq!(detail["audience"], "service-b");
    // The discovery documents list the grant.
    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(EXCHANGE))
    );
}

async fn actors_nest_down_a_chain_of_services(app: TestApp) {
    let chain = chain(&app).await;
    let user_token = app.access_token(&chain.gateway, "alice").await;
    let a_self = own_token(&app, &chain.a).await;
    let (_, body) = exchange(
        &app,
        &chain.a,
        &[
            ("subject_token", &user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &a_self),
            ("actor_token_type", ACCESS_TOKEN),
            ("audience", "service-b"),
        ],
    )
    .await;
    let for_b = body["access_token"].as_str().unwrap().to_string();
    let b_self = own_token(&app, &chain.b).await;
    let (status, body) = exchange(
        &app,
        &chain.b,
        &[
            ("subject_token", &for_b),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &b_self),
            ("actor_token_type", ACCESS_TOKEN),
            ("audience", "service-c"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let for_c = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(for_c["aud"], "service-c");
    assert_eq!(
        for_c["act"],
        json!({"sub": "service-b", "client_id": "service-b",
               "act": {"sub": "service-a", "client_id": "service-a"}})
    );
    // A DPoP proof on the exchange binds the new token to the service's key.
    let key = ClientKey::es256("b");
    let proof = key.proof(
        "POST",
        &format!("{}/oauth/token", app.sigil.config.issuer),
        None,
        None,
        app.clock.now_secs(),
    );
    let response = app
        .post("/oauth/token")
        .basic_auth(&chain.b.id, chain.b.secret.as_deref())
        .header("DPoP", proof)
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", for_b.as_str()),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "service-c"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.thumbprint()
    );
}

async fn each_rule_of_an_exchange_is_enforced(app: TestApp) {
    let chain = chain(&app).await;
    let user_token = app.access_token(&chain.gateway, "alice").await;
    let b_self = own_token(&app, &chain.b).await;
    let good = |extra: &[(&'static str, &'static str)]| {
        let mut form: Vec<(&str, String)> = vec![
            ("subject_token", user_token.clone()),
            ("subject_token_type", ACCESS_TOKEN.into()),
            ("audience", "service-b".into()),
        ];
        for (k, v) in extra {
            form.retain(|(name, _)| name != k);
            if !v.is_empty() {
                form.push((k, v.to_string()));
            }
        }
        form
    };
    type Form<'a> = Vec<(&'a str, String)>;
    let cases: Vec<(&str, Form, &str)> = vec![
        (
            "a wider scope",
            good(&[("scope", "notes:read admin")]),
            "invalid_scope",
        ),
        (
            "an audience it may not target",
            good(&[("audience", "service-c")]),
            "invalid_target",
        ),
        ("no audience", good(&[("audience", "")]), "invalid_request"),
        (
            "audience and resource disagreeing",
            good(&[("resource", "https://elsewhere.example")]),
            "invalid_target",
        ),
        (
            "no subject token type",
            good(&[("subject_token_type", "")]),
            "invalid_request",
        ),
        (
            "a subject token type it does not issue",
            good(&[(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )]),
            "invalid_request",
        ),
        (
            "a refresh token asked for",
            good(&[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )]),
            "invalid_request",
        ),
        (
            "a subject that is not a token",
            good(&[("subject_token", "nonsense")]),
            "invalid_grant",
        ),
        (
            "an actor type without an actor",
            good(&[("actor_token_type", ACCESS_TOKEN)]),
            "invalid_request",
        ),
    ];
    for (what, form, error) in cases {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = exchange(&app, &chain.a, &pairs).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(error)),
            "{what}: {body}"
        );
    }
    // resource alone names the target too.
    let mut form = good(&[("audience", "")]);
    form.push(("resource", "service-b".into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(exchange(&app, &chain.a, &pairs).await.0, StatusCode::OK);
    // Only tokens sent to the exchanging service: B cannot exchange the
    // user's token addressed to A; and an actor must be the client itself.
    let (_, body) = exchange(
        &app,
        &chain.b,
        &[
            ("subject_token", &user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "service-c"),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant", "{body}");
    let (_, body) = exchange(
        &app,
        &chain.a,
        &[
            ("subject_token", &user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &b_self),
            ("actor_token_type", ACCESS_TOKEN),
            ("audience", "service-b"),
        ],
    )
    .await;
    assert_eq!(
        body["error"], "invalid_grant",
        "another service's token as actor: {body}"
    );
    // A client without the grant; a public client cannot be given it.
    let (_, body) = exchange(
        &app,
        &chain.gateway,
        &[
            ("subject_token", &user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "service-b"),
        ],
    )
    .await;
    assert_eq!(body["error"], "unauthorized_client");
    let refused = sigil::clients::create_client(
        app.sigil.store.as_ref(),
        &app.sigil.config.max_client_lifetimes(),
        NewClient {
            id: "spa".into(),
            public: true,
            grant_types: vec![GrantType::TokenExchange],
            exchange_audiences: vec!["service-b".into()],
            ..NewClient::default()
        },
        app.clock.now_secs(),
    )
    .await;
    assert!(refused.is_err());
    // An expired subject, and a lifetime never beyond the subject's.
    let near_end = jwt_claims(&user_token)["exp"].as_i64().unwrap();
    app.clock.advance(near_end - app.clock.now_secs() - 5);
    let (status, body) = exchange(
        &app,
        &chain.a,
        &[
            ("subject_token", &user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "service-b"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], 5);
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["exp"],
        near_end
    );
    app.clock.advance(10);
    let (_, body) = exchange(
        &app,
        &chain.a,
        &[
            ("subject_token", &user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "service-b"),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant", "expired: {body}");
}

async fn revoking_the_users_session_revokes_the_derived_tokens(app: TestApp) {
    let chain = chain(&app).await;
    let login = app.login(&chain.gateway, "alice").await;
    let user_token = login["access_token"].as_str().unwrap();
    let (_, body) = exchange(
        &app,
        &chain.a,
        &[
            ("subject_token", user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "service-b"),
        ],
    )
    .await;
    let derived = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.introspect(&chain.a, &derived).await["active"], true);
    // The user logs out of the gateway: their session ends, and with it
    // what was derived from it.
    let response = app
        .revoke(&chain.gateway, login["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.introspect(&chain.a, &derived).await["active"], false);
    let (_, body) = exchange(
        &app,
        &chain.a,
        &[
            ("subject_token", user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "service-b"),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant", "a revoked subject: {body}");
}
