//! OAuth scopes (RFC 6749 §3.3): space-delimited, case-sensitive tokens of
//! printable ASCII other than space, `"` and `\`.

use std::fmt;

/// A set of scope tokens, kept in first-seen order without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope token {0:?}")]
pub struct ScopeError(pub String);

const MAX_SCOPES: usize = 64;
const MAX_TOKEN_LEN: usize = 128;

impl Scopes {
    /// Parses a space-delimited list; empty input is the empty set.
    pub fn parse(text: &str) -> Result<Scopes, ScopeError> {
        let mut scopes: Vec<String> = Vec::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            let valid = token.len() <= MAX_TOKEN_LEN
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid {
                return Err(ScopeError(token.chars().take(MAX_TOKEN_LEN).collect()));
            }
            if !scopes.iter().any(|s| s == token) {
                scopes.push(token.to_string());
            }
            if scopes.len() > MAX_SCOPES {
                return Err(ScopeError("too many scopes".into()));
            }
        }
        Ok(Scopes(scopes))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// Adds every scope of `other` not already here.
    pub fn extend(&mut self, other: &Scopes) {
        for scope in &other.0 {
            if !self.contains(scope) {
                self.0.push(scope.clone());
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_dedupe_and_keep_order() {
        let s = Scopes::parse("read  write read").unwrap();
        assert_eq!(s.to_string(), "read write");
        assert!(Scopes::parse("").unwrap().is_empty());
        assert!(Scopes::parse("a:b/c").is_ok());
    }

    #[test]
    fn scopes_refuse_characters_outside_rfc_6749() {
        for bad in ["quo\"te", "back\\slash", "tab\there", "é"] {
            assert!(Scopes::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subset_is_checked_token_by_token() {
        let all = Scopes::parse("read write").unwrap();
        assert!(Scopes::parse("read").unwrap().is_subset_of(&all));
        assert!(!Scopes::parse("read admin").unwrap().is_subset_of(&all));
    }
}
