//! [`FactorStore`]: what sign-in beyond passwords keeps — TOTP
//! authenticators, recovery codes, passkeys and WebAuthn ceremonies in
//! flight — and its one implementation, shared by both backends (the
//! statements are the same on SQLite and Postgres, as in `sign_in.rs`).
//!
//! Every one-shot step is a single conditional statement, so that of
//! concurrent attempts exactly one wins: a TOTP time step is accepted once
//! (`use_totp_step`), a recovery code spent once, a ceremony taken once.

use async_trait::async_trait;

use crate::StoreResult;
use crate::records::{CeremonyRecord, PasskeyRecord, TotpRecord, UserRecord};

/// What became of a passkey removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRemoval {
    Removed,
    /// The user has no such passkey.
    NotFound,
    /// It is the account's only way in: kept.
    LastWayIn,
}

/// How many of each factor a reset removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorsRemoved {
    pub totp: u64,
    pub recovery_codes: u64,
    pub passkeys: u64,
}

/// Second factors and passkeys. A supertrait of [`crate::Store`].
#[async_trait]
pub trait FactorStore: Send + Sync {
    /// Stores a TOTP enrolment awaiting its first code, replacing an
    /// earlier unconfirmed one. `Conflict("totp")` when the user already
    /// has a confirmed authenticator (it must be removed first).
    async fn put_totp(&self, totp: &TotpRecord) -> StoreResult<()>;
    async fn totp(&self, user_id: &str) -> StoreResult<Option<TotpRecord>>;
    /// Confirms the enrolment with the code of `step` (which counts as
    /// used) and replaces the user's recovery codes with `recovery`, in one
    /// transaction. Returns whether an unconfirmed enrolment was confirmed.
    async fn confirm_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery: &[Vec<u8>],
        now: i64,
    ) -> StoreResult<bool>;
    /// Accepts a code of `step` for a confirmed authenticator, unless a
    /// code of that step or a later one was accepted before (RFC 6238 §5.2:
    /// a code is accepted once). Returns whether it was accepted.
    async fn use_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool>;
    /// Removes the user's authenticator and recovery codes. Returns whether
    /// there was an authenticator.
    async fn delete_totp(&self, user_id: &str) -> StoreResult<bool>;
    /// Every sealed TOTP secret, for a KEK rewrap.
    async fn totp_secrets(&self) -> StoreResult<Vec<(String, Vec<u8>)>>;

    /// Replaces the user's recovery codes (digests) with `hashes`.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[Vec<u8>],
        now: i64,
    ) -> StoreResult<()>;
    /// Spends one recovery code; returns whether it was unused.
    async fn use_recovery_code(&self, user_id: &str, hash: &[u8], now: i64) -> StoreResult<bool>;
    /// How many of the user's recovery codes are unused.
    async fn unused_recovery_codes(&self, user_id: &str) -> StoreResult<i64>;

    /// `Conflict("credential_id")` when the credential is registered already.
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()>;
    /// A passkey-only account: the user and their passkey in one
    /// transaction (`Conflict` naming the username, email or credential).
    async fn insert_user_with_passkey(
        &self,
        user: &UserRecord,
        passkey: &PasskeyRecord,
    ) -> StoreResult<()>;
    /// The user's passkeys, oldest first.
    async fn passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>>;
    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<PasskeyRecord>>;
    /// Stores the credential as updated by a sign-in (its counter) and when.
    async fn passkey_used(&self, id: &str, credential: &str, now: i64) -> StoreResult<()>;
    /// Returns whether the user had a passkey `id`.
    async fn rename_passkey(&self, user_id: &str, id: &str, name: &str) -> StoreResult<bool>;
    /// Removes the user's passkey `id`, unless `keep_a_way_in` and it is
    /// the last way into the account (no password, no other passkey).
    /// Concurrent removals of one user's passkeys take turns (the user row
    /// is locked), so two of them cannot both pass that check.
    async fn delete_passkey(
        &self,
        user_id: &str,
        id: &str,
        keep_a_way_in: bool,
    ) -> StoreResult<PasskeyRemoval>;
    /// Removes every factor of the user (authenticator, recovery codes,
    /// passkeys) in one transaction.
    async fn reset_factors(&self, user_id: &str) -> StoreResult<FactorsRemoved>;

    async fn insert_ceremony(&self, ceremony: &CeremonyRecord) -> StoreResult<()>;
    /// Takes (deletes and returns) a ceremony that has not expired by
    /// `now`: a ceremony's state is used once.
    async fn take_ceremony(&self, id_hash: &[u8], now: i64) -> StoreResult<Option<CeremonyRecord>>;
    /// Deletes up to `limit` ceremonies that expired before `before`.
    async fn prune_ceremonies(&self, before: i64, limit: i64) -> StoreResult<u64>;
}

pub(crate) const PUT_TOTP: &str = "INSERT INTO totp_factors \
    (user_id, secret, created_at, confirmed_at, last_step) VALUES ($1, $2, $3, NULL, 0) \
    ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at \
    WHERE totp_factors.confirmed_at IS NULL";
pub(crate) const TOTP: &str = "SELECT * FROM totp_factors WHERE user_id = $1";
pub(crate) const CONFIRM_TOTP: &str = "UPDATE totp_factors SET confirmed_at = $1, last_step = $2 \
    WHERE user_id = $3 AND confirmed_at IS NULL";
pub(crate) const USE_TOTP_STEP: &str = "UPDATE totp_factors SET last_step = $1 \
    WHERE user_id = $2 AND confirmed_at IS NOT NULL AND last_step < $1";
pub(crate) const DELETE_TOTP: &str = "DELETE FROM totp_factors WHERE user_id = $1";
pub(crate) const TOTP_SECRETS: &str = "SELECT user_id, secret FROM totp_factors ORDER BY user_id";
pub(crate) const DELETE_RECOVERY_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = $1";
pub(crate) const INSERT_RECOVERY_CODE: &str = "INSERT INTO recovery_codes (user_id, code_hash, created_at, used_at) VALUES ($1, $2, $3, NULL)";
pub(crate) const USE_RECOVERY_CODE: &str = "UPDATE recovery_codes SET used_at = $1 \
    WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL";
pub(crate) const UNUSED_RECOVERY_CODES: &str =
    "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL";
pub(crate) const INSERT_PASSKEY: &str = "INSERT INTO passkeys \
    (id, user_id, credential_id, name, credential, backup_eligible, created_at, last_used_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(crate) const PASSKEYS: &str =
    "SELECT * FROM passkeys WHERE user_id = $1 ORDER BY created_at, id";
pub(crate) const PASSKEY_BY_CREDENTIAL_ID: &str = "SELECT * FROM passkeys WHERE credential_id = $1";
pub(crate) const PASSKEY_USED: &str =
    "UPDATE passkeys SET credential = $1, last_used_at = $2 WHERE id = $3";
pub(crate) const RENAME_PASSKEY: &str =
    "UPDATE passkeys SET name = $1 WHERE user_id = $2 AND id = $3";
pub(crate) const DELETE_PASSKEY: &str = "DELETE FROM passkeys WHERE user_id = $1 AND id = $2";
/// Locks the user row for the rest of the transaction on Postgres (SQLite's
/// one writer orders writes anyway); changes nothing.
pub(crate) const LOCK_USER: &str = "UPDATE users SET updated_at = updated_at WHERE id = $1";
/// Whether the user has no password, and how many passkeys they have.
pub(crate) const WAYS_IN: &str = "SELECT u.password_hash = '', \
    (SELECT COUNT(*) FROM passkeys p WHERE p.user_id = u.id) FROM users u WHERE u.id = $1";
pub(crate) const DELETE_PASSKEYS: &str = "DELETE FROM passkeys WHERE user_id = $1";
pub(crate) const INSERT_CEREMONY: &str = "INSERT INTO webauthn_ceremonies \
    (id_hash, purpose, user_id, state, expires_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const TAKE_CEREMONY: &str =
    "DELETE FROM webauthn_ceremonies WHERE id_hash = $1 AND expires_at > $2 RETURNING *";
pub(crate) const PRUNE_CEREMONIES: &str = "DELETE FROM webauthn_ceremonies WHERE id_hash IN \
    (SELECT id_hash FROM webauthn_ceremonies WHERE expires_at < $1 LIMIT $2)";

/// Implements [`FactorStore`] for a store type with `async fn read_conn`
/// and `async fn write_conn`, each returning a pooled connection.
macro_rules! impl_factor_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::factors::FactorStore for $store {
            async fn put_totp(&self, t: &$crate::TotpRecord) -> $crate::StoreResult<()> {
                let done = sqlx::query($crate::factors::PUT_TOTP)
                    .bind(&t.user_id)
                    .bind(&t.secret)
                    .bind(t.created_at)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::Conflict("totp"));
                }
                Ok(())
            }

            async fn totp(&self, user_id: &str) -> $crate::StoreResult<Option<$crate::TotpRecord>> {
                Ok(sqlx::query_as($crate::factors::TOTP)
                    .bind(user_id)
                    .fetch_optional(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn confirm_totp(
                &self,
                user_id: &str,
                step: i64,
                recovery: &[Vec<u8>],
                now: i64,
            ) -> $crate::StoreResult<bool> {
                use sqlx::Connection;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin().await?;
                let done = sqlx::query($crate::factors::CONFIRM_TOTP)
                    .bind(now)
                    .bind(step)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query($crate::factors::DELETE_RECOVERY_CODES)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                for hash in recovery {
                    sqlx::query($crate::factors::INSERT_RECOVERY_CODE)
                        .bind(user_id)
                        .bind(hash)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn use_totp_step(&self, user_id: &str, step: i64) -> $crate::StoreResult<bool> {
                let done = sqlx::query($crate::factors::USE_TOTP_STEP)
                    .bind(step)
                    .bind(user_id)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_totp(&self, user_id: &str) -> $crate::StoreResult<bool> {
                use sqlx::Connection;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin().await?;
                let done = sqlx::query($crate::factors::DELETE_TOTP)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query($crate::factors::DELETE_RECOVERY_CODES)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn totp_secrets(&self) -> $crate::StoreResult<Vec<(String, Vec<u8>)>> {
                Ok(sqlx::query_as($crate::factors::TOTP_SECRETS)
                    .fetch_all(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn replace_recovery_codes(
                &self,
                user_id: &str,
                hashes: &[Vec<u8>],
                now: i64,
            ) -> $crate::StoreResult<()> {
                use sqlx::Connection;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin().await?;
                sqlx::query($crate::factors::DELETE_RECOVERY_CODES)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                for hash in hashes {
                    sqlx::query($crate::factors::INSERT_RECOVERY_CODE)
                        .bind(user_id)
                        .bind(hash)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn use_recovery_code(
                &self,
                user_id: &str,
                hash: &[u8],
                now: i64,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query($crate::factors::USE_RECOVERY_CODE)
                    .bind(now)
                    .bind(user_id)
                    .bind(hash)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn unused_recovery_codes(&self, user_id: &str) -> $crate::StoreResult<i64> {
                Ok(sqlx::query_scalar($crate::factors::UNUSED_RECOVERY_CODES)
                    .bind(user_id)
                    .fetch_one(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn insert_passkey(&self, p: &$crate::PasskeyRecord) -> $crate::StoreResult<()> {
                sqlx::query($crate::factors::INSERT_PASSKEY)
                    .bind(&p.id)
                    .bind(&p.user_id)
                    .bind(&p.credential_id)
                    .bind(&p.name)
                    .bind(&p.credential)
                    .bind(p.backup_eligible)
                    .bind(p.created_at)
                    .bind(p.last_used_at)
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err(|e| $crate::error::conflict_on(e, "credential_id"))?;
                Ok(())
            }

            async fn insert_user_with_passkey(
                &self,
                u: &$crate::UserRecord,
                p: &$crate::PasskeyRecord,
            ) -> $crate::StoreResult<()> {
                use sqlx::Connection;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin().await?;
                sqlx::query($crate::sql::INSERT_USER)
                    .bind(&u.id)
                    .bind(&u.username)
                    .bind(&u.email)
                    .bind(&u.password_hash)
                    .bind(u.disabled)
                    .bind(u.created_at)
                    .bind(u.updated_at)
                    .execute(&mut *tx)
                    .await
                    // The backend's own mapping (`unique` where the macro is
                    // expanded) names the column.
                    .map_err(|e| unique(e, &["username", "email"]))?;
                sqlx::query($crate::factors::INSERT_PASSKEY)
                    .bind(&p.id)
                    .bind(&p.user_id)
                    .bind(&p.credential_id)
                    .bind(&p.name)
                    .bind(&p.credential)
                    .bind(p.backup_eligible)
                    .bind(p.created_at)
                    .bind(p.last_used_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| $crate::error::conflict_on(e, "credential_id"))?;
                tx.commit().await?;
                Ok(())
            }

            async fn passkeys(
                &self,
                user_id: &str,
            ) -> $crate::StoreResult<Vec<$crate::PasskeyRecord>> {
                Ok(sqlx::query_as($crate::factors::PASSKEYS)
                    .bind(user_id)
                    .fetch_all(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn passkey_by_credential_id(
                &self,
                credential_id: &[u8],
            ) -> $crate::StoreResult<Option<$crate::PasskeyRecord>> {
                Ok(sqlx::query_as($crate::factors::PASSKEY_BY_CREDENTIAL_ID)
                    .bind(credential_id)
                    .fetch_optional(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn passkey_used(
                &self,
                id: &str,
                credential: &str,
                now: i64,
            ) -> $crate::StoreResult<()> {
                sqlx::query($crate::factors::PASSKEY_USED)
                    .bind(credential)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn rename_passkey(
                &self,
                user_id: &str,
                id: &str,
                name: &str,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query($crate::factors::RENAME_PASSKEY)
                    .bind(name)
                    .bind(user_id)
                    .bind(id)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_passkey(
                &self,
                user_id: &str,
                id: &str,
                keep_a_way_in: bool,
            ) -> $crate::StoreResult<$crate::PasskeyRemoval> {
                use sqlx::Connection;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin().await?;
                sqlx::query($crate::factors::LOCK_USER)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                if keep_a_way_in {
                    let ways: Option<(bool, i64)> = sqlx::query_as($crate::factors::WAYS_IN)
                        .bind(user_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some((true, n)) = ways
                        && n <= 1
                    {
                        let owned: Option<$crate::PasskeyRecord> =
                            sqlx::query_as($crate::factors::PASSKEYS)
                                .bind(user_id)
                                .fetch_optional(&mut *tx)
                                .await?;
                        if owned.is_some_and(|p| p.id == id) {
                            return Ok($crate::PasskeyRemoval::LastWayIn);
                        }
                    }
                }
                let done = sqlx::query($crate::factors::DELETE_PASSKEY)
                    .bind(user_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(if done.rows_affected() > 0 {
                    $crate::PasskeyRemoval::Removed
                } else {
                    $crate::PasskeyRemoval::NotFound
                })
            }

            async fn reset_factors(
                &self,
                user_id: &str,
            ) -> $crate::StoreResult<$crate::FactorsRemoved> {
                use sqlx::Connection;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin().await?;
                let mut removed = $crate::FactorsRemoved::default();
                for (sql, count) in [
                    ($crate::factors::DELETE_TOTP, &mut removed.totp),
                    (
                        $crate::factors::DELETE_RECOVERY_CODES,
                        &mut removed.recovery_codes,
                    ),
                    ($crate::factors::DELETE_PASSKEYS, &mut removed.passkeys),
                ] {
                    *count = sqlx::query(sql)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(removed)
            }

            async fn insert_ceremony(&self, c: &$crate::CeremonyRecord) -> $crate::StoreResult<()> {
                sqlx::query($crate::factors::INSERT_CEREMONY)
                    .bind(&c.id_hash)
                    .bind(&c.purpose)
                    .bind(&c.user_id)
                    .bind(&c.state)
                    .bind(c.expires_at)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn take_ceremony(
                &self,
                id_hash: &[u8],
                now: i64,
            ) -> $crate::StoreResult<Option<$crate::CeremonyRecord>> {
                Ok(sqlx::query_as($crate::factors::TAKE_CEREMONY)
                    .bind(id_hash)
                    .bind(now)
                    .fetch_optional(&mut *self.write_conn().await?)
                    .await?)
            }

            async fn prune_ceremonies(&self, before: i64, limit: i64) -> $crate::StoreResult<u64> {
                let done = sqlx::query($crate::factors::PRUNE_CEREMONIES)
                    .bind(before)
                    .bind(limit)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use impl_factor_store;
