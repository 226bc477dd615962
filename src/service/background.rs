//! The work a serving node does on its own: key transitions and the key
//! schedule, deny-list synchronisation with the other nodes, forgetting
//! cached clients and rebuilding the discovery documents when a client
//! changes elsewhere, the audit writer, and pruning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::prune::{PruneReport, prune_store};
use crate::state::Sigil;
use crate::store::StoreResult;

/// Starts every background task of a serving node.
pub fn spawn_background(sigil: &Arc<Sigil>) {
    sigil.audit.spawn_writer(Arc::clone(&sigil.store));
    sigil.clients.spawn_invalidation(sigil.store.as_ref());
    sigil.spawn_key_refresh(Duration::from_secs(5));
    sigil.spawn_key_scheduler();
    spawn_pruning(sigil);
    sigil.spawn_metadata_refresh();
    sigil.deny_list.spawn_sync(
        Arc::clone(&sigil.store),
        Arc::clone(&sigil.clock),
        sigil.config.revocation_poll_interval,
    );
}

/// One pruning pass now, at the node's clock: the database, then this
/// node's in-memory deny-list. Counts the run (and a failure) and its
/// duration in the metrics.
pub async fn prune_once(sigil: &Sigil) -> StoreResult<PruneReport> {
    let started = Instant::now();
    let now = sigil.clock.now();
    let result = prune_store(
        sigil.store.as_ref(),
        crate::prune::Cutoffs::at(&sigil.config.prune_ages(), now),
    )
    .await;
    metrics::histogram!(crate::metrics::PRUNE_DURATION).record(started.elapsed().as_secs_f64());
    metrics::counter!(crate::metrics::PRUNE_RUNS).increment(1);
    let mut report = match result {
        Ok(report) => report,
        Err(e) => {
            metrics::counter!(crate::metrics::PRUNE_FAILURES).increment(1);
            sigil.pruning.count_pass();
            return Err(e);
        }
    };
    report.deny_list_memory = sigil.deny_list.forget_expired(now);
    sigil.pruning.count_pass();
    if report.rows() > 0 {
        tracing::info!(
            revocations = report.revocations,
            refresh_tokens = report.refresh_tokens,
            refresh_families = report.refresh_families,
            throttle = report.throttle,
            audit = report.audit,
            authorization_codes = report.authorization_codes,
            browser_sessions = report.browser_sessions,
            "pruned rows that can no longer matter"
        );
    }
    Ok(report)
}

/// Prunes at once (so a node restarted often still prunes) and then every
/// `prune_interval`. A failed pass (the database is down) is logged and
/// retried at the next tick; the task never ends on its own.
fn spawn_pruning(sigil: &Arc<Sigil>) -> tokio::task::JoinHandle<()> {
    let sigil = Arc::clone(sigil);
    let period = sigil.config.prune_interval;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = prune_once(&sigil).await {
                tracing::warn!(error = %e, "pruning failed; will retry at the next interval");
            }
        }
    })
}
