//! Agents as tools of other agents: an agent whose `tools` name another agent is offered that
//! agent as a function taking one `input` message. The nested run is a run of its own (its own
//! execution row, source `agent`, `parentExecutionId` = the caller's run) made as the same user,
//! and it spends the parent's guardrails: its tool calls and tokens count against the parent's
//! limits and it ends no later than the parent's deadline.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::definitions::AgentDefinition;

/// How deep agents may call agents (a root run is depth 0): enough for a router delegating to a
/// specialist that asks one more, shallow enough that a mis-configured chain ends quickly.
pub const MAX_DEPTH: usize = 3;

/// The arguments an agent sends when it calls another agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateInput {
    /// The message for the other agent: what to do, with every id and detail it needs.
    pub input: String,
}

/// JSON Schema of [`DelegateInput`], as offered to the model and shown in the tool catalog.
pub fn parameters() -> Map<String, Value> {
    match json!({
        "type": "object",
        "properties": {
            "input": {
                "type": "string",
                "description": "The message for the other agent: what to do, with every id and detail it needs."
            }
        },
        "required": ["input"],
        "additionalProperties": false
    }) {
        Value::Object(map) => map,
        _ => unreachable!("a literal object"),
    }
}

/// The description offered for `agent` as a tool.
pub fn description(agent: &str, description: &str) -> String {
    format!(
        "Asks the agent `{agent}` and returns its answer (it works with the same user's permissions). \
         {description}"
    )
}

/// The catalog description of a design-time agent called as a tool.
pub fn catalog_description(def: &AgentDefinition) -> String {
    description(&def.name, &def.description)
}
