//! notes-service: a small notes API that trusts only Sigil's issuer URL.
//!
//! Every route but `/health` needs a Sigil access token for the `notes-api`
//! audience: reading needs `notes:read`, writing `notes:write`. Each user
//! sees only their own notes. Tokens are verified locally by
//! [`sigil_verify`]; revoked tokens stop working within the feed's poll
//! interval. Notes live in memory.

pub mod config;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sigil_verify::Verifier;
use sigil_verify::axum::RequireScope;

sigil_verify::scope!(
    /// Lets a token read its user's notes.
    pub NotesRead = "notes:read"
);
sigil_verify::scope!(
    /// Lets a token create notes.
    pub NotesWrite = "notes:write"
);

/// Longest note accepted, in bytes.
const MAX_NOTE_BYTES: usize = 4096;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Note {
    pub id: u64,
    /// The `sub` of the user who wrote it.
    pub owner: String,
    /// The client the user wrote it with.
    pub client_id: String,
    pub text: String,
}

/// The in-memory store.
#[derive(Debug, Default)]
struct Notes {
    next_id: AtomicU64,
    by_id: RwLock<BTreeMap<u64, Note>>,
}

#[derive(Clone)]
pub struct AppState {
    verifier: Verifier,
    notes: Arc<Notes>,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Verifier {
        state.verifier.clone()
    }
}

/// The whole API, ready to serve.
pub fn app(verifier: Verifier) -> Router {
    let state = AppState {
        verifier,
        notes: Arc::new(Notes::default()),
    };
    Router::new()
        .route("/notes", get(notes_get).post(notes_post))
        .route("/notes/{id}", get(note_get))
        .route("/health", get(health_get))
        .layer(DefaultBodyLimit::max(2 * MAX_NOTE_BYTES))
        .with_state(state)
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    let body = json!({"error": code, "error_description": description});
    (status, Json(body)).into_response()
}

/// `GET /notes`: the caller's notes.
async fn notes_get(
    State(state): State<AppState>,
    caller: RequireScope<NotesRead>,
) -> Json<Vec<Note>> {
    let notes = state
        .notes
        .by_id
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    Json(
        notes
            .values()
            .filter(|n| n.owner == caller.sub)
            .cloned()
            .collect(),
    )
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

/// `POST /notes {"text": …}`: 201 with the note.
async fn notes_post(
    State(state): State<AppState>,
    caller: RequireScope<NotesWrite>,
    body: Result<Json<NewNote>, JsonRejection>,
) -> Response {
    let Ok(Json(new)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be JSON {\"text\": \"…\"}",
        );
    };
    if new.text.trim().is_empty() || new.text.len() > MAX_NOTE_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "text must be 1 to 4096 bytes",
        );
    }
    let note = Note {
        id: state.notes.next_id.fetch_add(1, Ordering::Relaxed) + 1,
        owner: caller.sub.clone(),
        client_id: caller.client_id.clone(),
        text: new.text,
    };
    state
        .notes
        .by_id
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(note.id, note.clone());
    (StatusCode::CREATED, Json(note)).into_response()
}

/// `GET /notes/{id}`: one of the caller's notes; another user's is 404,
/// so ids reveal nothing.
async fn note_get(
    State(state): State<AppState>,
    caller: RequireScope<NotesRead>,
    Path(id): Path<u64>,
) -> Response {
    let notes = state
        .notes
        .by_id
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    match notes.get(&id).filter(|n| n.owner == caller.sub) {
        Some(note) => Json(note.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such note"),
    }
}

/// `GET /health`: the verifier's statistics; 503 while it cannot vouch for
/// revocations (the staleness bound has passed).
async fn health_get(State(state): State<AppState>) -> Response {
    let stats = state.verifier.stats();
    let status = if stats.stale {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(json!({ "verifier": stats }))).into_response()
}
