-- Replicas (issue 28): every `serve` on one database registers itself and
-- beats; `id` is made at its start (host and a random part).
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopped_at INTEGER
);

-- Periodic jobs run on one replica at a time: the holder of the job's lease
-- until `lease_until` (epoch ms). A holder renews it while it lives; a
-- replica that dies loses it when it runs out, and another takes it.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_run_at INTEGER,
    last_run_by TEXT,
    last_error TEXT
);
