//! The in-memory keyring: which key signs for each algorithm right now, which
//! keys verify, and the precomputed JWKS body. Swapped atomically as a whole
//! ([`KeySet`]) so a request sees one consistent set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use jsonwebtoken::DecodingKey;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};

use super::schedule::KeyPolicy;
use super::{Alg, Kek, KekError, KeyState};
use crate::clock::CLOCK_SKEW_LEEWAY;
use crate::store::KeyRecord;

/// A private key ready to sign, parsed once.
pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    /// base64url of the access tokens' JWS protected header `{alg, kid,
    /// typ: "at+jwt"}`, computed once.
    header_b64: String,
    /// The same for ID tokens (`typ: "JWT"`, OIDC Core §2).
    id_header_b64: String,
    pair: Pair,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Kek(#[from] KekError),
    #[error("signing key {kid} is unusable: {problem}")]
    BadKey { kid: String, problem: String },
    #[error("signing failed")]
    Sign,
}

impl SigningKey {
    pub fn from_pkcs8(kid: &str, alg: Alg, pkcs8: &[u8]) -> Result<SigningKey, KeyringError> {
        let bad = |problem: String| KeyringError::BadKey {
            kid: kid.to_string(),
            problem,
        };
        let pair = match alg {
            Alg::RS256 => Pair::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| bad(e.to_string()))?),
            Alg::EdDSA => Pair::Ed25519(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                    .map_err(|e| bad(e.to_string()))?,
            ),
        };
        let header = |typ| serde_json::json!({"alg": alg.as_str(), "kid": kid, "typ": typ});
        Ok(SigningKey {
            kid: kid.to_string(),
            alg,
            header_b64: B64.encode(header("at+jwt").to_string()),
            id_header_b64: B64.encode(header("JWT").to_string()),
            pair,
        })
    }

    pub fn header_b64(&self) -> &str {
        &self.header_b64
    }

    pub fn id_header_b64(&self) -> &str {
        &self.id_header_b64
    }

    /// Signs the JWS signing input `header.payload`.
    pub fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, KeyringError> {
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    signing_input,
                    &mut signature,
                )
                .map_err(|_| KeyringError::Sign)?;
                Ok(signature)
            }
            Pair::Ed25519(pair) => Ok(pair.sign(signing_input).as_ref().to_vec()),
        }
    }
}

/// A published public key.
pub struct VerifyingKey {
    pub kid: String,
    pub alg: Alg,
    pub decoding: DecodingKey,
    pub activates_at: i64,
}

/// One consistent view of the keys at a moment.
pub struct KeySet {
    /// The active key per algorithm.
    signing: HashMap<Alg, Arc<SigningKey>>,
    /// Keys that may have signed a token still in circulation, by `kid`.
    verifying: HashMap<String, Arc<VerifyingKey>>,
    /// The JWKS document, serialized once.
    jwks_body: Bytes,
    /// A strong validator for `jwks_body`.
    etag: String,
    /// The next instant at which this set stops being accurate (a key
    /// activates, retires or is removed), if any is scheduled.
    next_change: Option<i64>,
    /// The next instant at which the *published* key set changes.
    next_jwks_change: Option<i64>,
}

impl KeySet {
    pub fn signing_key(&self, alg: Alg) -> Option<&Arc<SigningKey>> {
        self.signing.get(&alg)
    }

    pub fn verifying_key(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.verifying.get(kid)
    }

    pub fn jwks_body(&self) -> &Bytes {
        &self.jwks_body
    }

    pub fn etag(&self) -> &str {
        &self.etag
    }

    pub fn next_change(&self) -> Option<i64> {
        self.next_change
    }

    /// The next scheduled event of any kind: a state change or the
    /// publication of a scheduled successor.
    pub fn next_transition(&self) -> Option<i64> {
        match (self.next_change, self.next_jwks_change) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How long a verifier may cache the JWKS fetched at `now`: never past
    /// the next change of the published set, and never past `ceiling`.
    pub fn jwks_max_age(&self, now: i64, ceiling: u64) -> u64 {
        match self.next_jwks_change {
            Some(at) => ceiling.min(at.saturating_sub(now).max(0) as u64),
            None => ceiling,
        }
    }

    pub fn algorithms(&self) -> impl Iterator<Item = Alg> + '_ {
        Alg::ALL
            .into_iter()
            .filter(|a| self.signing.contains_key(a))
    }
}

/// Holds the current [`KeySet`] and rebuilds it from stored records.
pub struct Keyring {
    current: ArcSwap<KeySet>,
    kek: Kek,
    policy: KeyPolicy,
    /// The records the current set was built from, to rebuild when the clock
    /// crosses a transition without a database read.
    records: Mutex<Vec<KeyRecord>>,
}

impl Keyring {
    /// Builds the keyring, decrypting every stored private key: a wrong KEK
    /// fails here, at start-up, not at the first signature.
    pub fn new(
        kek: Kek,
        policy: KeyPolicy,
        records: Vec<KeyRecord>,
        now: i64,
    ) -> Result<Keyring, KeyringError> {
        let set = build(&kek, &policy, &records, now, None, Strictness::Strict)?;
        Ok(Keyring {
            current: ArcSwap::from_pointee(set),
            kek,
            policy,
            records: Mutex::new(records),
        })
    }

    /// The current set; cheap (an atomic load).
    pub fn current(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    /// The state of every stored key at `now`.
    pub fn states(&self, now: i64) -> Vec<KeyState> {
        self.records
            .lock()
            .map(|records| {
                records
                    .iter()
                    .map(|k| KeyState::at(now, k.activates_at, k.retires_at, k.removes_at))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether every algorithm has a signing key.
    pub fn is_ready(&self) -> bool {
        let current = self.current();
        Alg::ALL
            .iter()
            .all(|alg| current.signing_key(*alg).is_some())
    }

    pub fn policy(&self) -> &KeyPolicy {
        &self.policy
    }

    /// Rebuilds from freshly read `records`, unless they are what the
    /// current set was built from and no transition is due: the JWKS body
    /// is rebuilt only when the key set changes.
    pub fn reload(&self, records: Vec<KeyRecord>, now: i64) -> Result<(), KeyringError> {
        let unchanged = self.records.lock().is_ok_and(|stored| *stored == records);
        if unchanged {
            return self.tick(now);
        }
        let set = build(
            &self.kek,
            &self.policy,
            &records,
            now,
            Some(&self.current()),
            Strictness::SkipBadKeys,
        )?;
        self.current.store(Arc::new(set));
        if let Ok(mut stored) = self.records.lock() {
            *stored = records;
        }
        Ok(())
    }

    /// Rebuilds from the last records if the clock has crossed a transition.
    pub fn tick(&self, now: i64) -> Result<(), KeyringError> {
        let due = self.current().next_change.is_some_and(|at| now >= at);
        if !due {
            return Ok(());
        }
        let records = match self.records.lock() {
            Ok(records) => records.clone(),
            Err(_) => return Ok(()),
        };
        let set = build(
            &self.kek,
            &self.policy,
            &records,
            now,
            Some(&self.current()),
            Strictness::SkipBadKeys,
        )?;
        self.current.store(Arc::new(set));
        Ok(())
    }
}

/// At start-up any unusable key stops Sigil; later, one bad row must not
/// freeze the schedule of all the others (a removal must still take effect).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strictness {
    Strict,
    SkipBadKeys,
}

/// How often the scheduler looks for due rotations; a rotation that is due
/// but not yet made is expected within this time.
pub const SCHEDULER_PERIOD: i64 = 30;

fn build(
    kek: &Kek,
    policy: &KeyPolicy,
    records: &[KeyRecord],
    now: i64,
    previous: Option<&KeySet>,
    strictness: Strictness,
) -> Result<KeySet, KeyringError> {
    let mut signing: HashMap<Alg, (i64, Arc<SigningKey>)> = HashMap::new();
    let mut verifying = HashMap::new();
    let mut published = Vec::new();
    let mut next_change: Option<i64> = None;
    let mut next_jwks_change: Option<i64> = None;
    let note = |slot: &mut Option<i64>, at: Option<i64>| {
        if let Some(at) = at.filter(|&at| at > now) {
            *slot = Some(slot.map_or(at, |s| s.min(at)));
        }
    };

    for record in records {
        let state = KeyState::at(
            now,
            record.activates_at,
            record.retires_at,
            record.removes_at,
        );
        // A key starts verifying CLOCK_SKEW_LEEWAY before it starts signing.
        let verifies_from = record.activates_at - CLOCK_SKEW_LEEWAY;
        for at in [
            Some(verifies_from),
            Some(record.activates_at),
            record.retires_at,
            record.removes_at,
        ] {
            note(&mut next_change, at);
        }
        note(&mut next_jwks_change, record.removes_at);
        if state == KeyState::Removed {
            continue;
        }
        let (alg, jwk, signer, decoding) = match load_key(kek, record, state, now, previous) {
            Ok(loaded) => loaded,
            Err(e) if strictness == Strictness::SkipBadKeys => {
                tracing::error!(kid = %record.kid, error = %e, "skipping an unusable signing key");
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(key) = signer {
            let newer = signing
                .get(&alg)
                .is_none_or(|(at, _)| record.activates_at > *at);
            if newer {
                signing.insert(alg, (record.activates_at, key));
            }
        }
        if let Some(decoding) = decoding {
            verifying.insert(
                record.kid.clone(),
                Arc::new(VerifyingKey {
                    kid: record.kid.clone(),
                    alg,
                    decoding,
                    activates_at: record.activates_at,
                }),
            );
        }
        published.push((record.activates_at, jwk));
    }

    // Newest first, so verifiers that scan the list meet the signing key early.
    // The automatic schedule will publish a new key for each algorithm when
    // its rotation falls due: the published set changes then too.
    for (activates_at, _) in signing.values() {
        if let Some(due) = policy.next_creation(*activates_at) {
            note(&mut next_jwks_change, Some(due.max(now + SCHEDULER_PERIOD)));
        }
    }
    published.sort_by_key(|(activates_at, _)| std::cmp::Reverse(*activates_at));
    let keys: Vec<_> = published.into_iter().map(|(_, jwk)| jwk).collect();
    let jwks_body = Bytes::from(serde_json::json!({ "keys": keys }).to_string());
    let digest = ring::digest::digest(&ring::digest::SHA256, &jwks_body);
    let etag = format!("\"{}\"", B64.encode(&digest.as_ref()[..16]));

    Ok(KeySet {
        signing: signing
            .into_iter()
            .map(|(alg, (_, key))| (alg, key))
            .collect(),
        verifying,
        jwks_body,
        etag,
        next_change,
        next_jwks_change,
    })
}

type LoadedKey = (
    Alg,
    serde_json::Value,
    Option<Arc<SigningKey>>,
    Option<DecodingKey>,
);

/// Checks one stored key and prepares what the set needs of it: its public
/// JWK, its signer if it signs now, its verifier if tokens may carry it.
fn load_key(
    kek: &Kek,
    record: &KeyRecord,
    state: KeyState,
    now: i64,
    previous: Option<&KeySet>,
) -> Result<LoadedKey, KeyringError> {
    let bad = |problem: String| KeyringError::BadKey {
        kid: record.kid.clone(),
        problem,
    };
    let alg: Alg = record.alg.parse().map_err(bad)?;
    let jwk: serde_json::Value =
        serde_json::from_str(&record.public_jwk).map_err(|e| bad(e.to_string()))?;
    // The published key must be the one its kid names (RFC 7638) ...
    if super::jwk::thumbprint_of(&jwk).as_deref() != Some(record.kid.as_str()) {
        return Err(bad("the stored public key does not match its kid".into()));
    }
    let mut signer = None;
    if let Some(sealed) = &record.private_key {
        // Decrypting proves the KEK; parsing (costly for RSA) is done only for
        // the key that signs now, and only once per key.
        let plaintext = kek.open(&record.kid, sealed)?;
        if state == KeyState::Active {
            let reused =
                previous.and_then(|p| p.signing.values().find(|k| k.kid == record.kid).cloned());
            signer = match reused {
                Some(key) => Some(key),
                None => {
                    // ... and the private key the one published under it.
                    let derived = super::generate::from_pkcs8(alg, plaintext.clone())
                        .map_err(|e| bad(e.to_string()))?;
                    if derived.kid != record.kid {
                        return Err(bad(
                            "the private key does not match the published key".into()
                        ));
                    }
                    Some(Arc::new(SigningKey::from_pkcs8(
                        &record.kid,
                        alg,
                        &plaintext,
                    )?))
                }
            };
        }
    }
    let decoding = if record.activates_at - CLOCK_SKEW_LEEWAY <= now {
        Some(decoding_key(alg, &jwk).ok_or_else(|| bad("malformed public JWK".into()))?)
    } else {
        None
    };
    Ok((alg, jwk, signer, decoding))
}

fn decoding_key(alg: Alg, jwk: &serde_json::Value) -> Option<DecodingKey> {
    let field = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    match alg {
        Alg::RS256 => DecodingKey::from_rsa_components(field("n")?, field("e")?).ok(),
        Alg::EdDSA => DecodingKey::from_ed_components(field("x")?).ok(),
    }
}
