//! A bounded soak: mixed traffic at a steady rate, sampled every few
//! seconds. Resources must stay inside their configured bounds and memory
//! must not keep growing; latency is recorded, not asserted.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::crash::backend;
use crate::harness::{Node, metric, provision, scale};
use crate::load::{self, Ledger, Shared, percentile};
use crate::pg::PgCluster;

const MAX_CONNECTIONS: i64 = 6;
const CACHE_CAPACITY: u64 = 10_000;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_soak_holds_memory_files_and_deny_list_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sigil.db", dir.path().display());
    provision(dir.path(), &url);
    soak(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_soak_holds_memory_connections_files_and_deny_list_within_bounds() {
    let Some(pg) = PgCluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    provision(dir.path(), &pg.url());
    soak(dir.path(), &pg.url()).await;
}

/// The sum of a labelled counter's series from `/metrics`.
async fn labelled_sum(node: &Node, name: &str) -> f64 {
    let text = node.get("/metrics").await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
    connections: Option<i64>,
    deny_list: u64,
    ops: usize,
    p99: Duration,
}

async fn soak(dir: &Path, url: &str) {
    let max_connections = MAX_CONNECTIONS.to_string();
    let capacity = CACHE_CAPACITY.to_string();
    let node = Node::start(
        dir,
        url,
        &[
            // Short-lived tokens: deny-list entries expire during the run.
            ("SIGIL_ACCESS_TOKEN_TTL", "10s"),
            ("SIGIL_REVOCATION_CACHE_CAPACITY", &capacity),
            ("SIGIL_DATABASE_MAX_CONNECTIONS", &max_connections),
            // Pruning at its most frequent, so the soak runs it many times.
            ("SIGIL_PRUNE_INTERVAL", "10s"),
        ],
    )
    .await;
    let ledger: Shared = Arc::new(std::sync::Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load::paced(
        node.api(),
        Arc::clone(&ledger),
        6,
        "s".into(),
        Arc::clone(&stop),
        Some(Duration::from_millis(25)),
    ));

    let mut db = match url.starts_with("postgres") {
        true => Some(sqlx::PgConnection::connect(url).await.unwrap()),
        false => None,
    };
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut seen = 0;
    while started.elapsed() < scale().soak {
        tokio::time::sleep(SAMPLE_EVERY).await;
        let (ops, p99) = {
            let l = ledger.lock().unwrap();
            let mut window = l.latencies[seen..].to_vec();
            seen = l.latencies.len();
            (window.len(), percentile(&mut window, 99.0))
        };
        let connections = match db.as_mut() {
            Some(db) => Some(
                sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                )
                .fetch_one(db)
                .await
                .unwrap(),
            ),
            None => None,
        };
        samples.push(Sample {
            at: started.elapsed(),
            rss_kib: node.rss_kib(),
            fds: node.open_fds(),
            connections,
            deny_list: metric(&node, "sigil_denylist_entries").await as u64,
            ops,
            p99,
        });
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let prune_runs = metric(&node, "sigil_prune_runs_total").await;
    let prune_failures = metric(&node, "sigil_prune_failures_total").await;
    let pruned = labelled_sum(&node, "sigil_pruned_rows_total").await;

    let l = ledger.lock().unwrap();
    println!(
        "FAULTS soak {}: {} operations in {:?}; {prune_runs} prune passes ({prune_failures} failed), {pruned} rows pruned",
        backend(url),
        l.answered,
        started.elapsed()
    );
    for s in &samples {
        println!(
            "FAULTS soak {}   t={:>4}s rss={:>6} KiB fds={:>3} connections={:>2} deny_list={:>4} ops={:>5} p99={:?}",
            backend(url),
            s.at.as_secs(),
            s.rss_kib,
            s.fds,
            s.connections.map_or("-".into(), |c| c.to_string()),
            s.deny_list,
            s.ops,
            s.p99
        );
    }
    assert!(l.server_errors.is_empty(), "no 5xx: {:?}", l.server_errors);
    assert!(l.lost_rotations.is_empty(), "{:?}", l.lost_rotations);
    assert!(samples.len() >= 4, "enough samples to compare halves");
    assert!(
        prune_runs >= 3.0,
        "the pruning task ran on its schedule: {prune_runs} passes"
    );
    assert_eq!(prune_failures, 0.0, "no pruning pass failed");

    let first_fds = samples[0].fds;
    for s in &samples {
        assert!(
            s.fds <= first_fds + 32,
            "open files stay flat: {} then {}",
            first_fds,
            s.fds
        );
        assert!(
            s.deny_list <= CACHE_CAPACITY,
            "the deny-list cache stays within its capacity"
        );
        if let Some(c) = s.connections {
            // The pool, the LISTEN connection, and the health probe's.
            assert!(
                c <= MAX_CONNECTIONS + 2,
                "{c} connections for a pool of {MAX_CONNECTIONS}"
            );
        }
    }
    // Memory: the second half peaks no higher than the first (after the
    // first sample's warm-up) plus a quarter and 16 MiB of allocator slack.
    let half = samples.len() / 2;
    let early = samples[1..half.max(2)]
        .iter()
        .map(|s| s.rss_kib)
        .max()
        .unwrap();
    let late = samples[half..].iter().map(|s| s.rss_kib).max().unwrap();
    assert!(
        late <= early + early / 4 + 16 * 1024,
        "resident memory keeps growing: {early} KiB early, {late} KiB late"
    );
}
