-- Cancelling agent runs: a request is recorded on the run (so a replica that missed the NOTIFY
-- still sees it after the next tool call) and a stopped run ends as `cancelled`.
ALTER TABLE agenthub.agent_executions
    DROP CONSTRAINT agent_executions_status_check,
    ADD CONSTRAINT agent_executions_status_check
        CHECK (status IN ('success', 'error', 'timeout', 'running', 'cancelled')),
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN cancelled_by uuid REFERENCES auth.users (id);

-- Runs in flight, for the sweep that closes runs abandoned by a stopped server.
CREATE INDEX agent_executions_running_idx ON agenthub.agent_executions (created_at)
    WHERE status = 'running';
