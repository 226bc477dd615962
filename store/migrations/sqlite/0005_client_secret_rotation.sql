-- A rotated client secret keeps working until previous_secret_expires_at
-- (Unix seconds), so that a client's deployments can switch over without
-- an outage. Only the SHA-256 of either secret is stored.
ALTER TABLE clients ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;
