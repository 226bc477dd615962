//! Key rotation costs no valid token a rejection: pre-published keys are
//! cached before they sign, and a key that was not (an unplanned change)
//! is fetched once for all callers, right away, while forged kids stay
//! cheap.

use std::time::Duration;

use serde_json::json;
use sigil::keys::{Alg, SigningKey, generate, ops};
use sigil_verify::VerifyError;

use crate::helpers::{TestSigil, decode, eventually, forge, kid_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_rotation_of_both_algorithms_rejects_no_valid_token() {
    // The JWKS may be cached for 1 s, so the background refresh picks up
    // the pre-published keys quickly.
    let sigil = TestSigil::start_with(|c| c.jwks_max_age = Duration::from_secs(1)).await;
    let rs = sigil.notes_app("rs-app", "notes:read", Alg::RS256).await;
    let ed = sigil.notes_app("ed-app", "notes:read", Alg::EdDSA).await;
    let verifier = sigil
        .verifier(&sigil.feed_client().await)
        .build()
        .await
        .unwrap();
    let lead = sigil.sigil.config.key_pending_lead.as_secs() as i64;

    let mut live: Vec<(i64, String)> = Vec::new();
    let mut failures = Vec::new();
    let mut checks = 0;
    let mut kids = std::collections::HashSet::new();
    // Issues a token per algorithm and verifies every unexpired token.
    macro_rules! step {
        ($what:expr) => {
            for client in [&rs, &ed] {
                let token = sigil.service_token(client).await;
                kids.insert(kid_of(&token));
                live.push((decode(&token).1["exp"].as_i64().unwrap(), token));
            }
            let now = sigil.now();
            live.retain(|(exp, _)| *exp > now);
            for (_, token) in &live {
                checks += 1;
                if let Err(e) = verifier.verify(token).await {
                    failures.push(($what, kid_of(token), e));
                }
            }
        };
    }

    step!("before");
    let (store, kek, policy) = (
        sigil.sigil.store.as_ref(),
        sigil.sigil.keys.kek(),
        sigil.sigil.keys.policy(),
    );
    for alg in [Alg::RS256, Alg::EdDSA] {
        ops::rotate(store, kek, policy, alg, sigil.by(), false)
            .await
            .unwrap();
    }
    sigil.sigil.reload_keys().await.unwrap();
    // Published now, signing after the lead: the verifier's background
    // refresh fetches both pending keys well before then.
    let cached = eventually(Duration::from_secs(10), async || verifier.stats().keys == 4).await;
    assert!(cached, "pending keys not fetched: {:?}", verifier.stats());
    step!("pending");

    // Just before the switch, then just after: tokens of both generations live.
    sigil.clock.advance(lead - 60);
    sigil.sigil.reload_keys().await.unwrap();
    step!("just before the switch");
    sigil.clock.advance(120);
    sigil.sigil.reload_keys().await.unwrap();
    step!("just after the switch");
    // Until the retired keys leave the JWKS.
    for minute in 0..25 {
        sigil.clock.advance(60);
        sigil.sigil.reload_keys().await.unwrap();
        step!(if minute < 24 { "retired" } else { "removed" });
    }

    assert_eq!(kids.len(), 4, "both algorithms rotated: {kids:?}");
    assert!(
        failures.is_empty(),
        "{} of {checks} verifications failed: {failures:?}",
        failures.len()
    );
    // Every new key was cached before it signed: no token met an unknown kid.
    assert_eq!(
        verifier.stats().unknown_kid_fetches,
        0,
        "{:?}",
        verifier.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_is_fetched_once_for_all_callers_and_forged_kids_stay_cheap() {
    // Default jwks_max_age (15 min): the verifier will not refresh by itself
    // during the test, so a rotated key reaches it only as an unknown kid.
    let sigil = TestSigil::start().await;
    let app = sigil.notes_app("notes-web", "notes:read", Alg::EdDSA).await;
    let verifier = sigil
        .verifier(&sigil.feed_client().await)
        .build()
        .await
        .unwrap();
    let old = sigil.service_token(&app).await;
    assert!(verifier.verify(&old).await.is_ok());

    // A stranger's kid makes the verifier fetch, just before the rotation...
    let stranger = generate(Alg::EdDSA, 2048).unwrap();
    let stranger_key = SigningKey::from_pkcs8(&stranger.kid, Alg::EdDSA, &stranger.pkcs8).unwrap();
    let (_, claims) = decode(&old);
    let forged = |kid: &str| {
        forge(
            &json!({"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}),
            &claims,
            Some(&stranger_key),
        )
    };
    assert_eq!(
        verifier.verify(&forged(&stranger.kid)).await,
        Err(VerifyError::UnknownKey)
    );
    let fetches = verifier.stats().unknown_kid_fetches;
    assert_eq!(fetches, 1);

    // ... and a key that appears right after is still accepted: callers wait
    // out the cooldown instead of being refused.
    let (store, kek, policy) = (
        sigil.sigil.store.as_ref(),
        sigil.sigil.keys.kek(),
        sigil.sigil.keys.policy(),
    );
    ops::rotate(store, kek, policy, Alg::EdDSA, sigil.by(), false)
        .await
        .unwrap();
    sigil
        .clock
        .advance(sigil.sigil.config.key_pending_lead.as_secs() as i64);
    sigil.sigil.reload_keys().await.unwrap();
    let fresh = sigil.service_token(&app).await;
    assert_ne!(kid_of(&fresh), kid_of(&old));

    // Fifty requests at once with the new kid: one fetch, all accepted.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (verifier, token) = (verifier.clone(), fresh.clone());
        calls.spawn(async move { verifier.verify(&token).await });
    }
    while let Some(result) = calls.join_next().await {
        assert!(result.unwrap().is_ok());
    }
    let stats = verifier.stats();
    assert_eq!(stats.unknown_kid_fetches, fetches + 1, "{stats:?}");

    // A flood of forged kids: every one refused, with at most two fetches
    // (one for those that arrived before it started, one for the rest).
    let before = verifier.stats();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (verifier, token) = (verifier.clone(), forged(&format!("forged-{i}")));
        calls.spawn(async move { verifier.verify(&token).await });
    }
    while let Some(result) = calls.join_next().await {
        assert_eq!(result.unwrap(), Err(VerifyError::UnknownKey));
    }
    let after = verifier.stats();
    assert!(
        after.jwks_fetches - before.jwks_fetches <= 2,
        "forged kids made {} fetches",
        after.jwks_fetches - before.jwks_fetches
    );
    // The same forged kids again: refused from the negative cache, no fetch.
    for i in 0..200 {
        assert_eq!(
            verifier.verify(&forged(&format!("forged-{i}"))).await,
            Err(VerifyError::UnknownKey)
        );
    }
    assert_eq!(verifier.stats().jwks_fetches, after.jwks_fetches);
}
