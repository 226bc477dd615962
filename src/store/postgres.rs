//! The production store: every Sigil node shares one PostgreSQL database.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{ClientRecord, KeyRecord, Store, StoreError, StoreResult, UserRecord};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // Bounded waits: a saturated pool or a dead server becomes an
            // error the caller can turn into a 503, never a hang.
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PostgresStore { pool })
    }
}

/// Maps a unique violation to [`StoreError::Conflict`] naming the column,
/// read from Postgres' default constraint name `<table>_<column>_key`.
fn unique(e: sqlx::Error, columns: &[&'static str]) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            let constraint = db.constraint().unwrap_or_default();
            let column = columns
                .iter()
                .find(|c| constraint.contains(&format!("_{c}_")))
                .or(columns.first())
                .copied()
                .unwrap_or("id");
            return StoreError::Conflict(column);
        }
    }
    e.into()
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_user(&self, u: &UserRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, username, email, password_hash, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
        Ok(sqlx::query_as("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_user_disabled(&self, id: &str, disabled: bool, now: i64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
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

    async fn insert_client(&self, c: &ClientRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, grant_types, scopes, alg, audience, disabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        Ok(sqlx::query_as("SELECT * FROM clients WHERE client_id = $1")
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
}
