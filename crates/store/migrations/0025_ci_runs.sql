-- CI canaries (issue 32): one key per CI run, and the run's expected-activity
-- window. A use inside the window that the window expects is kept in
-- expected_events (no incident, no alert); every other use is an incident.
CREATE TABLE ci_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id INTEGER NOT NULL UNIQUE REFERENCES tokens(id),
    enrollment_id INTEGER NOT NULL REFERENCES enrollment_secrets(id),
    provider TEXT NOT NULL,
    repository TEXT NOT NULL,
    workflow TEXT,
    job TEXT,
    commit_sha TEXT,
    run_id TEXT NOT NULL,
    run_attempt TEXT,
    url TEXT,
    source_address TEXT NOT NULL,
    expect TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    window_ends_at INTEGER NOT NULL,
    closed_at INTEGER,
    close_hash TEXT NOT NULL,
    -- When the key was retired after ci.keep_days.
    retired_at INTEGER
);
CREATE INDEX ci_runs_opened ON ci_runs (opened_at, id);

CREATE TABLE expected_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    token_id INTEGER NOT NULL REFERENCES tokens(id),
    ci_run_id INTEGER NOT NULL REFERENCES ci_runs(id),
    event_time INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    event_source TEXT NOT NULL,
    event_name TEXT NOT NULL,
    aws_region TEXT,
    source_ip TEXT,
    user_agent TEXT,
    error_code TEXT,
    source TEXT NOT NULL,
    origin TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX expected_events_run ON expected_events (ci_run_id, event_time);
CREATE INDEX expected_events_token ON expected_events (token_id, event_time);
