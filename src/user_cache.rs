//! Users' profiles, held in memory for `GET /users/me`, which resource
//! services may call on every request they serve: with the profile held,
//! the call costs no database round trip.
//!
//! Holding a profile for a few seconds is safe because none of its fields
//! changes (nothing edits a username, email or creation time), and the one
//! change that matters, disabling the user, is bounded:
//! - disabling revokes every access token of the user (a `user`
//!   revocation), which the bearer check consults before `/users/me` reads
//!   the profile: it holds at once on the node that made the change, and
//!   on the others as soon as they read the revocation (NOTIFY on Postgres,
//!   else `revocation_poll_interval`);
//! - only enabled users are held, and a change made through this node's
//!   admin API forgets every held profile at once;
//! - any entry is read again after [`USER_CACHE_TTL`] seconds, so a disabled
//!   user's profile is served for at most that long on any node, even if
//!   the revocation were never written.

use std::sync::Arc;

use crate::fresh_cache::FreshCache;
use crate::store::{Store, StoreResult};
use crate::users::User;

/// Seconds (on Sigil's clock) after which a held profile is read again.
pub const USER_CACHE_TTL: i64 = 5;
/// At most this many profiles are held; the least used are dropped first.
const CAPACITY: u64 = 100_000;

pub struct UserCache {
    entries: FreshCache<User>,
}

impl Default for UserCache {
    fn default() -> Self {
        UserCache {
            entries: FreshCache::new(USER_CACHE_TTL, CAPACITY),
        }
    }
}

impl UserCache {
    /// The profile of user `id` if the user exists and is not disabled.
    pub async fn enabled(
        &self,
        store: &dyn Store,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<Arc<User>>> {
        self.entries
            .get(id, now, || async {
                let user = store.user_by_id(id).await?;
                Ok(user.filter(|u| !u.disabled).map(User::from))
            })
            .await
    }

    /// Forgets every held profile: call after a change to a user commits.
    pub fn invalidate(&self) {
        self.entries.invalidate();
    }
}
