-- Alerting: channels (configuration sealed with the data key), alerts written
-- in the same transaction as the incident change that caused them, and one
-- delivery per alert and channel, retried until delivered or dead-lettered.
CREATE TABLE channels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    config_sealed TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    fanned_out INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alerts_fan_out ON alerts (fanned_out, id);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts(id),
    channel_id INTEGER NOT NULL REFERENCES channels(id),
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    delivered_at INTEGER,
    UNIQUE (alert_id, channel_id)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
