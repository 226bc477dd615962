//! Sigil's persistence, a crate of its own so that nothing in it can reach
//! up into the application. The [`Store`] trait (`store.rs`) is everything
//! Sigil asks of a database; `sqlite.rs` and `postgres.rs` each implement it
//! and hold the SQL only one of them runs (`sql.rs` holds the statements
//! both run word for word); `records.rs` holds what they read and write,
//! `schema.rs` how a database's migrations compare with this build's, and
//! `error.rs` what a failure means to a caller.
//!
//! sqlx types never leave this crate: callers see plain records and
//! [`StoreError`]. The backend is chosen from the URL scheme in [`connect`].

mod device;
mod error;
mod factors;
mod jtis;
mod pg_health;
mod postgres;
mod records;
mod schema;
mod sign_in;
mod sql;
mod sqlite;
mod store;

use std::sync::Arc;

pub use device::DeviceStore;
pub use error::{StoreError, StoreResult};
pub use factors::{FactorStore, FactorsRemoved, PasskeyRemoval};
pub use jtis::JtiStore;
pub use postgres::PostgresStore;
pub use records::*;
pub use schema::SchemaState;
pub(crate) use schema::{AppliedMigration, OnOpen, settle_schema};
pub use sign_in::SignInStore;
pub use sqlite::SqliteStore;
pub use store::Store;

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`),
/// creating a SQLite file if needed. An empty database gets the schema (a
/// first start needs no steps); any other schema must be exactly this
/// binary's, or nothing is changed and [`StoreError::Schema`] says what to
/// do. Upgrading is [`migrate`]'s job alone.
pub async fn connect(url: &str, settings: &PoolSettings) -> StoreResult<Arc<dyn Store>> {
    open(url, settings, OnOpen::CreateIfEmpty)
        .await
        .map(|(store, _)| store)
}

/// `sigil migrate`: applies every migration the database lacks. Refuses a
/// schema newer than this binary, a half-applied migration or an altered
/// one, changing nothing. Returns where the schema stood before.
pub async fn migrate(url: &str) -> StoreResult<SchemaState> {
    let (store, before) = open(url, &PoolSettings::migrate(), OnOpen::Upgrade).await?;
    store.close().await;
    Ok(before)
}

async fn open(
    url: &str,
    settings: &PoolSettings,
    on_open: OnOpen,
) -> StoreResult<(Arc<dyn Store>, SchemaState)> {
    Ok(match Backend::of(url) {
        Some(Backend::Sqlite) => {
            let (store, state) = SqliteStore::open(url, on_open).await?;
            (Arc::new(store), state)
        }
        Some(Backend::Postgres) => {
            let (store, state) = PostgresStore::open(url, settings, on_open).await?;
            (Arc::new(store), state)
        }
        None => {
            return Err(StoreError::Other(format!(
                "unsupported database URL scheme in {url:?}: expected sqlite:// or postgres://"
            )));
        }
    })
}

/// How a Postgres pool is sized and bounded (SQLite ignores these).
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// Server-side `statement_timeout`; zero disables it.
    pub statement_timeout: std::time::Duration,
    /// How long a call waits for a connection before the health probe is
    /// asked to check the server (see `pg_health`).
    pub outage_wait: std::time::Duration,
}

impl PoolSettings {
    /// `sigil migrate`: one connection, and no statement timeout (a
    /// migration of a large table may legitimately take long).
    pub fn migrate() -> Self {
        PoolSettings {
            max_connections: 1,
            statement_timeout: std::time::Duration::ZERO,
            outage_wait: std::time::Duration::from_millis(100),
        }
    }
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

#[cfg(test)]
mod tests {
    /// A first start runs every migration inside one transaction (see
    /// `settle_schema`); a migration marked `-- no-transaction` (e.g.
    /// `CREATE INDEX CONCURRENTLY`) could not run there, so none may be.
    #[test]
    fn every_migration_can_run_inside_the_first_starts_transaction() {
        for migrator in [&super::sqlite::MIGRATOR, &super::postgres::MIGRATOR] {
            for migration in migrator.iter() {
                assert!(
                    !migration.no_tx,
                    "migration {} is no-transaction",
                    migration.version
                );
            }
        }
    }
}
