//! The app's two pages, as plain HTML (everything shown is escaped).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::SignedIn;

pub fn home(user: Option<&SignedIn>) -> Response {
    let body = match user {
        Some(user) => format!(
            "<p id=\"signed-in\">Signed in as <strong id=\"username\">{}</strong> \
             (<span id=\"email\">{}</span>), subject <code id=\"subject\">{}</code>.</p>\n\
             <form method=\"post\" action=\"/logout\"><button type=\"submit\" id=\"sign-out\">\
             Sign out</button></form>",
            escape(&user.username),
            escape(user.email.as_deref().unwrap_or("no email")),
            escape(&user.subject),
        ),
        None => "<p id=\"signed-out\">You are not signed in.</p>\n\
                 <p><a id=\"sign-in\" href=\"/login\">Sign in with Sigil</a></p>"
            .to_string(),
    };
    page(StatusCode::OK, &body)
}

pub fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<p id=\"error\">{}</p>\n<p><a href=\"/\">Back</a></p>",
        escape(message)
    );
    page(status, &body)
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Log in with Sigil</title></head>\n<body><h1>Log in with Sigil</h1>\n{body}\n\
         </body></html>\n"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}
