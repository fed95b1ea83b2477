//! Dynamic agents (admin): an agent defined in the request body instead of a file, run once as the
//! calling admin and logged with agent type `dynamic`. The body carries the same fields as a
//! design-time definition (with defaults for the optional ones) and passes the same checks.

use haven_tools::context::Ctx;
use haven_tools::error::ToolError;
use haven_tools::registry::{Access, Operation};
use haven_tools::types::Text;
use haven_tools::{Principal, Registry};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::definitions::{
    self, AgentDefinition, Guardrails, MaxTokens, Provider, ResponseFormat, Temperature,
};
use crate::executions::{AgentType, Source};
use crate::overrides::{effective, AgentConfig};
use crate::run_agent::{design_run, hub_deps, run_and_wait, run_operation};
use crate::runner::{RunResult, RunSpec};

/// An agent defined in a request body: the fields of a design-time definition, with defaults for
/// the optional ones and no `enabled` (a dynamic agent runs once, when asked).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicAgent {
    /// Kebab-case or camelCase name (not a design-time agent's or an operation's), logged as the run's agent name.
    pub name: Text<64>,
    /// What the agent is for.
    #[serde(default)]
    pub description: Option<Text<2000>>,
    /// Provider: openai, ollama, vllm, openrouter or anthropic.
    pub provider: Provider,
    /// Model name at the provider.
    pub model: Text<200>,
    /// The system prompt.
    pub system_prompt: Text<20000>,
    /// Sampling temperature, 0 to 2.
    #[serde(default = "default_temperature")]
    pub temperature: Temperature,
    /// Most tokens per completion, 1 to 32000.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: MaxTokens,
    /// `text` or `json` (a json agent's answer must be one JSON object).
    #[serde(default = "default_response_format")]
    pub response_format: ResponseFormat,
    /// Tool names from the tool catalog (listToolCatalog) or design-time agents (listAgents) the agent may call, with the caller's permissions.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Run limits as a whole object: maxToolCalls (1–100), timeoutSeconds (1–600), maxTokenBudget (1–1000000).
    #[serde(default = "default_guardrails")]
    pub guardrails: Guardrails,
}

fn default_temperature() -> Temperature {
    Temperature::try_from(0.2).expect("0.2 is a valid temperature")
}

fn default_max_tokens() -> MaxTokens {
    MaxTokens::try_from(1000).expect("1000 is within maxTokens' range")
}

fn default_response_format() -> ResponseFormat {
    ResponseFormat::Text
}

fn default_guardrails() -> Guardrails {
    let bounded = "the default guardrails are within their ranges";
    Guardrails {
        max_tool_calls: 10.try_into().expect(bounded),
        timeout_seconds: 60.try_into().expect(bounded),
        max_token_budget: 50_000.try_into().expect(bounded),
    }
}

impl DynamicAgent {
    /// The definition this body declares (enabled; a missing description is made up from the name).
    pub fn definition(self) -> AgentDefinition {
        let name = self.name.as_str().to_string();
        let description = match self.description {
            Some(d) => d.as_str().to_string(),
            None => format!("Dynamic agent {name}."),
        };
        AgentDefinition {
            name,
            description,
            provider: self.provider,
            model: self.model.as_str().to_string(),
            system_prompt: self.system_prompt.as_str().to_string(),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            response_format: self.response_format,
            tools: self.tools,
            guardrails: self.guardrails,
            enabled: true,
            prompt: None,
        }
    }

    /// Checks the agent as a design-time file is checked (tools may name operations of `registry`
    /// or design-time agents) and that its name is not a design-time agent's; returns its run
    /// configuration. Errors name the field under `agent.` (e.g. `agent.tools[0]`).
    pub fn config(self, registry: &Registry) -> Result<AgentConfig, ToolError> {
        let def = self.definition();
        let designed = definitions::all()?;
        if designed.iter().any(|d| d.name == def.name) {
            return Err(ToolError::field(
                "agent.name",
                format!(
                    "`{}` is the name of a design-time agent: give the dynamic agent a name of its own",
                    def.name
                ),
            ));
        }
        let names: Vec<&str> = designed.iter().map(|d| d.name.as_str()).collect();
        definitions::validate(&def, registry, &names)
            .map_err(|fault| ToolError::field(format!("agent.{}", fault.field), fault.message))?;
        Ok(effective(&def, None))
    }
}

/// The input of `runDynamicAgent` (also the body of the dynamic REST and SSE triggers).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicRunInput {
    /// The agent to run, defined here.
    pub agent: DynamicAgent,
    /// The user's message to the agent.
    pub input: String,
}

/// A run of the dynamic `agent` (already checked by [`DynamicAgent::config`]) on `input` as
/// `caller`, triggered from `source`.
pub fn dynamic_run(
    agent: AgentConfig,
    caller: Option<Principal>,
    input: String,
    source: Source,
) -> RunSpec {
    RunSpec {
        agent_type: AgentType::Dynamic,
        ..design_run(agent, caller, input, source)
    }
}

/// The `runDynamicAgent` operation.
pub fn operations() -> Vec<Operation> {
    vec![run_operation(
        "runDynamicAgent",
        "/agenthub-api/v1/dynamic-agents/runs",
        Access::Admin,
    )
    .title("Run a dynamic agent (admin)")
    .describe(
        "Runs an agent defined in the request instead of a design-time file, as the calling admin, and logs it with \
         agentType dynamic. agent has the fields of a design-time agent: name (kebab-case or camelCase, not a \
         design-time agent's), provider (openai, ollama, vllm, openrouter, anthropic), model, systemPrompt, and \
         optionally description, temperature (0–2, default 0.2), maxTokens (default 1000), responseFormat (text or \
         json, default text), tools (names from listToolCatalog or listAgents, default none) and guardrails \
         ({maxToolCalls, timeoutSeconds, maxTokenBudget}, default {10, 60, 50000}). input is the user's message. \
         Waits up to about 45 s; returns executionId, status (success, error, timeout, or running if the run is \
         still going: poll getAgentExecution), output, toolCalls, tokenUsage, durationMs and error.",
    )
    .handler(run_dynamic_agent)]
}

async fn run_dynamic_agent(ctx: Ctx, input: DynamicRunInput) -> Result<RunResult, ToolError> {
    let caller = ctx.caller()?.clone();
    let deps = hub_deps(&ctx)?;
    let agent = input.agent.config(deps.registry)?;
    let spec = dynamic_run(agent, Some(caller), input.input, Source::of(ctx.transport));
    run_and_wait(&ctx, deps, spec).await
}

#[cfg(test)]
mod tests {
    use haven_tools::registry::parse_input;
    use serde_json::json;

    use super::*;

    fn body(agent: serde_json::Value) -> serde_json::Value {
        json!({ "agent": agent, "input": "hi" })
    }

    fn minimal() -> serde_json::Value {
        json!({ "name": "scratch", "provider": "openai", "model": "gpt-4o-mini", "systemPrompt": "Be brief." })
    }

    fn field_of(args: serde_json::Value) -> Option<String> {
        let registry = Registry::haven();
        parse_input::<DynamicRunInput>(args)
            .and_then(|input| input.agent.config(&registry))
            .err()
            .and_then(|e| e.field)
    }

    #[test]
    fn optional_fields_take_their_defaults() {
        let input: DynamicRunInput = parse_input(body(minimal())).unwrap();
        let cfg = effective(&input.agent.definition(), None);
        assert_eq!(cfg.temperature, 0.2);
        assert_eq!(cfg.max_tokens, 1000);
        assert_eq!(cfg.response_format, ResponseFormat::Text);
        assert!(cfg.tools.is_empty() && cfg.enabled);
        assert_eq!(
            (
                cfg.guardrails.max_tool_calls.get(),
                cfg.guardrails.timeout_seconds.get(),
                cfg.guardrails.max_token_budget.get()
            ),
            (10, 60, 50_000)
        );
        assert_eq!(cfg.system_prompt.as_deref(), Some("Be brief."));
    }

    #[test]
    fn faults_are_named_under_agent() {
        let with = |k: &str, v: serde_json::Value| {
            let mut a = minimal();
            a[k] = v;
            body(a)
        };
        let cases = [
            (with("colour", json!("red")), "agent.colour"),
            (with("temperature", json!(3)), "agent.temperature"),
            (
                with(
                    "guardrails",
                    json!({ "maxToolCalls": 500, "timeoutSeconds": 5, "maxTokenBudget": 9 }),
                ),
                "agent.guardrails.maxToolCalls",
            ),
            (with("tools", json!(["launchRockets"])), "agent.tools[0]"),
            (with("tools", json!(["runAgent"])), "agent.tools[0]"),
            (with("name", json!("Bad_Name")), "agent.name"),
            (with("model", json!("  ")), "agent.model"),
        ];
        for (args, field) in cases {
            assert_eq!(field_of(args.clone()).as_deref(), Some(field), "{args}");
        }
        let mut missing = minimal();
        missing.as_object_mut().unwrap().remove("model");
        // A missing nested field is named by its full path.
        assert_eq!(field_of(body(missing)).as_deref(), Some("agent.model"));
    }
}
