//! Black-box API tests: one binary (each file under tests/ would be its own
//! slow-to-link binary). Every storage-touching test runs on SQLite always
//! and on Postgres when a server is reachable (see helpers.rs).

mod authenticator;
mod browser;
mod client_keys;
mod helpers;

mod admin;
mod after_revocation;
mod authorize;
mod chain_example;
mod cli;
mod client_lifetimes;
mod code_clients;
mod conformance;
mod device;
mod device_example;
mod discovery;
mod dpop;
mod forged_tokens;
mod introspection;
mod keys;
mod login_example;
mod mfa;
mod multi_node;
mod observability;
mod oidc;
mod one_path;
mod openapi;
mod passkeys;
mod private_key_jwt;
mod properties;
mod pruning;
mod refresh;
mod registration;
mod request_limits;
mod revocation;
mod startup;
mod startup_refusals;
mod throttle;
mod token;
mod token_exchange;
mod users_me;
