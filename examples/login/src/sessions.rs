//! What the app remembers, in memory: the sign-ins in progress (between
//! `/login` and `/callback`) and the signed-in users. Both are bounded in
//! age and count, since anyone can start a sign-in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::{CsrfToken, Nonce, PkceCodeVerifier};

/// A sign-in in progress lives as long as Sigil's sign-in page may stay open.
const PENDING_TTL: Duration = Duration::from_secs(600);
const SESSION_TTL: Duration = Duration::from_secs(3600);
const MAX_ENTRIES: usize = 10_000;

pub struct Pending {
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

/// A signed-in user, as the ID token and UserInfo named them.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub subject: String,
    pub username: String,
    pub email: Option<String>,
    /// Kept for the logout request's `id_token_hint`.
    pub id_token: String,
}

#[derive(Default)]
pub struct Sessions {
    pending: Mutex<Bounded<Pending>>,
    users: Mutex<Bounded<SignedIn>>,
}

impl Sessions {
    /// Remembers a sign-in in progress; returns the key for its cookie.
    pub fn begin(&self, pending: Pending) -> String {
        lock(&self.pending).insert(pending, PENDING_TTL)
    }

    /// Takes back a sign-in in progress (once: a replayed callback finds nothing).
    pub fn finish(&self, key: &str) -> Option<Pending> {
        lock(&self.pending).take(key)
    }

    pub fn start(&self, user: SignedIn) -> String {
        lock(&self.users).insert(user, SESSION_TTL)
    }

    pub fn user(&self, id: &str) -> Option<SignedIn> {
        lock(&self.users).get(id).cloned()
    }

    pub fn end(&self, id: &str) -> Option<SignedIn> {
        lock(&self.users).take(id)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Entries under random keys, each with a deadline; the expired ones go at
/// each insert, and past `MAX_ENTRIES` the oldest.
struct Bounded<T> {
    entries: HashMap<String, (Instant, T)>,
}

impl<T> Default for Bounded<T> {
    fn default() -> Self {
        Bounded {
            entries: HashMap::new(),
        }
    }
}

impl<T> Bounded<T> {
    fn insert(&mut self, value: T, ttl: Duration) -> String {
        let now = Instant::now();
        self.entries.retain(|_, (deadline, _)| *deadline > now);
        if self.entries.len() >= MAX_ENTRIES {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (deadline, _))| *deadline)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        let key = CsrfToken::new_random().into_secret();
        self.entries.insert(key.clone(), (now + ttl, value));
        key
    }

    fn get(&self, key: &str) -> Option<&T> {
        self.entries
            .get(key)
            .filter(|(deadline, _)| *deadline > Instant::now())
            .map(|(_, v)| v)
    }

    fn take(&mut self, key: &str) -> Option<T> {
        self.entries
            .remove(key)
            .filter(|(deadline, _)| *deadline > Instant::now())
            .map(|(_, v)| v)
    }
}
