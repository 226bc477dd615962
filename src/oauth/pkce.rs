//! PKCE, RFC 7636: what an authorization request may send, and the check
//! of the verifier at the token endpoint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use super::Params;
use crate::clients::Client;

/// RFC 7636 §4.3, RFC 9700 §2.1.1: S256 only (`plain` would let a
/// stolen challenge redeem the code); required of public clients, and
/// enforced for any client that sends one.
pub fn challenge(client: &Client, params: &Params) -> Result<Option<String>, String> {
    let Some(challenge) = params.get("code_challenge") else {
        if client.is_public() {
            return Err(
                "this client must use PKCE: send code_challenge with code_challenge_method=S256"
                    .into(),
            );
        }
        if params.get("code_challenge_method").is_some() {
            return Err("code_challenge_method without code_challenge".into());
        }
        return Ok(None);
    };
    match params.get("code_challenge_method") {
        Some("S256") => {}
        // RFC 7636 §4.3: no method means plain.
        None | Some("plain") => {
            return Err("code_challenge_method must be S256 (plain is not accepted)".into());
        }
        Some(_) => return Err("code_challenge_method must be S256".into()),
    }
    // base64url of a SHA-256 digest: 43 characters.
    let ok = challenge.len() == 43 && B64.decode(challenge).is_ok_and(|d| d.len() == 32);
    if !ok {
        return Err("code_challenge must be the base64url SHA-256 of the code verifier".into());
    }
    Ok(Some(challenge.to_string()))
}

/// RFC 7636 §4.6: whether `verifier` (43-128 unreserved characters)
/// hashes to `challenge`.
pub fn verifies(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    let computed = B64.encode(digest.as_ref());
    bool::from(subtle::ConstantTimeEq::ct_eq(
        computed.as_bytes(),
        challenge.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_accepts_only_the_verifier_of_the_challenge() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifies(challenge, verifier));
        assert!(!verifies(challenge, &verifier.replace('d', "e")));
        assert!(!verifies(challenge, "short"));
        assert!(!verifies(verifier, verifier), "plain is never accepted");
    }
}
