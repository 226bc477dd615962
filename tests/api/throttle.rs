//! Login throttling and the registration limit. Client addresses come from
//! `X-Forwarded-For`, believed because the test config trusts 127.0.0.1 as
//! a proxy; delays are zero so that the tests wait on nothing.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::helpers::{Backend, PASSWORD, TestApp, TestClient, json};
use crate::on_both_backends;

on_both_backends!(
    spawn = super::spawn;
    a_locked_out_pair_is_answered_exactly_like_a_wrong_password_until_the_lockout_ends,
    one_address_cannot_lock_a_victim_out_from_another_address,
    failures_from_many_addresses_lock_the_account_for_a_while,
    a_successful_login_clears_its_addresses_failures,
    counters_are_shared_by_every_node_on_one_database,
    registrations_per_address_are_limited_with_a_retry_after,
    guessing_a_client_secret_is_throttled_per_address_and_client_only,
);

const LOCKOUT_SECS: i64 = 300;

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.throttle.pair_free_failures = 2;
        c.throttle.pair_limit = 4;
        c.throttle.account_limit = 8;
        c.throttle.lockout = Duration::from_secs(LOCKOUT_SECS as u64);
        c.throttle.max_delay = Duration::ZERO;
        c.throttle.registrations_per_address = 3;
    })
    .await
}

async fn login_from(app: &TestApp, client: &TestClient, from: &str, password: &str) -> Response {
    app.post("/oauth/token")
        .header("x-forwarded-for", from)
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", password),
            ("client_id", client.id.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

async fn public_client(app: &TestApp) -> TestClient {
    use sigil::clients::GrantType;
    app.client("app", true, &[GrantType::Password], "read", None)
        .await
}

async fn answer(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, json(response).await)
}

async fn a_locked_out_pair_is_answered_exactly_like_a_wrong_password_until_the_lockout_ends(
    app: TestApp,
) {
    app.user("alice").await;
    let client = public_client(&app).await;
    let attacker = "203.0.113.5";

    let wrong = answer(login_from(&app, &client, attacker, "not the password").await).await;
    assert_eq!(wrong.0, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.1["error"], "invalid_grant");
    for _ in 1..4 {
        login_from(&app, &client, attacker, "not the password").await;
    }

    // Locked: even the right password gets the wrong-password answer.
    let locked = answer(login_from(&app, &client, attacker, PASSWORD).await).await;
    assert_eq!(locked, wrong);

    app.clock.advance(LOCKOUT_SECS + 1);
    let after = login_from(&app, &client, attacker, PASSWORD).await;
    assert_eq!(after.status(), StatusCode::OK);
}

async fn one_address_cannot_lock_a_victim_out_from_another_address(app: TestApp) {
    app.user("alice").await;
    let client = public_client(&app).await;
    // Far more failures than the account limit (8), all from one address:
    // once its pair is locked, nothing more counts against the account.
    for _ in 0..20 {
        login_from(&app, &client, "203.0.113.5", "guess").await;
    }
    let attacker = login_from(&app, &client, "203.0.113.5", PASSWORD).await;
    assert_eq!(
        attacker.status(),
        StatusCode::BAD_REQUEST,
        "the attacker's pair is locked"
    );
    let victim = login_from(&app, &client, "198.51.100.7", PASSWORD).await;
    assert_eq!(
        victim.status(),
        StatusCode::OK,
        "the victim's own address still works"
    );
}

async fn failures_from_many_addresses_lock_the_account_for_a_while(app: TestApp) {
    app.user("alice").await;
    let client = public_client(&app).await;
    // Two addresses, four failures each: the account limit of eight.
    for from in ["203.0.113.5", "203.0.113.6"] {
        for _ in 0..4 {
            login_from(&app, &client, from, "guess").await;
        }
    }
    let victim = login_from(&app, &client, "198.51.100.7", PASSWORD).await;
    assert_eq!(victim.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(victim).await["error"], "invalid_grant");

    app.clock.advance(LOCKOUT_SECS + 1);
    let later = login_from(&app, &client, "198.51.100.7", PASSWORD).await;
    assert_eq!(
        later.status(),
        StatusCode::OK,
        "the account lockout is temporary"
    );
}

async fn a_successful_login_clears_its_addresses_failures(app: TestApp) {
    app.user("alice").await;
    let client = public_client(&app).await;
    let from = "198.51.100.7";
    // Three failures, a success, three more: never four in a row.
    for _ in 0..3 {
        login_from(&app, &client, from, "typo").await;
    }
    assert_eq!(
        login_from(&app, &client, from, PASSWORD).await.status(),
        StatusCode::OK
    );
    for _ in 0..3 {
        login_from(&app, &client, from, "typo").await;
    }
    assert_eq!(
        login_from(&app, &client, from, PASSWORD).await.status(),
        StatusCode::OK
    );
}

async fn counters_are_shared_by_every_node_on_one_database(app: TestApp) {
    app.user("alice").await;
    let client = public_client(&app).await;
    let other = app.spawn_node().await;
    let from = "203.0.113.5";
    for _ in 0..2 {
        login_from(&app, &client, from, "guess").await;
        login_from(&other, &client, from, "guess").await;
    }
    // Four failures in all, split over two nodes: locked on both.
    for node in [&app, &other] {
        let response = login_from(node, &client, from, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}

async fn registrations_per_address_are_limited_with_a_retry_after(app: TestApp) {
    let register = |name: &'static str, from: &'static str| {
        app.post("/users")
            .header("x-forwarded-for", from)
            .json(&serde_json::json!({
                "username": name, "email": format!("{name}@example.com"), "password": PASSWORD,
            }))
            .send()
    };
    assert_eq!(
        register("user1", "203.0.113.5").await.unwrap().status(),
        StatusCode::CREATED
    );
    // A taken name counts too: conflicts cannot enumerate accounts freely.
    assert_eq!(
        register("user1", "203.0.113.5").await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        register("user2", "203.0.113.5").await.unwrap().status(),
        StatusCode::CREATED
    );

    let refused = register("user3", "203.0.113.5").await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    assert_eq!(json(refused).await["error"], "too_many_requests");

    assert_eq!(
        register("user3", "198.51.100.7").await.unwrap().status(),
        StatusCode::CREATED
    );
    app.clock.advance(retry_after + 1);
    assert_eq!(
        register("user4", "203.0.113.5").await.unwrap().status(),
        StatusCode::CREATED
    );
}

/// The token endpoint's answer time for an unknown user, a wrong password,
/// a disabled user and a locked-out account, sampled interleaved with the
/// production argon2id cost: each path hashes once and updates the same
/// counters, so their medians must agree (within 15%, or 3 ms). The
/// progressive delay, when configured, depends only on the address's
/// failure count, never on which of these cases it is. Medians of 55
/// samples each, taken in rotating order, make the comparison robust to a
/// loaded machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_wrong_disabled_and_locked_logins_take_the_same_time() {
    use crate::helpers::NowSecs;
    use sigil::store::ThrottleRule;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.argon2.memory_kib = 19 * 1024;
        c.argon2.iterations = 2;
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.throttle.pair_limit = 10_000;
        c.throttle.account_limit = 100_000;
        c.throttle.max_delay = Duration::ZERO;
    })
    .await
    .unwrap();
    for name in ["alice", "bob", "carol"] {
        app.user(name).await;
    }
    let client = public_client(&app).await;
    let store = app.sigil.store.as_ref();
    let bob = store.user_by_username("bob").await.unwrap().unwrap();
    store
        .set_user_disabled(&bob.id, true, app.clock.now_secs())
        .await
        .unwrap();
    let lock = ThrottleRule {
        window: 3600,
        limit: 1,
        lockout: 3600,
    };
    store
        .throttle_fail("acct:carol", app.clock.now_secs(), lock)
        .await
        .unwrap();

    let cases: [(&str, &str, &str); 4] = [
        ("wrong password", "alice", "not the password"),
        ("unknown user", "nobody", PASSWORD),
        ("disabled user", "bob", PASSWORD),
        ("locked account", "carol", PASSWORD),
    ];
    let mut samples = vec![Vec::new(); cases.len()];
    // Each round starts with a different case, so that whatever a request
    // leaves behind (an audit batch being written, say) slows each case
    // equally often.
    for round in 0..60 {
        for step in 0..cases.len() {
            let i = (round + step) % cases.len();
            let (_, username, password) = cases[i];
            let from = format!("10.{}.{}.{}", i, round / 250, round % 250);
            let started = std::time::Instant::now();
            let response = app
                .post("/oauth/token")
                .header("x-forwarded-for", from)
                .form(&[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password),
                    ("client_id", client.id.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let body = answer(response).await;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(body.0, StatusCode::BAD_REQUEST);
            assert_eq!(
                body.1["error_description"],
                "the username or password is incorrect"
            );
            if round >= 5 {
                samples[i].push(elapsed); // the first rounds warm up
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians: Vec<f64> = samples.iter_mut().map(median).collect();
    let reference = medians[0];
    eprintln!("median ms (wrong, unknown, disabled, locked): {medians:.1?}");
    for ((what, _, _), m) in cases.iter().zip(&medians) {
        let gap = (m - reference).abs();
        assert!(
            gap <= (reference * 0.15).max(3.0),
            "{what}: median {m:.1} ms vs wrong password {reference:.1} ms ({medians:?})"
        );
    }
}

async fn guessing_a_client_secret_is_throttled_per_address_and_client_only(app: TestApp) {
    use sigil::clients::GrantType;
    let svc = app
        .client("svc", false, &[GrantType::ClientCredentials], "read", None)
        .await;
    let secret = svc.secret.clone().unwrap();
    let grant = |from: &'static str, secret: String| {
        app.post("/oauth/token")
            .header("x-forwarded-for", from)
            .basic_auth("svc", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    // The address has used the right secret first: the node then knows the
    // pair had no failures, which must not outlast the first one.
    assert_eq!(
        grant("203.0.113.5", secret.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    let wrong = grant("203.0.113.5", "sigil_cs_guess".into()).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong = json(wrong).await;
    for _ in 1..4 {
        grant("203.0.113.5", "sigil_cs_guess".into()).await.unwrap();
    }
    // The guesser's address is locked out, even with the right secret,
    // and is told nothing more than for a wrong one...
    let locked = grant("203.0.113.5", secret.clone()).await.unwrap();
    assert_eq!(locked.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(locked).await, wrong);
    // ... while the service itself, elsewhere, is not: no outage by lockout.
    assert_eq!(
        grant("198.51.100.7", secret.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.clock.advance(LOCKOUT_SECS + 1);
    assert_eq!(
        grant("203.0.113.5", secret).await.unwrap().status(),
        StatusCode::OK
    );
}
