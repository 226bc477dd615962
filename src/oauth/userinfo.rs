//! OIDC Core §5.3 UserInfo: the claims a token's scopes release (§5.4).

use serde_json::{Value, json};

use crate::scope::Scopes;
use crate::users::User;

/// `sub` always; `preferred_username` with `profile`; `email` and
/// `email_verified` with `email` (Sigil does not verify addresses, so it
/// says so: `false`).
pub fn claims(user: &User, scope: &Scopes) -> Value {
    let mut claims = json!({ "sub": user.id });
    if scope.contains("profile") {
        claims["preferred_username"] = json!(user.username);
    }
    if scope.contains("email") {
        claims["email"] = json!(user.email);
        claims["email_verified"] = json!(false);
    }
    claims
}
