//! [`SignInStore`]: what browser sign-in keeps — browser sessions,
//! authorization codes and remembered consent — and its one
//! implementation, shared by both backends.
//!
//! The statements are the same on SQLite and Postgres (sqlx's SQLite driver
//! takes `$N` placeholders, and both have `RETURNING` and `ON CONFLICT`),
//! so [`impl_sign_in_store!`] writes the implementation once over a
//! backend's `read_conn`/`write_conn`. The one-shot step, spending a code,
//! is a single conditional UPDATE: of concurrent exchanges exactly one wins.

use async_trait::async_trait;

use crate::StoreResult;
use crate::records::{AuthCodeRecord, BrowserSessionRecord, CodeSpend, ConsentRecord};

/// Browser sessions, authorization codes and consent. A supertrait of
/// [`crate::Store`], so every store has it.
#[async_trait]
pub trait SignInStore: Send + Sync {
    async fn insert_browser_session(&self, session: &BrowserSessionRecord) -> StoreResult<()>;
    /// The session whose cookie secret hashes to `id_hash`, ended or not.
    async fn browser_session(&self, id_hash: &[u8]) -> StoreResult<Option<BrowserSessionRecord>>;
    /// Records activity at `now` (the idle lifetime runs from it).
    async fn touch_browser_session(&self, id_hash: &[u8], now: i64) -> StoreResult<()>;
    /// Ends the session named `sid` (only if it is `user_id`'s, when given).
    /// Returns whether a session was ended by this call.
    async fn end_browser_session(
        &self,
        sid: &str,
        user_id: Option<&str>,
        now: i64,
    ) -> StoreResult<bool>;
    /// A user's sessions not ended and not past their absolute expiry at
    /// `now`, newest first.
    async fn list_browser_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> StoreResult<Vec<BrowserSessionRecord>>;

    async fn insert_authorization_code(&self, code: &AuthCodeRecord) -> StoreResult<()>;
    /// Spends the code, recording `family_id` as what its exchange opened,
    /// unless it was spent before ([`CodeSpend::AlreadySpent`]) or is
    /// unknown or expired at `now` ([`CodeSpend::NotFound`]).
    async fn spend_authorization_code(
        &self,
        hash: &[u8],
        family_id: &str,
        now: i64,
    ) -> StoreResult<CodeSpend>;

    /// Stores (or replaces) a user's consent to a client.
    async fn put_consent(&self, consent: &ConsentRecord) -> StoreResult<()>;
    async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<ConsentRecord>>;
    async fn list_consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>>;
    /// Returns whether there was a consent to delete.
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> StoreResult<bool>;

    /// Deletes up to `limit` codes that expired before `before`.
    async fn prune_authorization_codes(&self, before: i64, limit: i64) -> StoreResult<u64>;
    /// Deletes up to `limit` sessions that ended or expired before `before`.
    async fn prune_browser_sessions(&self, before: i64, limit: i64) -> StoreResult<u64>;
}

pub(crate) const INSERT_BROWSER_SESSION: &str = "INSERT INTO browser_sessions \
    (id_hash, sid, user_id, auth_time, created_at, last_seen_at, expires_at, ended_at, user_agent, \
     amr, acr) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $10)";
pub(crate) const BROWSER_SESSION: &str = "SELECT * FROM browser_sessions WHERE id_hash = $1";
pub(crate) const TOUCH_BROWSER_SESSION: &str =
    "UPDATE browser_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at < $1";
pub(crate) const END_BROWSER_SESSION: &str = "UPDATE browser_sessions SET ended_at = $1 \
    WHERE sid = $2 AND ended_at IS NULL AND ($3 IS NULL OR user_id = $3)";
pub(crate) const LIST_BROWSER_SESSIONS: &str = "SELECT * FROM browser_sessions \
    WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, sid";
pub(crate) const INSERT_AUTHORIZATION_CODE: &str = "INSERT INTO authorization_codes \
    (hash, client_id, user_id, redirect_uri, scope, nonce, code_challenge, auth_time, sid, \
     created_at, expires_at, spent_at, family_id, amr, acr, dpop_jkt) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12, $13, $14)";
pub(crate) const SPEND_AUTHORIZATION_CODE: &str = "UPDATE authorization_codes \
    SET spent_at = $1, family_id = $2 \
    WHERE hash = $3 AND spent_at IS NULL AND expires_at > $1 RETURNING *";
pub(crate) const AUTHORIZATION_CODE: &str = "SELECT * FROM authorization_codes WHERE hash = $1";
pub(crate) const PUT_CONSENT: &str = "INSERT INTO consents (user_id, client_id, scope, granted_at) \
    VALUES ($1, $2, $3, $4) \
    ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at";
pub(crate) const CONSENT: &str = "SELECT * FROM consents WHERE user_id = $1 AND client_id = $2";
pub(crate) const LIST_CONSENTS: &str =
    "SELECT * FROM consents WHERE user_id = $1 ORDER BY client_id";
pub(crate) const DELETE_CONSENT: &str =
    "DELETE FROM consents WHERE user_id = $1 AND client_id = $2";
pub(crate) const PRUNE_AUTHORIZATION_CODES: &str = "DELETE FROM authorization_codes WHERE hash IN \
    (SELECT hash FROM authorization_codes WHERE expires_at < $1 LIMIT $2)";
pub(crate) const PRUNE_BROWSER_SESSIONS: &str = "DELETE FROM browser_sessions WHERE id_hash IN \
    (SELECT id_hash FROM browser_sessions WHERE COALESCE(ended_at, expires_at) < $1 \
     OR expires_at < $1 LIMIT $2)";

/// Implements [`SignInStore`] for a store type with `async fn read_conn`
/// and `async fn write_conn`, each returning a pooled connection.
macro_rules! impl_sign_in_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::sign_in::SignInStore for $store {
            async fn insert_browser_session(
                &self,
                s: &$crate::BrowserSessionRecord,
            ) -> $crate::StoreResult<()> {
                sqlx::query($crate::sign_in::INSERT_BROWSER_SESSION)
                    .bind(&s.id_hash)
                    .bind(&s.sid)
                    .bind(&s.user_id)
                    .bind(s.auth_time)
                    .bind(s.created_at)
                    .bind(s.last_seen_at)
                    .bind(s.expires_at)
                    .bind(&s.user_agent)
                    .bind(&s.amr)
                    .bind(&s.acr)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn browser_session(
                &self,
                id_hash: &[u8],
            ) -> $crate::StoreResult<Option<$crate::BrowserSessionRecord>> {
                Ok(sqlx::query_as($crate::sign_in::BROWSER_SESSION)
                    .bind(id_hash)
                    .fetch_optional(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn touch_browser_session(
                &self,
                id_hash: &[u8],
                now: i64,
            ) -> $crate::StoreResult<()> {
                sqlx::query($crate::sign_in::TOUCH_BROWSER_SESSION)
                    .bind(now)
                    .bind(id_hash)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn end_browser_session(
                &self,
                sid: &str,
                user_id: Option<&str>,
                now: i64,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query($crate::sign_in::END_BROWSER_SESSION)
                    .bind(now)
                    .bind(sid)
                    .bind(user_id)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_browser_sessions(
                &self,
                user_id: &str,
                now: i64,
            ) -> $crate::StoreResult<Vec<$crate::BrowserSessionRecord>> {
                Ok(sqlx::query_as($crate::sign_in::LIST_BROWSER_SESSIONS)
                    .bind(user_id)
                    .bind(now)
                    .fetch_all(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn insert_authorization_code(
                &self,
                c: &$crate::AuthCodeRecord,
            ) -> $crate::StoreResult<()> {
                sqlx::query($crate::sign_in::INSERT_AUTHORIZATION_CODE)
                    .bind(&c.hash)
                    .bind(&c.client_id)
                    .bind(&c.user_id)
                    .bind(&c.redirect_uri)
                    .bind(&c.scope)
                    .bind(&c.nonce)
                    .bind(&c.code_challenge)
                    .bind(c.auth_time)
                    .bind(&c.sid)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .bind(&c.amr)
                    .bind(&c.acr)
                    .bind(&c.dpop_jkt)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn spend_authorization_code(
                &self,
                hash: &[u8],
                family_id: &str,
                now: i64,
            ) -> $crate::StoreResult<$crate::CodeSpend> {
                let spent: Option<$crate::AuthCodeRecord> =
                    sqlx::query_as($crate::sign_in::SPEND_AUTHORIZATION_CODE)
                        .bind(now)
                        .bind(family_id)
                        .bind(hash)
                        .fetch_optional(&mut *self.write_conn().await?)
                        .await?;
                if let Some(code) = spent {
                    return Ok($crate::CodeSpend::Spent(code));
                }
                let row: Option<$crate::AuthCodeRecord> =
                    sqlx::query_as($crate::sign_in::AUTHORIZATION_CODE)
                        .bind(hash)
                        .fetch_optional(&mut *self.write_conn().await?)
                        .await?;
                Ok(match row {
                    Some(code) if code.spent_at.is_some() => $crate::CodeSpend::AlreadySpent(code),
                    _ => $crate::CodeSpend::NotFound,
                })
            }

            async fn put_consent(&self, c: &$crate::ConsentRecord) -> $crate::StoreResult<()> {
                sqlx::query($crate::sign_in::PUT_CONSENT)
                    .bind(&c.user_id)
                    .bind(&c.client_id)
                    .bind(&c.scope)
                    .bind(c.granted_at)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn consent(
                &self,
                user_id: &str,
                client_id: &str,
            ) -> $crate::StoreResult<Option<$crate::ConsentRecord>> {
                Ok(sqlx::query_as($crate::sign_in::CONSENT)
                    .bind(user_id)
                    .bind(client_id)
                    .fetch_optional(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn list_consents(
                &self,
                user_id: &str,
            ) -> $crate::StoreResult<Vec<$crate::ConsentRecord>> {
                Ok(sqlx::query_as($crate::sign_in::LIST_CONSENTS)
                    .bind(user_id)
                    .fetch_all(&mut *self.read_conn().await?)
                    .await?)
            }

            async fn delete_consent(
                &self,
                user_id: &str,
                client_id: &str,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query($crate::sign_in::DELETE_CONSENT)
                    .bind(user_id)
                    .bind(client_id)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn prune_authorization_codes(
                &self,
                before: i64,
                limit: i64,
            ) -> $crate::StoreResult<u64> {
                let done = sqlx::query($crate::sign_in::PRUNE_AUTHORIZATION_CODES)
                    .bind(before)
                    .bind(limit)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn prune_browser_sessions(
                &self,
                before: i64,
                limit: i64,
            ) -> $crate::StoreResult<u64> {
                let done = sqlx::query($crate::sign_in::PRUNE_BROWSER_SESSIONS)
                    .bind(before)
                    .bind(limit)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use impl_sign_in_store;
