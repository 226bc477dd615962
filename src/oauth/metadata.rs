//! Authorization-server metadata, RFC 8414 (and the subset of OpenID
//! Connect Discovery 1.0 that generic validators insist on).

use serde_json::{Value, json};

use crate::clients::GrantType;
use crate::config::Config;
use crate::keys::Alg;

/// The metadata document. `openid` adds the OpenID Connect Discovery fields
/// required at `/.well-known/openid-configuration`.
pub fn metadata(config: &Config, scopes: &[String], openid: bool) -> Value {
    let base = config.base_url();
    let algs: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
    let mut doc = json!({
        "issuer": config.issuer,
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "grant_types_supported": GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": scopes,
        // Sigil has no authorization endpoint, so it supports no response
        // type; RFC 8414 still requires the member.
        "response_types_supported": [],
        "response_modes_supported": [],
        "access_token_signing_alg_values_supported": algs,
    });
    if openid {
        doc["subject_types_supported"] = json!(["public"]);
        doc["id_token_signing_alg_values_supported"] = json!(algs);
    }
    doc
}
