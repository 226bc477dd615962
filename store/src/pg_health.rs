//! Fast failure while Postgres is unreachable.
//!
//! sqlx's pool keeps retrying a refused connection until the acquire
//! timeout (5 s), so without this every request would wait that long
//! during an outage. Every store call takes its connection through
//! [`Health::acquire`]:
//!
//! - while the gate is closed, it fails at once with
//!   [`StoreError::Unavailable`] (a 503 with `Retry-After`);
//! - a call still waiting for a connection after `outage_wait` wakes the
//!   probe at once; a call waiting when the gate closes gives up then.
//!
//! The probe runs once a second and whenever woken (at most four times a
//! second). A definitive answer (the connection refused or reset, the
//! server shutting down) closes the gate at once; attempts that merely got
//! no answer within [`PROBE_TIMEOUT`] close it after [`FAILURES_TO_CLOSE`]
//! in a row, so slow connection attempts on a busy server do not turn a
//! node into 503s. Only a successful probe
//! opens the gate again. Requests that need no database (JWKS, metadata,
//! signature checks against the cached deny-list) never pass through here.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Connection, Postgres};
use tokio::sync::{Notify, watch};

use super::{StoreError, StoreResult};

const PROBE_PERIOD: Duration = Duration::from_secs(1);
/// A probe attempt with no answer in this time is a failure. Generous: a
/// connection attempt on a busy server (TLS, SCRAM) may take a while, and
/// that is not an outage. A refused or reset connection needs no waiting.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Probe attempts that got no answer in time, in a row, before the gate
/// closes.
const FAILURES_TO_CLOSE: u32 = 2;
/// The least time between two probes: slow acquires on a saturated (not
/// unreachable) pool wake the probe often, and each probe may open a
/// connection; at most four a second then.
const PROBE_SPACING: Duration = Duration::from_millis(250);

/// Whether the server is taken to be reachable. Shared by the store and its
/// probe task.
#[derive(Clone)]
pub struct Health {
    up: watch::Sender<bool>,
    /// Wakes the probe before its next tick.
    wake: Arc<Notify>,
    outage_wait: Duration,
}

/// The pool, reachable only through the health gate: a statement's
/// connection comes from [`Gated::conn`], so no new query can skip it.
pub struct Gated {
    pool: PgPool,
    health: Health,
}

impl Gated {
    pub fn new(pool: PgPool, health: Health) -> Gated {
        Gated { pool, health }
    }

    /// A pooled connection, unless the server is known to be unreachable
    /// (see [`Health::acquire`]).
    pub async fn conn(&self) -> StoreResult<PoolConnection<Postgres>> {
        self.health.acquire(&self.pool).await
    }

    /// The pool's occupancy: connections open, idle, and at most.
    pub fn occupancy(&self) -> (u32, u32, u32) {
        let pool = &self.pool;
        (
            pool.size(),
            pool.num_idle() as u32,
            pool.options().get_max_connections(),
        )
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The probe's last verdict.
    pub fn is_up(&self) -> bool {
        self.health.is_up()
    }
}

/// What one probe learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Reached,
    /// Refused, reset, or the server says it is shutting down or starting.
    Down,
    /// No answer in time, or an error that proves nothing either way.
    NoAnswer,
}

impl Health {
    pub fn new(outage_wait: Duration) -> Health {
        Health {
            up: watch::Sender::new(true),
            wake: Arc::new(Notify::new()),
            outage_wait,
        }
    }

    /// The probe's last verdict.
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    fn unavailable() -> StoreError {
        StoreError::Unavailable("the database is unreachable (health probe failing)".into())
    }

    /// The pool, unless the server is known to be unreachable.
    fn gate<'a>(&self, pool: &'a PgPool) -> StoreResult<&'a PgPool> {
        if *self.up.borrow() {
            Ok(pool)
        } else {
            Err(Self::unavailable())
        }
    }

    /// A pooled connection, unless the server is known to be unreachable or
    /// becomes so while this waits for one.
    pub async fn acquire(&self, pool: &PgPool) -> StoreResult<PoolConnection<Postgres>> {
        let pool = self.gate(pool)?;
        let acquire = pool.acquire();
        tokio::pin!(acquire);
        if let Ok(result) = tokio::time::timeout(self.outage_wait, &mut acquire).await {
            return Ok(result?);
        }
        // Slow: a busy pool, or a server that has gone. Ask the probe now
        // rather than at its next tick, and stop waiting if the gate closes.
        self.wake.notify_one();
        let mut up = self.up.subscribe();
        tokio::select! {
            result = &mut acquire => Ok(result?),
            _ = up.wait_for(|up| !*up) => Err(Self::unavailable()),
        }
    }

    fn set(&self, up: bool) {
        if self.up.send_replace(up) != up {
            if up {
                tracing::info!("the database is reachable again");
            } else {
                tracing::warn!("the database is unreachable; answering 503 until it is back");
            }
        }
    }

    /// Probes until the pool is closed: every `PROBE_PERIOD`, and at once
    /// when a slow acquire wakes it.
    pub fn spawn_probe(&self, pool: PgPool, url: &str) {
        let health = self.clone();
        let options = PgConnectOptions::from_str(url).ok();
        tokio::spawn(async move {
            let mut failures = 0;
            while !pool.is_closed() {
                tokio::select! {
                    _ = tokio::time::sleep(PROBE_PERIOD) => {}
                    _ = health.wake.notified() => {}
                }
                let outcome = tokio::time::timeout(PROBE_TIMEOUT, probe(&pool, options.as_ref()))
                    .await
                    .unwrap_or(Probe::NoAnswer);
                match outcome {
                    Probe::Reached => {
                        failures = 0;
                        health.set(true);
                    }
                    Probe::Down => health.set(false),
                    Probe::NoAnswer => {
                        failures += 1;
                        if failures >= FAILURES_TO_CLOSE {
                            health.set(false);
                        }
                    }
                }
                tokio::time::sleep(PROBE_SPACING).await;
            }
        });
    }
}

/// An idle pooled connection is used when there is one; otherwise a fresh
/// connection, so that a pool merely saturated by slow queries is not
/// mistaken for an outage.
async fn probe(pool: &PgPool, options: Option<&PgConnectOptions>) -> Probe {
    if let Some(mut conn) = pool.try_acquire() {
        if conn.ping().await.is_ok() {
            return Probe::Reached;
        }
        // Broken by a server restart: drop it, then try a fresh one.
        conn.close_on_drop();
    }
    let Some(options) = options else {
        return Probe::NoAnswer;
    };
    match options.connect().await {
        Ok(conn) => {
            let _ = conn.close().await;
            Probe::Reached
        }
        Err(e) => classify(&e),
    }
}

/// What a failed connection attempt says about the server.
fn classify(e: &sqlx::Error) -> Probe {
    use std::io::ErrorKind;
    match e {
        sqlx::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotFound
            | ErrorKind::UnexpectedEof
            | ErrorKind::BrokenPipe => Probe::Down,
            _ => Probe::NoAnswer,
        },
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // cannot_connect_now: shutting down, starting or in recovery;
            // admin_shutdown / crash_shutdown.
            Some("57P01" | "57P02" | "57P03") => Probe::Down,
            // Any other answer (e.g. too many connections: the pool's own
            // are busy, not gone) means the server is there.
            _ => Probe::Reached,
        },
        _ => Probe::NoAnswer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_or_reset_connection_is_definitive_and_a_timeout_is_not() {
        let io = |kind| sqlx::Error::Io(std::io::Error::from(kind));
        use std::io::ErrorKind;
        assert_eq!(classify(&io(ErrorKind::ConnectionRefused)), Probe::Down);
        assert_eq!(classify(&io(ErrorKind::ConnectionReset)), Probe::Down);
        assert_eq!(classify(&io(ErrorKind::TimedOut)), Probe::NoAnswer);
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), Probe::NoAnswer);
    }

    #[tokio::test]
    async fn a_call_waiting_for_a_connection_gives_up_when_the_gate_closes() {
        // A pool that can never hand out a connection: nothing listens on
        // the port (bound then released), so connections are refused and
        // sqlx retries them until its acquire timeout of a minute.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let url = format!("postgres://postgres@127.0.0.1:{port}/none");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(60))
            .connect_lazy(&url)
            .unwrap();
        let health = Health::new(Duration::from_millis(20));
        health.spawn_probe(pool.clone(), &url);
        // The guard only keeps a broken test from hanging: without the gate
        // the call would wait the pool's minute.
        let result = tokio::time::timeout(Duration::from_secs(50), health.acquire(&pool))
            .await
            .expect("the call gave up before the pool's acquire timeout");
        match result {
            Err(StoreError::Unavailable(why)) => assert!(why.contains("health probe"), "{why}"),
            other => panic!("expected the gate's 503, got {:?}", other.map(|_| ())),
        }
        // Closed now: the next call does not wait at all.
        assert!(health.gate(&pool).is_err());
        pool.close().await;
    }
}
