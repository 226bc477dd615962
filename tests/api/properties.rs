//! Property tests of the parsers that face untrusted input: usernames,
//! emails, scopes, and the JWS compact form of access tokens. Each runs a
//! few hundred generated cases: no input panics, whatever is accepted is
//! well-formed and stable, and no tampered token verifies.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sigil::scope::Scopes;
use sigil::tokens::verify_access_token;
use sigil::users::{Email, Username};

use crate::helpers::{Backend, TestApp};

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs `check` on each generated input and returns how many the parser
/// accepted: a property about accepted inputs proves nothing unless the
/// generator reaches acceptance often.
fn accepted<S: Strategy>(
    strategy: S,
    check: impl Fn(S::Value) -> Result<bool, TestCaseError>,
) -> u32
where
    S::Value: std::fmt::Debug,
{
    let count = std::cell::Cell::new(0);
    runner()
        .run(&strategy, |value| {
            if check(value)? {
                count.set(count.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    count.get()
}

/// At least a quarter of the cases must reach the success branch.
const ENOUGH: u32 = 512 / 4;

#[test]
fn usernames_accepted_are_lowercase_bounded_and_stable() {
    // Mostly near-valid names (any case, some too short or too long), and
    // arbitrary text so that what the parser refuses is exercised too.
    let texts = prop_oneof![
        3 => "[A-Za-z0-9][A-Za-z0-9._-]{0,70}",
        1 => ".{0,80}",
    ];
    let n = accepted(texts, |text| {
        let Ok(name) = Username::parse(&text) else {
            return Ok(false);
        };
        let s = name.as_str();
        prop_assert!((3..=64).contains(&s.len()));
        prop_assert!(
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        );
        prop_assert_eq!(Username::parse(s), Ok(name.clone()));
        prop_assert_eq!(Username::parse(&text.to_ascii_uppercase()), Ok(name));
        Ok(true)
    });
    assert!(
        n >= ENOUGH,
        "only {n} of 512 generated usernames were accepted"
    );
}

proptest! {
    #![proptest_config(Config { cases: 512, failure_persistence: None, ..Config::default() })]

    #[test]
    fn well_formed_usernames_are_accepted(text in "[a-z0-9][a-z0-9._-]{2,63}") {
        prop_assert!(Username::parse(&text).is_ok());
    }
}

#[test]
fn emails_accepted_have_one_at_and_are_stable() {
    let texts = prop_oneof![
        // Mostly addresses of the accepted shape (a dotted local part of
        // the allowed characters, dotted labels), some with a stray dot
        // or hyphen where none may be.
        3 => "[A-Za-z0-9+_-]{1,20}(\\.[A-Za-z0-9+_-]{1,10}){0,2}@[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?(\\.[A-Za-z0-9-]{1,12}){1,3}",
        1 => ".{0,300}",
    ];
    let n = accepted(texts, |text| {
        let Ok(email) = Email::parse(&text) else {
            return Ok(false);
        };
        let s = email.as_str();
        prop_assert!(s.len() <= 254 && s.is_ascii());
        prop_assert_eq!(s.matches('@').count(), 1);
        prop_assert_eq!(s, text.to_ascii_lowercase());
        prop_assert_eq!(Email::parse(s), Ok(email.clone()));
        Ok(true)
    });
    assert!(
        n >= ENOUGH,
        "only {n} of 512 generated emails were accepted"
    );
}

#[test]
fn scopes_accepted_are_rfc_6749_tokens_and_round_trip() {
    let texts = prop_oneof![
        3 => "([!#-\\[\\]-~]{1,20}( {1,2})?){0,8}",
        1 => "[ -~]{0,200}",
    ];
    let n = accepted(texts, |text| {
        let Ok(scopes) = Scopes::parse(&text) else {
            return Ok(false);
        };
        for token in scopes.iter() {
            prop_assert!(!token.is_empty() && token.len() <= 128);
            prop_assert!(!token.contains([' ', '"', '\\']));
        }
        prop_assert_eq!(Scopes::parse(&scopes.to_string()), Ok(scopes));
        Ok(true)
    });
    assert!(
        n >= ENOUGH,
        "only {n} of 512 generated scope strings were accepted"
    );
}

/// One server's key set and a genuine token, for the JWS properties.
fn genuine() -> (std::sync::Arc<sigil::keys::KeySet>, String, String, i64) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
        app.user("alice").await;
        let client = app.confidential_client("web").await;
        let token = app.access_token(&client, "alice").await;
        let now = sigil::clock::Clock::now(app.sigil.clock.as_ref());
        (
            app.sigil.keys.current(),
            app.sigil.config.issuer.clone(),
            token,
            now,
        )
    })
}

#[test]
fn no_string_verifies_and_none_panics_and_no_single_character_change_of_a_genuine_token_verifies() {
    let (keys, issuer, token, now) = genuine();
    let verify = |t: &str| verify_access_token(&keys, t, &issuer, None, now);
    assert!(verify(&token).is_ok(), "the genuine token verifies");

    runner()
        .run(&".{0,600}", |text| {
            prop_assert!(verify(&text).is_err());
            Ok(())
        })
        .unwrap();

    // Dot-separated junk, closer to the shape the parser looks for.
    runner()
        .run(
            &"[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,400}",
            |text| {
                prop_assert!(verify(&text).is_err());
                Ok(())
            },
        )
        .unwrap();

    let alphabet: Vec<char> = ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(['-', '_', '.'])
        .collect();
    let len = token.len();
    runner()
        .run(&(0..len, 0..alphabet.len()), |(at, pick)| {
            let mut chars: Vec<char> = token.chars().collect();
            prop_assume!(chars[at] != alphabet[pick]);
            chars[at] = alphabet[pick];
            let tampered: String = chars.into_iter().collect();
            prop_assert!(verify(&tampered).is_err(), "{tampered}");
            Ok(())
        })
        .unwrap();
}
