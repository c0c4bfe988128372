-- Detection: incidents, the CloudTrail events in them, and their history.
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id INTEGER NOT NULL REFERENCES tokens(id),
    state TEXT NOT NULL DEFAULT 'open',
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    event_count INTEGER NOT NULL DEFAULT 0,
    opened_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    token_retired INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX incidents_token_state ON incidents (token_id, state);
CREATE INDEX incidents_state_last_seen ON incidents (state, last_seen);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    token_id INTEGER NOT NULL REFERENCES tokens(id),
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    event_time INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    event_source TEXT NOT NULL,
    event_name TEXT NOT NULL,
    aws_region TEXT,
    source_ip TEXT,
    user_agent TEXT,
    error_code TEXT,
    error_message TEXT,
    access_key_id TEXT,
    principal_arn TEXT,
    source TEXT NOT NULL,
    origin TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX events_incident_time ON events (incident_id, event_time);

CREATE TABLE incident_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    note TEXT
);
CREATE INDEX incident_log_incident ON incident_log (incident_id, id);
