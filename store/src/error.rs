//! What a backend's failures mean to the layers above.

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
    /// The schema is not one this binary may use as it stands; the payload
    /// says what to do (see [`SchemaState::refusal`]).
    #[error("{0}")]
    Schema(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(ref db) if is_transient(db.as_ref()) => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Other(other.to_string()),
        }
    }
}

/// Errors that say "not now" rather than "never": the request may succeed
/// if retried, so they become a 503 with `Retry-After`, not a 500.
fn is_transient(db: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        let code = pg.code();
        // 08: connection exception; 53: insufficient resources (too many
        // connections, disk full); 57: operator intervention (statement
        // timeout, server shutting down or starting); serialization
        // failure, deadlock, lock not available.
        return ["08", "53", "57"]
            .iter()
            .any(|class| code.starts_with(class))
            || matches!(code, "40001" | "40P01" | "55P03");
    }
    // SQLite's SQLITE_BUSY / SQLITE_LOCKED (and their extended codes) after
    // the busy timeout: contention, worth a retry, not a bug.
    db.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(format!("migration failed: {e}"))
    }
}

/// A unique violation as [`StoreError::Conflict`] on `field` (for a table
/// with one unique column besides its key); anything else as usual.
pub(crate) fn conflict_on(e: sqlx::Error, field: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(field),
        _ => e.into(),
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
