//! The registered clients, copied in memory, so that authenticating a client
//! at the token, introspection and revocation endpoints costs no database
//! round trip. It must never let a disabled client or a replaced secret in
//! for longer than the bounds below.
//!
//! How a change reaches the copy:
//! - made through this node (the admin API): [`ClientCache::invalidate`],
//!   called once the change is committed, holds at once;
//! - made anywhere on Postgres (another node, the CLI): the store's
//!   client-change signal (`Store::client_changes`, a NOTIFY sent in the
//!   changing transaction) invalidates every node's copy;
//! - made where there is no signal (the CLI on SQLite): an entry read more
//!   than [`CLIENT_CACHE_TTL`] seconds ago is read again, so the change
//!   holds within that bound.
//!
//! Only clients that exist are cached, and a read that raced with an
//! invalidation is not kept (`fresh_cache`).

use std::sync::Arc;

use crate::clients::{Client, find_client};
use crate::fresh_cache::FreshCache;
use crate::store::{Store, StoreResult};

/// Seconds (on Sigil's clock) after which a cached client is read again:
/// the bound on how long a change with no change signal (the CLI on
/// SQLite) can go unnoticed by a running server.
pub const CLIENT_CACHE_TTL: i64 = 5;
/// At most this many clients are held; the least used are dropped first.
const CAPACITY: u64 = 10_000;

pub struct ClientCache {
    entries: FreshCache<Client>,
}

impl Default for ClientCache {
    fn default() -> Self {
        ClientCache::new()
    }
}

impl ClientCache {
    pub fn new() -> ClientCache {
        ClientCache {
            entries: FreshCache::new(CLIENT_CACHE_TTL, CAPACITY),
        }
    }

    /// The client `id`, from memory when a fresh copy is held, else from the
    /// store (and then held). Shared, not copied: this is on every request
    /// that authenticates a client.
    pub async fn get(
        &self,
        store: &dyn Store,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<Arc<Client>>> {
        self.entries.get(id, now, || find_client(store, id)).await
    }

    /// Forgets every cached client: call after any client change commits.
    pub fn invalidate(&self) {
        self.entries.invalidate();
    }

    /// Invalidates on every client-change signal of the store, until the
    /// store's signal ends. Nothing to do where the store has no signal.
    pub fn spawn_invalidation(self: &Arc<Self>, store: &dyn Store) {
        let Some(mut changes) = store.client_changes() else {
            return;
        };
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                cache.invalidate();
            }
        });
    }
}
