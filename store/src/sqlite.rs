//! The embedded default: one SQLite file, created on first start.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{AppliedMigration, OnOpen, SchemaState, ThrottleRecord, ThrottleRule, settle_schema};
use super::{
    AuditRecord, ClientRecord, Families, FamilyRecord, KeyRecord, NewAudit, NewRevocation,
    PoolStats, RefreshRecord, Retirement, RevocationRecord, SpendOutcome, Store, StoreError,
    StoreResult, UserRecord,
};
use crate::sql;

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    db: pools::Pools,
}

/// The two pools, reachable only through [`Pools::read`] and
/// [`Pools::write`], so that no statement can pick a connection by other
/// means: every write queues on the one writer, and a write sent to the
/// read pool fails (its connections are `query_only`).
mod pools {
    use sqlx::SqlitePool;

    pub(super) struct Pools {
        /// Reads, several at once (WAL lets them run beside the writer).
        read: SqlitePool,
        /// Every write, on one connection: writers queue here, in order,
        /// rather than in SQLite's busy handler, which sleeps and retries
        /// with growing pauses (up to 100 ms each) while another connection
        /// holds the lock.
        write: SqlitePool,
    }

    impl Pools {
        pub(super) fn new(read: SqlitePool, write: SqlitePool) -> Pools {
            Pools { read, write }
        }

        /// For statements that only read.
        pub(super) fn read(&self) -> &SqlitePool {
            &self.read
        }

        /// For every statement or transaction that writes.
        pub(super) fn write(&self) -> &SqlitePool {
            &self.write
        }

        pub(super) fn both(&self) -> [&SqlitePool; 2] {
            [&self.read, &self.write]
        }
    }
}

impl SqliteStore {
    /// Opens (creating the file if needed) and settles the schema as
    /// `on_open` allows; returns where the schema stood.
    pub(crate) async fn open(url: &str, on_open: OnOpen) -> StoreResult<(Self, SchemaState)> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            // WAL lets readers proceed while the one writer commits.
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a write acknowledged to a client (a registration, a
            // revocation, a spent refresh token) survives power loss too, not
            // only a process crash. The cost is one fsync per commit.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        let state = schema_state(&writer).await?;
        if let Err(e) = settle_schema(
            &state,
            on_open,
            create_schema(&writer),
            MIGRATOR.run(&writer),
        )
        .await
        {
            writer.close().await;
            return Err(e);
        }
        // Connections that refuse writes (`query_only`): a write sent to
        // this pool by mistake fails at once rather than contending with
        // the writer for the lock. The file is opened as before, read-write,
        // so readers share the WAL index as they always did.
        let pool = match SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.pragma("query_only", "ON"))
            .await
        {
            Ok(pool) => pool,
            Err(e) => {
                writer.close().await;
                return Err(e.into());
            }
        };
        Ok((
            SqliteStore {
                db: pools::Pools::new(pool, writer),
            },
            state,
        ))
    }
}

/// Every migration in one transaction (each one a savepoint in it), so
/// that a first start either creates the whole schema or leaves nothing.
async fn create_schema(pool: &SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut conn = pool.acquire().await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    MIGRATOR.run(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Reads `_sqlx_migrations` without creating it.
async fn schema_state(pool: &SqlitePool) -> StoreResult<SchemaState> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(pool)
    .await?;
    if !exists {
        return Ok(SchemaState::Empty);
    }
    let applied: Vec<(i64, bool, Vec<u8>)> = sqlx::query_as(sql::MIGRATION_RECORDS)
        .fetch_all(pool)
        .await?;
    let applied: Vec<AppliedMigration> = applied
        .into_iter()
        .map(|(version, success, checksum)| AppliedMigration {
            version,
            success,
            checksum,
        })
        .collect();
    Ok(SchemaState::of(&applied, &MIGRATOR))
}

/// Maps a UNIQUE violation to [`StoreError::Conflict`] naming the column.
fn unique(e: sqlx::Error, columns: &[&'static str]) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        let message = db.message();
        let column = columns
            .iter()
            .find(|c| message.contains(&format!(".{c}")))
            .or(columns.first())
            .copied()
            .unwrap_or("id");
        return StoreError::Conflict(column);
    }
    e.into()
}

crate::sign_in::impl_sign_in_store!(SqliteStore);
crate::factors::impl_factor_store!(SqliteStore);
crate::device::impl_device_store!(SqliteStore);
crate::jtis::impl_jti_store!(SqliteStore);

impl SqliteStore {
    async fn read_conn(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        Ok(self.db.read().acquire().await?)
    }

    async fn write_conn(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        Ok(self.db.write().acquire().await?)
    }

    /// One pruning batch: `sql` deletes at most `limit` (its second
    /// parameter) rows older than `before` (its first); returns how many.
    async fn delete_batch(&self, sql: &str, before: i64, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql)
            .bind(before)
            .bind(limit)
            .execute(self.db.write())
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn schema_is_current(&self) -> StoreResult<bool> {
        let applied: Vec<i64> = sqlx::query_scalar(sql::APPLIED_MIGRATIONS)
            .fetch_all(self.db.read())
            .await?;
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        Ok(applied == known)
    }

    async fn close(&self) {
        for pool in self.db.both() {
            pool.close().await;
        }
    }

    fn pool_stats(&self) -> PoolStats {
        let pools = self.db.both();
        PoolStats {
            size: pools.iter().map(|p| p.size()).sum(),
            idle: pools.iter().map(|p| p.num_idle() as u32).sum(),
            max: pools
                .iter()
                .map(|p| p.options().get_max_connections())
                .sum(),
            reachable: true,
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(sql::PING).execute(self.db.read()).await?;
        Ok(())
    }

    async fn insert_user(&self, u: &UserRecord) -> StoreResult<()> {
        sqlx::query(sql::INSERT_USER)
            .bind(&u.id)
            .bind(&u.username)
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(u.disabled)
            .bind(u.created_at)
            .bind(u.updated_at)
            .execute(self.db.write())
            .await
            .map_err(|e| unique(e, &["username", "email"]))?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as(sql::USER_BY_USERNAME)
            .bind(username)
            .fetch_optional(self.db.read())
            .await?)
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as(sql::USER_BY_ID)
            .bind(id)
            .fetch_optional(self.db.read())
            .await?)
    }

    async fn list_users(&self, after: &str, limit: i64) -> StoreResult<Vec<UserRecord>> {
        Ok(sqlx::query_as(sql::LIST_USERS)
            .bind(after)
            .bind(limit)
            .fetch_all(self.db.read())
            .await?)
    }

    async fn set_user_disabled(&self, id: &str, disabled: bool, now: i64) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_USER_DISABLED)
            .bind(disabled)
            .bind(now)
            .bind(id)
            .execute(self.db.write())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_client(&self, c: &ClientRecord) -> StoreResult<()> {
        sqlx::query(sql::INSERT_CLIENT)
            .bind(&c.client_id)
            .bind(&c.secret_hash)
            .bind(&c.grant_types)
            .bind(&c.scopes)
            .bind(&c.alg)
            .bind(&c.audience)
            .bind(c.disabled)
            .bind(c.created_at)
            .bind(c.access_token_ttl_secs)
            .bind(c.refresh_token_ttl_secs)
            .bind(&c.redirect_uris)
            .bind(&c.post_logout_redirect_uris)
            .bind(c.first_party)
            .bind(c.require_mfa)
            .bind(&c.token_endpoint_auth_method)
            .bind(&c.jwks)
            .bind(&c.jwks_uri)
            .bind(c.require_dpop)
            .bind(&c.exchange_audiences)
            .execute(self.db.write())
            .await
            .map_err(|e| unique(e, &["client_id"]))?;
        Ok(())
    }

    async fn client_by_id(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        Ok(sqlx::query_as(sql::CLIENT_BY_ID)
            .bind(client_id)
            .fetch_optional(self.db.read())
            .await?)
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        Ok(sqlx::query_as(sql::LIST_CLIENTS)
            .fetch_all(self.db.read())
            .await?)
    }

    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &[u8],
        previous_expires_at: i64,
    ) -> StoreResult<()> {
        let done = sqlx::query(sql::ROTATE_CLIENT_SECRET)
            .bind(previous_expires_at)
            .bind(new_hash)
            .bind(client_id)
            .execute(self.db.write())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_client_disabled(&self, client_id: &str, disabled: bool) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_CLIENT_DISABLED)
            .bind(disabled)
            .bind(client_id)
            .execute(self.db.write())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_client_require_mfa(&self, client_id: &str, required: bool) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_CLIENT_REQUIRE_MFA)
            .bind(required)
            .bind(client_id)
            .execute(self.db.write())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        Ok(sqlx::query_as(sql::LIST_KEYS)
            .fetch_all(self.db.read())
            .await?)
    }
    async fn schedule_key(
        &self,
        key: &KeyRecord,
        retire: Option<&Retirement>,
        unless_activating_after: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.db.write().begin().await?;
        // The conditional INSERT is the first statement: it takes SQLite's
        // single write lock, so the check and the insert cannot interleave
        // with another scheduler.
        let inserted = sqlx::query(sql::SCHEDULE_KEY)
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.public_jwk)
            .bind(&key.private_key)
            .bind(key.created_at)
            .bind(key.activates_at)
            .bind(key.retires_at)
            .bind(key.removes_at)
            .bind(unless_activating_after.is_some())
            .bind(&key.alg)
            .bind(unless_activating_after.unwrap_or(i64::MIN))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique(e, &["kid"]))?
            .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        if let Some(r) = retire {
            sqlx::query(sql::RETIRE_KEY)
                .bind(r.retires_at)
                .bind(r.removes_at)
                .bind(&r.kid)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn set_key_times(
        &self,
        kid: &str,
        retires_at: i64,
        removes_at: i64,
        destroy_private: bool,
    ) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_KEY_TIMES)
            .bind(retires_at)
            .bind(removes_at)
            .bind(destroy_private)
            .bind(kid)
            .execute(self.db.write())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn destroy_removed_keys(&self, now: i64) -> StoreResult<u64> {
        Ok(sqlx::query(sql::DESTROY_REMOVED_KEYS)
            .bind(now)
            .execute(self.db.write())
            .await?
            .rows_affected())
    }

    async fn rewrap_keys(
        &self,
        sealed: &[(String, Vec<u8>)],
        totp: &[(String, Vec<u8>)],
    ) -> StoreResult<()> {
        let mut tx = self.db.write().begin().await?;
        for (kid, private_key) in sealed {
            let done = sqlx::query(sql::REWRAP_KEY)
                .bind(private_key)
                .bind(kid)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict("kid"));
            }
        }
        for (user_id, secret) in totp {
            let done = sqlx::query(sql::REWRAP_TOTP)
                .bind(secret)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict("totp"));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: &str,
    ) -> StoreResult<()> {
        sqlx::query(sql::INSERT_AUDIT)
            .bind(at)
            .bind(actor)
            .bind(action)
            .bind(target)
            .bind(detail)
            .execute(self.db.write())
            .await?;
        Ok(())
    }

    async fn insert_audit_batch(&self, events: &[NewAudit]) -> StoreResult<()> {
        let mut tx = self.db.write().begin().await?;
        for e in events {
            sqlx::query(sql::INSERT_AUDIT)
                .bind(e.at)
                .bind(&e.actor)
                .bind(&e.action)
                .bind(&e.target)
                .bind(&e.detail)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let mut rows: Vec<AuditRecord> = sqlx::query_as(sql::RECENT_AUDIT)
            .bind(limit)
            .fetch_all(self.db.read())
            .await?;
        rows.reverse();
        Ok(rows)
    }

    async fn throttle_get(&self, key: &str) -> StoreResult<Option<ThrottleRecord>> {
        Ok(sqlx::query_as(sql::THROTTLE_GET)
            .bind(key)
            .fetch_optional(self.db.read())
            .await?)
    }

    async fn throttle_fail(
        &self,
        key: &str,
        now: i64,
        rule: ThrottleRule,
    ) -> StoreResult<Option<ThrottleRecord>> {
        // One statement, so concurrent failures on any node are all counted.
        Ok(sqlx::query_as(THROTTLE_FAIL)
            .bind(key)
            .bind(now)
            .bind(rule.window)
            .bind(rule.limit)
            .bind(rule.lockout)
            .fetch_optional(self.db.write())
            .await?)
    }

    async fn throttle_clear(&self, key: &str) -> StoreResult<()> {
        sqlx::query(sql::THROTTLE_CLEAR)
            .bind(key)
            .execute(self.db.write())
            .await?;
        Ok(())
    }

    async fn throttle_prune(&self, window_before: i64, now: i64, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql::THROTTLE_PRUNE)
            .bind(window_before)
            .bind(now)
            .bind(limit)
            .execute(self.db.write())
            .await?;
        Ok(done.rows_affected())
    }

    async fn prune_revocations(&self, before: i64, limit: i64) -> StoreResult<u64> {
        self.delete_batch(
            "DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations \
             WHERE expires_at < ?1 ORDER BY seq LIMIT ?2)",
            before,
            limit,
        )
        .await
    }

    async fn prune_refresh_tokens(&self, before: i64, limit: i64) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM refresh_tokens WHERE hash IN (SELECT t.hash FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family_id WHERE ({DEAD_FAMILY}) LIMIT ?2)"
        );
        self.delete_batch(&sql, before, limit).await
    }

    async fn prune_refresh_families(&self, before: i64, limit: i64) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM refresh_families WHERE id IN (SELECT f.id FROM refresh_families f \
             WHERE ({DEAD_FAMILY}) \
               AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id) \
             LIMIT ?2)"
        );
        self.delete_batch(&sql, before, limit).await
    }

    async fn prune_audit(&self, before: i64, limit: i64) -> StoreResult<u64> {
        self.delete_batch(
            "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events \
             WHERE at < ?1 ORDER BY id LIMIT ?2)",
            before,
            limit,
        )
        .await
    }

    async fn create_family(
        &self,
        family: &FamilyRecord,
        first: Option<&RefreshRecord>,
        password_hash: Option<&str>,
    ) -> StoreResult<i64> {
        // Every write goes through the one writer connection, so this and a
        // revocation of the user's families are ordered by the writer.
        let mut tx = self.db.write().begin().await?;
        let started: Option<i64> = sqlx::query_scalar(
            "INSERT INTO refresh_families (id, user_id, client_id, scope, created_at, expires_at, revoked_at, amr, acr, dpop_jkt)
             SELECT ?1, u.id, ?3, ?4, max(?5, COALESCE(u.sessions_revoked_at, ?5)), ?6, ?7, ?9, ?10, ?11 FROM users u \
             WHERE u.id = ?2 AND NOT u.disabled AND (?8 IS NULL OR u.password_hash = ?8) \
             RETURNING created_at",
        )
        .bind(&family.id)
        .bind(&family.user_id)
        .bind(&family.client_id)
        .bind(&family.scope)
        .bind(family.created_at)
        .bind(family.expires_at)
        .bind(family.revoked_at)
        .bind(password_hash)
        .bind(&family.amr)
        .bind(&family.acr)
        .bind(&family.dpop_jkt)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(started) = started else {
            return Err(StoreError::NotFound);
        };
        if let Some(first) = first {
            let first = RefreshRecord {
                issued_at: started,
                ..first.clone()
            };
            insert_refresh(&mut tx, &first).await?;
        }
        tx.commit().await?;
        Ok(started)
    }

    async fn refresh_token(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<(RefreshRecord, FamilyRecord)>> {
        let token: Option<RefreshRecord> = sqlx::query_as(sql::REFRESH_TOKEN_BY_HASH)
            .bind(hash)
            .fetch_optional(self.db.read())
            .await?;
        let Some(token) = token else { return Ok(None) };
        let family: FamilyRecord = sqlx::query_as(sql::FAMILY_BY_ID)
            .bind(&token.family_id)
            .fetch_one(self.db.read())
            .await?;
        Ok(Some((token, family)))
    }

    async fn spend_refresh_token(
        &self,
        hash: &[u8],
        successor: &RefreshRecord,
        now: i64,
    ) -> StoreResult<SpendOutcome> {
        let mut tx = self.db.write().begin().await?;
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET spent_at = ?1, successor_hash = ?2
             WHERE hash = ?3 AND spent_at IS NULL AND expires_at > ?1
               AND EXISTS (SELECT 1 FROM refresh_families f WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NULL)",
        )
        .bind(now)
        .bind(&successor.hash)
        .bind(hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 1 {
            insert_refresh(&mut tx, successor).await?;
            tx.commit().await?;
            return Ok(SpendOutcome::Spent);
        }
        let current: Option<RefreshRecord> = sqlx::query_as(sql::REFRESH_TOKEN_BY_HASH)
            .bind(hash)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        // Unspent yet not updated: its family was revoked meanwhile.
        Ok(match current {
            Some(row) if row.spent_at.is_some() => SpendOutcome::AlreadySpent(row),
            _ => SpendOutcome::NotFound,
        })
    }

    async fn revoke_families(
        &self,
        which: Families<'_>,
        revocation: &NewRevocation,
        now: i64,
    ) -> StoreResult<u64> {
        // One writer: no spend or new family interleaves with this
        // transaction, so what it reads is what it revokes.
        let mut tx = self.db.write().begin().await?;
        let revoked = match which {
            Families::One(id) => sqlx::query(sql::REVOKE_FAMILY)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            Families::OfUser(of) | Families::OfDisabledUser(of) => {
                let disable = matches!(which, Families::OfDisabledUser(_));
                sqlx::query(sql::MARK_USER_SESSIONS_REVOKED)
                    .bind(now)
                    .bind(of.user_id)
                    .bind(disable)
                    .bind(of.new_password_hash)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(SESSION_ENTRIES)
                    .bind(of.user_id)
                    .bind(of.active_since)
                    .bind(revocation.expires_at)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::REVOKE_USER_FAMILIES)
                    .bind(now)
                    .bind(of.user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
        };
        insert_revocation(&mut tx, revocation, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn insert_revocation(&self, revocation: &NewRevocation, now: i64) -> StoreResult<i64> {
        let mut tx = self.db.write().begin().await?;
        let seq = insert_revocation(&mut tx, revocation, now).await?;
        tx.commit().await?;
        Ok(seq)
    }

    async fn is_revoked(
        &self,
        jti: &str,
        sid: Option<&str>,
        sub: &str,
        iat: i64,
        now: i64,
    ) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(sql::IS_REVOKED)
            .bind(now)
            .bind(jti)
            .bind(sid)
            .bind(sub)
            .bind(iat)
            .fetch_one(self.db.read())
            .await?)
    }

    async fn revocations_since(
        &self,
        after: i64,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<RevocationRecord>> {
        Ok(sqlx::query_as(sql::REVOCATIONS_SINCE)
            .bind(after)
            .bind(now)
            .bind(limit)
            .fetch_all(self.db.read())
            .await?)
    }
}

async fn insert_refresh(tx: &mut sqlx::SqliteConnection, r: &RefreshRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (hash, family_id, scope, issued_at, expires_at, spent_at, successor_hash)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.hash)
    .bind(&r.family_id)
    .bind(&r.scope)
    .bind(r.issued_at)
    .bind(r.expires_at)
    .bind(r.spent_at)
    .bind(&r.successor_hash)
    .execute(tx)
    .await?;
    Ok(())
}

async fn insert_revocation(
    tx: &mut sqlx::SqliteConnection,
    r: &NewRevocation,
    now: i64,
) -> StoreResult<i64> {
    let seq: i64 = sqlx::query_scalar(sql::INSERT_REVOCATION)
        .bind(r.kind.as_str())
        .bind(&r.value)
        .bind(r.not_before)
        .bind(r.expires_at)
        .bind(now)
        .fetch_one(tx)
        .await?;
    Ok(seq)
}

/// A `session` deny-list entry for each live family of user ?1 that
/// issued a token at or after ?2 (see `UserFamilies`), expiring at ?3.
const SESSION_ENTRIES: &str = "\
INSERT INTO revocations (kind, value, not_before, expires_at, created_at) \
SELECT 'session', f.id, NULL, ?3, ?4 FROM refresh_families f \
WHERE f.user_id = ?1 AND f.revoked_at IS NULL \
  AND (f.created_at >= ?2 \
       OR EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id AND t.issued_at >= ?2)) \
ORDER BY f.id";

/// A refresh family (`f`) that can no longer matter at `?1`: revoked
/// before it, or every token of it (none left counts, for a family
/// created before it) expired before it.
/// `?1` already lies past every access token's lifetime (see `prune`).
const DEAD_FAMILY: &str = "(f.revoked_at IS NOT NULL AND f.revoked_at < ?1) \
    OR f.expires_at < ?1 \
    OR (f.created_at < ?1 \
        AND NOT EXISTS (SELECT 1 FROM refresh_tokens u WHERE u.family_id = f.id AND u.expires_at >= ?1))";

/// See `Store::throttle_fail`.
const THROTTLE_FAIL: &str = "\
INSERT INTO login_throttle (key, failures, window_start, locked_until) \
VALUES (?1, CASE WHEN 1 >= ?4 THEN 0 ELSE 1 END, ?2, CASE WHEN 1 >= ?4 THEN ?2 + ?5 ELSE 0 END) \
ON CONFLICT (key) DO UPDATE SET \
    failures = CASE \
        WHEN login_throttle.locked_until > ?2 THEN login_throttle.failures \
        WHEN (CASE WHEN login_throttle.window_start <= ?2 - ?3 THEN 1 ELSE login_throttle.failures + 1 END) >= ?4 THEN 0 \
        ELSE (CASE WHEN login_throttle.window_start <= ?2 - ?3 THEN 1 ELSE login_throttle.failures + 1 END) \
    END, \
    window_start = CASE \
        WHEN login_throttle.locked_until > ?2 THEN login_throttle.window_start \
        WHEN login_throttle.window_start <= ?2 - ?3 OR login_throttle.failures + 1 >= ?4 THEN ?2 \
        ELSE login_throttle.window_start \
    END, \
    locked_until = CASE \
        WHEN login_throttle.locked_until > ?2 THEN login_throttle.locked_until \
        WHEN (CASE WHEN login_throttle.window_start <= ?2 - ?3 THEN 1 ELSE login_throttle.failures + 1 END) >= ?4 THEN ?2 + ?5 \
        ELSE login_throttle.locked_until \
    END \
WHERE login_throttle.locked_until <= ?2 \
RETURNING failures, window_start, locked_until";

#[cfg(test)]
mod tests {
    use super::*;

    /// The read pool refuses writes, so a statement sent to the wrong pool
    /// fails in every test that runs it instead of racing the writer.
    #[tokio::test]
    async fn the_read_pool_refuses_writes_and_the_write_pool_takes_them() {
        let dir = std::env::temp_dir().join(format!(
            "sigil-store-pools-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let (store, _) = SqliteStore::open(&url, OnOpen::CreateIfEmpty)
            .await
            .unwrap();
        let write = "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ('k', 1, 0, 0)";
        let refused = sqlx::query(write).execute(store.db.read()).await;
        assert!(refused.is_err(), "a write through read() must fail");
        sqlx::query(write).execute(store.db.write()).await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_throttle")
            .fetch_one(store.db.read())
            .await
            .unwrap();
        assert_eq!(count, 1);
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
