-- Update alerts wait until not_before (a bounded rate of updates per
-- incident); channels remember what they created for an incident (a Jira
-- issue key) so updates land there; "was this you?" questions to placement
-- owners, answered once through a link (only a hash of the token is looked up).
ALTER TABLE alerts ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;

CREATE TABLE channel_refs (
    channel_id INTEGER NOT NULL REFERENCES channels(id),
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    reference TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, incident_id)
);

CREATE TABLE owner_questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    owner TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    token_sealed TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    answered_at INTEGER,
    answer TEXT,
    comment TEXT,
    answered_from TEXT,
    UNIQUE (incident_id, owner)
);
