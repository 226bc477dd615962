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
