-- Decoy resources (issue 32): things in a canary account that nothing real
-- uses. Each is registered as a token of kind aws-decoy (identified by its
-- ARN, with its place as its placement), so an access is an incident like a
-- key's use. This table keeps what the token's columns do not.
CREATE TABLE decoys (
    token_id INTEGER PRIMARY KEY REFERENCES tokens(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    -- The canary account's name in the pool; NULL for the configured one.
    pool_account TEXT,
    -- The principal that made it: its calls on the decoy are honeytrail's own.
    managed_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    removed_at INTEGER
);
CREATE UNIQUE INDEX decoys_name ON decoys (account_id, kind, name, region) WHERE removed_at IS NULL;
