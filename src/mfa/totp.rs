//! TOTP, RFC 6238 over RFC 4226's HOTP: HMAC-SHA-1, 6 digits, 30-second
//! steps, the parameters every authenticator app defaults to.
//!
//! A code is checked against the current step and one step either side
//! (§5.2's recommended network delay allowance); the step it matched is
//! returned so the caller can refuse it a second time (the store keeps the
//! newest step accepted per user).

use data_encoding::BASE32_NOPAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Seconds per step (RFC 6238 §5.2's default).
pub const STEP: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps either side of the current one that are accepted.
pub const SKEW_STEPS: i64 = 1;
/// Length of a generated secret: 160 bits, RFC 4226 §4's recommendation.
pub const SECRET_LEN: usize = 20;

/// A new random secret.
pub fn new_secret() -> Zeroizing<Vec<u8>> {
    let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
    crate::tokens::fill_random(&mut secret);
    secret
}

/// The time step `now` falls in.
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(STEP)
}

/// The code of `step` (RFC 4226 §5.3, dynamic truncation).
pub fn code(secret: &[u8], step: i64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = ring::hmac::sign(&key, &step.to_be_bytes());
    let bytes = tag.as_ref();
    let offset = (bytes[bytes.len() - 1] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        bytes[offset] & 0x7f,
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// The step within the allowed skew whose code `presented` is, if any.
/// Every candidate is compared, in constant time, whatever matches.
pub fn matching_step(secret: &[u8], presented: &str, now: i64) -> Option<i64> {
    let presented = normalise(presented)?;
    let current = step_at(now);
    let mut found = None;
    for step in current - SKEW_STEPS..=current + SKEW_STEPS {
        let expected = code(secret, step);
        if bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// A code as typed: spaces and dashes dropped; `None` unless it is then
/// exactly six digits.
fn normalise(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (digits.len() == DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}

/// The secret as authenticator apps take it typed in: base32, no padding.
pub fn secret_text(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI of Google Authenticator's Key Uri Format, which
/// every authenticator app reads from the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let label = format!("{issuer}:{account}");
    let label = percent_encoding::utf8_percent_encode(&label, percent_encoding::NON_ALPHANUMERIC);
    let issuer = percent_encoding::utf8_percent_encode(issuer, percent_encoding::NON_ALPHANUMERIC);
    format!(
        "otpauth://totp/{label}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        secret_text(secret)
    )
}

/// The URI as a QR code, an SVG document to inline in a page.
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8-digit codes there; the last six
    /// digits are the 6-digit code, since both truncate the same number).
    #[test]
    fn codes_match_rfc_6238_appendix_b() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(code(secret, step_at(time)), eight[2..], "T = {time}");
        }
    }

    #[test]
    fn one_step_of_skew_either_side_is_accepted() {
        let secret = b"12345678901234567890";
        let now = 1_700_000_000;
        let step = step_at(now);
        for offset in [-1, 0, 1] {
            let presented = code(secret, step + offset);
            assert_eq!(matching_step(secret, &presented, now), Some(step + offset));
        }
        for offset in [-2, 2] {
            let presented = code(secret, step + offset);
            assert_eq!(matching_step(secret, &presented, now), None, "{offset}");
        }
        let spaced = code(secret, step);
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert_eq!(matching_step(secret, &spaced, now), Some(step));
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }

    #[test]
    fn the_uri_names_issuer_account_and_secret() {
        let uri = otpauth_uri("Sigil", "alice", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Sigil%3Aalice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Sigil&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).expect("a QR code");
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"), "{svg}");
    }
}
