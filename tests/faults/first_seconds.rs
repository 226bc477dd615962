//! The first seconds of a Postgres outage, measured from the moment the
//! stop begins: how long requests that need the database wait for their
//! 503, and whether what needs no database (JWKS, both metadata documents)
//! answers 200 throughout.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::{Api, field, json_of};
use crate::load::percentile;

/// Requests made while sampling, by what they found.
#[derive(Default)]
pub struct FirstSeconds {
    /// How long each 503 took.
    pub unavailable: Vec<Duration>,
    /// Requests answered otherwise (before the server was gone, or from a
    /// node's memory).
    pub answered: usize,
    /// Anything a client must never see: a 5xx other than 503, a dropped
    /// connection, a 503 without `Retry-After`.
    pub wrong: Vec<String>,
    /// Requests that need no database and did not get a 200.
    pub spared_failures: Vec<String>,
}

impl FirstSeconds {
    pub fn p99_and_max(&self) -> (Duration, Duration) {
        let mut samples = self.unavailable.clone();
        let max = samples.iter().max().copied().unwrap_or_default();
        (percentile(&mut samples, 99.0), max)
    }
}

const PAUSE: Duration = Duration::from_millis(20);

/// Sends requests for `window` from now: logins, registrations, refreshes
/// and `/users/me` from four tasks, and the JWKS and metadata from a fifth.
/// `username`/`password` log in; each task registers names under `tag`.
pub async fn sample(
    api: Api,
    username: &'static str,
    password: &'static str,
    tag: String,
    window: Duration,
) -> FirstSeconds {
    let started = Instant::now();
    let session = json_of(api.login(username, password).await.unwrap()).await;
    let access = field(&session, "access_token");
    let refresh = Arc::new(Mutex::new(field(&session, "refresh_token")));
    let found = Arc::new(Mutex::new(FirstSeconds::default()));
    let mut tasks = Vec::new();
    for kind in 0..4 {
        let (api, found, refresh) = (api.clone(), Arc::clone(&found), Arc::clone(&refresh));
        let (username, password, access) =
            (username.to_string(), password.to_string(), access.clone());
        let tag = format!("{tag}{kind}");
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while started.elapsed() < window {
                n += 1;
                let t = Instant::now();
                let response = match kind {
                    0 => api.login(&username, &password).await,
                    1 => {
                        api.register(&format!("{tag}n{n}"), "password-first-seconds")
                            .await
                    }
                    2 => {
                        let token = refresh.lock().unwrap().clone();
                        api.refresh(&token).await
                    }
                    _ => api.me(&access).await,
                };
                let took = t.elapsed();
                book(&found, &refresh, kind == 2, response, took).await;
                tokio::time::sleep(PAUSE).await;
            }
        }));
    }
    let spared = {
        let (api, found) = (api.clone(), Arc::clone(&found));
        tokio::spawn(async move {
            while started.elapsed() < window {
                for path in [
                    "/.well-known/jwks.json",
                    "/.well-known/oauth-authorization-server",
                    "/.well-known/openid-configuration",
                ] {
                    let status = api.get(path).await.map(|r| r.status());
                    if !matches!(status, Ok(StatusCode::OK)) {
                        found
                            .lock()
                            .unwrap()
                            .spared_failures
                            .push(format!("{path}: {status:?} at {:?}", started.elapsed()));
                    }
                }
                tokio::time::sleep(PAUSE).await;
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    spared.await.unwrap();
    std::mem::take(&mut *found.lock().unwrap())
}

async fn book(
    found: &Mutex<FirstSeconds>,
    refresh: &Mutex<String>,
    is_refresh: bool,
    response: reqwest::Result<reqwest::Response>,
    took: Duration,
) {
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            found.lock().unwrap().wrong.push(format!("no answer: {e}"));
            return;
        }
    };
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let mut found = found.lock().unwrap();
        if response.headers().contains_key("retry-after") {
            found.unavailable.push(took);
        } else {
            found.wrong.push("a 503 without Retry-After".into());
        }
    } else if status.is_server_error() {
        found.lock().unwrap().wrong.push(format!("{status}"));
    } else {
        if is_refresh && status == StatusCode::OK {
            // Keep the chain: the next refresh presents the successor.
            let body = json_of(response).await;
            *refresh.lock().unwrap() = field(&body, "refresh_token");
        }
        found.lock().unwrap().answered += 1;
    }
}
