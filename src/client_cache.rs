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
//! Only clients that exist are cached: an unknown id always asks the
//! database, so a client just created works at once on every node, and
//! made-up ids cannot fill the cache.
//!
//! Each entry carries the invalidation generation current when its row was
//! read, and a lookup ignores an entry of an older generation: a read that
//! raced with an invalidation can never put the old row back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use crate::clients::{Client, find_client};
use crate::store::{Store, StoreResult};

/// Seconds (on Sigil's clock) after which a cached client is read again:
/// the bound on how long a change with no change signal (the CLI on
/// SQLite) can go unnoticed by a running server.
pub const CLIENT_CACHE_TTL: i64 = 5;
/// At most this many clients are held; the least used are dropped first.
const CAPACITY: u64 = 10_000;

#[derive(Clone)]
struct Entry {
    generation: u64,
    /// When the row was read, Unix seconds on Sigil's clock.
    read_at: i64,
    client: Arc<Client>,
}

pub struct ClientCache {
    entries: Cache<String, Entry>,
    /// Bumped by every invalidation; entries of an older one are stale.
    generation: AtomicU64,
}

impl Default for ClientCache {
    fn default() -> Self {
        ClientCache::new()
    }
}

impl ClientCache {
    pub fn new() -> ClientCache {
        ClientCache {
            // moka's own expiry only frees memory; freshness is decided by
            // `read_at` against Sigil's clock.
            entries: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(Duration::from_secs(CLIENT_CACHE_TTL as u64 * 12))
                .build(),
            generation: AtomicU64::new(0),
        }
    }

    /// The client `id`, from memory when a fresh copy is held, else from the
    /// store (and then held).
    pub async fn get(&self, store: &dyn Store, id: &str, now: i64) -> StoreResult<Option<Client>> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(entry) = self.entries.get(id)
            && entry.generation == generation
            && (0..CLIENT_CACHE_TTL).contains(&(now - entry.read_at))
        {
            return Ok(Some(Client::clone(&entry.client)));
        }
        let found = find_client(store, id).await?;
        match &found {
            Some(client) => self.entries.insert(
                id.to_string(),
                Entry {
                    generation,
                    read_at: now,
                    client: Arc::new(client.clone()),
                },
            ),
            None => self.entries.invalidate(id),
        }
        Ok(found)
    }

    /// Forgets every cached client: call after any client change commits.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
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
