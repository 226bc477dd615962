//! How the verifier proves who it is to the revocation feed: a client
//! secret (HTTP Basic on a GET), or a private key (`private_key_jwt`,
//! RFC 7523: a fresh signed assertion in a POSTed form, so nothing secret
//! is shared with Sigil).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// An assertion is good this long: one request.
const ASSERTION_LIFETIME: i64 = 60;

/// The feed credentials as the builder was given them.
pub(crate) enum FeedAuth {
    Secret(String),
    Pem {
        alg: String,
        pem: Vec<u8>,
        kid: Option<String>,
    },
}

/// The checked credentials.
pub(crate) enum Credentials {
    Secret(String),
    Key {
        header: Box<Header>,
        key: EncodingKey,
    },
}

impl FeedAuth {
    /// Checks the secret or loads the key; the error says what is wrong.
    pub(crate) fn check(self) -> Result<Credentials, String> {
        match self {
            FeedAuth::Secret(secret) if secret.is_empty() => {
                Err("the revocation feed needs a client secret".into())
            }
            FeedAuth::Secret(secret) => Ok(Credentials::Secret(secret)),
            FeedAuth::Pem { alg, pem, kid } => {
                let (alg, key) = match alg.as_str() {
                    "ES256" => (Algorithm::ES256, EncodingKey::from_ec_pem(&pem)),
                    "EdDSA" => (Algorithm::EdDSA, EncodingKey::from_ed_pem(&pem)),
                    "RS256" => (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem)),
                    "PS256" => (Algorithm::PS256, EncodingKey::from_rsa_pem(&pem)),
                    other => {
                        return Err(format!(
                            "the revocation feed key's algorithm must be ES256, EdDSA, RS256 \
                             or PS256, not {other:?}"
                        ));
                    }
                };
                let key = key.map_err(|_| {
                    format!("the revocation feed key is not a PEM private key for {alg:?}")
                })?;
                let mut header = Header::new(alg);
                header.kid = kid;
                // Sign once now, so a key of the wrong type fails here and
                // not at the first poll.
                jsonwebtoken::encode(&header, &json!({}), &key)
                    .map_err(|_| format!("the revocation feed key cannot sign with {alg:?}"))?;
                Ok(Credentials::Key {
                    header: Box::new(header),
                    key,
                })
            }
        }
    }
}

impl Credentials {
    /// A request for the feed page after `since`.
    pub(crate) fn request(
        &self,
        http: &reqwest::Client,
        url: &str,
        client_id: &str,
        since: &str,
        now: i64,
    ) -> Result<reqwest::RequestBuilder, String> {
        match self {
            Credentials::Secret(secret) => Ok(http
                .get(url)
                .query(&[("since", since)])
                .basic_auth(client_id, Some(secret))),
            Credentials::Key { header, key } => {
                let claims = json!({
                    "iss": client_id,
                    "sub": client_id,
                    "aud": url,
                    "iat": now,
                    "exp": now + ASSERTION_LIFETIME,
                    "jti": random_id()?,
                });
                let assertion = jsonwebtoken::encode(header, &claims, key)
                    .map_err(|e| format!("signing the client assertion failed: {e}"))?;
                Ok(http.post(url).form(&[
                    ("since", since),
                    ("client_id", client_id),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", assertion.as_str()),
                ]))
            }
        }
    }

    /// What to check when Sigil refuses the credentials.
    pub(crate) fn hint(&self) -> &'static str {
        match self {
            Credentials::Secret(_) => "check the client id and secret",
            Credentials::Key { .. } => {
                "check the client id, that Sigil has the key's public half (with this kid), \
                 and the clocks"
            }
        }
    }
}

fn random_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness for the assertion's jti")?;
    Ok(B64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_unknown_algorithm_and_a_bad_key() {
        let unknown = FeedAuth::Pem {
            alg: "HS256".into(),
            pem: Vec::new(),
            kid: None,
        };
        assert!(unknown.check().err().unwrap().contains("HS256"));
        let garbage = FeedAuth::Pem {
            alg: "ES256".into(),
            pem: b"not a key".to_vec(),
            kid: None,
        };
        assert!(garbage.check().err().unwrap().contains("not a PEM"));
        assert!(FeedAuth::Secret(String::new()).check().is_err());
    }
}
