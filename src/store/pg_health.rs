//! Fast failure while Postgres is unreachable.
//!
//! sqlx's pool keeps retrying a refused connection until the acquire
//! timeout, so without this every request would wait the full timeout
//! during an outage. A probe runs once a second; while it fails, store calls
//! return [`StoreError::Unavailable`] at once (a 503 with `Retry-After`),
//! and the first successful probe lets them through again. Requests that
//! need no database (JWKS, metadata, signature checks against the cached
//! deny-list) never pass through here.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Connection};

use super::{StoreError, StoreResult};

const PROBE_PERIOD: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Failed probes in a row before the gate closes: one slow connection
/// attempt on a busy server must not turn a whole node into 503s.
const FAILURES_TO_CLOSE: u32 = 2;

/// Whether the last probe reached the server. Shared by the store and its
/// probe task.
#[derive(Clone)]
pub struct Health {
    up: Arc<AtomicBool>,
}

impl Health {
    pub fn new() -> Health {
        crate::metrics::database_up(true);
        Health {
            up: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The pool, unless the server is known to be unreachable.
    pub fn gate<'a>(&self, pool: &'a PgPool) -> StoreResult<&'a PgPool> {
        if self.up.load(Ordering::Relaxed) {
            Ok(pool)
        } else {
            Err(StoreError::Unavailable(
                "the database is unreachable (health probe failing)".into(),
            ))
        }
    }

    fn set(&self, up: bool) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            crate::metrics::database_up(up);
            if up {
                tracing::info!("the database is reachable again");
            } else {
                tracing::warn!("the database is unreachable; answering 503 until it is back");
            }
        }
    }

    /// Probes until the pool is closed. An idle pooled connection is used
    /// when there is one; otherwise a fresh connection, so that a pool
    /// merely saturated by slow queries is not mistaken for an outage.
    pub fn spawn_probe(&self, pool: PgPool, url: &str) {
        let health = self.clone();
        let options = PgConnectOptions::from_str(url).ok();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(PROBE_PERIOD);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failures = 0;
            while !pool.is_closed() {
                ticker.tick().await;
                let reached = tokio::time::timeout(PROBE_TIMEOUT, probe(&pool, options.as_ref()))
                    .await
                    .is_ok_and(|reached| reached);
                failures = if reached { 0 } else { failures + 1 };
                if reached || failures >= FAILURES_TO_CLOSE {
                    health.set(reached);
                }
            }
        });
    }
}

async fn probe(pool: &PgPool, options: Option<&PgConnectOptions>) -> bool {
    if let Some(mut conn) = pool.try_acquire() {
        if conn.ping().await.is_ok() {
            return true;
        }
        // Broken by a server restart: drop it, then try a fresh one.
        conn.close_on_drop();
    }
    match options {
        Some(options) => match options.connect().await {
            Ok(conn) => {
                let _ = conn.close().await;
                true
            }
            // The server answered (e.g. too many connections: the pool's
            // own are busy, not gone): reachable.
            Err(sqlx::Error::Database(_)) => true,
            Err(_) => false,
        },
        None => false,
    }
}
