//! Login throttling for the password grant, and a registration limit.
//!
//! Failures are counted twice: per address-and-account pair ("pair") and per
//! account from every address ("account"). A pair answers its first few
//! failures at once, then waits twice as long each time, then is locked out;
//! the account limit is far higher, so one address can only ever lock out
//! itself, and locking a victim out needs many addresses, for a short time.
//!
//! A locked-out attempt takes the same path as a wrong password: the
//! password is still hashed, the failure is still counted, the same delay
//! applies, and the answer is the same `invalid_grant`. Unknown usernames are
//! counted like known ones, so the throttle is no enumeration oracle.
//!
//! Counters live in the database (`Store::throttle_*`): every node on one
//! Postgres shares them, and a restart does not lift a lockout. Only
//! well-formed usernames and existing clients are counted, so the keys an
//! attacker can create are bounded by the accounts that exist; a login
//! failure is counted only after a password hash. Counters whose window and
//! lockout are over are deleted by the pruning task (`crate::prune`). IPv6
//! addresses count by their /64 prefix, the block one host usually holds.
//!
//! Client authentication is on every token, introspection and revocation
//! request, so its check avoids the database in the common case: a node
//! remembers, for the rest of the current second, that an address-and-client
//! pair had no counter. A failure counted on this node forgets it at once;
//! a lockout reached through another node's failures holds here within that
//! second (the same check-then-act window concurrent requests always had).

mod settings;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

pub use settings::ThrottleConfig;

use crate::store::{Store, StoreResult, ThrottleRecord, ThrottleRule};

/// The first delay once a pair's free failures are used up.
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// At most this many client pairs are remembered as having no counter.
const CLEAN_PAIRS: u64 = 100_000;

/// Which counter locked an attempt out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockout {
    Pair,
    Account,
}

impl Lockout {
    pub fn as_str(self) -> &'static str {
        match self {
            Lockout::Pair => "pair",
            Lockout::Account => "account",
        }
    }
}

/// The counters one login attempt is held against.
#[derive(Debug, Clone)]
pub struct Attempt {
    pair: String,
    /// `None` for client authentication: locking a client out everywhere
    /// would hand an attacker an outage of the service behind it.
    account: Option<String>,
    /// Whether the pair had a counter when checked: only then does a
    /// success need to write.
    pair_counted: bool,
}

pub struct Throttle {
    config: ThrottleConfig,
    /// Client pairs seen with no counter, and the second (Sigil's clock)
    /// they were seen in: within that second, no need to ask again.
    clean_pairs: Cache<String, i64>,
    /// Bumped after every failure counted on this node: a "no counter"
    /// read that raced with one is not remembered.
    failures_counted: AtomicU64,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            clean_pairs: Cache::builder()
                .max_capacity(CLEAN_PAIRS)
                .time_to_live(Duration::from_secs(10))
                .build(),
            failures_counted: AtomicU64::new(0),
        }
    }

    /// The counters of a login as `username` (already parsed, so bounded
    /// and normalised) from `from` (the client's address; `None` when
    /// unknown, which shares one pair per account).
    pub fn attempt(&self, from: Option<IpAddr>, username: &str) -> Attempt {
        let from = address_key(from);
        Attempt {
            pair: format!("pair:{from}|{username}"),
            account: Some(format!("acct:{username}")),
            pair_counted: false,
        }
    }

    /// The counter of a client authentication with a secret from `from`:
    /// per address and client only.
    pub fn client_attempt(&self, from: Option<IpAddr>, client_id: &str) -> Attempt {
        let from = address_key(from);
        Attempt {
            pair: format!("client:{from}|{client_id}"),
            account: None,
            pair_counted: false,
        }
    }

    /// The counters of user codes typed on the device page (RFC 8628
    /// §5.1: guessing must be throttled) by the signed-in user `user_id`
    /// from `from`: per address and user, and per user from every address.
    /// Apart from the password counters: a wrong user code locks no one
    /// out of signing in.
    pub fn device_attempt(&self, from: Option<IpAddr>, user_id: &str) -> Attempt {
        let from = address_key(from);
        Attempt {
            pair: format!("device:{from}|{user_id}"),
            account: Some(format!("device-user:{user_id}")),
            pair_counted: false,
        }
    }

    /// Whether the attempt is locked out, checked before the password is.
    pub async fn lockout(
        &self,
        store: &dyn Store,
        attempt: &mut Attempt,
        now: i64,
    ) -> StoreResult<Option<Lockout>> {
        if !self.config.enabled {
            return Ok(None);
        }
        let locked = |r: Option<ThrottleRecord>| r.is_some_and(|r| r.locked_until > now);
        // Client pairs only (no account counter): see the module comment.
        let client_pair = attempt.account.is_none();
        if client_pair && self.clean_pairs.get(&attempt.pair) == Some(now) {
            attempt.pair_counted = false;
            return Ok(None);
        }
        let failures_before = self.failures_counted.load(Ordering::Acquire);
        let pair = store.throttle_get(&attempt.pair).await?;
        attempt.pair_counted = pair.is_some();
        if client_pair && pair.is_none() {
            self.remember_clean(&attempt.pair, failures_before, now);
        }
        if locked(pair) {
            return Ok(Some(Lockout::Pair));
        }
        if let Some(account) = &attempt.account
            && locked(store.throttle_get(account).await?)
        {
            return Ok(Some(Lockout::Account));
        }
        Ok(None)
    }

    /// Counts a failed (or locked-out) attempt and returns how long to wait
    /// before answering it.
    pub async fn failed(
        &self,
        store: &dyn Store,
        attempt: &Attempt,
        now: i64,
    ) -> StoreResult<Duration> {
        if !self.config.enabled {
            return Ok(Duration::ZERO);
        }
        let c = &self.config;
        let pair = store
            .throttle_fail(&attempt.pair, now, self.rule(c.pair_limit))
            .await;
        // After the write (committed or not): a racing read of "no
        // counter" then either sees the bump or is forgotten here.
        self.failures_counted.fetch_add(1, Ordering::AcqRel);
        self.clean_pairs.invalidate(&attempt.pair);
        let pair = pair?;
        // A locked pair counts for nothing more, not even against the
        // account: one address cannot lock an account out by itself.
        let Some(pair) = pair else {
            return Ok(c.max_delay);
        };
        if let Some(account) = &attempt.account {
            store
                .throttle_fail(account, now, self.rule(c.account_limit))
                .await?;
        }
        Ok(if pair.locked_until > now {
            c.max_delay
        } else {
            self.delay_after(pair.failures)
        })
    }

    /// A successful login clears its pair (not the account: failures from
    /// other addresses still count).
    pub async fn succeeded(&self, store: &dyn Store, attempt: &Attempt) -> StoreResult<()> {
        if !self.config.enabled || !attempt.pair_counted {
            return Ok(());
        }
        store.throttle_clear(&attempt.pair).await
    }

    /// Counts a registration from `from`; `Err(retry_after_secs)` once the
    /// address has used up its registrations for the window.
    pub async fn registration(
        &self,
        store: &dyn Store,
        from: Option<IpAddr>,
        now: i64,
    ) -> StoreResult<Result<(), i64>> {
        let limit = self.config.registrations_per_address;
        let Some(from) = from.filter(|_| self.config.enabled && limit > 0) else {
            return Ok(Ok(()));
        };
        let key = format!("reg:{}", address_key(Some(from)));
        if let Some(record) = store.throttle_get(&key).await?
            && record.locked_until > now
        {
            return Ok(Err(record.locked_until - now));
        }
        let window = self.config.window.as_secs() as i64;
        let rule = ThrottleRule {
            window,
            limit: i64::from(limit) + 1,
            lockout: window,
        };
        Ok(match store.throttle_fail(&key, now, rule).await? {
            None => Err(window),
            Some(record) if record.locked_until > now => Err(record.locked_until - now),
            Some(_) => Ok(()),
        })
    }

    fn rule(&self, limit: u32) -> ThrottleRule {
        ThrottleRule {
            window: self.config.window.as_secs() as i64,
            limit: i64::from(limit),
            lockout: self.config.lockout.as_secs() as i64,
        }
    }

    /// Remembers that `pair` had no counter at `now`, unless a failure was
    /// counted on this node since the read (`failures_before`).
    fn remember_clean(&self, pair: &str, failures_before: u64, now: i64) {
        let unchanged = || self.failures_counted.load(Ordering::Acquire) == failures_before;
        if unchanged() {
            self.clean_pairs.insert(pair.to_string(), now);
            if !unchanged() {
                self.clean_pairs.invalidate(pair);
            }
        }
    }

    /// No delay for the free failures, then 250 ms doubling, capped.
    fn delay_after(&self, failures: i64) -> Duration {
        let over = failures - i64::from(self.config.pair_free_failures);
        if over <= 0 {
            return Duration::ZERO;
        }
        let doublings = u32::try_from(over - 1).unwrap_or(u32::MAX).min(16);
        (FIRST_DELAY * 2u32.pow(doublings)).min(self.config.max_delay)
    }
}

/// An address as a throttling key: IPv4 whole, IPv6 by its /64 prefix
/// (IPv4-mapped IPv6 as IPv4).
fn address_key(from: Option<IpAddr>) -> String {
    match from.map(|ip| ip.to_canonical()) {
        None => "unknown".into(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_starts_after_the_free_failures_doubles_and_is_capped() {
        let throttle = Throttle::new(ThrottleConfig::default());
        let delays: Vec<u128> = (1..=9)
            .map(|n| throttle.delay_after(n).as_millis())
            .collect();
        assert_eq!(delays, [0, 0, 0, 250, 500, 1000, 2000, 2000, 2000]);
    }

    #[test]
    fn one_account_from_two_addresses_shares_the_account_not_the_pair() {
        let throttle = Throttle::new(ThrottleConfig::default());
        let a = throttle.attempt(Some([10, 0, 0, 1].into()), "alice");
        let b = throttle.attempt(Some([10, 0, 0, 2].into()), "alice");
        assert_eq!(a.account, b.account);
        assert_ne!(a.pair, b.pair);
        assert!(throttle.client_attempt(None, "svc").account.is_none());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        assert_ne!(address_key(Some(a)), address_key(Some(c)));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(Some(mapped)), "192.0.2.7");
    }
}
