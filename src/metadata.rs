//! Authorization-server metadata, RFC 8414 (and the subset of OpenID
//! Connect Discovery 1.0 that generic validators insist on).
//!
//! The documents are built from configuration and the registered clients'
//! scopes, and held in memory ([`MetadataDocs`]): serving them never waits
//! on the database, so they answer 200 through an outage like the JWKS.
//! They are rebuilt when clients change (see `Sigil::clients_changed` and
//! `service::background::spawn_background`); a failed rebuild keeps the
//! last documents.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::clients::GrantType;
use crate::config::Config;
use crate::keys::Alg;
use crate::store::{Store, StoreResult};
use crate::tokens::jose;

/// The metadata document. `openid` adds the OpenID Connect Discovery fields
/// required at `/.well-known/openid-configuration`.
pub fn metadata(config: &Config, scopes: &[String], openid: bool) -> Value {
    let base = config.base_url();
    let algs: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
    let grants: Vec<&str> = GrantType::ALL
        .iter()
        .filter(|g| config.password_grant || **g != GrantType::Password)
        .map(|g| g.as_str())
        .collect();
    // Every scope a client may ask for, and the OpenID ones the code flow
    // understands whatever the clients say.
    let mut scopes: Vec<String> = scopes.to_vec();
    for s in ["openid", "profile", "email"] {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    scopes.sort();
    let mut doc = json!({
        "issuer": config.issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": jose::ALGORITHMS,
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": jose::ALGORITHMS,
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": jose::ALGORITHMS,
        // RFC 9449 §5.1.
        "dpop_signing_alg_values_supported": jose::ALGORITHMS,
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "device_authorization_endpoint": format!("{base}/oauth/device_authorization"),
        // RFC 9207: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": true,
    });
    if openid {
        doc["userinfo_endpoint"] = json!(format!("{base}/userinfo"));
        doc["end_session_endpoint"] = json!(format!("{base}/logout"));
        doc["subject_types_supported"] = json!(["public"]);
        doc["id_token_signing_alg_values_supported"] = json!(algs);
        doc["claims_supported"] = json!([
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "azp",
            "sid",
            "at_hash",
            "acr",
            "amr",
            "preferred_username",
            "email",
            "email_verified"
        ]);
        doc["acr_values_supported"] = json!(
            crate::authn::Acr::ALL
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
        );
        doc["prompt_values_supported"] = json!(["none", "login", "consent", "select_account"]);
        doc["claims_parameter_supported"] = json!(false);
        doc["request_parameter_supported"] = json!(false);
        doc["request_uri_parameter_supported"] = json!(false);
    }
    doc
}

/// The two rendered documents.
pub struct Documents {
    /// `/.well-known/oauth-authorization-server` (RFC 8414).
    pub oauth: Bytes,
    /// `/.well-known/openid-configuration`.
    pub openid: Bytes,
}

/// The current documents, swapped whole on a rebuild.
pub struct MetadataDocs {
    current: ArcSwap<Documents>,
    /// One rebuild at a time: a rebuild that read the clients before a
    /// change must not finish after one that read them after it.
    rebuilding: tokio::sync::Mutex<()>,
}

impl MetadataDocs {
    /// Builds the documents from the clients registered now.
    pub async fn load(store: &dyn Store, config: &Config) -> StoreResult<MetadataDocs> {
        let documents = render(config, &client_scopes(store).await?);
        Ok(MetadataDocs {
            current: ArcSwap::from_pointee(documents),
            rebuilding: tokio::sync::Mutex::new(()),
        })
    }

    pub fn current(&self) -> Arc<Documents> {
        self.current.load_full()
    }

    /// Rebuilds from the clients registered now; on failure the documents
    /// in memory stay as they were.
    pub async fn reload(&self, store: &dyn Store, config: &Config) -> StoreResult<()> {
        let _one_at_a_time = self.rebuilding.lock().await;
        let documents = render(config, &client_scopes(store).await?);
        self.current.store(Arc::new(documents));
        Ok(())
    }
}

fn render(config: &Config, scopes: &[String]) -> Documents {
    let body = |openid| Bytes::from(metadata(config, scopes, openid).to_string());
    Documents {
        oauth: body(false),
        openid: body(true),
    }
}

/// Every scope some registered client may ask for, sorted, once each.
async fn client_scopes(store: &dyn Store) -> StoreResult<Vec<String>> {
    let clients = crate::clients::list_clients(store).await?;
    let mut scopes: Vec<String> = clients
        .iter()
        .flat_map(|client| client.scopes.iter().map(str::to_string))
        .collect();
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}
