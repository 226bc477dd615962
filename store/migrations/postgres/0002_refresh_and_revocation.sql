-- Refresh-token families, rotating refresh tokens, and the revocation list.

-- One login: every refresh token descended from it belongs to the family.
CREATE TABLE refresh_families (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id),
    client_id  TEXT NOT NULL REFERENCES clients(client_id),
    -- The scope granted at login: a refresh may narrow it, never widen it.
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- created_at + the absolute lifetime.
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX refresh_families_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the token; the token itself is never stored.
    hash           BYTEA PRIMARY KEY NOT NULL,
    family_id      TEXT NOT NULL REFERENCES refresh_families(id),
    scope          TEXT NOT NULL,
    issued_at      BIGINT NOT NULL,
    -- issued_at + the idle lifetime, capped by the family's expiry.
    expires_at     BIGINT NOT NULL,
    -- Set once, atomically, when the token is exchanged for its successor.
    spent_at       BIGINT,
    successor_hash BYTEA
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- The deny-list and the revocation feed. seq orders the feed (its cursor).
CREATE TABLE revocations (
    seq        BIGSERIAL PRIMARY KEY,
    -- 'token' (value = jti), 'session' (value = sid) or 'user' (value = sub).
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    -- For 'user': tokens issued at or before this instant are revoked.
    not_before BIGINT,
    -- When every token the entry could match has expired: prunable after.
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX revocations_expiry ON revocations (expires_at);
CREATE INDEX revocations_value ON revocations (kind, value);
