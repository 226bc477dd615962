//! With Sigil stopped, cached keys keep verifying until the staleness
//! bound; then the fail mode applies: closed refuses (503), open accepts and
//! counts. When Sigil is back, verification recovers.

use std::time::Duration;

use reqwest::StatusCode;
use sigil::keys::Alg;
use sigil_verify::{FailMode, StaleSource, VerifyError};

use crate::helpers::{TestSigil, eventually, spawn_notes};

const BOUND: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sigil_down_cached_keys_verify_until_the_staleness_bound_then_the_fail_mode_applies() {
    let mut sigil = TestSigil::start().await;
    let app = sigil.notes_app("notes-web", "notes:read", Alg::RS256).await;
    let feed = sigil.feed_client().await;
    let closed = sigil
        .verifier(&feed)
        .staleness_bound(BOUND)
        .build()
        .await
        .unwrap();
    let open = sigil
        .verifier(&feed)
        .staleness_bound(BOUND)
        .fail_mode(FailMode::Open)
        .build()
        .await
        .unwrap();
    let notes = spawn_notes(closed.clone()).await;
    let http = reqwest::Client::new();
    let token = sigil.service_token(&app).await;
    let get_notes = || {
        http.get(format!("{notes}/notes"))
            .bearer_auth(&token)
            .send()
    };

    sigil.stop().await;
    let stopped = tokio::time::Instant::now();
    // Within the bound, the cached keys verify as if nothing happened.
    assert!(closed.verify(&token).await.is_ok());
    assert_eq!(get_notes().await.unwrap().status(), StatusCode::OK);
    assert!(!closed.stats().stale);

    // Past it, the closed verifier refuses and says why...
    let failed_closed = eventually(BOUND + Duration::from_secs(3), async || {
        closed.verify(&token).await.is_err()
    })
    .await;
    assert!(
        failed_closed,
        "still accepting {:?} after the stop",
        stopped.elapsed()
    );
    assert!(
        stopped.elapsed() >= BOUND - Duration::from_millis(500),
        "failed closed after only {:?}",
        stopped.elapsed()
    );
    match closed.verify(&token).await {
        Err(VerifyError::Unavailable(staleness)) => {
            assert_eq!(staleness.source, StaleSource::RevocationFeed);
            assert_eq!(staleness.fail_mode, FailMode::Closed);
            assert!(staleness.since >= BOUND);
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let response = get_notes().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let health = http.get(format!("{notes}/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stats = closed.stats();
    assert!(stats.stale && stats.fail_closed_rejections > 0 && stats.feed_errors > 0);

    // ... while the open one (whose last poll may have come a moment after
    // the closed one's) keeps accepting once stale too, and counts each
    // acceptance.
    let open_stale = eventually(Duration::from_secs(2), async || open.stats().stale).await;
    assert!(open_stale, "{:?}", open.stats());
    assert!(open.verify(&token).await.is_ok());
    let stats = open.stats();
    assert_eq!(stats.stale_source, Some("revocation_feed"));
    assert!(stats.fail_open_accepts > 0);

    // Sigil comes back: the next successful poll ends the outage.
    sigil.restart().await;
    let recovered = eventually(Duration::from_secs(5), async || {
        closed.verify(&token).await.is_ok()
    })
    .await;
    assert!(recovered, "{:?}", closed.stats());
    // Each verifier polls on its own schedule; the open one recovers too.
    let open_recovered = eventually(Duration::from_secs(5), async || !open.stats().stale).await;
    assert!(open_recovered, "{:?}", open.stats());
    assert_eq!(get_notes().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_feed_the_jwks_is_trusted_past_max_age_only_until_the_staleness_bound() {
    let mut sigil = TestSigil::start_with(|c| c.jwks_max_age = Duration::from_secs(1)).await;
    let app = sigil.notes_app("notes-web", "notes:read", Alg::EdDSA).await;
    let verifier = sigil_verify::Verifier::builder()
        .issuer(sigil.base.clone())
        .audience(crate::helpers::AUDIENCE)
        .staleness_bound(BOUND)
        .build()
        .await
        .unwrap();
    let token = sigil.service_token(&app).await;
    sigil.stop().await;
    let stopped = tokio::time::Instant::now();
    assert!(verifier.verify(&token).await.is_ok());

    // Sigil sends `stale-if-error=86400`; the configured bound still wins.
    let refused = eventually(BOUND + Duration::from_secs(4), async || {
        matches!(
            verifier.verify(&token).await,
            Err(VerifyError::Unavailable(_))
        )
    })
    .await;
    assert!(
        refused,
        "still accepting {:?} after the stop",
        stopped.elapsed()
    );
    match verifier.verify(&token).await {
        Err(VerifyError::Unavailable(staleness)) => assert_eq!(staleness.source, StaleSource::Jwks),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
