//! Database rows held in memory for a bounded time: what `client_cache` and
//! `user_cache` are built on.
//!
//! An entry is used for at most `ttl` seconds on Sigil's clock after its row
//! was read; [`FreshCache::invalidate`] drops every entry at once. Each
//! entry carries the invalidation generation current when its row was read,
//! and a lookup ignores an entry of an older generation: a read that raced
//! with an invalidation can never put the old row back.
//!
//! Only rows that exist are held: a key the loader does not find always
//! asks again, so a row just created is seen at once, and made-up keys
//! cannot fill the cache.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use crate::store::StoreResult;

struct Entry<V> {
    generation: u64,
    /// When the row was read, Unix seconds on Sigil's clock.
    read_at: i64,
    value: Arc<V>,
}

impl<V> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Entry {
            generation: self.generation,
            read_at: self.read_at,
            value: Arc::clone(&self.value),
        }
    }
}

pub struct FreshCache<V> {
    entries: Cache<String, Entry<V>>,
    /// Bumped by every invalidation; entries of an older one are stale.
    generation: AtomicU64,
    /// Seconds an entry may be used after its row was read.
    ttl: i64,
}

impl<V: Send + Sync + 'static> FreshCache<V> {
    /// Holds at most `capacity` rows (the least used are dropped first),
    /// each for at most `ttl` seconds.
    pub fn new(ttl: i64, capacity: u64) -> FreshCache<V> {
        FreshCache {
            // moka's own expiry only frees memory; freshness is decided by
            // `read_at` against Sigil's clock.
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(ttl.max(1) as u64 * 12))
                .build(),
            generation: AtomicU64::new(0),
            ttl,
        }
    }

    /// The row `key`: from memory when a fresh copy is held, else from
    /// `load` (and then held, if found).
    pub async fn get<F, Fut>(&self, key: &str, now: i64, load: F) -> StoreResult<Option<Arc<V>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<Option<V>>>,
    {
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(entry) = self.entries.get(key)
            && entry.generation == generation
            && (0..self.ttl).contains(&(now - entry.read_at))
        {
            return Ok(Some(entry.value));
        }
        let Some(value) = load().await? else {
            self.entries.invalidate(key);
            return Ok(None);
        };
        let value = Arc::new(value);
        self.entries.insert(
            key.to_string(),
            Entry {
                generation,
                read_at: now,
                value: Arc::clone(&value),
            },
        );
        Ok(Some(value))
    }

    /// Forgets every held row: call after a change to any of them commits.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn a_row_is_read_again_after_its_ttl_or_an_invalidation_and_absent_rows_are_not_held() {
        let cache = FreshCache::<u32>::new(5, 100);
        let reads = AtomicUsize::new(0);
        let load = |found: bool| {
            reads.fetch_add(1, Ordering::SeqCst);
            async move { Ok(found.then_some(7)) }
        };
        assert_eq!(
            *cache.get("a", 100, || load(true)).await.unwrap().unwrap(),
            7
        );
        cache.get("a", 104, || load(true)).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 1, "held for the ttl");
        cache.get("a", 105, || load(true)).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2, "read again after it");
        cache.invalidate();
        cache.get("a", 105, || load(true)).await.unwrap();
        assert_eq!(
            reads.load(Ordering::SeqCst),
            3,
            "read again after an invalidation"
        );
        assert!(cache.get("b", 105, || load(false)).await.unwrap().is_none());
        assert!(cache.get("b", 105, || load(false)).await.unwrap().is_none());
        assert_eq!(
            reads.load(Ordering::SeqCst),
            5,
            "absent rows are asked for each time"
        );
        // A row that disappears is forgotten.
        cache.invalidate();
        assert!(cache.get("a", 105, || load(false)).await.unwrap().is_none());
        assert!(cache.get("a", 105, || load(false)).await.unwrap().is_none());
        assert_eq!(reads.load(Ordering::SeqCst), 7);
    }

    #[tokio::test]
    async fn a_read_that_raced_with_an_invalidation_is_not_used() {
        let cache = FreshCache::<u32>::new(5, 100);
        // The row is read, and before it is stored the cache is invalidated.
        let stale = cache
            .get("a", 100, || async {
                cache.invalidate();
                Ok(Some(1))
            })
            .await
            .unwrap();
        assert_eq!(*stale.unwrap(), 1, "the caller gets what it read");
        let fresh = cache.get("a", 100, || async { Ok(Some(2)) }).await.unwrap();
        assert_eq!(*fresh.unwrap(), 2, "but it is not served to the next one");
    }
}
