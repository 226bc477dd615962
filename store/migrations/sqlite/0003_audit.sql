-- Audit trail of security-relevant actions (who, what, when).
CREATE TABLE audit_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    -- Who acted: "cli", "scheduler", "user:<id>", "client:<id>".
    actor  TEXT NOT NULL,
    -- A stable event name, e.g. "key.rotated".
    action TEXT NOT NULL,
    target TEXT,
    -- JSON object with the details of the event.
    detail TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);

-- When all of a user's sessions were last revoked ("log out everywhere",
-- password change, disablement): a family created at or before this instant
-- is dead even if it was created concurrently with the revocation.
ALTER TABLE users ADD COLUMN sessions_revoked_at INTEGER;
