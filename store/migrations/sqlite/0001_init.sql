-- Sigil schema, SQLite flavour. Timestamps are Unix seconds (INTEGER).

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY NOT NULL,
    -- SHA-256 of the secret; NULL for a public client.
    secret_hash BLOB,
    grant_types TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    alg         TEXT,
    audience    TEXT,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

-- A key's state is derived from its times and the clock:
-- pending < activates_at <= active < retires_at <= retired < removes_at <= removed.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY NOT NULL,
    alg          TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    -- AES-256-GCM(nonce || ciphertext || tag) of the PKCS#8 document; NULL once destroyed.
    private_key  BLOB,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    retires_at   INTEGER,
    removes_at   INTEGER
);
