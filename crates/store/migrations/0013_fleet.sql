-- The fleet: keys minted ahead for enrolments, enrolled hosts, the bait
-- files their agents wrote, and the commands waiting for them.

-- Keys minted ahead, handed out one per enrolling host. A key here is
-- active in AWS but placed nowhere and not counted as deployed.
CREATE TABLE key_pool (
    token_id INTEGER PRIMARY KEY REFERENCES tokens(id),
    added_at INTEGER NOT NULL
);

-- One row per enrolled host. `state`: enrolling (key handed out, bait not
-- confirmed yet), active, failed (the agent gave up or never confirmed;
-- the key is retired), removed. Only the SHA-256 of the credential is kept.
CREATE TABLE agents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    enrollment_id INTEGER NOT NULL REFERENCES enrollment_secrets(id),
    credential_hash TEXT NOT NULL UNIQUE,
    token_id INTEGER REFERENCES tokens(id),
    hostname TEXT NOT NULL,
    machine_id TEXT,
    dmi_serial TEXT,
    os TEXT,
    instance_id TEXT,
    agent_version TEXT,
    source_address TEXT,
    template TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    enrolled_at INTEGER NOT NULL,
    confirmed_at INTEGER,
    last_seen_at INTEGER,
    stale_since INTEGER
);
CREATE INDEX agents_state ON agents (state, last_seen_at);

-- One row per bait file an agent wrote, with the placement recorded for it
-- and what the last heartbeat said of it.
CREATE TABLE agent_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    token_id INTEGER NOT NULL REFERENCES tokens(id),
    placement_id INTEGER NOT NULL REFERENCES placements(id),
    path TEXT NOT NULL,
    local_user TEXT,
    digest TEXT NOT NULL,
    presence TEXT NOT NULL,
    presence_at INTEGER,
    removed_at INTEGER
);
CREATE INDEX agent_files_agent ON agent_files (agent_id);

-- Rotations and removals asked of an agent. `state`: pending, sent (a
-- rotation's new key went out), done, failed.
CREATE TABLE agent_commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    new_token_id INTEGER REFERENCES tokens(id),
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    done_at INTEGER,
    detail TEXT
);
CREATE INDEX agent_commands_agent ON agent_commands (agent_id, state);
