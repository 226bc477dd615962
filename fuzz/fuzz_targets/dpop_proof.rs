//! Any string given as a DPoP proof (RFC 9449) to Sigil's check: it never
//! panics, and what it accepts is a proof for this request whose
//! signature verifies under its own header's key, checked here again with
//! ring for P-256 keys (what the fuzzer's mutations of a seed proof keep).
//!
//! Seed it with a real proof to go deep, e.g. one of
//! scripts/interop-dpop.sh's: put it in fuzz/corpus/dpop_proof/ with its
//! htu changed to the URI below and its iat to NOW.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::Value;
use sigil::dpop::{DpopConfig, Expected};

const URI: &str = "https://sigil.example/oauth/token";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let expected = Expected { method: "POST", uri: URI, access_token: None, nonces: None };
    if sigil::dpop::check(text, &expected, &DpopConfig::default(), NOW).is_err() {
        return;
    }
    let parts: Vec<&str> = text.split('.').collect();
    assert_eq!(parts.len(), 3, "accepted a proof that is not a compact JWS: {text}");
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).expect("header"))
        .expect("header JSON");
    let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).expect("claims"))
        .expect("claims JSON");
    assert_eq!(claims["htm"], "POST", "accepted another method: {text}");
    let jwk = &header["jwk"];
    if jwk["kty"] == "EC" {
        let coordinate = |name: &str| B64.decode(jwk[name].as_str().expect(name)).expect(name);
        let point = [&[4u8][..], &coordinate("x"), &coordinate("y")].concat();
        let signature = B64.decode(parts[2]).expect("signature");
        let signed = format!("{}.{}", parts[0], parts[1]);
        assert!(
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(signed.as_bytes(), &signature)
                .is_ok(),
            "accepted a proof whose signature does not verify: {text}"
        );
    }
});
