-- Failed logins per throttling key: "acct:<username>" (every address) and
-- "pair:<address>|<username>" (one address). Kept in the database so that
-- every node on one Postgres sees the same counters, and a restart does not
-- reset a lockout. Rows whose window and lockout are over are pruned.
CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    -- Failures counted since window_start (reset when a lockout begins).
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    -- Unix seconds until which the key is locked out; 0 when it is not.
    locked_until BIGINT NOT NULL
);
CREATE INDEX login_throttle_window_start ON login_throttle (window_start);
