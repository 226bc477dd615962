//! The OpenAPI document and the docs page that renders it. The browser test
//! (scripts/browser-test.sh) drives the page itself; these check what it
//! stands on.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Backend, TestApp, json};

#[tokio::test]
async fn the_openapi_document_is_3_1_and_every_path_it_lists_is_served() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let response = app.get("/openapi.json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc = json(response).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/revocations",
        "/users",
        "/users/me",
        "/users/me/revoke-sessions",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(expected), "{expected} is not documented");
    }

    // Every documented operation is routed: the router answers something
    // other than 404/405 for it (a missing parameter or credential is fine).
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path.replace("{kid}", "no-such-kid");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let status = app
                .http
                .request(method.clone(), app.url(&concrete))
                .send()
                .await
                .unwrap()
                .status();
            let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                || (status == StatusCode::NOT_FOUND && !concrete.contains("no-such-kid"));
            assert!(
                !unrouted,
                "{method} {path} is documented but answers {status}"
            );
        }
    }
}

#[tokio::test]
async fn the_token_endpoint_is_documented_as_a_form_with_rfc_6749_errors() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let doc = json(app.get("/openapi.json").send().await.unwrap()).await;
    let token = &doc["paths"]["/oauth/token"]["post"];
    assert!(
        token["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object(),
        "{token}"
    );
    for status in ["200", "400", "401"] {
        assert!(
            token["responses"][status].is_object(),
            "no {status} response"
        );
    }
    let schemes: &Value = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
}

#[tokio::test]
async fn client_creation_documents_its_lifetimes_and_their_bounds() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let doc = json(app.get("/openapi.json").send().await.unwrap()).await;
    let body = &doc["components"]["schemas"]["NewClientBody"]["properties"];
    for (field, minimum) in [
        ("access_token_ttl_seconds", 10),
        ("refresh_token_ttl_seconds", 60),
    ] {
        assert_eq!(body[field]["minimum"], minimum, "{field}: {body}");
        assert!(
            body[field]["description"]
                .as_str()
                .is_some_and(|d| d.contains("at most the server's")),
            "{field}: {body}"
        );
    }
}

#[tokio::test]
async fn the_docs_page_loads_only_its_own_embedded_assets() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let page = app.get("/docs").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    let sources: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/docs/") || s.starts_with("http"))
        .collect();
    assert!(!sources.is_empty(), "{html}");
    for source in sources {
        assert!(
            !source.starts_with("http"),
            "the page loads {source} from elsewhere"
        );
        let asset = app.get(source).send().await.unwrap();
        assert_eq!(asset.status(), StatusCode::OK, "{source}");
        assert!(
            asset.bytes().await.unwrap().len() > 100,
            "{source} is empty"
        );
    }
}
