-- Reads of bait files (phase 4): from hosts' agents (fanotify, or inotify
-- without process details) and from audit logs, tied to the placement whose
-- host and path they match. `record` is the access as JSON (process, user,
-- session, parent chain); the columns beside it are what lists filter on.
-- `touch`: pending (a key use may still follow), used (one did, within
-- evidence.touch_window), touched (a bait-touched incident was opened),
-- quiet (a process on evidence.quiet_programs: kept, never alerted),
-- unmatched (no placement has that host and path).
CREATE TABLE access_evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    record_id TEXT NOT NULL,
    path TEXT NOT NULL,
    agent_id INTEGER REFERENCES agents(id),
    token_id INTEGER REFERENCES tokens(id),
    placement_id INTEGER REFERENCES placements(id),
    source TEXT NOT NULL,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    opens INTEGER NOT NULL,
    exe TEXT,
    record TEXT NOT NULL,
    touch TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX access_evidence_once ON access_evidence (host, record_id);
CREATE INDEX access_evidence_token ON access_evidence (token_id, first_at);
CREATE INDEX access_evidence_host ON access_evidence (host, first_at);
CREATE INDEX access_evidence_touch ON access_evidence (touch, first_at);

-- How each agent watches its bait (fanotify, inotify, auditd, off: why),
-- and how many reads it had to drop while the server was unreachable.
ALTER TABLE agents ADD COLUMN watch TEXT;
ALTER TABLE agents ADD COLUMN evidence_dropped INTEGER NOT NULL DEFAULT 0;
