//! The key schedule: when keys are created, start signing, retire and are
//! removed. Plans are pure functions of the stored keys, the policy and
//! `now`; applying one is a single locked write ([`Store::schedule_key`]), so
//! of several nodes running the scheduler at once exactly one acts.
//!
//! ```text
//!   created ── pending_lead ──► activates_at ── rotation_interval ──► next key activates = this key retires_at
//!                                                                        └─ access_token_ttl + leeway + grace ──► removes_at
//! ```

use std::time::Duration;

use serde_json::json;

use super::{Alg, GeneratedKey, Kek, KeyState, LifecycleError, generate};
use crate::audit::Audit;
use crate::clock::CLOCK_SKEW_LEEWAY;
use crate::store::{KeyRecord, NewRevocation, Retirement, RevocationKind, Store, StoreError};

/// The parts of the configuration the schedule follows.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    pub rotation_interval: Duration,
    pub pending_lead: Duration,
    pub access_token_ttl: Duration,
    pub retire_grace: Duration,
    pub rsa_bits: usize,
}

impl KeyPolicy {
    fn lead(&self) -> i64 {
        self.pending_lead.as_secs() as i64
    }

    /// When a key retired at `retires_at` may leave the JWKS: after the last
    /// token it signed has expired, plus clock-skew leeway and grace.
    pub fn removal_after(&self, retires_at: i64) -> i64 {
        retires_at
            + self.access_token_ttl.as_secs() as i64
            + CLOCK_SKEW_LEEWAY
            + self.retire_grace.as_secs() as i64
    }

    /// When the automatic schedule creates the successor of a key that
    /// activated at `activates_at` (`None` when rotation is disabled).
    pub fn next_creation(&self, activates_at: i64) -> Option<i64> {
        if self.rotation_interval.is_zero() {
            return None;
        }
        Some(activates_at + self.rotation_interval.as_secs() as i64 - self.lead())
    }
}

fn state(k: &KeyRecord, now: i64) -> KeyState {
    KeyState::at(now, k.activates_at, k.retires_at, k.removes_at)
}

/// The key that signs for `alg` at `now`: the newest active one.
pub fn signing_key_of(keys: &[KeyRecord], alg: Alg, now: i64) -> Option<&KeyRecord> {
    keys.iter()
        .filter(|k| {
            k.alg == alg.as_str() && k.private_key.is_some() && state(k, now) == KeyState::Active
        })
        .max_by_key(|k| k.activates_at)
}

fn has_pending(keys: &[KeyRecord], alg: Alg, now: i64) -> bool {
    keys.iter()
        .any(|k| k.alg == alg.as_str() && state(k, now) == KeyState::Pending)
}

/// What a rotation will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPlan {
    pub alg: Alg,
    /// When the new key starts signing.
    pub activates_at: i64,
    /// The key it replaces, with its new retirement and removal times.
    pub retire: Option<Retirement>,
}

impl RotationPlan {
    pub fn describe(&self) -> String {
        let mut text = format!(
            "create a new {} key, published now, signing from {}",
            self.alg, self.activates_at
        );
        if let Some(r) = &self.retire {
            text.push_str(&format!(
                "; key {} stops signing at {} and leaves the JWKS at {}",
                r.kid, r.retires_at, r.removes_at
            ));
        }
        text
    }
}

/// A rotation of `alg` starting at `now`: the new key activates after the
/// pending lead; the current key retires at that moment.
pub fn plan_rotation(
    keys: &[KeyRecord],
    policy: &KeyPolicy,
    alg: Alg,
    now: i64,
) -> Option<RotationPlan> {
    if has_pending(keys, alg, now) {
        return None;
    }
    let activates_at = now + policy.lead();
    let retire = signing_key_of(keys, alg, now).map(|current| Retirement {
        kid: current.kid.clone(),
        retires_at: activates_at,
        removes_at: policy.removal_after(activates_at),
    });
    Some(RotationPlan {
        alg,
        activates_at,
        retire,
    })
}

/// The automatic schedule's plan for `alg`, if a rotation is due.
pub fn plan_scheduled(
    keys: &[KeyRecord],
    policy: &KeyPolicy,
    alg: Alg,
    now: i64,
) -> Option<RotationPlan> {
    let current = signing_key_of(keys, alg, now)?;
    let due = policy.next_creation(current.activates_at)?;
    if now < due {
        return None;
    }
    plan_rotation(keys, policy, alg, now)
}

/// Carries out `plan` with a fresh (or given) key. Returns the new key's
/// kid, or `None` if another scheduler got there first.
pub async fn apply_rotation(
    store: &dyn Store,
    kek: &Kek,
    policy: &KeyPolicy,
    plan: &RotationPlan,
    key: Option<GeneratedKey>,
    now: i64,
) -> Result<Option<String>, LifecycleError> {
    let key = match key {
        Some(key) => key,
        None => {
            let (alg, bits) = (plan.alg, policy.rsa_bits);
            tokio::task::spawn_blocking(move || generate(alg, bits))
                .await
                .map_err(|e| LifecycleError::Task(e.to_string()))??
        }
    };
    let record = KeyRecord {
        kid: key.kid.clone(),
        alg: plan.alg.as_str().to_string(),
        public_jwk: key.public_jwk.to_string(),
        private_key: Some(kek.seal(&key.kid, &key.pkcs8)?),
        created_at: now,
        activates_at: plan.activates_at,
        retires_at: None,
        removes_at: None,
    };
    if !store
        .schedule_key(&record, plan.retire.as_ref(), Some(now), now)
        .await?
    {
        return Ok(None);
    }
    Ok(Some(record.kid))
}

/// One pass of the automatic schedule: gives a signing key to any algorithm
/// left without one, rotates each algorithm that is due, and erases the
/// private halves of removed keys. Returns the new kids.
pub async fn run_schedule(
    store: &dyn Store,
    kek: &Kek,
    policy: &KeyPolicy,
    audit: &Audit,
    now: i64,
) -> Result<Vec<String>, LifecycleError> {
    let mut keys = store.list_keys().await?;
    let mut created = Vec::new();
    // An emergency rotation removes the compromised key before it stores
    // the replacement; a node killed in between leaves the algorithm with
    // no signing key. Whichever node runs the schedule next completes it,
    // once the rotation has had time to finish on its own.
    for alg in Alg::ALL {
        if !is_stranded(&keys, alg, now) {
            continue;
        }
        match super::create_key(store, kek, alg, policy.rsa_bits, now, now).await {
            Ok(record) => {
                tracing::warn!(kid = %record.kid, %alg, event = "key.replaced_missing",
                    "the algorithm had no signing key (an interrupted emergency rotation?); created one active now");
                created.push(record.kid);
                keys = store.list_keys().await?;
            }
            Err(LifecycleError::Raced) => keys = store.list_keys().await?,
            Err(e) => return Err(e),
        }
    }
    for alg in Alg::ALL {
        if let Some(plan) = plan_scheduled(&keys, policy, alg, now)
            && let Some(kid) = apply_rotation(store, kek, policy, &plan, None, now).await?
        {
            audit.record(
                now,
                "scheduler",
                "key.rotation_scheduled",
                Some(&*kid),
                json!({"alg": alg, "activates_at": plan.activates_at}),
            );
            created.push(kid);
        }
    }
    let destroyed = store.destroy_removed_keys(now).await?;
    if destroyed > 0 {
        tracing::info!(
            event = "key.destroyed",
            count = destroyed,
            "erased the private halves of removed keys"
        );
    }
    Ok(created)
}

/// How long an algorithm must have been without a signing key before the
/// scheduler replaces it: longer than an emergency rotation takes to
/// generate and store its own replacement (seconds, even for RSA-4096 on a
/// busy machine), so the repair never races it into two active keys.
pub const REPAIR_AFTER: i64 = 20;

/// Whether `alg` has had no signing key (and none pending) for at least
/// [`REPAIR_AFTER`] seconds since its last key stopped signing.
fn is_stranded(keys: &[KeyRecord], alg: Alg, now: i64) -> bool {
    if signing_key_of(keys, alg, now).is_some() || has_pending(keys, alg, now) {
        return false;
    }
    let stopped = keys
        .iter()
        .filter(|k| k.alg == alg.as_str())
        .filter_map(|k| k.retires_at.into_iter().chain(k.removes_at).min())
        .filter(|at| *at <= now)
        .max();
    stopped.is_none_or(|at| now - at >= REPAIR_AFTER)
}

/// What an emergency rotation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyPlan {
    pub compromised: String,
    pub alg: Alg,
}

/// Plans the emergency removal of `kid`.
pub fn plan_emergency(keys: &[KeyRecord], kid: &str, now: i64) -> Result<EmergencyPlan, String> {
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| format!("no key {kid}"))?;
    if state(key, now) == KeyState::Removed {
        return Err(format!("key {kid} is already removed"));
    }
    let alg: Alg = key.alg.parse()?;
    Ok(EmergencyPlan {
        compromised: kid.to_string(),
        alg,
    })
}

/// Removes a compromised key at once (from the JWKS, its private half
/// erased), makes a new key active at once if it was the signing key, and
/// revokes every token it signed through the deny-list (a `key` entry that
/// introspection and the revocation feed report).
pub async fn apply_emergency(
    store: &dyn Store,
    kek: &Kek,
    policy: &KeyPolicy,
    plan: &EmergencyPlan,
    now: i64,
) -> Result<Option<String>, LifecycleError> {
    let keys = store.list_keys().await?;
    let was_signing =
        signing_key_of(&keys, plan.alg, now).is_some_and(|k| k.kid == plan.compromised);
    store
        .set_key_times(&plan.compromised, now, now, true)
        .await?;
    store
        .insert_revocation(
            &NewRevocation {
                kind: RevocationKind::Key,
                value: plan.compromised.clone(),
                not_before: None,
                expires_at: policy.removal_after(now),
            },
            now,
        )
        .await?;
    let mut replacement = None;
    let still_signing = signing_key_of(&store.list_keys().await?, plan.alg, now).is_some();
    if was_signing || !still_signing {
        // No pre-publication here: the old key is gone and tokens must go on
        // being issued. Verifiers refetch the JWKS on an unknown kid.
        let now_plan = RotationPlan {
            alg: plan.alg,
            activates_at: now,
            retire: None,
        };
        let key = {
            let (alg, bits) = (plan.alg, policy.rsa_bits);
            tokio::task::spawn_blocking(move || generate(alg, bits))
                .await
                .map_err(|e| LifecycleError::Task(e.to_string()))??
        };
        let record = KeyRecord {
            kid: key.kid.clone(),
            alg: plan.alg.as_str().to_string(),
            public_jwk: key.public_jwk.to_string(),
            private_key: Some(kek.seal(&key.kid, &key.pkcs8)?),
            created_at: now,
            activates_at: now_plan.activates_at,
            retires_at: None,
            removes_at: None,
        };
        store.schedule_key(&record, None, None, now).await?;
        replacement = Some(record.kid);
    }
    Ok(replacement)
}

/// Retires `kid` now: it stops signing and leaves the JWKS once its tokens
/// have expired. Refused when it would leave its algorithm with no signing key.
pub fn plan_retire(
    keys: &[KeyRecord],
    policy: &KeyPolicy,
    kid: &str,
    now: i64,
) -> Result<Retirement, String> {
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| format!("no key {kid}"))?;
    let alg: Alg = key.alg.parse()?;
    match state(key, now) {
        KeyState::Removed | KeyState::Retired => {
            return Err(format!("key {kid} is already {}", state(key, now).as_str()));
        }
        KeyState::Active | KeyState::Pending => {}
    }
    let others_sign = keys.iter().any(|k| {
        k.kid != kid
            && k.alg == alg.as_str()
            && k.private_key.is_some()
            && state(k, now) == KeyState::Active
    });
    if state(key, now) == KeyState::Active && !others_sign {
        return Err(format!(
            "key {kid} is the only {alg} signing key: schedule a rotation first (sigil keys rotate --alg {alg})"
        ));
    }
    Ok(Retirement {
        kid: kid.to_string(),
        retires_at: now,
        removes_at: policy.removal_after(now),
    })
}

impl From<LifecycleError> for StoreError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Store(e) => e,
            other => StoreError::Other(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> KeyPolicy {
        KeyPolicy {
            rotation_interval: Duration::from_secs(30 * 86400),
            pending_lead: Duration::from_secs(3600),
            access_token_ttl: Duration::from_secs(900),
            retire_grace: Duration::from_secs(300),
            rsa_bits: 2048,
        }
    }

    fn key(kid: &str, alg: Alg, activates_at: i64) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            alg: alg.as_str().into(),
            public_jwk: "{}".into(),
            private_key: Some(vec![1]),
            created_at: activates_at,
            activates_at,
            retires_at: None,
            removes_at: None,
        }
    }

    #[test]
    fn a_rotation_falls_due_one_lead_before_the_interval_ends() {
        let keys = vec![key("a", Alg::RS256, 0)];
        let p = policy();
        let due = 30 * 86400 - 3600;
        assert_eq!(plan_scheduled(&keys, &p, Alg::RS256, due - 1), None);
        let plan = plan_scheduled(&keys, &p, Alg::RS256, due).unwrap();
        assert_eq!(plan.activates_at, 30 * 86400);
        let retire = plan.retire.unwrap();
        assert_eq!(retire.kid, "a");
        assert_eq!(retire.retires_at, 30 * 86400);
        assert_eq!(
            retire.removes_at,
            30 * 86400 + 900 + CLOCK_SKEW_LEEWAY + 300
        );
        assert_eq!(
            plan_scheduled(&keys, &p, Alg::EdDSA, due),
            None,
            "no EdDSA key to rotate"
        );
    }

    #[test]
    fn no_second_rotation_while_a_key_is_pending() {
        let mut keys = vec![key("a", Alg::RS256, 0), key("b", Alg::RS256, 10_000)];
        keys[0].retires_at = Some(10_000);
        assert_eq!(plan_rotation(&keys, &policy(), Alg::RS256, 5_000), None);
        assert!(plan_rotation(&keys, &policy(), Alg::RS256, 10_000).is_some());
    }

    #[test]
    fn the_only_signing_key_cannot_be_retired_without_a_successor() {
        let keys = vec![key("a", Alg::EdDSA, 0)];
        assert!(plan_retire(&keys, &policy(), "a", 100).is_err());
        let keys = vec![key("a", Alg::EdDSA, 0), key("b", Alg::EdDSA, 50)];
        let r = plan_retire(&keys, &policy(), "a", 100).unwrap();
        assert_eq!(
            (r.retires_at, r.removes_at),
            (100, 100 + 900 + CLOCK_SKEW_LEEWAY + 300)
        );
    }
}
