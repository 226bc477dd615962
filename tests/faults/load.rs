//! Mixed traffic that remembers what the server acknowledged: the ledger a
//! crash must not contradict.
//!
//! Only answers count. A request cut by a crash may or may not have taken
//! effect; the ledger marks what it touched as "in doubt" and the checks
//! leave exactly that out.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{Api, field};

#[derive(Default)]
pub struct Ledger {
    /// Registrations answered 201: (username, password).
    pub users: Vec<(String, String)>,
    /// Login sessions, one per password grant answered 200.
    pub chains: Vec<Chain>,
    /// Access tokens whose revocation was answered 200.
    pub revoked_access: Vec<String>,
    /// Answers by status class, for the report; 5xx other than 503 fail.
    pub answered: usize,
    pub unavailable: usize,
    pub server_errors: Vec<String>,
    /// Requests cut off after they were sent (reset, no complete answer).
    pub cut: usize,
    /// Requests refused at connect (the node was down): never processed.
    pub not_sent: usize,
    /// Refreshes of a live, undoubted chain refused as invalid: a refresh
    /// token that should work did not.
    pub lost_rotations: Vec<String>,
    /// Latencies of answered requests, for percentiles.
    pub latencies: Vec<Duration>,
}

pub struct Chain {
    /// Refresh tokens in the order they were handed out; all but the last
    /// have been spent.
    pub tokens: Vec<String>,
    /// The access token of the last answered grant.
    pub access: String,
    /// A request with the last token got no answer: it may have been spent.
    pub in_doubt: bool,
    /// Its revocation was answered 200.
    pub revoked: bool,
    busy: bool,
}

impl Chain {
    pub fn latest(&self) -> &str {
        self.tokens.last().unwrap()
    }
}

pub type Shared = Arc<Mutex<Ledger>>;

enum Op {
    Register,
    Login,
    Refresh,
    RevokeAccess,
    RevokeSession,
}

fn pick_op(n: u64) -> Op {
    match n % 10 {
        0 | 1 => Op::Register,
        2 | 3 => Op::Login,
        4..=7 => Op::Refresh,
        8 => Op::RevokeAccess,
        _ => Op::RevokeSession,
    }
}

/// A cheap deterministic spread over the ledger (no RNG crate needed).
fn spread(seed: u64, len: usize) -> usize {
    (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) as usize % len.max(1)
}

/// Runs `workers` loops against `node` until `stop` is set; each loop
/// issues one operation at a time and books its outcome.
pub async fn run(
    node: Api,
    ledger: Shared,
    workers: usize,
    tag: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    paced(node, ledger, workers, tag, stop, None).await
}

/// As [`run`], each worker starting one operation every `pace` at most (a
/// steady rate instead of as fast as possible).
pub async fn paced(
    node: Api,
    ledger: Shared,
    workers: usize,
    tag: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
    pace: Option<Duration>,
) {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (node, ledger, stop, tag) = (
            node.clone(),
            Arc::clone(&ledger),
            Arc::clone(&stop),
            tag.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n: u64 = w as u64 * 7919;
            let mut ticker = pace.map(tokio::time::interval);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                n += 1;
                one(&node, &ledger, &format!("{tag}w{w}n{n}"), n).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn one(node: &Api, ledger: &Shared, name: &str, n: u64) {
    match pick_op(n) {
        Op::Register => {
            let password = format!("pw-{name}-secret");
            let started = Instant::now();
            let result = node.register(name, &password).await;
            if book(ledger, &result, started) == Outcome::Answered(201) {
                let mut l = ledger.lock().unwrap();
                l.users.push((name.to_string(), password));
            }
        }
        Op::Login => {
            let user = {
                let l = ledger.lock().unwrap();
                if l.users.is_empty() {
                    return;
                }
                l.users[spread(n, l.users.len())].clone()
            };
            let started = Instant::now();
            let result = node.login(&user.0, &user.1).await;
            if let (_, Some(body)) = ok_json(ledger, result, started).await {
                ledger.lock().unwrap().chains.push(Chain {
                    tokens: vec![field(&body, "refresh_token")],
                    access: field(&body, "access_token"),
                    in_doubt: false,
                    revoked: false,
                    busy: false,
                });
            }
        }
        Op::Refresh => {
            let Some((i, token)) = take_chain(ledger, n) else {
                return;
            };
            let started = Instant::now();
            let result = node.refresh(&token).await;
            let (outcome, body) = ok_json(ledger, result, started).await;
            let mut l = ledger.lock().unwrap();
            let chain = &mut l.chains[i];
            chain.busy = false;
            match (outcome, body) {
                (_, Some(body)) => {
                    chain.tokens.push(field(&body, "refresh_token"));
                    chain.access = field(&body, "access_token");
                }
                (Outcome::NotSent, None) => {}
                (Outcome::Answered(400), None) => {
                    let note = format!("chain {i}: refresh token {} refused", chain.tokens.len());
                    l.lost_rotations.push(note);
                }
                // A 503 (or no answer) may come after the spend committed.
                _ => chain.in_doubt = true,
            }
        }
        Op::RevokeAccess => {
            let Some((i, _)) = take_chain(ledger, n) else {
                return;
            };
            let access = ledger.lock().unwrap().chains[i].access.clone();
            let started = Instant::now();
            let result = node.revoke(&access).await;
            let outcome = book(ledger, &result, started);
            let mut l = ledger.lock().unwrap();
            l.chains[i].busy = false;
            if outcome == Outcome::Answered(200) {
                l.revoked_access.push(access);
            }
        }
        Op::RevokeSession => {
            let Some((i, token)) = take_chain(ledger, n) else {
                return;
            };
            let started = Instant::now();
            let result = node.revoke(&token).await;
            let outcome = book(ledger, &result, started);
            let mut l = ledger.lock().unwrap();
            let chain = &mut l.chains[i];
            chain.busy = false;
            match outcome {
                Outcome::Answered(200) => chain.revoked = true,
                Outcome::Cut => chain.in_doubt = true,
                _ => {}
            }
        }
    }
}

/// Claims a live chain no other worker is using.
fn take_chain(ledger: &Shared, n: u64) -> Option<(usize, String)> {
    let mut l = ledger.lock().unwrap();
    let len = l.chains.len();
    let start = spread(n, len);
    for k in 0..len {
        let i = (start + k) % len;
        let c = &mut l.chains[i];
        if !c.busy && !c.in_doubt && !c.revoked {
            c.busy = true;
            return Some((i, c.latest().to_string()));
        }
    }
    None
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The connection was refused: the server never saw it (the node is
    /// down between a kill and its restart).
    NotSent,
    /// Sent, but no complete answer: it may or may not have taken effect.
    Cut,
    Answered(u16),
}

/// Books a request's outcome in the ledger.
fn book(ledger: &Shared, result: &reqwest::Result<reqwest::Response>, started: Instant) -> Outcome {
    let outcome = match result {
        Ok(response) => Outcome::Answered(response.status().as_u16()),
        Err(e) if e.is_connect() => Outcome::NotSent,
        Err(_) => Outcome::Cut,
    };
    record(ledger, outcome, started);
    outcome
}

fn record(ledger: &Shared, outcome: Outcome, started: Instant) {
    let mut l = ledger.lock().unwrap();
    match outcome {
        Outcome::Answered(status) => {
            l.answered += 1;
            l.latencies.push(started.elapsed());
            if status == 503 {
                l.unavailable += 1;
            } else if status >= 500 {
                l.server_errors.push(status.to_string());
            }
        }
        Outcome::Cut => l.cut += 1,
        Outcome::NotSent => l.not_sent += 1,
    }
}

/// Books the request and, for a 200 whose JSON body arrived whole, returns
/// the body. A crash between the headers and the body leaves the request
/// cut, like no answer at all.
async fn ok_json(
    ledger: &Shared,
    result: reqwest::Result<reqwest::Response>,
    started: Instant,
) -> (Outcome, Option<Value>) {
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            let outcome = if e.is_connect() {
                Outcome::NotSent
            } else {
                Outcome::Cut
            };
            record(ledger, outcome, started);
            return (outcome, None);
        }
    };
    let status = response.status();
    let body = response.json::<Value>().await.ok();
    let outcome = match (status, &body) {
        (StatusCode::OK, None) => Outcome::Cut,
        _ => Outcome::Answered(status.as_u16()),
    };
    record(ledger, outcome, started);
    match (status, outcome) {
        (StatusCode::OK, Outcome::Answered(_)) => (outcome, body),
        _ => (outcome, None),
    }
}

/// The p-th percentile (0-100) of `samples`.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank]
}
