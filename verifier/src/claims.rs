//! The claims of a verified Sigil access token (RFC 9068 §2.2).

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The claims of an access token that passed every check.
///
/// Sigil's access tokens follow RFC 9068: `iss sub aud exp iat nbf jti
/// client_id scope`, plus `sid` when the token belongs to a login session
/// and `acr`/`amr` (how the user signed in) for a user's token. Claims a
/// resource service has no use for are not kept.
///
/// ```
/// # use sigil_verify::Claims;
/// let claims: Claims = serde_json::from_str(r#"{
///     "iss": "https://sigil.example", "sub": "0ea1bbbc", "aud": "notes-api",
///     "exp": 1700000900, "iat": 1700000000, "nbf": 1700000000,
///     "jti": "U7Fs-aNnS5vh8UblzAOSEA", "client_id": "notes-app",
///     "scope": "notes:read notes:write"
/// }"#).unwrap();
/// assert!(claims.has_scope("notes:read"));
/// assert!(!claims.has_scope("notes"));
/// assert_eq!(claims.aud, ["notes-api"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer: always the issuer the verifier was configured with.
    pub iss: String,
    /// The subject: a user id, or the client id for `client_credentials` tokens.
    pub sub: String,
    /// The audiences; one of them is an audience the verifier accepts.
    #[serde(deserialize_with = "one_or_many", serialize_with = "single_or_array")]
    pub aud: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issue time, Unix seconds.
    pub iat: i64,
    /// Not before, Unix seconds (Sigil always sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The token's unique id: what a `token` revocation names.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes; absent when the token carries none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The login session (refresh-token family), when issued with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The authentication context class the user's sign-in reached (see
    /// [`ACR_ORDER`]); absent on a client's own token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// How the user signed in: RFC 8176 values such as `pwd`, `otp`,
    /// `hwk`, `swk`, `mfa`; empty on a client's own token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// RFC 9449: the DPoP key the token is bound to. A bound token is
    /// accepted only with a proof by that key ([`Verifier::verify_dpop`](crate::Verifier::verify_dpop)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// RFC 8693 §4.1: the service acting for the subject (a token made by
    /// token exchange with an actor), with earlier actors nested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// RFC 7800 `cnf`: the key a token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the DPoP key.
    pub jkt: String,
}

/// RFC 8693 §4.1 `act`: who acts, and for whom they act in turn.
///
/// ```
/// # let claims: sigil_verify::Claims = serde_json::from_value(serde_json::json!({
/// #   "iss": "i", "sub": "alice", "aud": "svc-b", "exp": 2, "iat": 1, "jti": "j",
/// #   "client_id": "svc-a",
/// #   "act": {"sub": "svc-a", "act": {"sub": "gateway"}}})).unwrap();
/// let chain: Vec<&str> = claims.actors().collect();
/// assert_eq!(chain, ["svc-a", "gateway"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor: for a service, its client id.
    pub sub: String,
    /// The OAuth client the actor was (Sigil sets it to `sub`'s client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Whom this actor acted for before (an earlier exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// Sigil's authentication context classes, weakest first: a password; a
/// password and a one-time code; a synced passkey (OpenID's `phr`,
/// phishing-resistant); a device-bound passkey (`phrh`).
pub const ACR_ORDER: [&str; 4] = ["urn:sigil:acr:1fa", "urn:sigil:acr:mfa", "phr", "phrh"];

impl Claims {
    /// Whether the token was granted `scope` (an exact match of one of the
    /// space-separated scope tokens, RFC 6749 §3.3).
    ///
    /// ```
    /// # let claims: sigil_verify::Claims = serde_json::from_value(serde_json::json!({
    /// #   "iss": "i", "sub": "s", "aud": "a", "exp": 2, "iat": 1, "jti": "j",
    /// #   "client_id": "c", "scope": "notes:read profile"})).unwrap();
    /// assert!(claims.has_scope("profile"));
    /// assert!(!claims.has_scope("notes:write"));
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// The granted scopes, in the order the token lists them.
    ///
    /// ```
    /// # let claims: sigil_verify::Claims = serde_json::from_value(serde_json::json!({
    /// #   "iss": "i", "sub": "s", "aud": "a", "exp": 2, "iat": 1, "jti": "j",
    /// #   "client_id": "c", "scope": "notes:read profile"})).unwrap();
    /// assert_eq!(claims.scopes().collect::<Vec<_>>(), ["notes:read", "profile"]);
    /// ```
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// Whether the user signed in with the RFC 8176 method `method` (e.g.
    /// `mfa` for any two factors, `hwk` for a device-bound passkey).
    ///
    /// ```
    /// # let claims: sigil_verify::Claims = serde_json::from_value(serde_json::json!({
    /// #   "iss": "i", "sub": "s", "aud": "a", "exp": 2, "iat": 1, "jti": "j",
    /// #   "client_id": "c", "amr": ["pwd", "otp", "mfa"]})).unwrap();
    /// assert!(claims.has_amr("mfa"));
    /// assert!(!claims.has_amr("hwk"));
    /// ```
    pub fn has_amr(&self, method: &str) -> bool {
        self.amr.iter().any(|m| m == method)
    }

    /// The chain of actors, the one presenting the token first (empty for
    /// a token not made by delegation).
    pub fn actors(&self) -> impl Iterator<Item = &str> {
        std::iter::successors(self.act.as_ref(), |a| a.act.as_deref()).map(|a| a.sub.as_str())
    }

    /// Whether the sign-in reached at least `required` in Sigil's order of
    /// classes ([`ACR_ORDER`]); a class outside it must match exactly.
    ///
    /// ```
    /// # let claims: sigil_verify::Claims = serde_json::from_value(serde_json::json!({
    /// #   "iss": "i", "sub": "s", "aud": "a", "exp": 2, "iat": 1, "jti": "j",
    /// #   "client_id": "c", "acr": "phr"})).unwrap();
    /// assert!(claims.acr_at_least("urn:sigil:acr:mfa"));
    /// assert!(claims.acr_at_least("phr"));
    /// assert!(!claims.acr_at_least("phrh"));
    /// ```
    pub fn acr_at_least(&self, required: &str) -> bool {
        let Some(acr) = self.acr.as_deref() else {
            return false;
        };
        let rank = |v: &str| ACR_ORDER.iter().position(|a| *a == v);
        match (rank(acr), rank(required)) {
            (Some(has), Some(needs)) => has >= needs,
            _ => acr == required,
        }
    }
}

/// RFC 7519 §4.1.3: `aud` is a string or an array of strings.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Audiences;

    impl<'de> Visitor<'de> for Audiences {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or an array of strings")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
            while let Some(aud) = seq.next_element::<String>()? {
                out.push(aud);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_any(Audiences)
}

fn single_or_array<S: Serializer>(aud: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => serializer.serialize_str(one),
        many => many.serialize(serializer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(extra: serde_json::Value) -> Result<Claims, serde_json::Error> {
        let mut base = serde_json::json!({
            "iss": "i", "sub": "s", "aud": "a", "exp": 2, "iat": 1, "jti": "j", "client_id": "c"
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base)
    }

    #[test]
    fn the_audience_may_be_a_string_or_an_array() {
        assert_eq!(claims(serde_json::json!({})).unwrap().aud, ["a"]);
        let many = claims(serde_json::json!({"aud": ["x", "y"]})).unwrap();
        assert_eq!(many.aud, ["x", "y"]);
        assert!(claims(serde_json::json!({"aud": 5})).is_err());
    }

    #[test]
    fn a_token_without_scope_has_none() {
        let c = claims(serde_json::json!({})).unwrap();
        assert_eq!(c.scopes().count(), 0);
        assert!(!c.has_scope(""));
    }

    #[test]
    fn duplicate_claims_are_refused() {
        let text = r#"{"iss":"i","sub":"s","sub":"t","aud":"a","exp":2,"iat":1,"jti":"j","client_id":"c"}"#;
        assert!(serde_json::from_str::<Claims>(text).is_err());
    }

    #[test]
    fn a_clients_token_has_no_acr_and_meets_no_class() {
        let c = claims(serde_json::json!({})).unwrap();
        assert!(c.amr.is_empty());
        assert!(!c.acr_at_least("urn:sigil:acr:1fa"));
        let user =
            claims(serde_json::json!({"acr": "urn:sigil:acr:mfa", "amr": ["pwd", "otp", "mfa"]}))
                .unwrap();
        assert!(user.acr_at_least("urn:sigil:acr:1fa"));
        assert!(user.acr_at_least("urn:sigil:acr:mfa"));
        assert!(!user.acr_at_least("phr"));
        assert!(!user.acr_at_least("some-other-class"));
    }

    #[test]
    fn claims_round_trip_with_a_single_audience_as_a_string() {
        let c = claims(serde_json::json!({"scope": "x"})).unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["aud"], "a");
        assert_eq!(serde_json::from_value::<Claims>(json).unwrap(), c);
    }
}
