-- Fleet enrolment secrets: hosts present one to ask for their own key.
-- Only the SHA-256 of a secret is kept; `uses` NULL means unlimited.
CREATE TABLE enrollment_secrets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash TEXT NOT NULL UNIQUE,
    uses INTEGER,
    used INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL,
    labels TEXT NOT NULL,
    template TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
