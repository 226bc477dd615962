//! Where a database's schema stands against this binary's migrations, and
//! what opening it may do about that.

use crate::{StoreError, StoreResult};

/// What opening a database may do to its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnOpen {
    /// Create it in an empty database; otherwise it must be current.
    CreateIfEmpty,
    /// Also apply the migrations an older schema lacks.
    Upgrade,
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
