//! The production store: every Sigil node shares one PostgreSQL database.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};
use tokio::sync::watch;

use super::PoolSettings;
use super::pg_health::{Gated, Health};
use super::{AppliedMigration, OnOpen, SchemaState, ThrottleRecord, ThrottleRule, settle_schema};
use super::{
    AuditRecord, ClientRecord, Families, FamilyRecord, KeyRecord, NewAudit, NewRevocation,
    PoolStats, RefreshRecord, Retirement, RevocationRecord, SpendOutcome, Store, StoreError,
    StoreResult, UserRecord,
};
use crate::sql;

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The NOTIFY channel on which nodes tell each other shared state changed.
const CHANGES_CHANNEL: &str = "sigil_changes";
/// The payload on [`CHANGES_CHANNEL`] that says a client changed.
const CLIENTS_CHANGED: &str = "clients";
/// Advisory-lock key serialising key scheduling across nodes.
const KEY_SCHEDULE_LOCK: i64 = 0x5161_6c00_0002;
/// Advisory-lock key serialising revocation inserts (see `insert_revocation`).
const REVOCATION_LOCK: i64 = 0x5161_6c00_0001;
/// Held by a first start while it creates the schema, until its commit.
const CREATE_SCHEMA_LOCK: i64 = 0x5161_6c00_0003;

pub struct PostgresStore {
    /// The pool behind the health gate: every statement's connection comes
    /// from [`Gated::conn`], which fails fast while the server is down.
    db: Gated,
    /// Bumped on every NOTIFY from any node, and after the listening
    /// connection is re-established (notifications may have been missed).
    changes: watch::Receiver<u64>,
    /// Bumped on every client-change NOTIFY, and after the listening
    /// connection is re-established.
    client_changes: watch::Receiver<u64>,
}

impl PostgresStore {
    /// Connects and settles the schema as `on_open` allows; returns where
    /// the schema stood.
    pub(crate) async fn open(
        url: &str,
        settings: &PoolSettings,
        on_open: OnOpen,
    ) -> StoreResult<(Self, SchemaState)> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad Postgres URL: {e}")))?;
        if !settings.statement_timeout.is_zero() {
            let millis = settings.statement_timeout.as_millis().to_string();
            options = options.options([("statement_timeout", millis.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            // Bounded waits: a saturated pool or a dead server becomes an
            // error the caller can turn into a 503, never a hang.
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        let state = schema_state(&pool).await?;
        if let Err(e) =
            settle_schema(&state, on_open, create_schema(&pool), MIGRATOR.run(&pool)).await
        {
            pool.close().await;
            return Err(e);
        }
        let (tx, changes) = watch::channel(0u64);
        let (clients_tx, client_changes) = watch::channel(0u64);
        // Its own connection, outside the pool: the listener holds it for
        // good and must not take a slot from the queries.
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        tokio::spawn(listen(listener, tx, clients_tx));
        let health = Health::new(settings.outage_wait);
        health.spawn_probe(pool.clone(), url);
        Ok((
            PostgresStore {
                db: Gated::new(pool, health),
                changes,
                client_changes,
            },
            state,
        ))
    }
}

/// Every migration in one transaction (each one a savepoint in it), so
/// that a first start either creates the whole schema or leaves nothing.
/// Nodes starting together on an empty database queue on a lock held to
/// the commit (sqlx's own migration lock is released before it): the
/// second then finds the schema complete and applies nothing.
async fn create_schema(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut conn = pool.acquire().await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CREATE_SCHEMA_LOCK)
        .execute(&mut *tx)
        .await?;
    MIGRATOR.run(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Reads `_sqlx_migrations` (in the current schema) without creating it.
async fn schema_state(pool: &PgPool) -> StoreResult<SchemaState> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
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

/// Forwards notifications to the watch channels until every receiver is
/// gone: client changes to `clients`, everything else to `others`.
/// `try_recv` reconnects by itself after a lost connection and then yields
/// `None`, which is signalled on both: whatever was sent meanwhile is lost,
/// so readers must re-read.
async fn listen(mut listener: PgListener, others: watch::Sender<u64>, clients: watch::Sender<u64>) {
    let bump = |tx: &watch::Sender<u64>| tx.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let event = tokio::select! {
            event = listener.try_recv() => event,
            _ = others.closed() => return,
        };
        match event {
            Ok(Some(n)) if n.payload() == CLIENTS_CHANGED => bump(&clients),
            Ok(Some(_)) => bump(&others),
            Ok(None) => {
                bump(&others);
                bump(&clients);
            }
            Err(e) => {
                tracing::warn!(error = %e, "lost the change-notification connection; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Maps a unique violation to [`StoreError::Conflict`] naming the column,
/// read from Postgres' default constraint name `<table>_<column>_key`.
fn unique(e: sqlx::Error, columns: &[&'static str]) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        let constraint = db.constraint().unwrap_or_default();
        let column = columns
            .iter()
            .find(|c| constraint.contains(&format!("_{c}_")))
            .or(columns.first())
            .copied()
            .unwrap_or("id");
        return StoreError::Conflict(column);
    }
    e.into()
}

crate::sign_in::impl_sign_in_store!(PostgresStore);
crate::factors::impl_factor_store!(PostgresStore);
crate::device::impl_device_store!(PostgresStore);
crate::jtis::impl_jti_store!(PostgresStore);

impl PostgresStore {
    /// Every connection, read or write, passes the health gate.
    async fn read_conn(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.db.conn().await
    }

    async fn write_conn(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.db.conn().await
    }
}

impl PostgresStore {
    /// One pruning batch: `sql` deletes at most `limit` (its second
    /// parameter) rows older than `before` (its first); returns how many.
    async fn delete_batch(&self, sql: &str, before: i64, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql)
            .bind(before)
            .bind(limit)
            .execute(&mut *self.db.conn().await?)
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.changes.clone())
    }

    fn client_changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.client_changes.clone())
    }

    async fn schema_is_current(&self) -> StoreResult<bool> {
        let applied: Vec<i64> = sqlx::query_scalar(sql::APPLIED_MIGRATIONS)
            .fetch_all(&mut *self.db.conn().await?)
            .await?;
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        Ok(applied == known)
    }

    async fn close(&self) {
        self.db.close().await;
    }

    fn pool_stats(&self) -> PoolStats {
        let (size, idle, max) = self.db.occupancy();
        PoolStats {
            size,
            idle,
            max,
            reachable: self.db.is_up(),
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(sql::PING)
            .execute(&mut *self.db.conn().await?)
            .await?;
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
            .execute(&mut *self.db.conn().await?)
            .await
            .map_err(|e| unique(e, &["username", "email"]))?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as(sql::USER_BY_USERNAME)
            .bind(username)
            .fetch_optional(&mut *self.db.conn().await?)
            .await?)
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as(sql::USER_BY_ID)
            .bind(id)
            .fetch_optional(&mut *self.db.conn().await?)
            .await?)
    }

    async fn list_users(&self, after: &str, limit: i64) -> StoreResult<Vec<UserRecord>> {
        Ok(sqlx::query_as(sql::LIST_USERS)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *self.db.conn().await?)
            .await?)
    }

    async fn set_user_disabled(&self, id: &str, disabled: bool, now: i64) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_USER_DISABLED)
            .bind(disabled)
            .bind(now)
            .bind(id)
            .execute(&mut *self.db.conn().await?)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_client(&self, c: &ClientRecord) -> StoreResult<()> {
        let mut conn = self.db.conn().await?;
        let mut tx = conn.begin().await?;
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
            .execute(&mut *tx)
            .await
            .map_err(|e| unique(e, &["client_id"]))?;
        // Every node lists the clients' scopes in its metadata.
        notify(&mut tx, CLIENTS_CHANGED).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn client_by_id(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        Ok(sqlx::query_as(sql::CLIENT_BY_ID)
            .bind(client_id)
            .fetch_optional(&mut *self.db.conn().await?)
            .await?)
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        Ok(sqlx::query_as(sql::LIST_CLIENTS)
            .fetch_all(&mut *self.db.conn().await?)
            .await?)
    }

    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &[u8],
        previous_expires_at: i64,
    ) -> StoreResult<()> {
        let mut conn = self.db.conn().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(sql::ROTATE_CLIENT_SECRET)
            .bind(previous_expires_at)
            .bind(new_hash)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // Every node holds clients in memory (`client_cache`).
        notify(&mut tx, CLIENTS_CHANGED).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_client_disabled(&self, client_id: &str, disabled: bool) -> StoreResult<()> {
        let mut conn = self.db.conn().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(sql::SET_CLIENT_DISABLED)
            .bind(disabled)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        notify(&mut tx, CLIENTS_CHANGED).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_client_require_mfa(&self, client_id: &str, required: bool) -> StoreResult<()> {
        let mut conn = self.db.conn().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(sql::SET_CLIENT_REQUIRE_MFA)
            .bind(required)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        notify(&mut tx, CLIENTS_CHANGED).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        Ok(sqlx::query_as(sql::LIST_KEYS)
            .fetch_all(&mut *self.db.conn().await?)
            .await?)
    }
    async fn schedule_key(
        &self,
        key: &KeyRecord,
        retire: Option<&Retirement>,
        unless_activating_after: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut conn = self.db.conn().await?;
        let mut tx = conn.begin().await?;
        // One scheduler at a time across every node: the check below and the
        // insert cannot interleave with another node's.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_SCHEDULE_LOCK)
            .execute(&mut *tx)
            .await?;
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
        notify(&mut tx, "keys").await?;
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
            .execute(&mut *self.db.conn().await?)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("SELECT pg_notify($1, 'keys')")
            .bind(CHANGES_CHANNEL)
            .execute(&mut *self.db.conn().await?)
            .await?;
        Ok(())
    }

    async fn destroy_removed_keys(&self, now: i64) -> StoreResult<u64> {
        Ok(sqlx::query(sql::DESTROY_REMOVED_KEYS)
            .bind(now)
            .execute(&mut *self.db.conn().await?)
            .await?
            .rows_affected())
    }

    async fn rewrap_keys(
        &self,
        sealed: &[(String, Vec<u8>)],
        totp: &[(String, Vec<u8>)],
    ) -> StoreResult<()> {
        let mut conn = self.db.conn().await?;
        let mut tx = conn.begin().await?;
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
            .execute(&mut *self.db.conn().await?)
            .await?;
        Ok(())
    }

    async fn insert_audit_batch(&self, events: &[NewAudit]) -> StoreResult<()> {
        // One statement, one round trip, whatever the batch size: the
        // writer keeps up with a busy node instead of falling behind.
        let at: Vec<i64> = events.iter().map(|e| e.at).collect();
        let actor: Vec<&str> = events.iter().map(|e| e.actor.as_str()).collect();
        let action: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        let target: Vec<Option<&str>> = events.iter().map(|e| e.target.as_deref()).collect();
        let detail: Vec<&str> = events.iter().map(|e| e.detail.as_str()).collect();
        sqlx::query(
            "INSERT INTO audit_events (at, actor, action, target, detail)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[])",
        )
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(&mut *self.db.conn().await?)
        .await?;
        Ok(())
    }

    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let mut rows: Vec<AuditRecord> = sqlx::query_as(sql::RECENT_AUDIT)
            .bind(limit)
            .fetch_all(&mut *self.db.conn().await?)
            .await?;
        rows.reverse();
        Ok(rows)
    }

    async fn throttle_get(&self, key: &str) -> StoreResult<Option<ThrottleRecord>> {
        Ok(sqlx::query_as(sql::THROTTLE_GET)
            .bind(key)
            .fetch_optional(&mut *self.db.conn().await?)
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
            .fetch_optional(&mut *self.db.conn().await?)
            .await?)
    }

    async fn throttle_clear(&self, key: &str) -> StoreResult<()> {
        sqlx::query(sql::THROTTLE_CLEAR)
            .bind(key)
            .execute(&mut *self.db.conn().await?)
            .await?;
        Ok(())
    }

    async fn throttle_prune(&self, window_before: i64, now: i64, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql::THROTTLE_PRUNE)
            .bind(window_before)
            .bind(now)
            .bind(limit)
            .execute(&mut *self.db.conn().await?)
            .await?;
        Ok(done.rows_affected())
    }

    async fn prune_revocations(&self, before: i64, limit: i64) -> StoreResult<u64> {
        self.delete_batch(
            "DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations \
             WHERE expires_at < $1 ORDER BY seq LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    async fn prune_refresh_tokens(&self, before: i64, limit: i64) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM refresh_tokens WHERE hash IN (SELECT t.hash FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family_id WHERE ({DEAD_FAMILY}) LIMIT $2)"
        );
        self.delete_batch(&sql, before, limit).await
    }

    async fn prune_refresh_families(&self, before: i64, limit: i64) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM refresh_families WHERE id IN (SELECT f.id FROM refresh_families f \
             WHERE ({DEAD_FAMILY}) \
               AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id) \
             LIMIT $2)"
        );
        self.delete_batch(&sql, before, limit).await
    }

    async fn prune_audit(&self, before: i64, limit: i64) -> StoreResult<u64> {
        self.delete_batch(
            "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events \
             WHERE at < $1 ORDER BY id LIMIT $2)",
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
        // One statement, so one round trip and its own transaction. The
        // user row is share-locked, which orders this against a revocation
        // of the user's families (it updates that row first): either this
        // commits first and the revocation sees the family, or this waits,
        // re-reads the user and creates a live family (or none, if the
        // user was disabled).
        let started: Option<i64> = sqlx::query_scalar(CREATE_FAMILY)
            .bind(&family.id)
            .bind(&family.user_id)
            .bind(&family.client_id)
            .bind(&family.scope)
            .bind(family.created_at)
            .bind(family.expires_at)
            .bind(family.revoked_at)
            .bind(first.is_some())
            .bind(first.map(|t| t.hash.as_slice()))
            .bind(first.map(|t| t.scope.as_str()))
            .bind(first.map(|t| t.expires_at))
            .bind(password_hash)
            .bind(&family.amr)
            .bind(&family.acr)
            .bind(&family.dpop_jkt)
            .fetch_optional(&mut *self.db.conn().await?)
            .await?;
        started.ok_or(StoreError::NotFound)
    }

    async fn refresh_token(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<(RefreshRecord, FamilyRecord)>> {
        let token: Option<RefreshRecord> = sqlx::query_as(sql::REFRESH_TOKEN_BY_HASH)
            .bind(hash)
            .fetch_optional(&mut *self.db.conn().await?)
            .await?;
        let Some(token) = token else { return Ok(None) };
        let family: FamilyRecord = sqlx::query_as(sql::FAMILY_BY_ID)
            .bind(&token.family_id)
            .fetch_one(&mut *self.db.conn().await?)
            .await?;
        Ok(Some((token, family)))
    }

    async fn refresh_session(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<(RefreshRecord, FamilyRecord, Option<UserRecord>)>> {
        // One round trip: the token, its family and the family's user.
        let row = sqlx::query(REFRESH_SESSION)
            .bind(hash)
            .fetch_optional(&mut *self.db.conn().await?)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let token = RefreshRecord {
            hash: row.try_get("hash")?,
            family_id: row.try_get("family_id")?,
            scope: row.try_get("scope")?,
            issued_at: row.try_get("issued_at")?,
            expires_at: row.try_get("expires_at")?,
            spent_at: row.try_get("spent_at")?,
            successor_hash: row.try_get("successor_hash")?,
        };
        let family = FamilyRecord {
            id: row.try_get("f_id")?,
            user_id: row.try_get("f_user_id")?,
            client_id: row.try_get("f_client_id")?,
            scope: row.try_get("f_scope")?,
            created_at: row.try_get("f_created_at")?,
            expires_at: row.try_get("f_expires_at")?,
            revoked_at: row.try_get("f_revoked_at")?,
            amr: row.try_get("f_amr")?,
            acr: row.try_get("f_acr")?,
            dpop_jkt: row.try_get("f_dpop_jkt")?,
        };
        let user = match row.try_get::<Option<String>, _>("u_id")? {
            None => None,
            Some(id) => Some(UserRecord {
                id,
                username: row.try_get("u_username")?,
                email: row.try_get("u_email")?,
                password_hash: row.try_get("u_password_hash")?,
                disabled: row.try_get("u_disabled")?,
                created_at: row.try_get("u_created_at")?,
                updated_at: row.try_get("u_updated_at")?,
                sessions_revoked_at: row.try_get("u_sessions_revoked_at")?,
            }),
        };
        Ok(Some((token, family, user)))
    }

    async fn spend_refresh_token(
        &self,
        hash: &[u8],
        successor: &RefreshRecord,
        now: i64,
    ) -> StoreResult<SpendOutcome> {
        // One statement (one round trip, its own transaction): the
        // conditional spend, and the successor's insert only if it spent.
        let inserted: i64 = sqlx::query_scalar(SPEND_REFRESH)
            .bind(now)
            .bind(&successor.hash)
            .bind(hash)
            .bind(&successor.family_id)
            .bind(&successor.scope)
            .bind(successor.issued_at)
            .bind(successor.expires_at)
            .bind(successor.spent_at)
            .bind(&successor.successor_hash)
            .fetch_one(&mut *self.db.conn().await?)
            .await?;
        if inserted == 1 {
            return Ok(SpendOutcome::Spent);
        }
        // A new statement sees what the winner of a race committed.
        let current: Option<RefreshRecord> = sqlx::query_as(sql::REFRESH_TOKEN_BY_HASH)
            .bind(hash)
            .fetch_optional(&mut *self.db.conn().await?)
            .await?;
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
        let mut conn = self.db.conn().await?;
        let mut tx = conn.begin().await?;
        let revoked = match which {
            Families::One(id) => sqlx::query(sql::REVOKE_FAMILY)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            Families::OfUser(of) | Families::OfDisabledUser(of) => {
                let disable = matches!(which, Families::OfDisabledUser(_));
                // First the user row: it waits for a `create_family` in
                // flight (which share-locks it), so the statements below
                // see that family; later ones wait for this commit.
                sqlx::query(sql::MARK_USER_SESSIONS_REVOKED)
                    .bind(now)
                    .bind(of.user_id)
                    .bind(disable)
                    .bind(of.new_password_hash)
                    .execute(&mut *tx)
                    .await?;
                let revoked = sqlx::query(sql::REVOKE_USER_FAMILIES)
                    .bind(now)
                    .bind(of.user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                // Closes the unspent tokens of those families: this waits
                // for a spend in flight (it holds the token's row lock), and
                // a spend that comes later re-checks `expires_at` after this
                // commits and spends nothing. So a refresh of these families
                // either committed before the read below (which then sees
                // its successor's issue time) or issues nothing. (A
                // successor committed while this statement ran is not
                // closed by it; it is unusable all the same, its family
                // being revoked.) Families revoked earlier in this same
                // second may get a second session entry: harmless.
                sqlx::query(
                    "UPDATE refresh_tokens SET expires_at = LEAST(expires_at, $1) \
                     WHERE spent_at IS NULL AND family_id IN \
                       (SELECT id FROM refresh_families WHERE user_id = $2 AND revoked_at = $1)",
                )
                .bind(now)
                .bind(of.user_id)
                .execute(&mut *tx)
                .await?;
                // Entries commit in `seq` order (see `insert_revocation`).
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(REVOCATION_LOCK)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(SESSION_ENTRIES)
                    .bind(of.user_id)
                    .bind(of.active_since)
                    .bind(revocation.expires_at)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                revoked
            }
        };
        insert_revocation(&mut tx, revocation, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn insert_revocation(&self, revocation: &NewRevocation, now: i64) -> StoreResult<i64> {
        let mut conn = self.db.conn().await?;
        let mut tx = conn.begin().await?;
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
            .fetch_one(&mut *self.db.conn().await?)
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
            .fetch_all(&mut *self.db.conn().await?)
            .await?)
    }
}

/// Inserts under a transaction-scoped advisory lock so that revocations
/// commit in `seq` order (a feed reader at cursor N can never later see an
/// entry below N appear), and notifies the other nodes on commit.
async fn insert_revocation(
    tx: &mut sqlx::PgConnection,
    r: &NewRevocation,
    now: i64,
) -> StoreResult<i64> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(REVOCATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_notify($1, 'revocations')")
        .bind(CHANGES_CHANNEL)
        .execute(&mut *tx)
        .await?;
    let seq: i64 = sqlx::query_scalar(sql::INSERT_REVOCATION)
        .bind(r.kind.as_str())
        .bind(&r.value)
        .bind(r.not_before)
        .bind(r.expires_at)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    Ok(seq)
}

/// Tells every node (including this one) that `what` changed, on commit.
async fn notify(tx: &mut sqlx::PgConnection, what: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(what)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A refresh family (`f`) that can no longer matter at `$1`: revoked
/// before it, or every token of it (none left counts, for a family
/// created before it) expired before it. `$1` already lies past every access token's lifetime (see `prune`).
const DEAD_FAMILY: &str = "(f.revoked_at IS NOT NULL AND f.revoked_at < $1) \
    OR f.expires_at < $1 \
    OR (f.created_at < $1 \
        AND NOT EXISTS (SELECT 1 FROM refresh_tokens u WHERE u.family_id = f.id AND u.expires_at >= $1))";
/// See `Store::refresh_session`: the token, its family and its user in one
/// read, the columns prefixed where the tables share names.
const REFRESH_SESSION: &str = "\
SELECT t.hash, t.family_id, t.scope, t.issued_at, t.expires_at, t.spent_at, t.successor_hash, \
    f.id AS f_id, f.user_id AS f_user_id, f.client_id AS f_client_id, f.scope AS f_scope, \
    f.created_at AS f_created_at, f.expires_at AS f_expires_at, f.revoked_at AS f_revoked_at, f.amr AS f_amr, f.acr AS f_acr, f.dpop_jkt AS f_dpop_jkt, \
    u.id AS u_id, u.username AS u_username, u.email AS u_email, \
    u.password_hash AS u_password_hash, u.disabled AS u_disabled, u.created_at AS u_created_at, \
    u.updated_at AS u_updated_at, u.sessions_revoked_at AS u_sessions_revoked_at \
FROM refresh_tokens t \
JOIN refresh_families f ON f.id = t.family_id \
LEFT JOIN users u ON u.id = f.user_id \
WHERE t.hash = $1";

/// See `Store::create_family`: the family (only while its user exists, is
/// enabled and, when $12 is given, still has that password hash;
/// share-locking the user row), starting no earlier than the user's last
/// revocation of all sessions, and, when $8, its first token. Returns when
/// it started (no row: not created); the first token is issued then.
const CREATE_FAMILY: &str = "\
WITH owner AS ( \
    SELECT id, sessions_revoked_at FROM users WHERE id = $2 AND NOT disabled \
      AND ($12::text IS NULL OR password_hash = $12) FOR SHARE), \
family AS ( \
    INSERT INTO refresh_families (id, user_id, client_id, scope, created_at, expires_at, revoked_at, amr, acr, dpop_jkt) \
    SELECT $1, owner.id, $3, $4, GREATEST($5, COALESCE(owner.sessions_revoked_at, $5)), $6, $7, $13, $14, $15 \
    FROM owner RETURNING id, created_at), \
first AS ( \
    INSERT INTO refresh_tokens (hash, family_id, scope, issued_at, expires_at, spent_at, successor_hash) \
    SELECT $9, family.id, $10, family.created_at, $11, NULL, NULL FROM family WHERE $8) \
SELECT created_at FROM family";

/// The revocation's session entries (see `UserFamilies`): one for each
/// family of user $1, revoked in this transaction at $4, that issued a token
/// at or after $2; they expire at $3.
const SESSION_ENTRIES: &str = "\
INSERT INTO revocations (kind, value, not_before, expires_at, created_at) \
SELECT 'session', f.id, NULL, $3, $4 FROM refresh_families f \
WHERE f.user_id = $1 AND f.revoked_at = $4 \
  AND (f.created_at >= $2 \
       OR EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id AND t.issued_at >= $2)) \
ORDER BY f.id";

/// See `Store::spend_refresh_token`: spends $3 (unspent, unexpired at $1,
/// family not revoked) and, only if that row was updated, inserts its
/// successor. One statement is one transaction: both happen or neither;
/// and of concurrent spenders the row lock lets exactly one through (the
/// others re-check `spent_at IS NULL` after it commits, and update
/// nothing). A revocation of the user's sessions closes `expires_at`, which
/// the re-check also sees (see `revoke_families`).
const SPEND_REFRESH: &str = "\
WITH spent AS ( \
    UPDATE refresh_tokens SET spent_at = $1, successor_hash = $2 \
    WHERE hash = $3 AND spent_at IS NULL AND expires_at > $1 \
      AND EXISTS (SELECT 1 FROM refresh_families f \
                  WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NULL) \
    RETURNING hash), \
successor AS ( \
    INSERT INTO refresh_tokens (hash, family_id, scope, issued_at, expires_at, spent_at, successor_hash) \
    SELECT $2, $4, $5, $6, $7, $8, $9 FROM spent \
    RETURNING hash) \
SELECT count(*) FROM successor";

/// See `Store::throttle_fail`.
const THROTTLE_FAIL: &str = "\
INSERT INTO login_throttle (key, failures, window_start, locked_until) \
VALUES ($1, CASE WHEN 1 >= $4 THEN 0 ELSE 1 END, $2, CASE WHEN 1 >= $4 THEN $2 + $5 ELSE 0 END) \
ON CONFLICT (key) DO UPDATE SET \
    failures = CASE \
        WHEN login_throttle.locked_until > $2 THEN login_throttle.failures \
        WHEN (CASE WHEN login_throttle.window_start <= $2 - $3 THEN 1 ELSE login_throttle.failures + 1 END) >= $4 THEN 0 \
        ELSE (CASE WHEN login_throttle.window_start <= $2 - $3 THEN 1 ELSE login_throttle.failures + 1 END) \
    END, \
    window_start = CASE \
        WHEN login_throttle.locked_until > $2 THEN login_throttle.window_start \
        WHEN login_throttle.window_start <= $2 - $3 OR login_throttle.failures + 1 >= $4 THEN $2 \
        ELSE login_throttle.window_start \
    END, \
    locked_until = CASE \
        WHEN login_throttle.locked_until > $2 THEN login_throttle.locked_until \
        WHEN (CASE WHEN login_throttle.window_start <= $2 - $3 THEN 1 ELSE login_throttle.failures + 1 END) >= $4 THEN $2 + $5 \
        ELSE login_throttle.locked_until \
    END \
WHERE login_throttle.locked_until <= $2 \
RETURNING failures, window_start, locked_until";
