-- Sign-in beyond passwords: how each sign-in was made (RFC 8176 `amr`,
-- OIDC `acr`), TOTP (RFC 6238) with recovery codes, passkeys (WebAuthn),
-- and the device authorization grant (RFC 8628).

-- How the user proved who they are: space-separated RFC 8176 `amr` values
-- and the `acr` they add up to. Rows from before this migration were
-- password sign-ins.
ALTER TABLE browser_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE browser_sessions ADD COLUMN acr TEXT NOT NULL DEFAULT 'urn:sigil:acr:1fa';
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE authorization_codes ADD COLUMN acr TEXT NOT NULL DEFAULT 'urn:sigil:acr:1fa';
-- A login's tokens all say how it began (NULL: a family from before this
-- migration, whose tokens carried neither).
ALTER TABLE refresh_families ADD COLUMN amr TEXT;
ALTER TABLE refresh_families ADD COLUMN acr TEXT;
-- The client's users must use a second factor (a passkey, or a password
-- and a TOTP code).
ALTER TABLE clients ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;

-- One TOTP authenticator per user. The secret is sealed under the KEK
-- (AES-256-GCM, the user id bound as associated data). Until confirmed by a
-- first valid code it is an enrolment in progress and signs no one in.
CREATE TABLE totp_factors (
    user_id      TEXT PRIMARY KEY NOT NULL REFERENCES users(id),
    secret       BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    -- The newest time step a code was accepted for: a code is good once.
    last_step    INTEGER NOT NULL DEFAULT 0
);

-- Single-use recovery codes, shown once; only their SHA-256 is stored.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id),
    code_hash  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
);

-- WebAuthn credentials. `credential` is webauthn-rs's serialised Passkey
-- (public key, signature counter, flags): no secret.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id),
    credential_id BLOB NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    -- Backup eligible (a synced passkey): `swk` rather than `hwk`.
    backup_eligible BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- A WebAuthn ceremony between its start and its finish (a few minutes):
-- webauthn-rs's state, found by the SHA-256 of the id handed to the page.
CREATE TABLE webauthn_ceremonies (
    id_hash    BLOB PRIMARY KEY NOT NULL,
    -- 'register', 'sign_in' or 'sign_up'.
    purpose    TEXT NOT NULL,
    user_id    TEXT,
    state      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- RFC 8628: one row per device authorization request, until it expires.
-- Only SHA-256 digests of the two codes are stored.
CREATE TABLE device_codes (
    device_code_hash BLOB PRIMARY KEY NOT NULL,
    -- The digest of the normalised user code (§6.1), for the /device page.
    user_code_hash   BLOB NOT NULL UNIQUE,
    client_id        TEXT NOT NULL REFERENCES clients(client_id),
    scope            TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    -- §3.5: the least number of seconds between two polls; grows by 5 at
    -- each slow_down.
    poll_interval    INTEGER NOT NULL,
    -- The earliest time the next poll is on time.
    next_poll_at     INTEGER NOT NULL,
    -- Whether the last poll came before next_poll_at (answered slow_down).
    polled_too_soon  BOOLEAN NOT NULL DEFAULT FALSE,
    -- 'pending', then 'approved' or 'denied' on the /device page.
    status           TEXT NOT NULL DEFAULT 'pending',
    -- Who approved it, how and when they authenticated, in which browser
    -- session (the ID token's auth_time, amr, acr and sid).
    user_id          TEXT REFERENCES users(id),
    auth_time        INTEGER,
    amr              TEXT,
    acr              TEXT,
    sid              TEXT,
    decided_at       INTEGER,
    -- Set once, atomically, when the device exchanges the approved code.
    spent_at         INTEGER
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);
