//! Sigil, a standalone identity provider: asymmetric JWT access tokens
//! (RS256, EdDSA), a JWKS, and OAuth 2.0.
//!
//! Layers, each depending only on those to its right:
//! `http` → `oauth`, `users` → `tokens`, `keys`, `passwords`, `clients`,
//! `client_cache`, `user_cache` (both on `fresh_cache`) → `store`.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod cli;
pub mod client_cache;
pub mod clients;
pub mod clock;
pub mod config;
pub mod fresh_cache;
pub mod http;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod oauth;
pub mod passwords;
pub mod prune;
pub mod revocation;
pub mod scope;
pub mod state;
pub mod store;
pub mod throttle;
pub mod tokens;
pub mod user_cache;
pub mod users;

pub use state::Sigil;
