//! The example service chain of examples/chain (RFC 8693 token exchange)
//! against a live Sigil: a user's request goes through the gateway to
//! service A, which exchanges the user's token for one addressed to
//! service B with itself as actor; B verifies it with sigil-verify and
//! answers for whom, and through whom, it was called. And the refusals:
//! B takes neither the user's own token nor one exchanged without an
//! actor, and Sigil exchanges only for the audiences A may target.

use chain_example::Settings;
use chain_example::service_a::{ACCESS_TOKEN_TYPE, ServiceA, TOKEN_EXCHANGE};
use chain_example::service_b::Report;
use reqwest::StatusCode;
use serde_json::Value;
use sigil::clients::{GrantType, NewClient};
use sigil::scope::Scopes;

use crate::browser::jwt_claims;
use crate::helpers::{NowSecs, TestApp, TestClient, json, until_audited};
use crate::on_both_backends;

on_both_backends!(
    a_request_through_the_chain_reaches_b_for_the_user_with_service_a_as_actor,
    service_b_refuses_the_users_own_token_and_one_exchanged_without_an_actor,
    sigil_refuses_an_exchange_for_an_audience_service_a_may_not_target,
);

/// What the README registers: the app users sign in to (its tokens are
/// addressed to service A), and service A, a confidential client that
/// may exchange tokens for service B only:
///
/// ```text
/// sigil clients create gateway-app --public --grant-types password,refresh_token \
///   --scopes "reports:read reports:write" --audience service-a
/// sigil clients create service-a \
///   --grant-types client_credentials,urn:ietf:params:oauth:grant-type:token-exchange \
///   --exchange-audience service-b
/// ```
async fn register(app: &TestApp) -> (TestClient, TestClient) {
    let gateway_app = app
        .client_from(NewClient {
            id: "gateway-app".into(),
            public: true,
            grant_types: vec![GrantType::Password, GrantType::RefreshToken],
            scopes: Scopes::parse("reports:read reports:write").expect("scopes"),
            audience: Some("service-a".into()),
            ..NewClient::default()
        })
        .await;
    let service_a = app
        .client_from(NewClient {
            id: "service-a".into(),
            grant_types: vec![GrantType::ClientCredentials, GrantType::TokenExchange],
            exchange_audiences: vec!["service-b".into()],
            ..NewClient::default()
        })
        .await;
    assert!(service_a.secret.is_some(), "service-a is confidential");
    app.user("alice").await;
    (gateway_app, service_a)
}

/// The three services, each on a port of its own, against the test's Sigil
/// (their verifiers on its manual clock).
struct Chain {
    gateway: String,
    service_b: String,
}

impl Chain {
    async fn start(app: &TestApp, service_a: &TestClient) -> Chain {
        let mut listeners = Vec::new();
        let mut urls = Vec::new();
        for _ in 0..3 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            urls.push(format!("http://{}", listener.local_addr().expect("addr")));
            listeners.push(listener);
        }
        let settings = Settings {
            issuer: app.sigil.config.issuer.clone(),
            service_a_client_id: service_a.id.clone(),
            service_a_client_secret: service_a.secret.clone().expect("confidential"),
            service_b_audience: "service-b".into(),
            service_a_url: urls[1].clone(),
            service_b_url: urls[2].clone(),
        };
        let verifier = |audience: &str| {
            let clock = app.clock.clone();
            settings
                .verifier(audience)
                .clock(move || clock.now_secs())
                .build()
        };
        let gateway = chain_example::gateway::router(
            verifier("service-a").await.expect("the gateway's verifier"),
            &settings.service_a_url,
        );
        let a = ServiceA::new(
            &settings,
            verifier("service-a").await.expect("service A's verifier"),
        )
        .await
        .expect("service A finds Sigil's token endpoint");
        let routers = [
            gateway,
            chain_example::service_a::router(a),
            chain_example::service_b::router(
                verifier("service-b").await.expect("service B's verifier"),
            ),
        ];
        for (listener, router) in listeners.into_iter().zip(routers) {
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
        }
        Chain {
            gateway: urls[0].clone(),
            service_b: urls[2].clone(),
        }
    }

    async fn get(&self, app: &TestApp, url: String, token: &str) -> reqwest::Response {
        app.http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }
}

/// Alice's token from the gateway app: addressed to service A.
async fn user_token(app: &TestApp, gateway_app: &TestClient) -> (String, Value) {
    let login = app.login(gateway_app, "alice").await;
    let token = login["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let claims = jwt_claims(&token);
    assert_eq!(claims["aud"], "service-a");
    assert_eq!(claims["scope"], "reports:read reports:write");
    (token, claims)
}

async fn a_request_through_the_chain_reaches_b_for_the_user_with_service_a_as_actor(app: TestApp) {
    let (gateway_app, service_a) = register(&app).await;
    let chain = Chain::start(&app, &service_a).await;
    let (token, user) = user_token(&app, &gateway_app).await;
    let alice = app
        .sigil
        .store
        .user_by_username("alice")
        .await
        .expect("store")
        .expect("alice");

    let answer = chain
        .get(&app, format!("{}/api/report", chain.gateway), &token)
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let report: Report = answer.json().await.expect("B's report");
    // B saw the user, and service A acting for her…
    assert_eq!(report.sub, alice.id);
    assert_eq!(report.actors, ["service-a"]);
    // …in a token addressed to B, issued to A, narrower than hers and
    // expiring no later, that still says how she signed in.
    assert_eq!(report.aud, ["service-b"]);
    assert_eq!(report.client_id, "service-a");
    assert_eq!(report.scope.as_deref(), Some("reports:read"));
    assert!(
        report.exp <= user["exp"].as_i64().expect("exp"),
        "{} > {}",
        report.exp,
        user["exp"]
    );
    assert_eq!(report.amr, ["pwd"]);

    // Sigil recorded the exchange: by service A, for alice, A as actor.
    let exchanged = until_audited(&app, "token.exchanged").await;
    assert_eq!(exchanged.actor, "client:service-a");
    assert_eq!(exchanged.target.as_deref(), Some(alice.id.as_str()));
    let detail: Value = serde_json::from_str(&exchanged.detail).expect("detail JSON");
    assert_eq!(detail["actor"], "service-a");
    assert_eq!(detail["audience"], "service-b");
    assert_eq!(detail["subject_jti"], user["jti"]);

    // Again, with service A's own token from its cache.
    let again = chain
        .get(&app, format!("{}/api/report", chain.gateway), &token)
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let second: Report = again.json().await.expect("B's report");
    assert_eq!(second.sub, alice.id);
    assert_eq!(second.actors, ["service-a"]);

    // The gateway refuses a request without a token at the edge.
    let anonymous = app
        .http
        .get(format!("{}/api/report", chain.gateway))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

async fn service_b_refuses_the_users_own_token_and_one_exchanged_without_an_actor(app: TestApp) {
    let (gateway_app, service_a) = register(&app).await;
    let chain = Chain::start(&app, &service_a).await;
    let (token, user) = user_token(&app, &gateway_app).await;
    let report_at_b = format!("{}/report", chain.service_b);

    // Her own token, straight to B: addressed to service A, so not a token
    // for B at all.
    let direct = chain.get(&app, report_at_b.clone(), &token).await;
    assert_eq!(direct.status(), StatusCode::UNAUTHORIZED);
    let challenge = direct.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        challenge.contains(r#"realm="service-b""#) && challenge.contains("invalid_token"),
        "{challenge}"
    );

    // Exchanged by service A for B's audience, but without its own token as
    // actor: a valid token for B that names no one acting for the user.
    let response = app
        .token(
            &service_a,
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("audience", "service-b"),
                ("scope", "reports:read"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let exchanged = json(response).await;
    assert_eq!(exchanged["issued_token_type"], ACCESS_TOKEN_TYPE);
    let without_actor = exchanged["access_token"].as_str().expect("access_token");
    let claims = jwt_claims(without_actor);
    assert_eq!(claims["aud"], "service-b");
    assert_eq!(claims["client_id"], "service-a");
    for kept in ["sub", "sid", "acr", "amr"] {
        assert_eq!(claims[kept], user[kept], "{kept}");
    }
    assert!(claims.get("act").is_none(), "{claims}");
    let refused = chain.get(&app, report_at_b, without_actor).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(refused).await["error"], "access_denied");
}

async fn sigil_refuses_an_exchange_for_an_audience_service_a_may_not_target(app: TestApp) {
    let (gateway_app, service_a) = register(&app).await;
    let (token, _) = user_token(&app, &gateway_app).await;
    let actor = app
        .token(&service_a, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(actor.status(), StatusCode::OK);
    let actor = json(actor).await["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let response = app
        .token(
            &service_a,
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("actor_token", &actor),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
                ("audience", "service-c"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(response).await["error"], "invalid_target");
}
