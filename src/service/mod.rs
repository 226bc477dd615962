//! The application layer: one function per state-changing action (create,
//! disable or enable a user, revoke their sessions, change their password;
//! create a client, rotate its secret, disable or enable it; rotate or
//! retire keys; prune). Each does the whole of its action — the write, the
//! revocation, this node's cache invalidation, the audit event — so that
//! the admin API, the self-service endpoints and the CLI cannot differ, and
//! a new entry point cannot forget a step. Other nodes hear of a change
//! through the store (Postgres notifies on every such write; SQLite has one
//! node, whose caches expire on their own).
//!
//! The layer sits above the domain modules and the composition root
//! ([`Sigil`]) and below `http` and `cli`; nothing below imports it.

pub mod background;
pub mod browser;
pub mod clients;
pub mod device;
pub mod factors;
pub mod keys;
pub mod users;

use serde_json::Value;

use crate::audit::{Audit, By};
use crate::config::Config;
use crate::state::Sigil;
use crate::store::Store;

/// The actor the audit trail names for operator commands.
pub const CLI: &str = "cli";
/// The actor of a self-service registration.
pub const ANONYMOUS: &str = "anonymous";

/// Where an action runs and on whose behalf: on a serving node, whose
/// caches and deny-list follow at once, or in an operator command, which
/// has none.
pub struct Ops<'a> {
    pub store: &'a dyn Store,
    pub config: &'a Config,
    /// The actor, the time, and the audit trail the action's events go to.
    by: By<'a>,
    node: Option<&'a Sigil>,
}

impl<'a> Ops<'a> {
    /// An action on this serving node, at its clock's time.
    pub fn on(sigil: &'a Sigil, actor: &'a str) -> Ops<'a> {
        Ops {
            store: sigil.store.as_ref(),
            config: &sigil.config,
            by: By {
                trail: &sigil.audit,
                actor,
                at: sigil.clock.now(),
            },
            node: Some(sigil),
        }
    }

    /// An action of an operator command: no caches to invalidate here.
    pub fn offline(
        store: &'a dyn Store,
        config: &'a Config,
        audit: &'a Audit,
        actor: &'a str,
        now: i64,
    ) -> Ops<'a> {
        Ops {
            store,
            config,
            by: By {
                trail: audit,
                actor,
                at: now,
            },
            node: None,
        }
    }

    /// The time the action happens at.
    pub fn now(&self) -> i64 {
        self.by.at
    }

    /// The serving node, if the action runs on one.
    pub fn node(&self) -> Option<&'a Sigil> {
        self.node
    }

    fn record(&self, action: &'static str, target: &str, detail: Value) {
        self.by.record(action, target, detail);
    }

    /// A user's profile, status or sessions changed: this node forgets its
    /// cached profiles and re-reads the deny-list.
    async fn users_changed(&self) {
        if let Some(sigil) = self.node {
            sigil.users.invalidate();
            sigil.revocations_changed(self.by.at).await;
        }
    }

    /// A revocation was written: this node re-reads the deny-list.
    async fn revocations_changed(&self) {
        if let Some(sigil) = self.node {
            sigil.revocations_changed(self.by.at).await;
        }
    }

    /// A client changed: this node forgets its cached clients and rebuilds
    /// the discovery documents.
    async fn clients_changed(&self) {
        if let Some(sigil) = self.node {
            sigil.clients_changed().await;
        }
    }
}
