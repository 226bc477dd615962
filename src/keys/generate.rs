//! Fresh key material. RSA keys are generated with the `rsa` crate (key
//! generation and encoding only: its private-key operations are not
//! constant-time, RUSTSEC-2023-0071); Ed25519 keys with `ring`.

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair};
use rsa::pkcs8::EncodePrivateKey;
use zeroize::Zeroizing;

use super::Alg;
use super::jwk::{PublicComponents, public_jwk};

/// A new private key as PKCS#8 DER plus its public JWK and `kid`.
pub struct GeneratedKey {
    pub alg: Alg,
    pub kid: String,
    pub public_jwk: serde_json::Value,
    pub pkcs8: Zeroizing<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
#[error("key generation failed: {0}")]
pub struct GenerateError(String);

pub fn generate(alg: Alg, rsa_bits: usize) -> Result<GeneratedKey, GenerateError> {
    let pkcs8 = match alg {
        Alg::RS256 => {
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, rsa_bits)
                .map_err(|e| GenerateError(e.to_string()))?;
            let der = key
                .to_pkcs8_der()
                .map_err(|e| GenerateError(e.to_string()))?;
            Zeroizing::new(der.as_bytes().to_vec())
        }
        Alg::EdDSA => {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| GenerateError("Ed25519 generation failed".into()))?;
            Zeroizing::new(doc.as_ref().to_vec())
        }
    };
    from_pkcs8(alg, pkcs8)
}

/// Derives the `kid` and public JWK of a PKCS#8 private key, checking that
/// `ring` accepts it for `alg`.
pub(crate) fn from_pkcs8(
    alg: Alg,
    pkcs8: Zeroizing<Vec<u8>>,
) -> Result<GeneratedKey, GenerateError> {
    let (kid, public_jwk) = match alg {
        Alg::RS256 => {
            let pair = RsaKeyPair::from_pkcs8(&pkcs8).map_err(|e| GenerateError(e.to_string()))?;
            let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
            public_jwk(
                alg,
                PublicComponents::Rsa {
                    n: &public.n,
                    e: &public.e,
                },
            )
        }
        Alg::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
                .map_err(|e| GenerateError(e.to_string()))?;
            public_jwk(
                alg,
                PublicComponents::Ed25519 {
                    x: pair.public_key().as_ref(),
                },
            )
        }
    };
    Ok(GeneratedKey {
        alg,
        kid,
        public_jwk,
        pkcs8,
    })
}
