-- Per-client token lifetimes in seconds; NULL means the server's own
-- (access_token_ttl, refresh_absolute_ttl). Neither may exceed the
-- server's: key retirement and deny-list entries are timed by the global
-- access-token lifetime (checked where a client is created, and each
-- token's lifetime is also capped at the global value when it is issued).
ALTER TABLE clients ADD COLUMN access_token_ttl_secs BIGINT;
ALTER TABLE clients ADD COLUMN refresh_token_ttl_secs BIGINT;
