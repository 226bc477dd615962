//! The key lifecycle: pre-published rotation, retirement, emergency
//! removal, the schedule across nodes, keys at rest, and the admin API.

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use reqwest::StatusCode;
use serde_json::Value;
use sigil::clients::GrantType;
use sigil::keys::Alg;
use sigil::keys::ops;

use crate::helpers::{Backend, TestApp, TestClient, json, verify_with_jwks};
use crate::on_both_backends;

on_both_backends!(
    a_rotation_publishes_the_new_key_before_it_signs_and_keeps_the_old_until_its_tokens_expire,
    a_verifier_caching_the_jwks_as_the_headers_allow_never_fails_across_rotations,
    an_emergency_rotation_invalidates_the_compromised_keys_tokens_at_once,
    an_emergency_rotation_cut_short_is_completed_by_the_next_scheduler_pass,
    two_nodes_running_the_scheduler_together_rotate_once,
    the_admin_api_needs_the_admin_scope_and_audits_what_it_does,
);

fn now(app: &TestApp) -> i64 {
    sigil::clock::Clock::now(&app.clock)
}

/// A key operation by the actor `test`, now, on the node's audit trail.
fn by(app: &TestApp) -> sigil::audit::By<'_> {
    sigil::audit::By {
        trail: &app.sigil.audit,
        actor: "test",
        at: now(app),
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn service_token(app: &TestApp, client: &TestClient) -> String {
    let response = app
        .token(client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn kids(jwks: &JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect()
}

fn backend(app: &TestApp) -> Backend {
    if app.database_url.starts_with("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

async fn a_rotation_publishes_the_new_key_before_it_signs_and_keeps_the_old_until_its_tokens_expire(
    app: TestApp,
) {
    let svc = app
        .client(
            "svc",
            false,
            &[GrantType::ClientCredentials],
            "",
            Some(Alg::RS256),
        )
        .await;
    let old_token = service_token(&app, &svc).await;
    let old_kid = kid_of(&old_token);
    let (store, kek, policy) = (
        app.sigil.store.as_ref(),
        app.sigil.keys.kek(),
        app.sigil.keys.policy(),
    );

    let dry = ops::rotate(store, kek, policy, Alg::RS256, by(&app), true)
        .await
        .unwrap();
    assert!(dry.dry_run && dry.new_kid.is_none());
    assert_eq!(
        store.list_keys().await.unwrap().len(),
        2,
        "a dry run changes nothing"
    );

    let done = ops::rotate(store, kek, policy, Alg::RS256, by(&app), false)
        .await
        .unwrap();
    let new_kid = done.new_kid.unwrap();
    app.sigil.reload_keys().await.unwrap();
    assert!(
        kids(&app.jwks().await).contains(&new_kid),
        "published while pending"
    );
    assert_eq!(
        kid_of(&service_token(&app, &svc).await),
        old_kid,
        "the pending key does not sign yet"
    );
    let again = ops::rotate(store, kek, policy, Alg::RS256, by(&app), false).await;
    assert!(again.is_err(), "one rotation at a time per algorithm");

    app.clock.advance(3600); // the pending lead
    app.sigil.reload_keys().await.unwrap();
    let new_token = service_token(&app, &svc).await;
    assert_eq!(
        kid_of(&new_token),
        new_kid,
        "the new key signs after the lead"
    );
    let published = kids(&app.jwks().await);
    assert!(
        published.contains(&old_kid),
        "the retired key stays published"
    );
    assert_eq!(app.introspect(&svc, &new_token).await["active"], true);

    // Removed once every token it signed has expired (+ leeway + grace).
    app.clock.advance(900 + 60 + 300);
    app.sigil.reload_keys().await.unwrap();
    assert!(
        !kids(&app.jwks().await).contains(&old_kid),
        "removed after its last token expired"
    );
    app.sigil.run_key_schedule().await.unwrap();
    let row = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == old_kid)
        .unwrap();
    assert!(
        row.private_key.is_none(),
        "the private half of a removed key is erased"
    );
}

/// Caches the JWKS for exactly as long as `Cache-Control: max-age` says
/// and never refetches early, not even for an unknown `kid`.
struct StrictVerifier {
    jwks: Option<JwkSet>,
    expires: i64,
}

impl StrictVerifier {
    async fn verify(&mut self, app: &TestApp, token: &str, now: i64) -> bool {
        if self.jwks.is_none() || now >= self.expires {
            let response = app.get("/.well-known/jwks.json").send().await.unwrap();
            let cache_control = response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(cache_control.contains("stale-if-error="), "{cache_control}");
            let max_age: i64 = cache_control
                .split(", ")
                .find_map(|d| d.strip_prefix("max-age="))
                .unwrap()
                .parse()
                .unwrap();
            self.expires = now + max_age;
            self.jwks = Some(response.json().await.unwrap());
        }
        let jwks = self.jwks.as_ref().unwrap();
        jwks.find(&kid_of(token)).is_some()
            && verify_with_jwks(jwks, token, &app.base, &app.base).is_ok()
    }
}

async fn a_verifier_caching_the_jwks_as_the_headers_allow_never_fails_across_rotations(
    app: TestApp,
) {
    let app = TestApp::spawn_with(backend(&app), |c| {
        c.access_token_ttl = Duration::from_secs(300);
        c.jwks_max_age = Duration::from_secs(600);
        c.key_pending_lead = Duration::from_secs(900);
        c.key_rotation_interval = Duration::from_secs(3600);
        c.key_retire_grace = Duration::from_secs(60);
    })
    .await
    .unwrap();
    let rs = app
        .client(
            "rs",
            false,
            &[GrantType::ClientCredentials],
            "",
            Some(Alg::RS256),
        )
        .await;
    let ed = app
        .client(
            "ed",
            false,
            &[GrantType::ClientCredentials],
            "",
            Some(Alg::EdDSA),
        )
        .await;
    let mut verifier = StrictVerifier {
        jwks: None,
        expires: 0,
    };
    let mut live: Vec<(i64, String)> = Vec::new();
    let mut signing_kids = std::collections::HashSet::new();
    let (mut checks, mut failures) = (0, Vec::new());
    // Three hours in one-minute steps: three rotations of each algorithm.
    for _ in 0..180 {
        app.clock.advance(60);
        let t = now(&app);
        app.sigil.run_key_schedule().await.unwrap();
        for client in [&rs, &ed] {
            let token = service_token(&app, client).await;
            signing_kids.insert(kid_of(&token));
            live.push((t + 300, token));
        }
        live.retain(|(exp, _)| *exp > t);
        for (_, token) in &live {
            checks += 1;
            if !verifier.verify(&app, token, t).await {
                failures.push((t, kid_of(token)));
            }
        }
    }
    assert!(signing_kids.len() >= 6, "keys rotated: {signing_kids:?}");
    assert!(
        failures.is_empty(),
        "{} of {checks} verifications failed: {failures:?}",
        failures.len()
    );
}

async fn an_emergency_rotation_invalidates_the_compromised_keys_tokens_at_once(app: TestApp) {
    app.user("alice").await;
    let web = app
        .client("web", false, &[GrantType::Password], "", Some(Alg::EdDSA))
        .await;
    let resource = app
        .client(
            "notes-api",
            false,
            &[GrantType::ClientCredentials],
            "",
            None,
        )
        .await;
    let token = app.access_token(&web, "alice").await;
    let compromised = kid_of(&token);
    let (store, kek, policy) = (
        app.sigil.store.as_ref(),
        app.sigil.keys.kek(),
        app.sigil.keys.policy(),
    );
    let cursor = app.feed(&resource, "0").await["cursor"]
        .as_str()
        .unwrap()
        .to_string();

    let done = ops::emergency_rotate(store, kek, policy, &compromised, by(&app), false)
        .await
        .unwrap();
    app.sigil.reload_keys().await.unwrap();
    app.sigil.revocations_changed(now(&app)).await;
    let replacement = done.new_kid.expect("a replacement signs at once");

    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.introspect(&resource, &token).await,
        serde_json::json!({"active": false})
    );
    let published = kids(&app.jwks().await);
    assert!(!published.contains(&compromised) && published.contains(&replacement));
    let fresh = app.access_token(&web, "alice").await;
    assert_eq!(kid_of(&fresh), replacement);
    assert_eq!(app.me(&fresh).await.status(), StatusCode::OK);
    let feed = app.feed(&resource, &cursor).await;
    assert_eq!(feed["entries"][0]["type"], "key");
    assert_eq!(feed["entries"][0]["kid"], compromised.as_str());
    let row = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == compromised)
        .unwrap();
    assert!(
        row.private_key.is_none(),
        "the compromised private key is erased"
    );
}

/// A node killed inside an emergency rotation, after it removed the
/// compromised key and before it stored the replacement, leaves the
/// algorithm with no signing key. Token requests get a retryable 503 (not a
/// 500) until any node's scheduler creates the replacement.
async fn an_emergency_rotation_cut_short_is_completed_by_the_next_scheduler_pass(app: TestApp) {
    let service = app
        .client(
            "svc",
            false,
            &[GrantType::ClientCredentials],
            "",
            Some(Alg::EdDSA),
        )
        .await;
    let compromised = kid_of(&service_token(&app, &service).await);
    // The first step of `apply_emergency`, and nothing after it.
    app.sigil
        .store
        .set_key_times(&compromised, now(&app), now(&app), true)
        .await
        .unwrap();
    app.sigil.reload_keys().await.unwrap();

    // Until it is repaired the answer is a retryable 503.
    let response = app
        .token(&service, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(json(response).await["error"], "temporarily_unavailable");

    // Not at once: an emergency rotation still generating its replacement
    // must not be raced into two active keys.
    assert!(app.sigil.run_key_schedule().await.unwrap().is_empty());
    app.clock.advance(sigil::keys::schedule::REPAIR_AFTER);
    // (The node's own key loop may get there first: either way, one key.)
    let repaired = app.sigil.run_key_schedule().await.unwrap();
    assert!(repaired.len() <= 1, "{repaired:?}");
    let keys = app.sigil.store.list_keys().await.unwrap();
    let signing: Vec<_> = keys
        .iter()
        .filter(|k| k.alg == "EdDSA" && k.retires_at.is_none() && k.private_key.is_some())
        .map(|k| k.kid.clone())
        .collect();
    assert_eq!(signing.len(), 1, "exactly one replacement: {signing:?}");
    assert_ne!(signing[0], compromised);
    let fresh = service_token(&app, &service).await;
    assert_eq!(kid_of(&fresh), signing[0]);
    let published = kids(&app.jwks().await);
    assert!(published.contains(&signing[0]) && !published.contains(&compromised));
}

async fn two_nodes_running_the_scheduler_together_rotate_once(a: TestApp) {
    let b = a.spawn_node().await;
    // Jump to when both algorithms are due.
    a.clock.advance(30 * 24 * 3600 - 3600);
    let (on_a, on_b) = tokio::join!(a.sigil.run_key_schedule(), b.sigil.run_key_schedule());
    let created: Vec<String> = on_a.unwrap().into_iter().chain(on_b.unwrap()).collect();
    // The nodes' own background schedulers may join the race too: whoever
    // wins, the database must end with exactly one new key per algorithm.
    let keys = a.sigil.store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 4, "one new key per algorithm between the nodes");
    assert!(created.iter().all(|kid| keys.iter().any(|k| &k.kid == kid)));
    for alg in ["RS256", "EdDSA"] {
        let pending = keys
            .iter()
            .filter(|k| k.alg == alg && k.activates_at > now(&a))
            .count();
        assert_eq!(pending, 1, "{alg}");
    }
    // Both nodes switch to the new keys at the same instant.
    a.clock.advance(3600);
    a.sigil.reload_keys().await.unwrap();
    b.sigil.reload_keys().await.unwrap();
    let svc = a
        .client(
            "svc",
            false,
            &[GrantType::ClientCredentials],
            "",
            Some(Alg::EdDSA),
        )
        .await;
    let via_a = service_token(&a, &svc).await;
    let via_b = service_token(&b, &svc).await;
    assert_eq!(kid_of(&via_a), kid_of(&via_b));
    let new_eddsa = keys
        .iter()
        .find(|k| k.alg == "EdDSA" && k.retires_at.is_none())
        .unwrap();
    assert_eq!(kid_of(&via_a), new_eddsa.kid);
}

async fn the_admin_api_needs_the_admin_scope_and_audits_what_it_does(app: TestApp) {
    let ops_client = app
        .client(
            "ops",
            false,
            &[GrantType::ClientCredentials],
            "sigil:admin",
            None,
        )
        .await;
    let plain = app
        .client(
            "plain",
            false,
            &[GrantType::ClientCredentials],
            "read",
            None,
        )
        .await;
    let admin_token = service_token(&app, &ops_client).await;
    let plain_token = service_token(&app, &plain).await;

    let anonymous = app.get("/admin/keys").send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let forbidden = app
        .get("/admin/keys")
        .bearer_auth(&plain_token)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(
        forbidden.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let post = app
        .post("/admin/keys/rotate")
        .bearer_auth(&plain_token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::FORBIDDEN);

    let listed: Value = json(
        app.get("/admin/keys")
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);
    let rotate = |body: Value| {
        app.post("/admin/keys/rotate")
            .bearer_auth(&admin_token)
            .json(&body)
            .send()
    };
    let dry: Value = json(
        rotate(serde_json::json!({"alg": "EdDSA", "dry_run": true}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(dry["outcomes"][0]["dry_run"], true);
    let done = rotate(serde_json::json!({"alg": "EdDSA"})).await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let new_kid = json(done).await["outcomes"][0]["new_kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        kids(&app.jwks().await).contains(&new_kid),
        "published at once on this node"
    );
    let twice = rotate(serde_json::json!({"alg": "EdDSA"})).await.unwrap();
    assert_eq!(twice.status(), StatusCode::CONFLICT);
    let bad = rotate(serde_json::json!({"alg": "HS256"})).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // Audit events are written by the node's background writer, as every
    // admin action's are: wait for it (at most 10 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let event = loop {
        let audit = app.sigil.store.recent_audit(10).await.unwrap();
        if let Some(event) = audit
            .into_iter()
            .find(|e| e.action == "key.rotation_scheduled")
        {
            break event;
        }
        assert!(std::time::Instant::now() < deadline, "not audited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(event.actor, "client:ops");
    assert_eq!(event.target.as_deref(), Some(new_kid.as_str()));
}

#[tokio::test]
async fn private_keys_are_never_stored_in_plaintext_and_rewrap_changes_the_kek() {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let (store, kek, policy) = (
        app.sigil.store.as_ref(),
        app.sigil.keys.kek(),
        app.sigil.keys.policy(),
    );
    let imported = ops::import_pem(store, kek, policy, Alg::RS256, &pem, by(&app), false)
        .await
        .unwrap();
    let kid = imported.new_kid.unwrap();
    app.sigil.reload_keys().await.unwrap();
    assert!(
        kids(&app.jwks().await).contains(&kid),
        "the imported key is published (pending)"
    );

    // Neither the DER, nor its base64, nor the PEM body is anywhere on disk.
    let der_bytes = der.as_bytes();
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&der_bytes[..48])
    };
    for entry in walk(app.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(64).any(|w| w == &der_bytes[100..164]),
            "raw key in {entry:?}"
        );
        assert!(
            !bytes.windows(b64.len()).any(|w| w == b64.as_bytes()),
            "base64 key in {entry:?}"
        );
    }

    // Rewrap under a new KEK: the old one no longer opens the keys.
    let (new_kek, encoded) = sigil::keys::Kek::generate().unwrap();
    ops::rewrap(store, kek, &new_kek, by(&app), false)
        .await
        .unwrap();
    let config = app.sigil.config.clone();
    let old_open = sigil::Sigil::open(
        config.clone(),
        std::sync::Arc::new(sigil::clock::SystemClock),
    )
    .await;
    assert!(old_open.is_err(), "the old KEK is refused after a rewrap");
    let mut config = config.into_inner();
    config.kek = Some(encoded);
    sigil::Sigil::open(
        config.validated().unwrap(),
        std::sync::Arc::new(sigil::clock::SystemClock),
    )
    .await
    .expect("the new KEK opens");

    // A malformed PEM is refused with a clear message.
    let err = ops::import_pem(
        store,
        &new_kek,
        policy,
        Alg::EdDSA,
        "not a pem",
        by(&app),
        false,
    )
    .await;
    assert!(err.unwrap_err().to_string().contains("PKCS#8"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}
