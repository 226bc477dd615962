-- Sigil schema, PostgreSQL flavour. Timestamps are Unix seconds (BIGINT).

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY NOT NULL,
    -- SHA-256 of the secret; NULL for a public client.
    secret_hash BYTEA,
    grant_types TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    alg         TEXT,
    audience    TEXT,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);

-- A key's state is derived from its times and the clock:
-- pending < activates_at <= active < retires_at <= retired < removes_at <= removed.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY NOT NULL,
    alg          TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    -- AES-256-GCM(nonce || ciphertext || tag) of the PKCS#8 document; NULL once destroyed.
    private_key  BYTEA,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retires_at   BIGINT,
    removes_at   BIGINT
);
