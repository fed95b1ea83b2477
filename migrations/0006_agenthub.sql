-- Agent hub: runtime overrides of design-time agents, the tool catalog cached from the registry,
-- and the execution log (one row per run plus its tool-call trace).
CREATE SCHEMA agenthub;

-- Null fields use the design-time default (agents/definitions/*.toml); one active row per agent.
CREATE TABLE agenthub.agent_overrides (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_name      text NOT NULL,
    provider        text CHECK (provider IN ('openai', 'ollama', 'vllm', 'openrouter', 'anthropic')),
    model           text,
    system_prompt   text,
    temperature     numeric(3, 2) CHECK (temperature BETWEEN 0 AND 2),
    max_tokens      integer CHECK (max_tokens BETWEEN 1 AND 32000),
    response_format text CHECK (response_format IN ('text', 'json')),
    selected_tools  jsonb CHECK (selected_tools IS NULL OR jsonb_typeof(selected_tools) = 'array'),
    -- Replaces the design default's guardrails as a whole: { maxToolCalls, timeoutSeconds, maxTokenBudget }.
    guardrails      jsonb CHECK (guardrails IS NULL OR jsonb_typeof(guardrails) = 'object'),
    enabled         boolean,
    updated_by      uuid REFERENCES auth.users (id),
    is_active       boolean NOT NULL DEFAULT true,
    record_version  integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    owner_id        uuid
);
CREATE UNIQUE INDEX agent_overrides_agent_key ON agenthub.agent_overrides (agent_name) WHERE is_active;

-- One row per registry operation, refreshed at startup; vanished operations are deactivated.
CREATE TABLE agenthub.tool_catalog (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tool_name      text NOT NULL,
    service_name   text NOT NULL,
    description    text NOT NULL,
    parameters     jsonb NOT NULL,
    output_schema  jsonb NOT NULL,
    access         text NOT NULL CHECK (access IN ('public', 'authenticated', 'admin', 'superAdmin')),
    last_refreshed timestamptz NOT NULL DEFAULT now(),
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    owner_id       uuid
);
CREATE UNIQUE INDEX tool_catalog_name_key ON agenthub.tool_catalog (tool_name);

-- Written by the run loop outside any request transaction: `running` while in flight, then one of
-- the spec's success / error / timeout.
CREATE TABLE agenthub.agent_executions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_name          text NOT NULL,
    agent_type          text NOT NULL CHECK (agent_type IN ('design', 'dynamic')),
    source              text NOT NULL CHECK (source IN ('rest', 'sse', 'kafka', 'agent', 'mcp')),
    user_id             uuid REFERENCES auth.users (id),
    input               jsonb NOT NULL,
    output              jsonb,
    tool_calls          integer NOT NULL DEFAULT 0,
    token_usage         jsonb NOT NULL DEFAULT '{"prompt": 0, "completion": 0, "total": 0}',
    duration_ms         bigint,
    status              text NOT NULL DEFAULT 'running' CHECK (status IN ('success', 'error', 'timeout', 'running')),
    error               text,
    parent_execution_id uuid REFERENCES agenthub.agent_executions (id),
    finished_at         timestamptz,
    is_active           boolean NOT NULL DEFAULT true,
    record_version      integer NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    owner_id            uuid
);
CREATE INDEX agent_executions_user_idx ON agenthub.agent_executions (user_id, created_at DESC);
CREATE INDEX agent_executions_parent_idx ON agenthub.agent_executions (parent_execution_id) WHERE parent_execution_id IS NOT NULL;

CREATE TABLE agenthub.agent_tool_calls (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    execution_id uuid NOT NULL REFERENCES agenthub.agent_executions (id),
    seq          integer NOT NULL,
    tool_name    text NOT NULL,
    arguments    jsonb NOT NULL,
    result       jsonb,
    is_error     boolean NOT NULL DEFAULT false,
    duration_ms  bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (execution_id, seq)
);
