-- Automated response (issue 14). Placements gain what a response acts on:
-- the EC2 instance the key sits on, the owner's real IAM user, and the AWS
-- account that owns both.
ALTER TABLE placements ADD COLUMN instance_id TEXT;
ALTER TABLE placements ADD COLUMN iam_user TEXT;
ALTER TABLE placements ADD COLUMN aws_account TEXT;

-- An action: what it does (`kind`), when (`trigger`: mode, conditions, the
-- own-network rule, as JSON), for which incidents (`route`: only those this
-- route matches), with what (`settings`: targets, role, quarantine group,
-- argv, timeout, as JSON). A webhook's URL and signing secret are sealed.
CREATE TABLE actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    trigger_json TEXT NOT NULL,
    route TEXT,
    settings TEXT NOT NULL,
    secret_sealed TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);

-- One action for one incident: at most one run per pair. `state`: skipped,
-- waiting (a grace period, until due_at), awaiting-approval, queued (held
-- by the rate limit until due_at), running, done, dry-run, failed,
-- cancelled, undone, undo-failed. `target` names what it acts on (one
-- action in flight per target). `before_state` is what undo restores, as
-- JSON; `plan` what it changes; `output` what happened.
CREATE TABLE action_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id INTEGER NOT NULL REFERENCES actions(id),
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    state TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT,
    due_at INTEGER,
    plan TEXT,
    before_state TEXT,
    output TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    decided_by TEXT,
    undone_by TEXT
);
CREATE UNIQUE INDEX action_runs_once ON action_runs (action_id, incident_id);
CREATE INDEX action_runs_state ON action_runs (state, due_at);
CREATE INDEX action_runs_incident ON action_runs (incident_id);
CREATE INDEX action_runs_started ON action_runs (started_at);
