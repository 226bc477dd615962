//! Recovery codes: single-use codes a user keeps on paper for the day the
//! authenticator is lost. Each holds 80 random bits, so a SHA-256 digest
//! is as safe a store as a slow hash; the codes themselves are shown once.

use data_encoding::BASE32_NOPAD;

/// How many codes a user is given at a time.
pub const COUNT: usize = 10;

/// A fresh set of codes, as shown to the user (`abcd-efgh-ijkl-mnop`).
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let mut bytes = [0u8; 10];
            crate::tokens::fill_random(&mut bytes);
            let text = BASE32_NOPAD.encode(&bytes).to_ascii_lowercase();
            text.as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// The digest a code is stored and looked up by; `None` when the text
/// cannot be a recovery code (spaces, dashes and case do not matter).
pub fn digest(text: &str) -> Option<Vec<u8>> {
    let normalised: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let ok = normalised.len() == 16
        && normalised
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    ok.then(|| crate::tokens::hash_secret(&normalised))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_read_back_however_typed() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        let code = &codes[0];
        assert_eq!(code.len(), 19, "{code}");
        let typed = code.replace('-', " ").to_ascii_uppercase();
        assert_eq!(digest(&typed), digest(code));
        assert!(digest(code).is_some());
        assert_eq!(digest("not-a-code"), None);
        assert_eq!(digest("123456"), None);
    }
}
