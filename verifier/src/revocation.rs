//! The revocation feed (docs/revocation-feed.md): what it says, and the
//! in-memory lists the poller keeps from it.
//!
//! Each entry is kept until its `exp` (plus the leeway): by then every
//! token it could match has expired anyway, so the lists stay as small as
//! one access-token lifetime of revocations.

use std::collections::HashMap;

use serde::Deserialize;

use crate::claims::Claims;
use crate::error::RevokedBy;

/// One page of `GET /oauth/revocations?since=<cursor>`.
#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    pub entries: Vec<Entry>,
    pub cursor: String,
    #[serde(default)]
    pub more: bool,
    /// How often Sigil's own nodes re-read the list, in seconds.
    #[serde(default)]
    pub poll_interval: Option<u64>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum Entry {
    Token {
        jti: String,
        exp: i64,
    },
    Session {
        sid: String,
        exp: i64,
    },
    User {
        sub: String,
        not_before: i64,
        exp: i64,
    },
    Key {
        kid: String,
        exp: i64,
    },
    /// A kind this version does not know: newer Sigil versions may add
    /// some, and they must not stop the feed.
    #[serde(other)]
    Unknown,
}

/// Everything revoked and not yet expired.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    /// `jti` → `exp`.
    tokens: HashMap<String, i64>,
    /// `sid` → `exp`.
    sessions: HashMap<String, i64>,
    /// `sub` → (`not_before`, `exp`): tokens issued at or before
    /// `not_before` are revoked.
    users: HashMap<String, (i64, i64)>,
    /// `kid` → `exp`.
    keys: HashMap<String, i64>,
}

impl Revocations {
    pub fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Token { jti, exp } => keep_latest(&mut self.tokens, jti, exp),
            Entry::Session { sid, exp } => keep_latest(&mut self.sessions, sid, exp),
            Entry::Key { kid, exp } => keep_latest(&mut self.keys, kid, exp),
            Entry::User {
                sub,
                not_before,
                exp,
            } => {
                let slot = self.users.entry(sub).or_insert((not_before, exp));
                slot.0 = slot.0.max(not_before);
                slot.1 = slot.1.max(exp);
            }
            Entry::Unknown => {}
        }
    }

    /// Forgets entries that can no longer match a token accepted at `now`.
    pub fn prune(&mut self, now: i64, leeway: i64) {
        let live = |exp: i64| exp.saturating_add(leeway) > now;
        self.tokens.retain(|_, exp| live(*exp));
        self.sessions.retain(|_, exp| live(*exp));
        self.keys.retain(|_, exp| live(*exp));
        self.users.retain(|_, (_, exp)| live(*exp));
    }

    pub fn len(&self) -> usize {
        self.tokens.len() + self.sessions.len() + self.users.len() + self.keys.len()
    }

    /// Whether an emergency removed the key `kid`.
    pub fn key_revoked(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Which entry, if any, revokes a token with these claims and `kid`.
    pub fn check(&self, claims: &Claims, kid: &str) -> Option<RevokedBy> {
        if self.is_empty() {
            return None;
        }
        if self.tokens.contains_key(claims.jti.as_str()) {
            return Some(RevokedBy::Token);
        }
        if let Some(sid) = &claims.sid
            && self.sessions.contains_key(sid.as_str())
        {
            return Some(RevokedBy::Session);
        }
        if let Some((not_before, _)) = self.users.get(claims.sub.as_str())
            && claims.iat <= *not_before
        {
            return Some(RevokedBy::User);
        }
        if self.keys.contains_key(kid) {
            return Some(RevokedBy::Key);
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.tokens.is_empty()
            && self.sessions.is_empty()
            && self.users.is_empty()
            && self.keys.is_empty()
    }
}

fn keep_latest(map: &mut HashMap<String, i64>, key: String, exp: i64) {
    let slot = map.entry(key).or_insert(exp);
    *slot = (*slot).max(exp);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str, sid: Option<&str>, sub: &str, iat: i64) -> Claims {
        Claims {
            iss: "i".into(),
            sub: sub.into(),
            aud: vec!["a".into()],
            exp: iat + 900,
            iat,
            nbf: Some(iat),
            jti: jti.into(),
            client_id: "c".into(),
            scope: None,
            sid: sid.map(Into::into),
            acr: None,
            amr: Vec::new(),
            cnf: None,
            act: None,
        }
    }

    fn page(json: &str) -> Page {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_documented_entry_type_revokes_what_it_names() {
        let feed = page(
            r#"{"entries": [
                {"type": "token", "jti": "t1", "exp": 2000},
                {"type": "session", "sid": "s1", "exp": 2000},
                {"type": "user", "sub": "u1", "not_before": 1500, "exp": 2400},
                {"type": "key", "kid": "k1", "exp": 2000},
                {"type": "something-new", "value": "x", "exp": 2000}
            ], "cursor": "5", "more": false, "poll_interval": 1}"#,
        );
        assert_eq!(feed.entries[4], Entry::Unknown);
        let mut list = Revocations::default();
        for entry in feed.entries {
            list.apply(entry);
        }
        let check = |c: &Claims, kid: &str| list.check(c, kid);
        assert_eq!(
            check(&claims("t1", None, "u", 1000), "k"),
            Some(RevokedBy::Token)
        );
        assert_eq!(
            check(&claims("t", Some("s1"), "u", 1000), "k"),
            Some(RevokedBy::Session)
        );
        assert_eq!(
            check(&claims("t", None, "u1", 1500), "k"),
            Some(RevokedBy::User)
        );
        assert_eq!(
            check(&claims("t", None, "u1", 1501), "k"),
            None,
            "issued after"
        );
        assert_eq!(
            check(&claims("t", None, "u", 1000), "k1"),
            Some(RevokedBy::Key)
        );
        assert_eq!(check(&claims("t", Some("s"), "u", 1000), "k"), None);
    }

    #[test]
    fn entries_are_forgotten_once_their_tokens_have_expired() {
        let mut list = Revocations::default();
        list.apply(Entry::Token {
            jti: "t".into(),
            exp: 1000,
        });
        list.apply(Entry::User {
            sub: "u".into(),
            not_before: 100,
            exp: 2000,
        });
        list.prune(1029, 30);
        assert_eq!(list.len(), 2);
        list.prune(1030, 30);
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn a_later_user_entry_moves_not_before_forward_only() {
        let mut list = Revocations::default();
        for not_before in [500, 300] {
            list.apply(Entry::User {
                sub: "u".into(),
                not_before,
                exp: 2000,
            });
        }
        assert_eq!(
            list.check(&claims("t", None, "u", 400), "k"),
            Some(RevokedBy::User)
        );
    }
}
