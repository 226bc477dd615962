//! # sigil-verify
//!
//! Verification of [Sigil](https://github.com/) access tokens for Rust
//! resource services: no shared secret, and no call to Sigil per request.
//!
//! A [`Verifier`] trusts one issuer URL. From it, it
//!
//! - discovers the JWKS (RFC 8414 metadata) and keeps it for as long as
//!   `Cache-Control: max-age` allows, revalidating in the background with
//!   `If-None-Match` before it expires;
//! - pins every key to its own JWK `alg` (RS256 or EdDSA) and refuses a token
//!   whose header names another, as well as `none`, HMAC, embedded or
//!   referenced keys (`jwk`, `jku`, `x5u`, `x5c`) and any `crit` header;
//! - requires `typ: at+jwt` and checks `iss`, `aud`, `exp`, `nbf`/`iat`
//!   with a small leeway (RFC 9068 §4);
//! - on an unknown `kid`, re-fetches the JWKS once for all concurrent callers,
//!   at most once per cooldown, and remembers `kid`s that a fresh set did not
//!   list, so forged `kid`s cannot make it hammer Sigil — while a freshly
//!   rotated key is never refused because of the cooldown;
//! - polls Sigil's revocation feed and refuses revoked tokens, sessions,
//!   users' older tokens and tokens of emergency-removed keys; when Sigil
//!   has been unreachable for longer than a staleness bound it fails closed
//!   (or open, if configured), and says so in its errors and [`Stats`].
//!
//! With the `axum` feature (default) the [`Claims`] type is an axum
//! extractor, [`axum::RequireScope`] demands a scope, and
//! [`axum::VerifyLayer`] serves other tower stacks.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use sigil_verify::{Claims, Verifier};
//! use sigil_verify::axum::RequireScope;
//!
//! sigil_verify::scope!(NotesRead = "notes:read");
//!
//! async fn list_notes(caller: RequireScope<NotesRead>) -> String {
//!     format!("notes of {}", caller.sub)
//! }
//!
//! async fn whoami(claims: Claims) -> String {
//!     claims.sub
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder()
//!     .issuer("https://sigil.example.com")
//!     .audience("notes-api")
//!     .revocation_feed("notes-api", std::env::var("NOTES_FEED_SECRET")?)
//!     .build()
//!     .await?;
//! let app = Router::new()
//!     .route("/notes", get(list_notes))
//!     .route("/whoami", get(whoami))
//!     .with_state(verifier);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! The verifier never logs a token. It depends on neither sqlx nor argon2.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

// The modules import one way, each only from those listed before it:
//
//   clock, claims, jwks, fail_mode    (import no other module)
//   error       <- fail_mode
//   revocation  <- claims, error
//   token       <- claims, error, jwks
//   stats       <- fail_mode
//   settings    <- clock, fail_mode, token
//   verifier    <- claims, error, fail_mode, jwks, revocation, settings,
//                  stats, token
//   builder     <- clock, error, fail_mode, settings, token, verifier
//   axum        <- claims, error, verifier (through the re-exports below)
//
// `builder` checks a `VerifierBuilder` into `Settings` and hands them to
// `Verifier::start`; `verifier` never names the builder (`Verifier::builder`
// is defined in `builder`).
#[cfg(feature = "axum")]
pub mod axum;
mod builder;
mod claims;
mod clock;
mod dpop;
mod error;
mod fail_mode;
mod feed_auth;
mod jwks;
mod revocation;
mod settings;
mod stats;
mod token;
mod verifier;

pub use builder::{
    DEFAULT_LEEWAY, DEFAULT_NEGATIVE_CACHE_TTL, DEFAULT_REFETCH_COOLDOWN, DEFAULT_STALENESS_BOUND,
    VerifierBuilder,
};
pub use claims::{ACR_ORDER, Actor, Claims, Confirmation};
pub use clock::{Clock, SystemClock};
pub use error::{BuildError, RevokedBy, StaleSource, Staleness, VerifyError};
pub use fail_mode::FailMode;
pub use stats::Stats;
pub use verifier::Verifier;
