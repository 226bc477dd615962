//! The sign-up page (when `registration` is open): the same registration
//! as `POST /users` (its throttle, rules and audit), then signed in, and
//! on with the authorization request it was reached from.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::SecretString;

use super::super::AppState;
use super::super::observe::ClientAddr;
use super::csrf::{CsrfToken, PageForm};
use super::flow::{then_of, unavailable};
use super::render::{Chrome, error_page, page_with_script_if};
use super::steps::signed_in;
use crate::authn::{Authn, Factor};
use crate::oauth::authorize::Done;
use crate::passwords::PasswordError;
use crate::service::{self, Ops};
use crate::store::StoreError;
use crate::users::{RegisterError, Registration};

#[derive(Template)]
#[template(path = "sign_up.html")]
struct SignUpPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    request: &'a str,
    device: &'a str,
    username: &'a str,
    email: &'a str,
    errors: Vec<String>,
    sign_in_href: String,
    /// Accounts with a passkey alone may be made (`mfa.passkey_only_accounts`).
    passkey_only: bool,
}

#[derive(serde::Deserialize)]
pub struct SignUpQuery {
    request: Option<String>,
    device: Option<String>,
}

fn closed(state: &AppState) -> Response {
    error_page(
        &state.chrome,
        StatusCode::FORBIDDEN,
        "Self-service registration is closed on this server.",
    )
}

fn render(
    state: &AppState,
    headers: &HeaderMap,
    (request, device): (&str, &str),
    (username, email): (&str, &str),
    errors: Vec<String>,
    status: StatusCode,
) -> Response {
    let csrf = CsrfToken::for_page(state, headers);
    // Back to the sign-in form of the same request (or the plain one).
    let sign_in_href = if !request.is_empty() {
        format!("/authorize?{request}")
    } else if !device.is_empty() {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("device", device);
        format!("/login?{}", query.finish())
    } else {
        "/login".to_string()
    };
    let view = SignUpPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        request,
        device,
        username,
        email,
        errors,
        sign_in_href,
        passkey_only: state.sigil.config.mfa.passkey_only_accounts
            && state.sigil.webauthn.is_some(),
    };
    let script = view.passkey_only;
    csrf.attach(page_with_script_if(script, status, &view, None))
}

pub async fn signup_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignUpQuery>,
) -> Response {
    if !state.sigil.config.registration {
        return closed(&state);
    }
    let request = query.request.unwrap_or_default();
    let device = query.device.unwrap_or_default();
    render(
        &state,
        &headers,
        (&request, &device),
        ("", ""),
        Vec::new(),
        StatusCode::OK,
    )
}

#[tracing::instrument(skip_all, name = "signup_post")]
pub async fn signup_post(
    State(state): State<AppState>,
    client_addr: Option<Extension<ClientAddr>>,
    form: PageForm,
) -> Response {
    let sigil = &state.sigil;
    if !sigil.config.registration {
        return closed(&state);
    }
    let now = sigil.clock.now();
    let then = match then_of(&state, &form, now).await {
        Ok(then) => then,
        Err(response) => return response,
    };
    let carried_text = form.get("request").unwrap_or_default();
    let carried_device = form.get("device").unwrap_or_default();
    let username = form.get("username").unwrap_or_default();
    let email = form.get("email").unwrap_or_default();
    let again = |errors: Vec<String>, status| {
        render(
            &state,
            &form.headers,
            (carried_text, carried_device),
            (username, email),
            errors,
            status,
        )
    };
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    match sigil
        .throttle
        .registration(sigil.store.as_ref(), from, now)
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(_retry_after)) => {
            let message = "Too many accounts were created from this address. Try again later.";
            return again(vec![message.into()], StatusCode::TOO_MANY_REQUESTS);
        }
        Err(e) => return unavailable(&state.chrome, e),
    }
    let registration = Registration {
        username: username.to_string(),
        email: email.to_string(),
        password: SecretString::from(form.get("password").unwrap_or_default().to_string()),
    };
    let ops = Ops::on(sigil, service::ANONYMOUS);
    let registered = service::users::register(&ops, &sigil.passwords, registration).await;
    match registered {
        Ok(_) => {}
        Err(RegisterError::Invalid(errors)) => {
            let errors = errors
                .into_iter()
                .map(|(f, m)| format!("The {f} {m}."))
                .collect();
            return again(errors, StatusCode::BAD_REQUEST);
        }
        Err(RegisterError::Taken(field)) => {
            return again(
                vec![format!("That {field} is already registered.")],
                StatusCode::CONFLICT,
            );
        }
        Err(RegisterError::Hash(PasswordError::Busy)) => {
            let message = "Too many sign-ins are in progress. Try again in a moment.";
            return again(vec![message.into()], StatusCode::SERVICE_UNAVAILABLE);
        }
        Err(RegisterError::Hash(e)) => {
            return unavailable(&state.chrome, StoreError::Other(e.to_string()));
        }
        Err(RegisterError::Store(e)) => return unavailable(&state.chrome, e),
    }
    let user = match sigil
        .store
        .user_by_username(&username.to_ascii_lowercase())
        .await
    {
        Ok(Some(user)) => user,
        Ok(None) => return unavailable(&state.chrome, StoreError::NotFound),
        Err(e) => return unavailable(&state.chrome, e),
    };
    let authn = Authn::with(Factor::Password);
    let done = Done {
        signed_in: true,
        ..Done::default()
    };
    signed_in(&state, &form.headers, &then, &user, &authn, now, done).await
}
