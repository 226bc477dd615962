//! The plain records the store reads and writes: no sqlx type escapes
//! beyond the `FromRow` derives.

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Sessions (refresh families) created at or before this are revoked.
    pub sessions_revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientRecord {
    pub client_id: String,
    /// SHA-256 of the client secret; `None` for a public client.
    pub secret_hash: Option<Vec<u8>>,
    /// Space-separated grant types.
    pub grant_types: String,
    /// Space-separated scopes the client may request.
    pub scopes: String,
    pub alg: Option<String>,
    pub audience: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    /// SHA-256 of the secret before the last rotation, accepted until
    /// `previous_secret_expires_at`.
    pub previous_secret_hash: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<i64>,
    /// The client's own access-token lifetime in seconds; `None`: the server's.
    pub access_token_ttl_secs: Option<i64>,
    /// The client's own refresh-token (login) lifetime in seconds; `None`:
    /// the server's `refresh_absolute_ttl`.
    pub refresh_token_ttl_secs: Option<i64>,
    /// Space-separated redirect URIs for the authorization endpoint.
    pub redirect_uris: String,
    /// Space-separated URIs RP-initiated logout may return to.
    pub post_logout_redirect_uris: String,
    /// Users of a first-party client are not asked for consent.
    pub first_party: bool,
    /// The client's users must sign in with a second factor.
    pub require_mfa: bool,
    /// `private_key_jwt`, or `None`: a secret when it has one, none when
    /// public.
    pub token_endpoint_auth_method: Option<String>,
    /// The client's public keys (a JWKS, JSON) for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Where the client's JWKS is fetched from, instead of `jwks`.
    pub jwks_uri: Option<String>,
    /// Every token request must carry a DPoP proof.
    pub require_dpop: bool,
    /// Space-separated audiences a token exchange may target.
    pub exchange_audiences: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    /// The encrypted private key, `None` once it has been destroyed.
    pub private_key: Option<Vec<u8>>,
    pub created_at: i64,
    pub activates_at: i64,
    pub retires_at: Option<i64>,
    pub removes_at: Option<i64>,
}

/// One login's refresh-token family.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FamilyRecord {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// How the login was authenticated: RFC 8176 `amr` values,
    /// space-separated, and the `acr`; `None` for a family from before
    /// Sigil recorded them.
    pub amr: Option<String>,
    pub acr: Option<String>,
    /// The DPoP key (RFC 7638 thumbprint) the family's refresh tokens are
    /// bound to, for a public client that proved one.
    pub dpop_jkt: Option<String>,
}

/// One refresh token, known only by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefreshRecord {
    pub hash: Vec<u8>,
    pub family_id: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
    pub successor_hash: Option<Vec<u8>>,
}

/// What happened to an attempt to spend a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpendOutcome {
    /// This call spent it; the successor is stored.
    Spent,
    /// It had already been spent (the row as it is now).
    AlreadySpent(RefreshRecord),
    NotFound,
}

/// What a deny-list entry denies, and so what its value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    /// One access token (value = `jti`).
    Token,
    /// Every token of a login session (value = `sid`, the family id).
    Session,
    /// Every token of a user issued before `not_before` (value = `sub`).
    User,
    /// Every token signed by a key, after an emergency rotation (value = `kid`).
    Key,
}

impl RevocationKind {
    /// The name stored in the `kind` column and shown in the feed.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Token => "token",
            RevocationKind::Session => "session",
            RevocationKind::User => "user",
            RevocationKind::Key => "key",
        }
    }
}

impl TryFrom<String> for RevocationKind {
    type Error = crate::StoreError;

    fn try_from(kind: String) -> Result<Self, Self::Error> {
        Ok(match kind.as_str() {
            "token" => RevocationKind::Token,
            "session" => RevocationKind::Session,
            "user" => RevocationKind::User,
            "key" => RevocationKind::Key,
            _ => {
                return Err(crate::StoreError::Other(format!(
                    "unknown deny-list entry kind {kind:?}"
                )));
            }
        })
    }
}

/// A deny-list entry, as stored and as the revocation feed reports it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevocationRecord {
    pub seq: i64,
    #[sqlx(try_from = "String")]
    pub kind: RevocationKind,
    pub value: String,
    pub not_before: Option<i64>,
    pub expires_at: i64,
    pub created_at: i64,
}

/// A deny-list entry to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    pub kind: RevocationKind,
    pub value: String,
    pub not_before: Option<i64>,
    pub expires_at: i64,
}

/// Which refresh families to revoke.
#[derive(Debug, Clone, Copy)]
pub enum Families<'a> {
    One(&'a str),
    /// Every family the user has now; the ones that existed when the
    /// transaction commits, never one created after it.
    OfUser(UserFamilies<'a>),
    /// As `OfUser`, and the user is disabled in the same transaction (so a
    /// user is never disabled with their tokens still valid).
    OfDisabledUser(UserFamilies<'a>),
}

/// A user's families to revoke, and which of them also get a `session`
/// deny-list entry: those that issued a token at or after `active_since`
/// (created then, or a refresh token issued then). The `user` entry denies
/// only earlier seconds, so that a session begun after the revocation, in
/// the same second, is not caught by it; these session entries deny the
/// tokens that the revoked sessions issued in that second.
#[derive(Debug, Clone, Copy)]
pub struct UserFamilies<'a> {
    pub user_id: &'a str,
    pub active_since: i64,
    /// A new password hash stored in the same transaction (a password
    /// change), so no login with the new password can fall between the
    /// change and the revocation.
    pub new_password_hash: Option<&'a str>,
}

/// An old key to retire when a new one is scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    pub kid: String,
    pub retires_at: i64,
    pub removes_at: i64,
}

/// A throttling key's failed-login counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct ThrottleRecord {
    pub failures: i64,
    pub window_start: i64,
    /// Unix seconds; the key is locked out while this is in the future.
    pub locked_until: i64,
}

/// How failures against one kind of throttling key are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Seconds over which failures are counted.
    pub window: i64,
    /// Failures within the window that lock the key.
    pub limit: i64,
    /// Seconds a lockout lasts.
    pub lockout: i64,
}

/// An audit event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    /// A JSON object.
    pub detail: String,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    /// A JSON object.
    pub detail: String,
}

/// Connection-pool occupancy.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
    /// Whether the server is taken to be reachable: the Postgres health
    /// probe's verdict (see `pg_health`); always `true` on SQLite.
    pub reachable: bool,
}

/// One signed-in browser, known by the SHA-256 of its cookie's secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BrowserSessionRecord {
    pub id_hash: Vec<u8>,
    /// The session's public name (the ID token's `sid`).
    pub sid: String,
    pub user_id: String,
    /// When the user last authenticated (OIDC `auth_time`).
    pub auth_time: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// The absolute expiry; the idle one is `last_seen_at` + the idle lifetime.
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub user_agent: String,
    /// How the user authenticated (RFC 8176 values, space-separated).
    pub amr: String,
    /// The authentication context class that adds up to.
    pub acr: String,
}

/// An authorization code (RFC 6749 §4.1.2), known by its SHA-256, with
/// everything the authorization request bound it to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuthCodeRecord {
    pub hash: Vec<u8>,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    /// The RFC 7636 S256 challenge.
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    /// The browser session it was issued in.
    pub sid: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
    /// The refresh family the exchange opened (set when spent).
    pub family_id: Option<String>,
    /// How the user authenticated (the session's `amr` and `acr`).
    pub amr: String,
    pub acr: String,
    /// The DPoP key the request bound the code to (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
}

/// What happened to an attempt to exchange an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSpend {
    /// This call spent it (the row as it is now).
    Spent(AuthCodeRecord),
    /// It had been spent before: a replay (the row, with the family the
    /// first exchange opened).
    AlreadySpent(AuthCodeRecord),
    /// Unknown or expired.
    NotFound,
}

/// Consent a user granted a client, remembered until revoked.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentRecord {
    pub user_id: String,
    pub client_id: String,
    /// Space-separated scopes granted.
    pub scope: String,
    pub granted_at: i64,
}

/// A user's TOTP authenticator (RFC 6238).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TotpRecord {
    pub user_id: String,
    /// The shared secret, sealed under the KEK.
    pub secret: Vec<u8>,
    pub created_at: i64,
    /// `None` while the enrolment awaits its first valid code.
    pub confirmed_at: Option<i64>,
    /// The newest time step a code was accepted for.
    pub last_step: i64,
}

/// A WebAuthn credential of a user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PasskeyRecord {
    /// Sigil's own short id for it (what pages and the admin API name).
    pub id: String,
    pub user_id: String,
    /// The authenticator's credential id.
    pub credential_id: Vec<u8>,
    /// What the user calls it.
    pub name: String,
    /// The webauthn-rs credential, serialised (no secret).
    pub credential: String,
    /// Backup eligible: a synced passkey rather than one bound to a device.
    pub backup_eligible: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A WebAuthn ceremony between its start and its finish.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CeremonyRecord {
    /// SHA-256 of the id handed to the page.
    pub id_hash: Vec<u8>,
    /// `register`, `sign_in` or `sign_up`.
    pub purpose: String,
    /// The user registering a passkey (`None` for a sign-in).
    pub user_id: Option<String>,
    /// webauthn-rs's ceremony state, serialised.
    pub state: String,
    pub expires_at: i64,
}

/// What a user chose for a device authorization request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
        }
    }
}

impl TryFrom<String> for DeviceStatus {
    type Error = crate::StoreError;

    fn try_from(status: String) -> Result<Self, Self::Error> {
        Ok(match status.as_str() {
            "pending" => DeviceStatus::Pending,
            "approved" => DeviceStatus::Approved,
            "denied" => DeviceStatus::Denied,
            _ => {
                return Err(crate::StoreError::Other(format!(
                    "unknown device code status {status:?}"
                )));
            }
        })
    }
}

/// A device authorization request (RFC 8628), known by the SHA-256 of its
/// device code and of its normalised user code.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceCodeRecord {
    pub device_code_hash: Vec<u8>,
    pub user_code_hash: Vec<u8>,
    pub client_id: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The least number of seconds between two polls (§3.5).
    pub poll_interval: i64,
    pub next_poll_at: i64,
    /// The last poll came too soon (it was answered `slow_down`).
    pub polled_too_soon: bool,
    #[sqlx(try_from = "String")]
    pub status: DeviceStatus,
    pub user_id: Option<String>,
    pub auth_time: Option<i64>,
    pub amr: Option<String>,
    pub acr: Option<String>,
    pub sid: Option<String>,
    pub decided_at: Option<i64>,
    pub spent_at: Option<i64>,
}

/// The user's decision on a device authorization request, with how they
/// authenticated when they made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDecision {
    /// `Approved` or `Denied`.
    pub status: DeviceStatus,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: String,
    pub acr: String,
    pub sid: String,
}
