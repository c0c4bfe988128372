-- Changes in AWS in flight (issue 28): written before honeytrail creates or
-- deletes a key in AWS, removed once the store agrees with AWS. A process
-- killed between the two leaves its intent, and `aws reconcile` (run by the
-- fleet job, and on demand) finishes or undoes the change from it: no key
-- in AWS without a row, no active row without a key.
CREATE TABLE aws_intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    account_id TEXT,
    user_name TEXT NOT NULL,
    token_id INTEGER,
    started_at INTEGER NOT NULL,
    started_by TEXT NOT NULL
);
