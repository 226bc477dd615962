//! The JWKS and the authorization-server metadata.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::admin::{admin_token, call};
use crate::helpers::{TestApp, json};
use crate::on_both_backends;

on_both_backends!(
    the_jwks_publishes_one_rs256_and_one_eddsa_key_with_thumbprint_kids,
    the_jwks_is_cacheable_and_revalidates_with_its_etag,
    metadata_names_the_configured_issuer_and_its_endpoints,
    metadata_is_served_from_memory_when_the_database_is_unreachable,
);

/// RFC 7638 §3 computed here, independently of Sigil's own code.
fn thumbprint(jwk: &Value) -> String {
    use base64::Engine;
    let canonical = match jwk["kty"].as_str().unwrap() {
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk["e"].as_str().unwrap(),
            jwk["n"].as_str().unwrap()
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap()
        ),
        other => panic!("unexpected kty {other}"),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

async fn the_jwks_publishes_one_rs256_and_one_eddsa_key_with_thumbprint_kids(app: TestApp) {
    let response = app.get("/.well-known/jwks.json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/jwk-set+json"
    );
    let body = json(response).await;
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let rsa = keys
        .iter()
        .find(|k| k["alg"] == "RS256")
        .expect("an RS256 key");
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(rsa["use"], "sig");
    assert_eq!(rsa["e"], "AQAB");
    assert!(rsa["n"].as_str().unwrap().len() >= 342, "2048-bit modulus");
    let ed = keys
        .iter()
        .find(|k| k["alg"] == "EdDSA")
        .expect("an EdDSA key");
    assert_eq!(
        (ed["kty"].as_str(), ed["crv"].as_str(), ed["use"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("sig"))
    );
    for key in keys {
        assert_eq!(key["kid"].as_str().unwrap(), thumbprint(key));
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "no private members"
        );
    }
}

async fn the_jwks_is_cacheable_and_revalidates_with_its_etag(app: TestApp) {
    let first = app.get("/.well-known/jwks.json").send().await.unwrap();
    let cache_control = first.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cache_control.starts_with("public, max-age="),
        "{cache_control}"
    );
    let max_age: u64 = cache_control
        .trim_start_matches("public, max-age=")
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age > 0 && max_age <= 900);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let again = app
        .get("/.well-known/jwks.json")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"], etag.as_str());
    let stale = app
        .get("/.well-known/jwks.json")
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
}

async fn metadata_names_the_configured_issuer_and_its_endpoints(app: TestApp) {
    // Registered through the admin API: the documents list its scopes at
    // once (with those of the admin's own client).
    let admin = admin_token(&app).await;
    let web = serde_json::json!({
        "client_id": "web", "grant_types": ["password", "refresh_token"], "scopes": "read write"
    });
    let (status, _) = call(&app, Method::POST, "/admin/clients", &admin, Some(web)).await;
    assert_eq!(status, StatusCode::CREATED);
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let body = json(app.get(path).send().await.unwrap()).await;
        assert_eq!(body["issuer"], app.base.as_str(), "{path}");
        assert_eq!(body["token_endpoint"], app.url("/oauth/token"));
        assert_eq!(body["jwks_uri"], app.url("/.well-known/jwks.json"));
        let grants = body["grant_types_supported"].as_array().unwrap();
        assert!(grants.iter().any(|g| g == "password"));
        let methods = body["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        assert!(methods.iter().any(|m| m == "client_secret_basic"));
        assert_eq!(
            body["scopes_supported"],
            serde_json::json!(["email", "openid", "profile", "read", "sigil:admin", "write"])
        );
        assert_eq!(
            body["response_types_supported"],
            serde_json::json!(["code"])
        );
        assert_eq!(body["authorization_endpoint"], app.url("/authorize"));
        assert_eq!(
            body["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(body["authorization_response_iss_parameter_supported"], true);
        assert!(grants.iter().any(|g| g == "authorization_code"));
        // The advertised JWKS URI serves the JWKS.
        let jwks = app
            .http
            .get(body["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(jwks.status(), StatusCode::OK);
    }
    let oidc = json(
        app.get("/.well-known/openid-configuration")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        oidc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(oidc["userinfo_endpoint"], app.url("/userinfo"));
    assert_eq!(oidc["end_session_endpoint"], app.url("/logout"));
    let algs = oidc["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(
        algs.iter().any(|a| a == "RS256"),
        "OIDC Discovery §3 requires RS256"
    );
    for claim in ["sub", "preferred_username", "email", "email_verified"] {
        assert!(
            oidc["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == claim),
            "{claim}"
        );
    }
    // Only registered metadata names (RFC 8414 §2 and its IANA registry,
    // OIDC Discovery §3, RP-Initiated Logout §2.1, RFC 9207 §3): strict
    // validators such as the OpenID conformance suite's warn on others.
    const REGISTERED: &[&str] = &[
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "registration_endpoint",
        "scopes_supported",
        "response_types_supported",
        "response_modes_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "token_endpoint_auth_signing_alg_values_supported",
        "service_documentation",
        "ui_locales_supported",
        "op_policy_uri",
        "op_tos_uri",
        "revocation_endpoint",
        "revocation_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint",
        "introspection_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
        "dpop_signing_alg_values_supported",
        "code_challenge_methods_supported",
        "authorization_response_iss_parameter_supported",
        "device_authorization_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "acr_values_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "userinfo_signing_alg_values_supported",
        "claims_supported",
        "claims_parameter_supported",
        "request_parameter_supported",
        "request_uri_parameter_supported",
        "prompt_values_supported",
    ];
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let body = json(app.get(path).send().await.unwrap()).await;
        for name in body.as_object().unwrap().keys() {
            assert!(
                REGISTERED.contains(&name.as_str()),
                "{path} has the unregistered field {name}"
            );
        }
    }
}

async fn metadata_is_served_from_memory_when_the_database_is_unreachable(app: TestApp) {
    app.confidential_client("web").await;
    // What a node does when a change reaches it (here: at once).
    app.sigil.clients_changed().await;
    // Neither document has been asked for yet; now the database goes.
    app.sigil.store.close().await;
    let register = app
        .post("/users")
        .json(&serde_json::json!({"username": "zed", "email": "zed@example.com", "password": "long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        register.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the database is really gone"
    );
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let response = app.get(path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = json(response).await;
        assert_eq!(body["issuer"], app.base.as_str(), "{path}");
        assert_eq!(
            body["scopes_supported"],
            serde_json::json!(["email", "openid", "profile", "read", "write"])
        );
    }
    let jwks = app.get("/.well-known/jwks.json").send().await.unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
}
