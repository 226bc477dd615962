//! Tokens an attacker might present, each refused at `/users/me` with an
//! RFC 6750 `invalid_token` challenge and reported inactive by
//! introspection (RFC 8725 §2, §3). sigil-verify's own suite is in
//! verifier/tests/e2e/tokens.rs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::keys::{Alg, SigningKey, generate};

use crate::helpers::{Backend, TestApp};

fn part(value: &Value) -> String {
    B64.encode(value.to_string())
}

/// A compact JWS over `header` and `claims`, signed by `key` (or unsigned).
fn forge(header: &Value, claims: &Value, key: Option<&SigningKey>) -> String {
    let input = format!("{}.{}", part(header), part(claims));
    let signature = key
        .map(|k| B64.encode(k.sign(input.as_bytes()).unwrap()))
        .unwrap_or_default();
    format!("{input}.{signature}")
}

fn hs256(input: &str, secret: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    B64.encode(ring::hmac::sign(&key, input.as_bytes()).as_ref())
}

#[tokio::test]
async fn forged_tampered_and_misdirected_tokens_are_all_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let genuine = app.access_token(&client, "alice").await;
    let [h, p, _s]: [&str; 3] = genuine.split('.').collect::<Vec<_>>().try_into().unwrap();
    let claims: Value = serde_json::from_slice(&B64.decode(p).unwrap()).unwrap();
    let keys = app.sigil.keys.current();
    let rsa = keys.signing_key(Alg::RS256).unwrap();
    let ed = keys.signing_key(Alg::EdDSA).unwrap();
    let header = |alg: &str, kid: &str| json!({"alg": alg, "kid": kid, "typ": "at+jwt"});
    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    let foreign = generate(Alg::RS256, 2048).unwrap();
    let foreign_key = SigningKey::from_pkcs8(&foreign.kid, Alg::RS256, &foreign.pkcs8).unwrap();
    let impostor = SigningKey::from_pkcs8(&rsa.kid, Alg::RS256, &foreign.pkcs8).unwrap();
    let jwks = app.jwks().await;
    let rsa_n = jwks
        .find(&rsa.kid)
        .map(|k| {
            serde_json::to_value(k).unwrap()["n"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap();

    let ed_x = jwks
        .find(&ed.kid)
        .map(|k| {
            serde_json::to_value(k).unwrap()["x"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap();
    let refresh_token = app.login(&client, "alice").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let hs_input = format!("{}.{p}", part(&header("HS256", &rsa.kid)));
    let mut tampered_claims = claims.clone();
    tampered_claims["sub"] = json!("someone-else");
    let tampered = format!("{h}.{}.{_s}", part(&tampered_claims));
    let cases: Vec<(&str, String)> = vec![
        ("signature stripped", format!("{h}.{p}.")),
        (
            "signature truncated",
            format!("{h}.{p}.{}", &_s[.._s.len() / 2]),
        ),
        ("payload tampered", tampered),
        (
            "alg none",
            forge(
                &json!({"alg": "none", "kid": rsa.kid, "typ": "at+jwt"}),
                &claims,
                None,
            ),
        ),
        (
            "HS256 keyed with the RSA modulus",
            format!("{hs_input}.{}", hs256(&hs_input, rsa_n.as_bytes())),
        ),
        (
            "RS256 kid with EdDSA alg",
            forge(&header("EdDSA", &rsa.kid), &claims, Some(ed)),
        ),
        (
            "foreign key, unknown kid",
            forge(&header("RS256", &foreign.kid), &claims, Some(&foreign_key)),
        ),
        (
            "foreign key claiming a real kid",
            forge(&header("RS256", &rsa.kid), &claims, Some(&impostor)),
        ),
        (
            "typ JWT",
            forge(
                &json!({"alg": "RS256", "kid": rsa.kid, "typ": "JWT"}),
                &claims,
                Some(rsa),
            ),
        ),
        (
            "no typ",
            forge(&json!({"alg": "RS256", "kid": rsa.kid}), &claims, Some(rsa)),
        ),
        (
            "embedded jwk",
            forge(
                &json!({"alg": "RS256", "kid": rsa.kid, "typ": "at+jwt", "jwk": foreign.public_jwk}),
                &claims,
                Some(rsa),
            ),
        ),
        (
            "jku",
            forge(
                &json!({"alg": "RS256", "kid": rsa.kid, "typ": "at+jwt", "jku": "http://evil.example/jwks"}),
                &claims,
                Some(rsa),
            ),
        ),
        (
            "unknown crit",
            forge(
                &json!({"alg": "RS256", "kid": rsa.kid, "typ": "at+jwt", "crit": ["exp2"], "exp2": 1}),
                &claims,
                Some(rsa),
            ),
        ),
        (
            "wrong issuer",
            forge(
                &header("RS256", &rsa.kid),
                &with("iss", json!("https://evil.example")),
                Some(rsa),
            ),
        ),
        (
            "wrong audience",
            forge(
                &header("RS256", &rsa.kid),
                &with("aud", json!("another-api")),
                Some(rsa),
            ),
        ),
        (
            "not yet valid",
            forge(
                &header("RS256", &rsa.kid),
                &with("nbf", json!(claims["nbf"].as_i64().unwrap() + 3600)),
                Some(rsa),
            ),
        ),
        (
            "expired",
            forge(
                &header("RS256", &rsa.kid),
                &with("exp", json!(claims["iat"].as_i64().unwrap() - 1)),
                Some(rsa),
            ),
        ),
        (
            "kid is a path",
            forge(&header("RS256", "../../etc/passwd"), &claims, Some(rsa)),
        ),
        (
            "kid is SQL",
            forge(&header("RS256", "' OR '1'='1"), &claims, Some(rsa)),
        ),
        (
            "huge kid",
            forge(&header("RS256", &"k".repeat(6000)), &claims, Some(rsa)),
        ),
        ("not a JWT", "not-a-jwt".to_string()),
        (
            "alg None",
            forge(
                &json!({"alg": "None", "kid": rsa.kid, "typ": "at+jwt"}),
                &claims,
                None,
            ),
        ),
        (
            "alg NONE",
            forge(
                &json!({"alg": "NONE", "kid": rsa.kid, "typ": "at+jwt"}),
                &claims,
                None,
            ),
        ),
        (
            "alg nOnE",
            forge(
                &json!({"alg": "nOnE", "kid": rsa.kid, "typ": "at+jwt"}),
                &claims,
                None,
            ),
        ),
        ("HS256 keyed with the Ed25519 public key", {
            let input = format!("{}.{p}", part(&header("HS256", &ed.kid)));
            format!("{input}.{}", hs256(&input, ed_x.as_bytes()))
        }),
        (
            "EdDSA kid with RS256 alg",
            forge(&header("RS256", &ed.kid), &claims, Some(rsa)),
        ),
        ("empty kid", forge(&header("RS256", ""), &claims, Some(rsa))),
        (
            "x5u",
            forge(
                &json!({"alg": "RS256", "kid": rsa.kid, "typ": "at+jwt", "x5u": "http://evil.example/cert.pem"}),
                &claims,
                Some(rsa),
            ),
        ),
        ("a refresh token as a bearer", refresh_token.clone()),
        ("four parts", format!("{genuine}.extra")),
    ];
    assert_eq!(
        app.me(&genuine).await.status(),
        StatusCode::OK,
        "the genuine token works"
    );
    // Introspection answers for any audience of this issuer (RFC 7662: the
    // resource server checks `aud` itself), so a genuine token for another
    // audience is active there, as is the client's own refresh token
    // (`token_type: refresh_token`); every forgery is not.
    let genuine_elsewhere = ["wrong audience", "a refresh token as a bearer"];
    for (name, token) in cases
        .iter()
        .filter(|(name, _)| !genuine_elsewhere.contains(name))
    {
        let introspected = app.introspect(&client, token).await;
        assert_eq!(
            introspected,
            json!({"active": false}),
            "introspection of {name}"
        );
    }
    for (name, token) in cases {
        let response = app.me(&token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains(r#"error="invalid_token""#),
            "{name}: {challenge}"
        );
        // The description says which check refused it.
        let says = match name {
            "wrong issuer" => Some("issued by another issuer"),
            "wrong audience" => Some("issued for another audience"),
            _ => None,
        };
        if let Some(says) = says {
            assert!(challenge.contains(says), "{name}: {challenge}");
        }
    }
}
