//! Persistence. The [`Store`] trait is everything Sigil asks of a database;
//! `sqlite.rs` and `postgres.rs` each implement it and hold every SQL string.
//!
//! sqlx types never leave this module: callers see plain records and
//! [`StoreError`]. The backend is chosen from the URL scheme in [`connect`].

mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// What went wrong in a backend, in terms the layers above can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint refused the write; the payload names the field.
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The database could not be reached or timed out; worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Other(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(format!("migration failed: {e}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientRecord {
    pub client_id: String,
    /// SHA-256 of the client secret; `None` for a public client.
    pub secret_hash: Option<Vec<u8>>,
    /// Space-separated grant types.
    pub grant_types: String,
    /// Space-separated scopes the client may request.
    pub scopes: String,
    pub alg: Option<String>,
    pub audience: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    /// The encrypted private key, `None` once it has been destroyed.
    pub private_key: Option<Vec<u8>>,
    pub created_at: i64,
    pub activates_at: i64,
    pub retires_at: Option<i64>,
    pub removes_at: Option<i64>,
}

/// Everything Sigil persists. One implementation per database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round-trip used by readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>>;
    /// Enables or disables a user; `NotFound` if there is no such user.
    async fn set_user_disabled(&self, id: &str, disabled: bool, now: i64) -> StoreResult<()>;

    async fn insert_client(&self, client: &ClientRecord) -> StoreResult<()>;
    async fn client_by_id(&self, client_id: &str) -> StoreResult<Option<ClientRecord>>;
    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>>;

    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<()>;
    /// Every key that still has a row, oldest first.
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>>;
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`),
/// creating a SQLite file if needed, and brings its schema up to date.
pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match Backend::of(url) {
        Some(Backend::Sqlite) => Arc::new(SqliteStore::connect(url).await?),
        Some(Backend::Postgres) => Arc::new(PostgresStore::connect(url, max_connections).await?),
        None => {
            return Err(StoreError::Other(format!(
                "unsupported database URL scheme in {url:?}: expected sqlite:// or postgres://"
            )));
        }
    };
    Ok(store)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}
