-- Sender-constrained tokens (DPoP, RFC 9449), clients that authenticate
-- with a signed assertion (private_key_jwt, RFC 7523), and token exchange
-- (RFC 8693).

-- The RFC 7638 thumbprint of the DPoP key a login's refresh tokens are
-- bound to (public clients: RFC 9449 §5), and of the key an authorization
-- request bound its code to (`dpop_jkt`, §10).
ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;

-- How a client authenticates: NULL keeps the old rule (a secret when it
-- has one, none when public); 'private_key_jwt' signs an assertion with a
-- key from `jwks` (inline JSON) or `jwks_uri`, and stores no secret.
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT;
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
-- Every token request of the client must carry a DPoP proof.
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
-- Space-separated audiences the client may ask a token exchange for.
ALTER TABLE clients ADD COLUMN exchange_audiences TEXT NOT NULL DEFAULT '';

-- One-time identifiers seen (a DPoP proof's or a client assertion's `jti`),
-- kept until the proof or assertion could no longer be accepted, so that
-- every node refuses a replay. Only a SHA-256 of purpose, issuer and jti.
CREATE TABLE seen_jtis (
    key_hash   BLOB PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX seen_jtis_expiry ON seen_jtis (expires_at);
