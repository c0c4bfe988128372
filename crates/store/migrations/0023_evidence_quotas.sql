-- Per-agent evidence quotas (issue 29): records an agent sent beyond its
-- hourly count or byte quota, or for paths it never placed, are counted here
-- and not kept; the index makes "what did this agent file lately" one seek.
ALTER TABLE agents ADD COLUMN evidence_refused INTEGER NOT NULL DEFAULT 0;
CREATE INDEX access_evidence_agent ON access_evidence (agent_id, received_at);
