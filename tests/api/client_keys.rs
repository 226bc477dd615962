//! Keys a client holds, for the tests of what clients sign: DPoP proofs
//! (RFC 9449) and client assertions (RFC 7523). ES256 and Ed25519 by
//! ring; the JWS and the RFC 7638 thumbprint are put together here, not
//! with Sigil's code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

enum Pair {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A key pair and its public JWK.
pub struct ClientKey {
    pair: Pair,
    pub jwk: Value,
    pub alg: &'static str,
}

impl ClientKey {
    pub fn es256(kid: &str) -> ClientKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        });
        ClientKey {
            pair: Pair::Es256(pair),
            jwk,
            alg: "ES256",
        }
    }

    pub fn ed25519(kid: &str) -> ClientKey {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "kid": kid,
            "x": B64.encode(pair.public_key().as_ref()),
        });
        ClientKey {
            pair: Pair::Ed25519(pair),
            jwk,
            alg: "EdDSA",
        }
    }

    /// The public JWK without `kid`, as a DPoP proof's header carries it.
    pub fn public(&self) -> Value {
        let mut jwk = self.jwk.clone();
        jwk.as_object_mut().unwrap().remove("kid");
        jwk
    }

    /// RFC 7638: SHA-256 of the required members, sorted, no whitespace.
    pub fn thumbprint(&self) -> String {
        let canonical = match self.jwk["kty"].as_str().unwrap() {
            "EC" => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                self.jwk["x"].as_str().unwrap(),
                self.jwk["y"].as_str().unwrap()
            ),
            _ => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                self.jwk["x"].as_str().unwrap()
            ),
        };
        B64.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    /// A compact JWS of `claims` under `header` (to which `alg` is added).
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        let mut header = header;
        header["alg"] = json!(self.alg);
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = match &self.pair {
            Pair::Es256(p) => p
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Pair::Ed25519(p) => p.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", B64.encode(signature))
    }

    /// A DPoP proof (RFC 9449 §4.2) for `method` `url` at `iat`, naming
    /// `token` (`ath`) and `nonce` when given.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        nonce: Option<&str>,
        iat: i64,
    ) -> String {
        let mut claims = json!({
            "jti": sigil::tokens::random_b64::<12>(),
            "htm": method,
            "htu": url,
            "iat": iat,
        });
        if let Some(token) = token {
            claims["ath"] = json!(B64.encode(ring::digest::digest(
                &ring::digest::SHA256,
                token.as_bytes()
            )));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        self.sign(json!({"typ": "dpop+jwt", "jwk": self.public()}), &claims)
    }
}

/// A JWKS of the keys' public halves.
pub fn jwks(keys: &[&ClientKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}
