//! The service's configuration, from the environment. It trusts one thing:
//! the issuer URL of a Sigil. Every error names the variable at fault.

use std::net::SocketAddr;
use std::time::Duration;

use sigil_verify::{FailMode, Verifier, VerifierBuilder};

/// Everything the service needs to start.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `SIGIL_ISSUER`: Sigil's issuer URL, exactly as Sigil spells it.
    pub issuer: String,
    /// `NOTES_LISTEN`: the address to serve on (default `127.0.0.1:8081`).
    pub listen: SocketAddr,
    /// `NOTES_AUDIENCE`: the `aud` Sigil issues for this service (default
    /// `notes-api`; create clients with `--audience notes-api`).
    pub audience: String,
    /// `NOTES_FEED_CLIENT_ID` and `NOTES_FEED_CLIENT_SECRET`: a confidential
    /// client that may read the revocation feed. Without them revoked tokens
    /// keep working until they expire.
    pub feed: Option<(String, String)>,
    /// `NOTES_POLL_INTERVAL_MS`: how often to poll the feed (default: what
    /// the feed advertises).
    pub poll_interval: Option<Duration>,
    /// `NOTES_STALENESS_SECS`: how long the feed may be unreachable before
    /// the fail mode applies (default 300).
    pub staleness_bound: Option<Duration>,
    /// `NOTES_FAIL_MODE`: `closed` (default) or `open`.
    pub fail_mode: FailMode,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("listen", &self.listen)
            .field("audience", &self.audience)
            .field("feed_client_id", &self.feed.as_ref().map(|(id, _)| id))
            .field("poll_interval", &self.poll_interval)
            .field("staleness_bound", &self.staleness_bound)
            .field("fail_mode", &self.fail_mode)
            .finish()
    }
}

/// A configuration problem, naming the variable.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

fn bad(message: String) -> ConfigError {
    ConfigError(message)
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let issuer = var("SIGIL_ISSUER").ok_or_else(|| {
            bad(
                "SIGIL_ISSUER is not set: set it to your Sigil's issuer URL, e.g. \
                 SIGIL_ISSUER=http://127.0.0.1:8080"
                    .into(),
            )
        })?;
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(bad(format!(
                "SIGIL_ISSUER={issuer:?} is not an http(s) URL"
            )));
        }
        let listen = match var("NOTES_LISTEN") {
            None => SocketAddr::from(([127, 0, 0, 1], 8081)),
            Some(text) => text.parse().map_err(|_| {
                bad(format!(
                    "NOTES_LISTEN={text:?} is not an address like 127.0.0.1:8081"
                ))
            })?,
        };
        let audience = var("NOTES_AUDIENCE").unwrap_or_else(|| "notes-api".into());
        let feed = match (var("NOTES_FEED_CLIENT_ID"), var("NOTES_FEED_CLIENT_SECRET")) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            _ => {
                return Err(bad(
                    "set both NOTES_FEED_CLIENT_ID and NOTES_FEED_CLIENT_SECRET, or neither".into(),
                ));
            }
        };
        let number = |name: &str| -> Result<Option<u64>, ConfigError> {
            var(name)
                .map(|text| {
                    text.trim()
                        .parse::<u64>()
                        .map_err(|_| bad(format!("{name}={text:?} is not a whole number")))
                })
                .transpose()
        };
        let poll_interval = number("NOTES_POLL_INTERVAL_MS")?.map(Duration::from_millis);
        let staleness_bound = number("NOTES_STALENESS_SECS")?.map(Duration::from_secs);
        let fail_mode = match var("NOTES_FAIL_MODE").as_deref() {
            None | Some("closed") => FailMode::Closed,
            Some("open") => FailMode::Open,
            Some(other) => {
                return Err(bad(format!(
                    "NOTES_FAIL_MODE={other:?} must be `closed` or `open`"
                )));
            }
        };
        Ok(Config {
            issuer,
            listen,
            audience,
            feed,
            poll_interval,
            staleness_bound,
            fail_mode,
        })
    }

    /// A verifier builder with these settings; tests add a clock.
    pub fn verifier(&self) -> VerifierBuilder {
        let mut builder = Verifier::builder()
            .issuer(&self.issuer)
            .audience(&self.audience)
            .realm("notes")
            .fail_mode(self.fail_mode);
        if let Some((id, secret)) = &self.feed {
            builder = builder.revocation_feed(id, secret);
        }
        if let Some(interval) = self.poll_interval {
            builder = builder.poll_interval(interval);
        }
        if let Some(bound) = self.staleness_bound {
            builder = builder.staleness_bound(bound);
        }
        builder
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn only_the_issuer_is_required() {
        let config = load(&[("SIGIL_ISSUER", "http://127.0.0.1:8080")]).unwrap();
        assert_eq!(config.audience, "notes-api");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(config.feed, None);
        assert_eq!(config.fail_mode, FailMode::Closed);
    }

    #[test]
    fn every_error_names_its_variable() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[], "SIGIL_ISSUER is not set"),
            (&[("SIGIL_ISSUER", "sigil.example")], "SIGIL_ISSUER="),
            (
                &[("SIGIL_ISSUER", "http://s"), ("NOTES_LISTEN", "8081")],
                "NOTES_LISTEN=",
            ),
            (
                &[("SIGIL_ISSUER", "http://s"), ("NOTES_FEED_CLIENT_ID", "x")],
                "NOTES_FEED_CLIENT_SECRET",
            ),
            (
                &[("SIGIL_ISSUER", "http://s"), ("NOTES_FAIL_MODE", "maybe")],
                "NOTES_FAIL_MODE=",
            ),
            (
                &[
                    ("SIGIL_ISSUER", "http://s"),
                    ("NOTES_POLL_INTERVAL_MS", "1s"),
                ],
                "NOTES_POLL_INTERVAL_MS=",
            ),
        ];
        for (vars, expected) in cases {
            let error = load(vars).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
