//! Sigil, a standalone identity provider: asymmetric JWT access tokens
//! (RS256, EdDSA), a JWKS, and OAuth 2.0.
//!
//! Layers, each depending only on those below it (`scripts/imports.py
//! --list src` prints every module's imports and fails on a circle):
//!
//! 1. `http` (axum), `cli` — the entry points.
//! 2. `service` (one function per state-changing action, and the node's
//!    background tasks), `oauth` (the grants and endpoints' protocol,
//!    the authorization endpoint and OpenID Connect among them).
//! 3. `state` — [`Sigil`], the composition root: config, store, keyring,
//!    caches.
//! 4. `config` (the settings, validated at start), `metadata` (the
//!    discovery documents).
//! 5. The domain: `users`, `clients`, `browser` (sessions, consent),
//!    `authn` (how a user authenticated), `mfa` (TOTP, recovery codes,
//!    passkeys), `dpop` (proofs, RFC 9449), `replay` (one-time ids), `client_cache`, `user_cache`,
//!    `revocation`, `throttle`, `passwords`, `prune`, `keys`, `tokens`,
//!    `audit`, `fresh_cache`, `scope`.
//! 6. Leaves: `clock`, `metrics`, `logging`, and the store — the crate
//!    `sigil-store` (`store/`), so that Cargo refuses an import from it
//!    upward.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod authn;
pub mod browser;
pub mod cli;
pub mod client_cache;
pub mod clients;
pub mod clock;
pub mod config;
pub mod dpop;
pub mod fresh_cache;
pub mod http;
pub mod keys;
pub mod logging;
pub mod metadata;
pub mod metrics;
pub mod mfa;
pub mod oauth;
pub mod passwords;
pub mod prune;
pub mod replay;
pub mod revocation;
pub mod scope;
pub mod service;
pub mod state;
pub mod throttle;
pub mod tokens;
pub mod user_cache;
pub mod users;

/// The store is the crate `sigil-store` (see `store/`), re-exported here.
pub use sigil_store as store;

pub use state::Sigil;
