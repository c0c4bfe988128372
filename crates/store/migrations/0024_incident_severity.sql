-- Severity in every list (issue 30): whether the incident's context raised
-- its severity one step (an attacker tool named, bait hidden from its agent),
-- as found the last time its record was built for an alert or a view. The
-- rest of the severity follows from the token's label, state and kind.
ALTER TABLE incidents ADD COLUMN raised INTEGER NOT NULL DEFAULT 0;

-- The dashboard lists the newest events by event time.
CREATE INDEX events_time ON events (event_time, id);
