-- What an enrolment secret expects, so that its misuse is seen: the
-- networks hosts enrol from, how many hosts, the AWS accounts whose EC2
-- instances it is bound to; refused attempts with it are counted.
ALTER TABLE enrollment_secrets ADD COLUMN allowed_from TEXT;
ALTER TABLE enrollment_secrets ADD COLUMN expected INTEGER;
ALTER TABLE enrollment_secrets ADD COLUMN ec2_accounts TEXT;
ALTER TABLE enrollment_secrets ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE enrollment_secrets ADD COLUMN last_refused_at INTEGER;
ALTER TABLE enrollment_secrets ADD COLUMN last_refusal TEXT;

-- The EC2 instance an agent proved to be (a verified identity document);
-- one enrolled agent per instance.
ALTER TABLE agents ADD COLUMN ec2_instance_id TEXT;
ALTER TABLE agents ADD COLUMN ec2_account_id TEXT;
ALTER TABLE agents ADD COLUMN ec2_region TEXT;
CREATE UNIQUE INDEX agents_one_per_instance ON agents (ec2_instance_id)
    WHERE ec2_instance_id IS NOT NULL AND state IN ('enrolling', 'active');
