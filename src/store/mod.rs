//! Persistence. The [`Store`] trait is everything Sigil asks of a database;
//! `sqlite.rs` and `postgres.rs` each implement it and hold every SQL string.
//!
//! sqlx types never leave this module: callers see plain records and
//! [`StoreError`]. The backend is chosen from the URL scheme in [`connect`].

mod pg_health;
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
    /// Sessions (refresh families) created at or before this are revoked.
    pub sessions_revoked_at: Option<i64>,
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
    /// SHA-256 of the secret before the last rotation, accepted until
    /// `previous_secret_expires_at`.
    pub previous_secret_hash: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<i64>,
    /// The client's own access-token lifetime in seconds; `None`: the server's.
    pub access_token_ttl_secs: Option<i64>,
    /// The client's own refresh-token (login) lifetime in seconds; `None`:
    /// the server's `refresh_absolute_ttl`.
    pub refresh_token_ttl_secs: Option<i64>,
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

/// One login's refresh-token family.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FamilyRecord {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// One refresh token, known only by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefreshRecord {
    pub hash: Vec<u8>,
    pub family_id: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
    pub successor_hash: Option<Vec<u8>>,
}

/// What happened to an attempt to spend a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpendOutcome {
    /// This call spent it; the successor is stored.
    Spent,
    /// It had already been spent (the row as it is now).
    AlreadySpent(RefreshRecord),
    NotFound,
}

/// A deny-list entry, as stored and as the revocation feed reports it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevocationRecord {
    pub seq: i64,
    /// `token` (value = jti), `session` (value = sid) or `user` (value = sub).
    pub kind: String,
    pub value: String,
    pub not_before: Option<i64>,
    pub expires_at: i64,
    pub created_at: i64,
}

/// A deny-list entry to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    pub kind: &'static str,
    pub value: String,
    pub not_before: Option<i64>,
    pub expires_at: i64,
}

/// Which refresh families to revoke.
#[derive(Debug, Clone, Copy)]
pub enum Families<'a> {
    One(&'a str),
    /// Every family the user has now; the ones that existed when the
    /// transaction commits, never one created after it.
    OfUser(UserFamilies<'a>),
    /// As `OfUser`, and the user is disabled in the same transaction (so a
    /// user is never disabled with their tokens still valid).
    OfDisabledUser(UserFamilies<'a>),
}

/// A user's families to revoke, and which of them also get a `session`
/// deny-list entry: those that issued a token at or after `active_since`
/// (created then, or a refresh token issued then). The `user` entry denies
/// only earlier seconds, so that a session begun after the revocation, in
/// the same second, is not caught by it; these session entries deny the
/// tokens that the revoked sessions issued in that second.
#[derive(Debug, Clone, Copy)]
pub struct UserFamilies<'a> {
    pub user_id: &'a str,
    pub active_since: i64,
    /// A new password hash stored in the same transaction (a password
    /// change), so no login with the new password can fall between the
    /// change and the revocation.
    pub new_password_hash: Option<&'a str>,
}

/// An old key to retire when a new one is scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    pub kid: String,
    pub retires_at: i64,
    pub removes_at: i64,
}

/// A throttling key's failed-login counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct ThrottleRecord {
    pub failures: i64,
    pub window_start: i64,
    /// Unix seconds; the key is locked out while this is in the future.
    pub locked_until: i64,
}

/// How failures against one kind of throttling key are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Seconds over which failures are counted.
    pub window: i64,
    /// Failures within the window that lock the key.
    pub limit: i64,
    /// Seconds a lockout lasts.
    pub lockout: i64,
}

/// An audit event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    /// A JSON object.
    pub detail: String,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    /// A JSON object.
    pub detail: String,
}

/// Connection-pool occupancy.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Everything Sigil persists. One implementation per database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round-trip used by readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Whether every migration this binary knows has been applied (and no
    /// unknown one).
    async fn schema_is_current(&self) -> StoreResult<bool>;
    /// Connection-pool occupancy, for metrics.
    fn pool_stats(&self) -> PoolStats;
    /// Closes the pool, waiting for connections in use to be returned.
    async fn close(&self);

    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>>;
    /// Up to `limit` users with a username after `after`, by username.
    async fn list_users(&self, after: &str, limit: i64) -> StoreResult<Vec<UserRecord>>;
    /// Enables or disables a user; `NotFound` if there is no such user.
    async fn set_user_disabled(&self, id: &str, disabled: bool, now: i64) -> StoreResult<()>;

    async fn insert_client(&self, client: &ClientRecord) -> StoreResult<()>;
    async fn client_by_id(&self, client_id: &str) -> StoreResult<Option<ClientRecord>>;
    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>>;
    /// Replaces a confidential client's secret; the current one stays
    /// valid until `previous_expires_at`. `NotFound` for an unknown or
    /// public client.
    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &[u8],
        previous_expires_at: i64,
    ) -> StoreResult<()>;
    /// `NotFound` for an unknown client.
    async fn set_client_disabled(&self, client_id: &str, disabled: bool) -> StoreResult<()>;

    /// Every key that still has a row, oldest first.
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// Inserts `key` and applies `retire`, atomically and under a lock that
    /// makes concurrent schedulers (several nodes) take turns. With
    /// `unless_activating_after: Some(t)`, does nothing and returns `false`
    /// when a key of the same algorithm, not retired at `now`, activates
    /// after `t` (`t = now`: one is already pending; `t = i64::MIN`: any
    /// live key exists).
    async fn schedule_key(
        &self,
        key: &KeyRecord,
        retire: Option<&Retirement>,
        unless_activating_after: Option<i64>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Changes when a key retires and is removed; `destroy_private` erases
    /// its private half. `NotFound` if there is no such key.
    async fn set_key_times(
        &self,
        kid: &str,
        retires_at: i64,
        removes_at: i64,
        destroy_private: bool,
    ) -> StoreResult<()>;
    /// Erases the private half of every key removed by `now`.
    async fn destroy_removed_keys(&self, now: i64) -> StoreResult<u64>;
    /// Replaces every listed key's encrypted private half, all or nothing.
    async fn rewrap_keys(&self, sealed: &[(String, Vec<u8>)]) -> StoreResult<()>;

    async fn insert_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: &str,
    ) -> StoreResult<()>;
    /// Stores several audit events in one transaction.
    async fn insert_audit_batch(&self, events: &[NewAudit]) -> StoreResult<()>;
    /// The newest `limit` audit events, oldest first.
    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>>;

    /// The failed-login counter of a throttling key, if it has one.
    async fn throttle_get(&self, key: &str) -> StoreResult<Option<ThrottleRecord>>;
    /// Counts one failed login against `key`, atomically: a window older
    /// than `rule.window` starts afresh; reaching `rule.limit` failures
    /// locks the key until `now + rule.lockout` and resets its count.
    /// `None` when the key is locked: then nothing is counted (nor is the
    /// lockout extended).
    async fn throttle_fail(
        &self,
        key: &str,
        now: i64,
        rule: ThrottleRule,
    ) -> StoreResult<Option<ThrottleRecord>>;
    /// Forgets a key's failures (after a successful login).
    async fn throttle_clear(&self, key: &str) -> StoreResult<()>;
    /// Deletes up to `limit` counters whose window started before
    /// `window_before` and whose lockout (if any) ended before `now`.
    async fn throttle_prune(&self, window_before: i64, now: i64, limit: i64) -> StoreResult<u64>;

    /// Stores a new family with its first refresh token (`None`: a login
    /// session whose client may not refresh), atomically, unless the user
    /// is disabled or gone, or `password_hash` (the hash the login was
    /// checked against) is no longer the user's: [`StoreError::NotFound`].
    /// Ordered against [`Store::revoke_families`] of the same user: a
    /// family is either seen (and revoked) by it or created after it
    /// committed, and then starts no earlier than that revocation (a login
    /// that began before it, on this node's clock or a slower one, would
    /// otherwise issue tokens dated before it, which its `user` entry
    /// denies). Returns when the family started: `family.created_at`, or
    /// later; the first token and the access token take that time.
    async fn create_family(
        &self,
        family: &FamilyRecord,
        first: Option<&RefreshRecord>,
        password_hash: Option<&str>,
    ) -> StoreResult<i64>;
    /// A refresh token and its family.
    async fn refresh_token(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<(RefreshRecord, FamilyRecord)>>;
    /// A refresh token, its family and the family's user (`None` if the user
    /// is gone): everything the refresh grant checks before spending. One
    /// read where the backend can join them.
    async fn refresh_session(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<(RefreshRecord, FamilyRecord, Option<UserRecord>)>> {
        let Some((token, family)) = self.refresh_token(hash).await? else {
            return Ok(None);
        };
        let user = self.user_by_id(&family.user_id).await?;
        Ok(Some((token, family, user)))
    }
    /// Spends `hash` and stores `successor`, in one transaction whose spend is
    /// a single conditional UPDATE: of concurrent callers exactly one wins.
    async fn spend_refresh_token(
        &self,
        hash: &[u8],
        successor: &RefreshRecord,
        now: i64,
    ) -> StoreResult<SpendOutcome>;
    /// Marks families revoked and records `revocation` (and, for a user's
    /// families, the session entries [`UserFamilies`] describes),
    /// atomically. A spend of one of the families' refresh tokens racing
    /// with it either commits first (and its successor is seen) or spends
    /// nothing. Returns how many families were newly revoked.
    async fn revoke_families(
        &self,
        which: Families<'_>,
        revocation: &NewRevocation,
        now: i64,
    ) -> StoreResult<u64>;
    /// Adds a deny-list entry; returns its sequence number.
    async fn insert_revocation(&self, revocation: &NewRevocation, now: i64) -> StoreResult<i64>;
    /// Unexpired entries with `seq > after`, in order, at most `limit`.
    async fn revocations_since(
        &self,
        after: i64,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<RevocationRecord>>;
    /// Whether an unexpired entry matches the token (the fallback when the
    /// in-memory deny-list has overflowed).
    async fn is_revoked(
        &self,
        jti: &str,
        sid: Option<&str>,
        sub: &str,
        iat: i64,
        now: i64,
    ) -> StoreResult<bool>;

    /// Deletes up to `limit` deny-list entries that expired before `before`.
    async fn prune_revocations(&self, before: i64, limit: i64) -> StoreResult<u64>;
    /// Deletes up to `limit` refresh tokens of families dead before `before`:
    /// revoked before it, or whose every token expired before it.
    async fn prune_refresh_tokens(&self, before: i64, limit: i64) -> StoreResult<u64>;
    /// Deletes up to `limit` families dead before `before` (as above) that
    /// have no token left.
    async fn prune_refresh_families(&self, before: i64, limit: i64) -> StoreResult<u64>;
    /// Deletes up to `limit` audit events recorded before `before`.
    async fn prune_audit(&self, before: i64, limit: i64) -> StoreResult<u64>;

    /// A signal that bumps whenever another node may have changed shared
    /// state (revocations, keys). `None` where there is no other node.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// A signal that bumps whenever a client may have been changed anywhere
    /// (`rotate_client_secret`, `set_client_disabled` on any node or by the
    /// CLI). `None` where there is no such signal (SQLite: see
    /// `client_cache::CLIENT_CACHE_TTL`).
    fn client_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

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

/// What opening a database may do to its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnOpen {
    /// Create it in an empty database; otherwise it must be current.
    CreateIfEmpty,
    /// Also apply the migrations an older schema lacks.
    Upgrade,
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

/// Settles the schema as `state` and `on_open` call for: `create` (every
/// migration in one transaction) on an empty database, `upgrade` (the
/// missing migrations, each in its own) on an older one when upgrading is
/// allowed; otherwise it refuses the schema or leaves it alone. A first
/// start is all-or-nothing this way: killed half-way, it leaves a database
/// that is still empty, and the next start creates the schema again.
pub(crate) async fn settle_schema<C, U>(
    state: &SchemaState,
    on_open: OnOpen,
    create: C,
    upgrade: U,
) -> StoreResult<()>
where
    C: std::future::Future<Output = Result<(), sqlx::migrate::MigrateError>>,
    U: std::future::Future<Output = Result<(), sqlx::migrate::MigrateError>>,
{
    match state {
        SchemaState::Empty => return Ok(create.await?),
        SchemaState::Older { .. } if on_open == OnOpen::Upgrade => return Ok(upgrade.await?),
        _ => {}
    }
    match state.refusal() {
        Some(why) => Err(StoreError::Schema(why)),
        None => Ok(()),
    }
}

/// Where a database's schema stands against this binary's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// No migration recorded: a new database.
    Empty,
    Current {
        version: i64,
    },
    /// The applied migrations are the first of this binary's: `sigil migrate`.
    Older {
        at: i64,
        needs: i64,
    },
    /// A migration this binary does not know was applied (a newer sigil).
    Newer {
        at: i64,
        knows: i64,
    },
    /// A migration recorded as failed: it may be half-applied.
    Failed {
        version: i64,
    },
    /// An applied migration's SQL differs from this binary's, or the
    /// applied ones are not a prefix of this binary's.
    Diverged {
        version: i64,
    },
}

/// One row of `_sqlx_migrations`.
pub(crate) struct AppliedMigration {
    pub version: i64,
    pub success: bool,
    pub checksum: Vec<u8>,
}

impl SchemaState {
    /// Classifies the applied migrations (in version order) against `known`.
    pub(crate) fn of(applied: &[AppliedMigration], known: &sqlx::migrate::Migrator) -> SchemaState {
        let known: Vec<_> = known
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .collect();
        let knows = known.last().map_or(0, |m| m.version);
        if let Some(failed) = applied.iter().find(|a| !a.success) {
            return SchemaState::Failed {
                version: failed.version,
            };
        }
        let Some(at) = applied.last().map(|a| a.version) else {
            return SchemaState::Empty;
        };
        if at > knows {
            return SchemaState::Newer { at, knows };
        }
        for (i, a) in applied.iter().enumerate() {
            match known.get(i) {
                Some(m) if m.version == a.version && *m.checksum == *a.checksum => {}
                _ => return SchemaState::Diverged { version: a.version },
            }
        }
        if applied.len() == known.len() {
            SchemaState::Current { version: at }
        } else {
            SchemaState::Older { at, needs: knows }
        }
    }

    /// Why a node may not start on this schema, and what to do; `None`
    /// when it may (current, or empty and about to be created).
    pub fn refusal(&self) -> Option<String> {
        match *self {
            SchemaState::Empty | SchemaState::Current { .. } => None,
            SchemaState::Older { at, needs } => Some(format!(
                "the database schema is at migration {at} and this sigil needs {needs}: \
                 back the database up, then run `sigil migrate`"
            )),
            SchemaState::Newer { at, knows } => Some(format!(
                "the database schema is at migration {at}, newer than this sigil knows \
                 (up to {knows}): run the newer sigil that migrated it, or restore the backup \
                 taken before that upgrade"
            )),
            SchemaState::Failed { version } => Some(format!(
                "migration {version} is recorded as failed in the database, so it may be \
                 half-applied: restore the backup taken before the upgrade, then run \
                 `sigil migrate`"
            )),
            SchemaState::Diverged { version } => Some(format!(
                "migration {version} in the database differs from this sigil's: the database \
                 was migrated by a different build; restore the backup taken before that \
                 upgrade, or run the sigil that migrated it"
            )),
        }
    }
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
    /// An operator command: two connections, the configured timeout.
    pub fn cli(config: &crate::config::Config) -> Self {
        PoolSettings {
            max_connections: 2,
            ..PoolSettings::from(config)
        }
    }

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

impl From<&crate::config::Config> for PoolSettings {
    fn from(config: &crate::config::Config) -> Self {
        PoolSettings {
            max_connections: config.database_max_connections,
            statement_timeout: config.database_statement_timeout,
            outage_wait: config.database_outage_wait,
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
