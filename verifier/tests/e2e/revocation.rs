//! Revocations reach the verifier through the feed within the poll
//! interval: one token, a session, a user's "log out everywhere", and a
//! key removed in an emergency.

use std::time::Duration;

use reqwest::StatusCode;
use sigil::keys::{Alg, ops};
use sigil_verify::{RevokedBy, VerifyError};

use crate::helpers::{FeedKey, POLL, TestSigil, eventually, field, kid_of, spawn_notes};

/// Generous slack over the poll interval for a loaded CI machine.
const SLACK: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_within_the_poll_interval() {
    let sigil = TestSigil::start().await;
    sigil.user("alice").await;
    let app = sigil
        .notes_app("notes-web", "notes:read notes:write", Alg::EdDSA)
        .await;
    let verifier = sigil
        .verifier(&sigil.feed_client().await)
        .build()
        .await
        .unwrap();
    let notes = spawn_notes(verifier.clone()).await;
    let http = reqwest::Client::new();
    let get = |token: String| {
        let request = http.get(format!("{notes}/notes")).bearer_auth(token);
        async move { request.send().await.expect("request") }
    };

    let revoked = sigil.access_token(&app, "alice").await;
    let other = sigil.access_token(&app, "alice").await;
    assert_eq!(get(revoked.clone()).await.status(), StatusCode::OK);

    sigil.revoke(&app, &revoked).await;
    let started = tokio::time::Instant::now();
    let refused = eventually(POLL + SLACK, async || {
        get(revoked.clone()).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused,
        "still accepted {:?} after revocation",
        started.elapsed()
    );
    let response = get(revoked.clone()).await;
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("revoked"), "{challenge}");
    assert_eq!(
        verifier.verify(&revoked).await,
        Err(VerifyError::Revoked(RevokedBy::Token))
    );
    // Only that token: the user's other token still works.
    assert_eq!(get(other).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_and_a_logged_out_user_are_refused() {
    let sigil = TestSigil::start().await;
    sigil.user("alice").await;
    sigil.user("bob").await;
    let app = sigil.notes_app("notes-web", "notes:read", Alg::RS256).await;
    let verifier = sigil
        .verifier(&sigil.feed_client().await)
        .build()
        .await
        .unwrap();

    // Revoking a refresh token ends its session and the session's access tokens.
    let session = sigil.login(&app, "bob").await;
    let bob = field(&session, "access_token");
    assert!(verifier.verify(&bob).await.is_ok());
    sigil.revoke(&app, &field(&session, "refresh_token")).await;
    let ended = eventually(POLL + SLACK, async || {
        verifier.verify(&bob).await == Err(VerifyError::Revoked(RevokedBy::Session))
    })
    .await;
    assert!(
        ended,
        "session revocation not seen: {:?}",
        verifier.verify(&bob).await
    );

    // "Log out everywhere" revokes every token issued up to now: those of
    // earlier seconds by the user entry, those of this second by their
    // sessions' entries...
    let earlier = sigil.access_token(&app, "alice").await;
    // Long enough for that session to have gone quiet, not for its access
    // token to expire.
    sigil.clock.advance(120);
    let first = sigil.access_token(&app, "alice").await;
    let second = sigil.access_token(&app, "alice").await;
    let sub = verifier.verify(&first).await.unwrap().sub;
    let user = sigil.sigil.store.user_by_id(&sub).await.unwrap().unwrap();
    let ops = sigil::service::Ops::on(&sigil.sigil, "test");
    sigil::service::users::revoke_sessions(&ops, &user)
        .await
        .unwrap();
    let logged_out = eventually(POLL + SLACK, async || {
        verifier.verify(&earlier).await == Err(VerifyError::Revoked(RevokedBy::User))
            && verifier.verify(&first).await == Err(VerifyError::Revoked(RevokedBy::Session))
            && verifier.verify(&second).await == Err(VerifyError::Revoked(RevokedBy::Session))
    })
    .await;
    assert!(
        logged_out,
        "user revocation not seen: {:?} {:?}",
        verifier.verify(&earlier).await,
        verifier.verify(&first).await
    );
    // ... but not the ones issued after it, even in the same second.
    let later = sigil.access_token(&app, "alice").await;
    assert!(verifier.verify(&later).await.is_ok());
    assert!(verifier.stats().revocations >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_rotation_refuses_the_old_keys_tokens_and_accepts_the_new_key_at_once() {
    let sigil = TestSigil::start().await;
    let app = sigil.notes_app("notes-web", "notes:read", Alg::EdDSA).await;
    let verifier = sigil
        .verifier(&sigil.feed_client().await)
        .build()
        .await
        .unwrap();
    let old = sigil.service_token(&app).await;
    assert!(verifier.verify(&old).await.is_ok());
    let compromised = kid_of(&old);
    // A fetch just happened: the new key must not wait out a long cooldown.
    let before = verifier.stats();

    let (store, kek, policy) = (
        sigil.sigil.store.as_ref(),
        sigil.sigil.keys.kek(),
        sigil.sigil.keys.policy(),
    );
    let done = ops::emergency_rotate(store, kek, policy, &compromised, sigil.by(), false)
        .await
        .unwrap();
    sigil.sigil.reload_keys().await.unwrap();
    sigil.sigil.revocations_changed(sigil.now()).await;
    let fresh = sigil.service_token(&app).await;
    assert_eq!(Some(kid_of(&fresh)), done.new_kid);

    // The cached set's max-age has not run out, but the feed's `key` entry
    // drops the compromised key from it and refuses its tokens.
    let refused = eventually(POLL + SLACK, async || {
        verifier.verify_cached(&old) == Err(VerifyError::Revoked(RevokedBy::Key))
    })
    .await;
    assert!(refused, "{:?}", verifier.verify_cached(&old));
    assert_eq!(
        verifier.stats().keys,
        before.keys - 1,
        "the key left the cache"
    );

    // The replacement was never published ahead: its unknown kid makes the
    // verifier fetch at once, and the token is accepted.
    assert!(verifier.verify(&fresh).await.is_ok());
    let after = verifier.stats();
    assert_eq!(after.unknown_kid_fetches, before.unknown_kid_fetches + 1);
    assert!(verifier.verify(&old).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_met_while_sigil_is_down_is_accepted_once_sigil_is_back() {
    let mut sigil = TestSigil::start().await;
    let app = sigil.notes_app("notes-web", "notes:read", Alg::EdDSA).await;
    let verifier = sigil
        .verifier(&sigil.feed_client().await)
        .refetch_cooldown(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let old = sigil.service_token(&app).await;
    let (store, kek, policy) = (
        sigil.sigil.store.as_ref(),
        sigil.sigil.keys.kek(),
        sigil.sigil.keys.policy(),
    );
    ops::emergency_rotate(store, kek, policy, &kid_of(&old), sigil.by(), false)
        .await
        .unwrap();
    sigil.sigil.reload_keys().await.unwrap();
    let fresh = sigil.service_token(&app).await;

    // The verifier meets the new kid while every fetch fails: several
    // callers at once, so some of them queue behind a failed fetch.
    sigil.stop().await;
    let attempts: Vec<_> = (0..4)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), fresh.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for attempt in attempts {
        assert!(attempt.await.unwrap().is_err());
    }

    // A failed fetch proves nothing about the kid: once Sigil answers
    // again, the token is accepted, without waiting out a negative cache.
    sigil.restart().await;
    let accepted = eventually(Duration::from_secs(3), async || {
        verifier.verify(&fresh).await.is_ok()
    })
    .await;
    assert!(accepted, "{:?}", verifier.verify(&fresh).await);
}

/// A resource service with no secret: it polls the feed as a
/// `private_key_jwt` client, a new signed assertion per page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_client_with_a_private_key_sees_revocations() {
    let sigil = TestSigil::start().await;
    sigil.user("alice").await;
    let app = sigil.notes_app("notes-web", "notes:read", Alg::EdDSA).await;
    let feed_key = FeedKey::generate("feed-1");
    sigil.key_client("notes-feed", &feed_key.jwks()).await;
    let verifier = sigil
        .verifier_without_feed()
        .revocation_feed_with_key("notes-feed", "EdDSA", feed_key.pem(), Some("feed-1"))
        .poll_interval(POLL)
        .build()
        .await
        .expect("the feed accepts the key");

    let token = sigil.access_token(&app, "alice").await;
    assert!(verifier.verify(&token).await.is_ok());
    sigil.revoke(&app, &token).await;
    let refused = eventually(POLL + SLACK, async || {
        verifier.verify(&token).await == Err(VerifyError::Revoked(RevokedBy::Token))
    })
    .await;
    assert!(
        refused,
        "a revocation did not reach the key-authenticated poller"
    );
    assert_eq!(verifier.stats().feed_errors, 0);

    // A key Sigil does not know is refused at build, saying what to check.
    let stranger = FeedKey::generate("feed-1");
    let refused = sigil
        .verifier_without_feed()
        .revocation_feed_with_key("notes-feed", "EdDSA", stranger.pem(), Some("feed-1"))
        .build()
        .await
        .expect_err("an unknown key is refused");
    let message = refused.to_string();
    assert!(
        message.contains("401") && message.contains("public half"),
        "{message}"
    );

    // A key of another type than the algorithm named is refused before any request.
    let mismatched = sigil
        .verifier_without_feed()
        .revocation_feed_with_key("notes-feed", "ES256", feed_key.pem(), None)
        .build()
        .await
        .expect_err("an Ed25519 key cannot sign ES256");
    assert!(mismatched.to_string().contains("ES256"), "{mismatched}");
}
