-- Tokens are looked up by their identity ARN when a session canary is
-- started (is the session's, or the honey role's, ARN taken already?): at
-- fleet size that must not read every token.
CREATE INDEX tokens_iam_user_arn ON tokens (iam_user_arn);
