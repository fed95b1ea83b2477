-- Who may watch each domain event on GET /events: the acting user and the parties the changed object
-- names (guest, host, owner, reviewer, …). Admins watch everything.
ALTER TABLE events.domain_events ADD COLUMN audience uuid[] NOT NULL DEFAULT '{}';
CREATE INDEX domain_events_audience_idx ON events.domain_events USING gin (audience);
