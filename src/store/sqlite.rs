//! The embedded default: one SQLite file, created on first start.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{
    ClientRecord, Families, FamilyRecord, KeyRecord, NewRevocation, RefreshRecord,
    RevocationRecord, SpendOutcome, Store, StoreError, StoreResult, UserRecord,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
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
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

/// Maps a UNIQUE violation to [`StoreError::Conflict`] naming the column.
fn unique(e: sqlx::Error, columns: &[&'static str]) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            let message = db.message();
            let column = columns
                .iter()
                .find(|c| message.contains(&format!(".{c}")))
                .or(columns.first())
                .copied()
                .unwrap_or("id");
            return StoreError::Conflict(column);
        }
    }
    e.into()
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_user(&self, u: &UserRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, username, email, password_hash, disabled, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&u.id)
        .bind(&u.username)
        .bind(&u.email)
        .bind(&u.password_hash)
        .bind(u.disabled)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&self.pool)
        .await
        .map_err(|e| unique(e, &["username", "email"]))?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_user_disabled(&self, id: &str, disabled: bool, now: i64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?")
            .bind(disabled)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_password_hash(&self, id: &str, password_hash: &str, now: i64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(password_hash)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_client(&self, c: &ClientRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, grant_types, scopes, alg, audience, disabled, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.client_id)
        .bind(&c.secret_hash)
        .bind(&c.grant_types)
        .bind(&c.scopes)
        .bind(&c.alg)
        .bind(&c.audience)
        .bind(c.disabled)
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| unique(e, &["client_id"]))?;
        Ok(())
    }

    async fn client_by_id(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        Ok(sqlx::query_as("SELECT * FROM clients WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        Ok(sqlx::query_as("SELECT * FROM clients ORDER BY client_id")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn insert_key(&self, k: &KeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, public_jwk, private_key, created_at, activates_at, retires_at, removes_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.public_jwk)
        .bind(&k.private_key)
        .bind(k.created_at)
        .bind(k.activates_at)
        .bind(k.retires_at)
        .bind(k.removes_at)
        .execute(&self.pool)
        .await
        .map_err(|e| unique(e, &["kid"]))?;
        Ok(())
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at, kid")
                .fetch_all(&self.pool)
                .await?,
        )
    }
    async fn create_family(&self, family: &FamilyRecord, first: &RefreshRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO refresh_families (id, user_id, client_id, scope, created_at, expires_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&family.id)
        .bind(&family.user_id)
        .bind(&family.client_id)
        .bind(&family.scope)
        .bind(family.created_at)
        .bind(family.expires_at)
        .bind(family.revoked_at)
        .execute(&mut *tx)
        .await?;
        insert_refresh(&mut tx, first).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn refresh_token(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<(RefreshRecord, FamilyRecord)>> {
        let token: Option<RefreshRecord> =
            sqlx::query_as("SELECT * FROM refresh_tokens WHERE hash = ?")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        let Some(token) = token else { return Ok(None) };
        let family: FamilyRecord = sqlx::query_as("SELECT * FROM refresh_families WHERE id = ?")
            .bind(&token.family_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(Some((token, family)))
    }

    async fn spend_refresh_token(
        &self,
        hash: &[u8],
        successor: &RefreshRecord,
        now: i64,
    ) -> StoreResult<SpendOutcome> {
        let mut tx = self.pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET spent_at = ?, successor_hash = ? WHERE hash = ? AND spent_at IS NULL",
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
        let current: Option<RefreshRecord> =
            sqlx::query_as("SELECT * FROM refresh_tokens WHERE hash = ?")
                .bind(hash)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(current.map_or(SpendOutcome::NotFound, SpendOutcome::AlreadySpent))
    }

    async fn revoke_families(
        &self,
        which: Families<'_>,
        revocation: &NewRevocation,
        now: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let (column, value) = match which {
            Families::One(id) => ("id", id),
            Families::OfUser(user) => ("user_id", user),
        };
        let sql = format!(
            "UPDATE refresh_families SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL"
        );
        let revoked = sqlx::query(&sql)
            .bind(now)
            .bind(value)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        insert_revocation(&mut tx, revocation, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn insert_revocation(&self, revocation: &NewRevocation, now: i64) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
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
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM revocations WHERE expires_at > ? AND (
                (kind = 'token' AND value = ?)
             OR (kind = 'session' AND value = ?)
             OR (kind = 'user' AND value = ? AND not_before >= ?)))",
        )
        .bind(now)
        .bind(jti)
        .bind(sid)
        .bind(sub)
        .bind(iat)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn revocations_since(
        &self,
        after: i64,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<RevocationRecord>> {
        Ok(sqlx::query_as(
            "SELECT * FROM revocations WHERE seq > ? AND expires_at > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
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
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO revocations (kind, value, not_before, expires_at, created_at) VALUES (?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(r.kind)
    .bind(&r.value)
    .bind(r.not_before)
    .bind(r.expires_at)
    .bind(now)
    .fetch_one(tx)
    .await?;
    Ok(seq)
}
