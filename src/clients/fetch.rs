//! The public keys of `private_key_jwt` clients registered with a
//! `jwks_uri`, fetched and cached with the discipline sigil-verify uses for
//! Sigil's own JWKS: kept as long as `Cache-Control: max-age` says (within
//! 1 minute and 1 day; 5 minutes without one), fetched again when an
//! assertion names a `kid` the cached set lacks (at most every 10 seconds
//! per URI, so forged `kid`s cannot make Sigil hammer the client), and the
//! last good set kept through a failed fetch.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use serde_json::Value;

/// A fetched set is kept at least and at most this long.
const MIN_MAX_AGE: i64 = 60;
const MAX_MAX_AGE: i64 = 24 * 3600;
const DEFAULT_MAX_AGE: i64 = 300;
/// An unknown `kid` fetches the set again at most this often.
const REFETCH_COOLDOWN: i64 = 10;
/// The largest JWKS read.
const MAX_BYTES: usize = 64 * 1024;

#[derive(Debug)]
struct Fetched {
    keys: Arc<Value>,
    fetched_at: i64,
    max_age: i64,
}

pub struct ClientKeyCache {
    http: reqwest::Client,
    sets: Cache<String, Arc<Fetched>>,
}

impl Default for ClientKeyCache {
    fn default() -> Self {
        ClientKeyCache::new()
    }
}

impl ClientKeyCache {
    pub fn new() -> ClientKeyCache {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            // A registered URI answers itself: no redirect to elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        ClientKeyCache {
            http,
            sets: Cache::builder().max_capacity(10_000).build(),
        }
    }

    /// The keys at `uri`, holding `kid` if one is named and the set can
    /// be fetched anew in time.
    pub async fn keys(&self, uri: &str, kid: Option<&str>, now: i64) -> Result<Arc<Value>, String> {
        let cached = self.sets.get(uri);
        let has_kid = |set: &Value| {
            kid.is_none_or(|kid| {
                set["keys"]
                    .as_array()
                    .is_some_and(|keys| keys.iter().any(|k| k["kid"].as_str() == Some(kid)))
            })
        };
        if let Some(c) = &cached {
            let fresh = now < c.fetched_at + c.max_age;
            let cooling = now < c.fetched_at + REFETCH_COOLDOWN;
            if (fresh && has_kid(&c.keys)) || cooling {
                return Ok(Arc::clone(&c.keys));
            }
        }
        match self.fetch(uri).await {
            Ok((keys, max_age)) => {
                let fetched = Arc::new(Fetched {
                    keys: Arc::new(keys),
                    fetched_at: now,
                    max_age,
                });
                self.sets.insert(uri.to_string(), Arc::clone(&fetched));
                Ok(Arc::clone(&fetched.keys))
            }
            Err(why) => {
                tracing::warn!(%uri, %why, "fetching a client's JWKS failed");
                // The last good set, within a day of its fetch.
                match cached {
                    Some(c) if now < c.fetched_at + MAX_MAX_AGE => Ok(Arc::clone(&c.keys)),
                    _ => Err(format!("the client's JWKS could not be fetched: {why}")),
                }
            }
        }
    }

    async fn fetch(&self, uri: &str) -> Result<(Value, i64), String> {
        let response = self
            .http
            .get(uri)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split(',')
                    .filter_map(|d| d.trim().strip_prefix("max-age="))
                    .find_map(|n| n.parse::<i64>().ok())
            })
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(MIN_MAX_AGE, MAX_MAX_AGE);
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BYTES as u64)
        {
            return Err("the JWKS is too large".into());
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_BYTES {
            return Err("the JWKS is too large".into());
        }
        let text = std::str::from_utf8(&body).map_err(|_| "the JWKS is not UTF-8".to_string())?;
        let set = super::parse_jwks(text)?;
        let keys = serde_json::to_value(set).map_err(|e| e.to_string())?;
        Ok((keys, max_age))
    }
}
