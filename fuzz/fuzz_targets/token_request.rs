//! Any form body at the token endpoint: parameter parsing (repeated
//! names refused), then the username, email and scope parsers on whatever
//! values it holds. Nothing panics; what is accepted re-parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigil::oauth::Params;
use sigil::scope::Scopes;
use sigil::users::{Email, Username};

fuzz_target!(|data: &[u8]| {
    let pairs = form_urlencoded::parse(data);
    let Ok(params) = Params::from_pairs(pairs) else {
        return;
    };
    for name in ["username", "client_id", "email", "scope", "grant_type"] {
        let Some(value) = params.get(name) else {
            continue;
        };
        if let Ok(user) = Username::parse(value) {
            assert_eq!(Username::parse(user.as_str()), Ok(user.clone()));
        }
        if let Ok(email) = Email::parse(value) {
            assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
        }
        if let Ok(scopes) = Scopes::parse(value) {
            assert_eq!(Scopes::parse(&scopes.to_string()), Ok(scopes));
        }
    }
});
