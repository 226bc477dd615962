//! [`DeviceStore`]: device authorization requests (RFC 8628), and its one
//! implementation, shared by both backends (as in `sign_in.rs`).
//!
//! A poll, a decision and the exchange are each one conditional UPDATE:
//! of concurrent polls the interval is counted once per poll, a request is
//! decided once, and an approved code is exchanged once.

use async_trait::async_trait;

use crate::StoreResult;
use crate::records::{DeviceCodeRecord, DeviceDecision};

/// Device authorization requests. A supertrait of [`crate::Store`].
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// `Conflict("user_code")` when the user code is taken by a request
    /// not yet pruned (the caller draws another).
    async fn insert_device_code(&self, code: &DeviceCodeRecord) -> StoreResult<()>;
    /// The request whose device code hashes to `hash`, in any state.
    async fn device_code(&self, hash: &[u8]) -> StoreResult<Option<DeviceCodeRecord>>;
    /// The pending, unexpired request whose user code hashes to `hash`.
    async fn pending_device_code(
        &self,
        user_code_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<DeviceCodeRecord>>;
    /// Records the user's decision on a pending, unexpired request.
    /// Returns whether it was still pending.
    async fn decide_device_code(
        &self,
        user_code_hash: &[u8],
        decision: &DeviceDecision,
        now: i64,
    ) -> StoreResult<bool>;
    /// Counts a poll of a pending request (RFC 8628 §3.5): one before
    /// `next_poll_at` adds 5 s to the interval and is marked
    /// `polled_too_soon`; the next poll is on time `poll_interval` after
    /// this one. `None` when the request is not pending.
    async fn poll_device_code(
        &self,
        hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<DeviceCodeRecord>>;
    /// Spends an approved, unexpired request. `None` when it was not
    /// approved, already spent, or expired.
    async fn spend_device_code(
        &self,
        hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<DeviceCodeRecord>>;
    /// Deletes up to `limit` requests that expired before `before`.
    async fn prune_device_codes(&self, before: i64, limit: i64) -> StoreResult<u64>;
}

pub(crate) const INSERT_DEVICE_CODE: &str = "INSERT INTO device_codes \
    (device_code_hash, user_code_hash, client_id, scope, created_at, expires_at, poll_interval, \
     next_poll_at, polled_too_soon, status) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, 'pending')";
pub(crate) const DEVICE_CODE: &str = "SELECT * FROM device_codes WHERE device_code_hash = $1";
pub(crate) const PENDING_DEVICE_CODE: &str = "SELECT * FROM device_codes \
    WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $2";
pub(crate) const DECIDE_DEVICE_CODE: &str = "UPDATE device_codes SET status = $1, user_id = $2, \
    auth_time = $3, amr = $4, acr = $5, sid = $6, decided_at = $7 \
    WHERE user_code_hash = $8 AND status = 'pending' AND expires_at > $7";
// In an UPDATE every expression reads the row as it was, on both backends.
pub(crate) const POLL_DEVICE_CODE: &str = "UPDATE device_codes SET \
    polled_too_soon = ($1 < next_poll_at), \
    poll_interval = CASE WHEN $1 < next_poll_at THEN poll_interval + 5 ELSE poll_interval END, \
    next_poll_at = $1 + CASE WHEN $1 < next_poll_at THEN poll_interval + 5 ELSE poll_interval END \
    WHERE device_code_hash = $2 AND status = 'pending' RETURNING *";
pub(crate) const SPEND_DEVICE_CODE: &str = "UPDATE device_codes SET spent_at = $1 \
    WHERE device_code_hash = $2 AND status = 'approved' AND spent_at IS NULL \
    AND expires_at > $1 RETURNING *";
pub(crate) const PRUNE_DEVICE_CODES: &str = "DELETE FROM device_codes WHERE device_code_hash IN \
    (SELECT device_code_hash FROM device_codes WHERE expires_at < $1 LIMIT $2)";

/// Implements [`DeviceStore`] for a store type with `async fn read_conn`
/// and `async fn write_conn`, each returning a pooled connection.
macro_rules! impl_device_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::device::DeviceStore for $store {
            async fn insert_device_code(
                &self,
                c: &$crate::DeviceCodeRecord,
            ) -> $crate::StoreResult<()> {
                sqlx::query($crate::device::INSERT_DEVICE_CODE)
                    .bind(&c.device_code_hash)
                    .bind(&c.user_code_hash)
                    .bind(&c.client_id)
                    .bind(&c.scope)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .bind(c.poll_interval)
                    .bind(c.next_poll_at)
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err(|e| $crate::error::conflict_on(e, "user_code"))?;
                Ok(())
            }

            async fn device_code(
                &self,
                hash: &[u8],
            ) -> $crate::StoreResult<Option<$crate::DeviceCodeRecord>> {
                Ok(sqlx::query_as($crate::device::DEVICE_CODE)
                    .bind(hash)
                    .fetch_optional(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn pending_device_code(
                &self,
                user_code_hash: &[u8],
                now: i64,
            ) -> $crate::StoreResult<Option<$crate::DeviceCodeRecord>> {
                Ok(sqlx::query_as($crate::device::PENDING_DEVICE_CODE)
                    .bind(user_code_hash)
                    .bind(now)
                    .fetch_optional(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn decide_device_code(
                &self,
                user_code_hash: &[u8],
                d: &$crate::DeviceDecision,
                now: i64,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query($crate::device::DECIDE_DEVICE_CODE)
                    .bind(d.status.as_str())
                    .bind(&d.user_id)
                    .bind(d.auth_time)
                    .bind(&d.amr)
                    .bind(&d.acr)
                    .bind(&d.sid)
                    .bind(now)
                    .bind(user_code_hash)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn poll_device_code(
                &self,
                hash: &[u8],
                now: i64,
            ) -> $crate::StoreResult<Option<$crate::DeviceCodeRecord>> {
                Ok(sqlx::query_as($crate::device::POLL_DEVICE_CODE)
                    .bind(now)
                    .bind(hash)
                    .fetch_optional(&mut *self.write_conn().await?)
                    .await?)
            }

            async fn spend_device_code(
                &self,
                hash: &[u8],
                now: i64,
            ) -> $crate::StoreResult<Option<$crate::DeviceCodeRecord>> {
                Ok(sqlx::query_as($crate::device::SPEND_DEVICE_CODE)
                    .bind(now)
                    .bind(hash)
                    .fetch_optional(&mut *self.write_conn().await?)
                    .await?)
            }

            async fn prune_device_codes(
                &self,
                before: i64,
                limit: i64,
            ) -> $crate::StoreResult<u64> {
                let done = sqlx::query($crate::device::PRUNE_DEVICE_CODES)
                    .bind(before)
                    .bind(limit)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use impl_device_store;
