-- Safety net: the last use IAM reports for each minted key, and uses
-- CloudTrail has not (yet) shown.
CREATE TABLE key_last_used (
    token_id BIGINT PRIMARY KEY REFERENCES tokens(id),
    last_used_at BIGINT NOT NULL,
    service TEXT NOT NULL,
    region TEXT NOT NULL,
    checked_at BIGINT NOT NULL,
    -- 1 while this use waits for a CloudTrail event to explain it
    pending BIGINT NOT NULL DEFAULT 0
);
