-- The pool of canary accounts (issue 28): keys are minted in the one with the
-- most room left. `account_id` is what STS answered when it was added;
-- `role_arn` or `profile` is how honeytrail reaches it.
CREATE TABLE canary_accounts (
    name TEXT PRIMARY KEY,
    account_id TEXT NOT NULL UNIQUE,
    role_arn TEXT,
    profile TEXT,
    max_users INTEGER NOT NULL,
    added_at INTEGER NOT NULL,
    added_by TEXT NOT NULL
);

-- Room left is counted per account.
CREATE INDEX tokens_account_state ON tokens (account_id, state);
