//! `chain-example`: three resource services that pass a user's request
//! along, each verifying the token it is sent with [`sigil_verify`], and
//! RFC 8693 token exchange in the middle so that the last one sees both
//! the user and the service that acts for them.
//!
//! ```text
//!  user ── Bearer (aud service-a) ──► gateway ── same token ──► service A
//!                                     verifies it               verifies it (aud service-a),
//!                                     (aud service-a)           exchanges it at Sigil:
//!                                                                 subject = the user's token
//!                                                                 actor   = its own token (client_credentials)
//!                                                                 audience service-b, scope reports:read
//!                                                                      │
//!                                      service B ◄── Bearer (aud service-b, act: service-a) ──┘
//!                                      verifies it (aud service-b), requires `act`,
//!                                      answers: the user (`sub`) and the actors
//! ```
//!
//! - [`gateway`]: the users' entry point, a plain proxy to service A.
//! - [`service_a`]: a confidential client of Sigil allowed the
//!   token-exchange grant, for audience `service-b` only.
//! - [`service_b`]: accepts only exchanged tokens, never the user's own.
//!
//! Each service trusts Sigil's issuer URL and nothing else; none shares a
//! secret with another. See README.md for running them against a Sigil.

pub mod gateway;
pub mod service_a;
pub mod service_b;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sigil_verify::{Verifier, VerifierBuilder};

/// The scope service B requires, and the one service A narrows the user's
/// token to when it exchanges it.
pub const REPORTS_READ: &str = "reports:read";

sigil_verify::scope!(
    /// Lets a token read the user's reports.
    pub ReportsRead = "reports:read"
);

/// How the three services reach Sigil and each other.
#[derive(Clone)]
pub struct Settings {
    /// Sigil's issuer URL, exactly as Sigil spells it.
    pub issuer: String,
    /// Service A's client at Sigil (`service-a`). It is also the audience
    /// of the users' tokens that the gateway and service A accept: Sigil
    /// exchanges only a token addressed to the client exchanging it.
    pub service_a_client_id: String,
    pub service_a_client_secret: String,
    /// The audience of the tokens service B accepts (`service-b`): what
    /// service A asks the exchange for.
    pub service_b_audience: String,
    /// Where the gateway finds service A (`http://127.0.0.1:8091`).
    pub service_a_url: String,
    /// Where service A finds service B (`http://127.0.0.1:8092`).
    pub service_b_url: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("issuer", &self.issuer)
            .field("service_a_client_id", &self.service_a_client_id)
            .field("service_b_audience", &self.service_b_audience)
            .field("service_a_url", &self.service_a_url)
            .field("service_b_url", &self.service_b_url)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// A verifier builder for a service that accepts tokens for
    /// `audience`: Sigil's keys come from its metadata, and refusals
    /// name the audience as realm. A real deployment adds
    /// `.revocation_feed(..)` with a confidential client of its own (see
    /// examples/notes); tests add a clock.
    pub fn verifier(&self, audience: &str) -> VerifierBuilder {
        Verifier::builder()
            .issuer(&self.issuer)
            .audience(audience)
            .realm(audience)
    }
}

/// A JSON error, the shape Sigil and sigil-verify use.
fn error(status: StatusCode, code: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": code, "error_description": description});
    (status, Json(body)).into_response()
}
