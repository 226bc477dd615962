//! The audit trail: security-relevant events (logins, token issuance,
//! revocations, key, client and admin actions) as structured log lines with
//! a stable `event` field, and stored in the database for `sigil audit tail`.
//!
//! Recording never waits for the database: events go into a bounded queue
//! that a background task writes in batches. If the queue is full (the
//! database is down or slower than the event rate) events are dropped from
//! the database, counted in `sigil_audit_dropped_total`, and still logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::store::{NewAudit, Store, StoreError};

const QUEUE: usize = 10_000;
const BATCH: usize = 500;

struct Event {
    at: i64,
    actor: String,
    action: &'static str,
    target: Option<String>,
    detail: Value,
}

/// Who does an action and when, with the trail its events go to.
#[derive(Clone, Copy)]
pub struct By<'a> {
    pub trail: &'a Audit,
    pub actor: &'a str,
    pub at: i64,
}

impl By<'_> {
    /// Records `action` on `target` by this actor at this time.
    pub fn record(&self, action: &'static str, target: &str, detail: Value) {
        self.trail
            .record(self.at, self.actor, action, Some(target), detail);
    }
}

pub struct Audit {
    tx: mpsc::Sender<Event>,
    /// Events queued or being written: what a shutdown waits for.
    pending: Arc<AtomicUsize>,
    /// Taken by the writer task when it starts.
    rx: std::sync::Mutex<Option<mpsc::Receiver<Event>>>,
}

impl Default for Audit {
    fn default() -> Self {
        Self::new()
    }
}

impl Audit {
    pub fn new() -> Audit {
        let (tx, rx) = mpsc::channel(QUEUE);
        Audit {
            tx,
            pending: Arc::new(AtomicUsize::new(0)),
            rx: std::sync::Mutex::new(Some(rx)),
        }
    }

    /// Logs the event and queues it for the database.
    pub fn record(
        &self,
        at: i64,
        actor: &str,
        action: &'static str,
        target: Option<&str>,
        detail: Value,
    ) {
        tracing::info!(event = action, actor, target, %detail, "audit");
        let event = Event {
            at,
            actor: actor.to_string(),
            action,
            target: target.map(str::to_string),
            detail,
        };
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.tx.try_send(event).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!(crate::metrics::AUDIT_DROPPED).increment(1);
        }
    }

    /// Waits, up to `limit`, until every queued event is stored (at
    /// shutdown, before the pool closes); what is left is counted as
    /// dropped.
    pub async fn drain(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.pending.load(Ordering::SeqCst);
        if left > 0 {
            tracing::warn!(events = left, "shutting down with audit events not stored");
            metrics::counter!(crate::metrics::AUDIT_DROPPED).increment(left as u64);
        }
    }

    /// Starts the writer: batches of up to 500 events. While the database is
    /// unavailable a batch waits and is retried (the bounded queue fills
    /// meanwhile, and `record` drops what does not fit); a batch the
    /// database refuses outright is dropped after three attempts.
    pub fn spawn_writer(&self, store: Arc<dyn Store>) {
        let Some(mut rx) = self.rx.lock().ok().and_then(|mut rx| rx.take()) else {
            return;
        };
        let pending = Arc::clone(&self.pending);
        tokio::spawn(async move {
            let mut events = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut events, BATCH).await > 0 {
                let batch: Vec<NewAudit> = events
                    .drain(..)
                    .map(|e| NewAudit {
                        at: e.at,
                        actor: e.actor,
                        action: e.action.to_string(),
                        target: e.target,
                        detail: e.detail.to_string(),
                    })
                    .collect();
                let mut attempt = 0;
                while let Err(e) = store.insert_audit_batch(&batch).await {
                    if let StoreError::Unavailable(_) = e {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    attempt += 1;
                    if attempt >= 3 {
                        tracing::warn!(error = %e, events = batch.len(), "could not store audit events");
                        metrics::counter!(crate::metrics::AUDIT_DROPPED)
                            .increment(batch.len() as u64);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                pending.fetch_sub(batch.len(), Ordering::SeqCst);
            }
        });
    }
}
