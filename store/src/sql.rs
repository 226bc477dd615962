//! The statements both backends run word for word (sqlx's SQLite driver
//! takes `$N` placeholders as Postgres does). What differs between the two
//! — locking, upserts, batch inserts, `RETURNING` shapes — stays in
//! `sqlite.rs` and `postgres.rs`.

pub(crate) const APPLIED_MIGRATIONS: &str =
    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
pub(crate) const CLIENT_BY_ID: &str = "SELECT * FROM clients WHERE client_id = $1";
pub(crate) const DESTROY_REMOVED_KEYS: &str =
    "UPDATE signing_keys SET private_key = NULL WHERE removes_at <= $1 AND private_key IS NOT NULL";
pub(crate) const FAMILY_BY_ID: &str = "SELECT * FROM refresh_families WHERE id = $1";
pub(crate) const INSERT_AUDIT: &str =
    "INSERT INTO audit_events (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const INSERT_CLIENT: &str = "INSERT INTO clients (client_id, secret_hash, grant_types, scopes, alg, audience, disabled, created_at, \
             access_token_ttl_secs, refresh_token_ttl_secs, redirect_uris, post_logout_redirect_uris, first_party, require_mfa, \
             token_endpoint_auth_method, jwks, jwks_uri, require_dpop, exchange_audiences)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";
pub(crate) const INSERT_REVOCATION: &str = "INSERT INTO revocations (kind, value, not_before, expires_at, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING seq";
pub(crate) const INSERT_USER: &str =
    "INSERT INTO users (id, username, email, password_hash, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(crate) const IS_REVOKED: &str =
    "SELECT EXISTS (SELECT 1 FROM revocations WHERE expires_at > $1 AND (
                (kind = 'token' AND value = $2)
             OR (kind = 'session' AND value = $3)
             OR (kind = 'user' AND value = $4 AND not_before >= $5)))";
pub(crate) const LIST_CLIENTS: &str = "SELECT * FROM clients ORDER BY client_id";
pub(crate) const LIST_KEYS: &str = "SELECT * FROM signing_keys ORDER BY created_at, kid";
pub(crate) const LIST_USERS: &str =
    "SELECT * FROM users WHERE username > $1 ORDER BY username LIMIT $2";
pub(crate) const MARK_USER_SESSIONS_REVOKED: &str = "UPDATE users SET sessions_revoked_at = $1, \
                     updated_at = CASE WHEN $3 OR $4 IS NOT NULL THEN $1 ELSE updated_at END, \
                     disabled = (disabled OR $3), \
                     password_hash = COALESCE($4, password_hash) WHERE id = $2";
pub(crate) const MIGRATION_RECORDS: &str =
    "SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version";
pub(crate) const PING: &str = "SELECT 1";
pub(crate) const RECENT_AUDIT: &str = "SELECT * FROM audit_events ORDER BY id DESC LIMIT $1";
pub(crate) const REFRESH_TOKEN_BY_HASH: &str = "SELECT * FROM refresh_tokens WHERE hash = $1";
pub(crate) const RETIRE_KEY: &str =
    "UPDATE signing_keys SET retires_at = $1, removes_at = $2 WHERE kid = $3";
pub(crate) const REVOCATIONS_SINCE: &str =
    "SELECT * FROM revocations WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3";
pub(crate) const REVOKE_FAMILY: &str =
    "UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
pub(crate) const REVOKE_USER_FAMILIES: &str =
    "UPDATE refresh_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";
pub(crate) const REWRAP_KEY: &str =
    "UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key IS NOT NULL";
pub(crate) const REWRAP_TOTP: &str = "UPDATE totp_factors SET secret = $1 WHERE user_id = $2";
pub(crate) const ROTATE_CLIENT_SECRET: &str = "UPDATE clients SET previous_secret_hash = secret_hash, previous_secret_expires_at = $1, \
             secret_hash = $2 WHERE client_id = $3 AND secret_hash IS NOT NULL";
pub(crate) const SCHEDULE_KEY: &str = "INSERT INTO signing_keys (kid, alg, public_jwk, private_key, created_at, activates_at, retires_at, removes_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8
             WHERE NOT $9 OR NOT EXISTS (
                SELECT 1 FROM signing_keys WHERE alg = $10 AND activates_at > $11
                  AND (retires_at IS NULL OR retires_at > $12) AND (removes_at IS NULL OR removes_at > $12))";
pub(crate) const SET_CLIENT_DISABLED: &str =
    "UPDATE clients SET disabled = $1 WHERE client_id = $2";
pub(crate) const SET_CLIENT_REQUIRE_MFA: &str =
    "UPDATE clients SET require_mfa = $1 WHERE client_id = $2";
pub(crate) const SET_KEY_TIMES: &str = "UPDATE signing_keys SET retires_at = $1, removes_at = $2,
                private_key = CASE WHEN $3 THEN NULL ELSE private_key END
             WHERE kid = $4";
pub(crate) const SET_USER_DISABLED: &str =
    "UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3";
pub(crate) const THROTTLE_CLEAR: &str = "DELETE FROM login_throttle WHERE key = $1";
pub(crate) const THROTTLE_GET: &str =
    "SELECT failures, window_start, locked_until FROM login_throttle WHERE key = $1";
pub(crate) const THROTTLE_PRUNE: &str = "DELETE FROM login_throttle WHERE key IN (SELECT key FROM login_throttle \
             WHERE window_start < $1 AND locked_until < $2 LIMIT $3)";
pub(crate) const USER_BY_ID: &str = "SELECT * FROM users WHERE id = $1";
pub(crate) const USER_BY_USERNAME: &str = "SELECT * FROM users WHERE username = $1";
