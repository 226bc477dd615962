-- Browser sign-in (authorization code + PKCE, OpenID Connect): what a
-- client registers for it, browser sessions, authorization codes and
-- remembered consent.

-- Space-separated absolute URIs, matched by exact string (RFC 9700 §2.1;
-- a registered loopback URI matches any port, RFC 8252 §7.3).
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
-- A first-party client's users are not asked for consent.
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;

-- One signed-in browser. The cookie holds a secret; only its SHA-256 is
-- stored. `sid` is the public name of the session (the ID token's `sid`).
CREATE TABLE browser_sessions (
    id_hash      BYTEA PRIMARY KEY NOT NULL,
    sid          TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id),
    -- When the user last proved who they are (OIDC `auth_time`).
    auth_time    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    -- Idle expiry is last_seen_at + the idle lifetime.
    last_seen_at BIGINT NOT NULL,
    -- created_at + the absolute lifetime.
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT,
    -- What the account page shows to tell sessions apart (truncated).
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);

-- RFC 6749 §4.1.2: single-use, short-lived, bound to everything the
-- authorization request said. Only the code's SHA-256 is stored.
CREATE TABLE authorization_codes (
    hash           BYTEA PRIMARY KEY NOT NULL,
    client_id      TEXT NOT NULL REFERENCES clients(client_id),
    user_id        TEXT NOT NULL REFERENCES users(id),
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    -- RFC 7636 S256 challenge (base64url of SHA-256 of the verifier).
    code_challenge TEXT,
    auth_time      BIGINT NOT NULL,
    sid            TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    -- Set once, atomically, when the code is exchanged; with the family the
    -- exchange opened, so a replay can revoke it (RFC 6749 §4.1.2).
    spent_at       BIGINT,
    family_id      TEXT
);

-- Consent a user granted a client: the scopes, remembered until revoked.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id),
    client_id  TEXT NOT NULL REFERENCES clients(client_id),
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
