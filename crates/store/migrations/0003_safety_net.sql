-- Safety net: the last use IAM reports for each minted key, and uses
-- CloudTrail has not (yet) shown.
CREATE TABLE key_last_used (
    token_id INTEGER PRIMARY KEY REFERENCES tokens(id),
    last_used_at INTEGER NOT NULL,
    service TEXT NOT NULL,
    region TEXT NOT NULL,
    checked_at INTEGER NOT NULL,
    -- 1 while this use waits for a CloudTrail event to explain it
    pending INTEGER NOT NULL DEFAULT 0
);
