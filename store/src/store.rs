//! The [`Store`] trait: everything Sigil asks of a database.

use async_trait::async_trait;

use crate::StoreResult;
use crate::device::DeviceStore;
use crate::factors::FactorStore;
use crate::jtis::JtiStore;
use crate::records::*;
use crate::sign_in::SignInStore;

/// Everything Sigil persists. One implementation per database.
#[async_trait]
pub trait Store:
    SignInStore + FactorStore + DeviceStore + JtiStore + Send + Sync + 'static
{
    /// Cheap round-trip used by readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Whether every migration this binary knows has been applied (and no
    /// unknown one).
    async fn schema_is_current(&self) -> StoreResult<bool>;
    /// Connection-pool occupancy, for metrics.
    fn pool_stats(&self) -> PoolStats;
    /// Closes the pool, waiting for connections in use to be returned.
    async fn close(&self);

    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>>;
    /// Up to `limit` users with a username after `after`, by username.
    async fn list_users(&self, after: &str, limit: i64) -> StoreResult<Vec<UserRecord>>;
    /// Enables or disables a user; `NotFound` if there is no such user.
    async fn set_user_disabled(&self, id: &str, disabled: bool, now: i64) -> StoreResult<()>;

    async fn insert_client(&self, client: &ClientRecord) -> StoreResult<()>;
    async fn client_by_id(&self, client_id: &str) -> StoreResult<Option<ClientRecord>>;
    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>>;
    /// Replaces a confidential client's secret; the current one stays
    /// valid until `previous_expires_at`. `NotFound` for an unknown or
    /// public client.
    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &[u8],
        previous_expires_at: i64,
    ) -> StoreResult<()>;
    /// `NotFound` for an unknown client.
    async fn set_client_disabled(&self, client_id: &str, disabled: bool) -> StoreResult<()>;
    /// Whether the client's users must sign in with a second factor.
    /// `NotFound` for an unknown client.
    async fn set_client_require_mfa(&self, client_id: &str, required: bool) -> StoreResult<()>;

    /// Every key that still has a row, oldest first.
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// Inserts `key` and applies `retire`, atomically and under a lock that
    /// makes concurrent schedulers (several nodes) take turns. With
    /// `unless_activating_after: Some(t)`, does nothing and returns `false`
    /// when a key of the same algorithm, not retired at `now`, activates
    /// after `t` (`t = now`: one is already pending; `t = i64::MIN`: any
    /// live key exists).
    async fn schedule_key(
        &self,
        key: &KeyRecord,
        retire: Option<&Retirement>,
        unless_activating_after: Option<i64>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Changes when a key retires and is removed; `destroy_private` erases
    /// its private half. `NotFound` if there is no such key.
    async fn set_key_times(
        &self,
        kid: &str,
        retires_at: i64,
        removes_at: i64,
        destroy_private: bool,
    ) -> StoreResult<()>;
    /// Erases the private half of every key removed by `now`.
    async fn destroy_removed_keys(&self, now: i64) -> StoreResult<u64>;
    /// Replaces every listed key's encrypted private half and every listed
    /// user's sealed TOTP secret, all or nothing (a KEK rewrap).
    async fn rewrap_keys(
        &self,
        sealed: &[(String, Vec<u8>)],
        totp: &[(String, Vec<u8>)],
    ) -> StoreResult<()>;

    async fn insert_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: &str,
    ) -> StoreResult<()>;
    /// Stores several audit events in one transaction.
    async fn insert_audit_batch(&self, events: &[NewAudit]) -> StoreResult<()>;
    /// The newest `limit` audit events, oldest first.
    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>>;

    /// The failed-login counter of a throttling key, if it has one.
    async fn throttle_get(&self, key: &str) -> StoreResult<Option<ThrottleRecord>>;
    /// Counts one failed login against `key`, atomically: a window older
    /// than `rule.window` starts afresh; reaching `rule.limit` failures
    /// locks the key until `now + rule.lockout` and resets its count.
    /// `None` when the key is locked: then nothing is counted (nor is the
    /// lockout extended).
    async fn throttle_fail(
        &self,
        key: &str,
        now: i64,
        rule: ThrottleRule,
    ) -> StoreResult<Option<ThrottleRecord>>;
    /// Forgets a key's failures (after a successful login).
    async fn throttle_clear(&self, key: &str) -> StoreResult<()>;
    /// Deletes up to `limit` counters whose window started before
    /// `window_before` and whose lockout (if any) ended before `now`.
    async fn throttle_prune(&self, window_before: i64, now: i64, limit: i64) -> StoreResult<u64>;

    /// Stores a new family with its first refresh token (`None`: a login
    /// session whose client may not refresh), atomically, unless the user
    /// is disabled or gone, or `password_hash` (the hash the login was
    /// checked against) is no longer the user's: [`StoreError::NotFound`].
    /// Ordered against [`Store::revoke_families`] of the same user: a
    /// family is either seen (and revoked) by it or created after it
    /// committed, and then starts no earlier than that revocation (a login
    /// that began before it, on this node's clock or a slower one, would
    /// otherwise issue tokens dated before it, which its `user` entry
    /// denies). Returns when the family started: `family.created_at`, or
    /// later; the first token and the access token take that time.
    async fn create_family(
        &self,
        family: &FamilyRecord,
        first: Option<&RefreshRecord>,
        password_hash: Option<&str>,
    ) -> StoreResult<i64>;
    /// A refresh token and its family.
    async fn refresh_token(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<(RefreshRecord, FamilyRecord)>>;
    /// A refresh token, its family and the family's user (`None` if the user
    /// is gone): everything the refresh grant checks before spending. One
    /// read where the backend can join them.
    async fn refresh_session(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<(RefreshRecord, FamilyRecord, Option<UserRecord>)>> {
        let Some((token, family)) = self.refresh_token(hash).await? else {
            return Ok(None);
        };
        let user = self.user_by_id(&family.user_id).await?;
        Ok(Some((token, family, user)))
    }
    /// Spends `hash` and stores `successor`, in one transaction whose spend is
    /// a single conditional UPDATE: of concurrent callers exactly one wins.
    /// A token that has expired by `now`, or whose family is revoked, is not
    /// spent: [`SpendOutcome::NotFound`].
    async fn spend_refresh_token(
        &self,
        hash: &[u8],
        successor: &RefreshRecord,
        now: i64,
    ) -> StoreResult<SpendOutcome>;
    /// Marks families revoked and records `revocation` (and, for a user's
    /// families, the session entries [`UserFamilies`] describes),
    /// atomically. A spend of one of the families' refresh tokens racing
    /// with it either commits first (and its successor is seen) or spends
    /// nothing. Returns how many families were newly revoked.
    async fn revoke_families(
        &self,
        which: Families<'_>,
        revocation: &NewRevocation,
        now: i64,
    ) -> StoreResult<u64>;
    /// Adds a deny-list entry; returns its sequence number.
    async fn insert_revocation(&self, revocation: &NewRevocation, now: i64) -> StoreResult<i64>;
    /// Unexpired entries with `seq > after`, in order, at most `limit`.
    async fn revocations_since(
        &self,
        after: i64,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<RevocationRecord>>;
    /// Whether an unexpired entry matches the token (the fallback when the
    /// in-memory deny-list has overflowed).
    async fn is_revoked(
        &self,
        jti: &str,
        sid: Option<&str>,
        sub: &str,
        iat: i64,
        now: i64,
    ) -> StoreResult<bool>;

    /// Deletes up to `limit` deny-list entries that expired before `before`.
    async fn prune_revocations(&self, before: i64, limit: i64) -> StoreResult<u64>;
    /// Deletes up to `limit` refresh tokens of families dead before `before`:
    /// revoked before it, or whose every token expired before it.
    async fn prune_refresh_tokens(&self, before: i64, limit: i64) -> StoreResult<u64>;
    /// Deletes up to `limit` families dead before `before` (as above) that
    /// have no token left.
    async fn prune_refresh_families(&self, before: i64, limit: i64) -> StoreResult<u64>;
    /// Deletes up to `limit` audit events recorded before `before`.
    async fn prune_audit(&self, before: i64, limit: i64) -> StoreResult<u64>;

    /// A signal that bumps whenever another node may have changed shared
    /// state (revocations, keys). `None` where there is no other node.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// A signal that bumps whenever a client may have been changed anywhere
    /// (`rotate_client_secret`, `set_client_disabled` on any node or by the
    /// CLI). `None` where there is no such signal (SQLite: see
    /// `client_cache::CLIENT_CACHE_TTL`).
    fn client_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
