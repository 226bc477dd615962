//! [`JtiStore`]: one-time identifiers seen — a DPoP proof's `jti` (RFC
//! 9449 §11.1) or a client assertion's (RFC 7523 §3) — until the proof or
//! assertion could no longer be accepted anyway, so that a replay is
//! refused on every node. One implementation for both backends.

use async_trait::async_trait;

use crate::StoreResult;

/// One-time identifiers. A supertrait of [`crate::Store`].
#[async_trait]
pub trait JtiStore: Send + Sync {
    /// Records `key_hash` (a digest naming purpose, issuer and `jti`) until
    /// `expires_at`. Returns `true` when it is new (or its earlier record
    /// had expired by `now`), `false` for a replay. Of concurrent callers
    /// with the same key exactly one gets `true`.
    async fn remember_jti(&self, key_hash: &[u8], expires_at: i64, now: i64) -> StoreResult<bool>;
    /// Deletes up to `limit` identifiers that expired before `before`.
    async fn prune_seen_jtis(&self, before: i64, limit: i64) -> StoreResult<u64>;
}

pub(crate) const REMEMBER_JTI: &str = "INSERT INTO seen_jtis (key_hash, expires_at) VALUES ($1, $2) \
    ON CONFLICT (key_hash) DO UPDATE SET expires_at = excluded.expires_at \
    WHERE seen_jtis.expires_at <= $3";
pub(crate) const PRUNE_SEEN_JTIS: &str = "DELETE FROM seen_jtis WHERE key_hash IN \
    (SELECT key_hash FROM seen_jtis WHERE expires_at < $1 LIMIT $2)";

/// Implements [`JtiStore`] for a store type with `async fn write_conn`.
macro_rules! impl_jti_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::jtis::JtiStore for $store {
            async fn remember_jti(
                &self,
                key_hash: &[u8],
                expires_at: i64,
                now: i64,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query($crate::jtis::REMEMBER_JTI)
                    .bind(key_hash)
                    .bind(expires_at)
                    .bind(now)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn prune_seen_jtis(&self, before: i64, limit: i64) -> $crate::StoreResult<u64> {
                let done = sqlx::query($crate::jtis::PRUNE_SEEN_JTIS)
                    .bind(before)
                    .bind(limit)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use impl_jti_store;
