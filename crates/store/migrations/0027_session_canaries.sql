-- Session canaries (issue 32): a template may place short-lived STS session
-- credentials of the honey role instead of a key. The agent's token is then
-- known by its session's assumed-role ARN; these columns say when the
-- session on the host expires, and which one a refresh command sent.
ALTER TABLE placement_templates ADD COLUMN credential TEXT NOT NULL DEFAULT 'key';
ALTER TABLE agents ADD COLUMN session_expires_at INTEGER;
ALTER TABLE agent_commands ADD COLUMN session_expires_at INTEGER;
