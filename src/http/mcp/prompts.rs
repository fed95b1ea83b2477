//! MCP prompts for the main jobs, built from the design-time agents that declare a `[prompt]`:
//! the agent's system prompt (with its runtime override, if any) and a request filled from the
//! prompt's typed arguments. A client's own model then does the job over Haven's tools, so Claude
//! Desktop users get them as slash commands without the hub's LLM.

use haven_agents::definitions::{self, AgentDefinition, PromptSpec};
use haven_agents::overrides::effective_agent;
use haven_tools::{Principal, Role};
use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role as MessageRole};
use rmcp::ErrorData as McpError;
use serde_json::{Map, Value};
use sqlx::PgPool;

/// Whether `principal` is offered `prompt`.
fn offered(prompt: &PromptSpec, principal: Option<&Principal>) -> bool {
    match (prompt.audience.as_str(), principal) {
        ("anyone", _) => true,
        (_, None) => false,
        ("admin", Some(p)) => p.role >= Role::Admin,
        _ => true,
    }
}

/// The agents with a prompt offered to `principal`.
fn agents_for(principal: Option<&Principal>) -> Vec<&'static AgentDefinition> {
    definitions::all()
        .unwrap_or_default()
        .iter()
        .filter(|d| d.enabled && d.prompt.as_ref().is_some_and(|p| offered(p, principal)))
        .collect()
}

/// `prompts/list` for `principal`.
pub fn list(principal: Option<&Principal>) -> Vec<Prompt> {
    agents_for(principal)
        .into_iter()
        .filter_map(|d| d.prompt.as_ref())
        .map(|p| {
            let args = p
                .arguments
                .iter()
                .map(|a| {
                    PromptArgument::new(&a.name)
                        .with_description(&a.description)
                        .with_required(a.required)
                })
                .collect();
            Prompt::new(&p.name, Some(&p.description), Some(args)).with_title(&p.title)
        })
        .collect()
}

/// Fills `template`: `{name}` takes the argument's value; a line naming an argument that was not
/// given is left out.
pub fn fill(template: &str, args: &Map<String, Value>) -> String {
    let value = |name: &str| -> Option<String> {
        match args.get(name)? {
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) => Some(s.trim().to_string()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    template
        .lines()
        .filter_map(|line| {
            let mut out = line.to_string();
            for name in definitions::placeholders(line) {
                out = out.replace(&format!("{{{name}}}"), &value(name)?);
            }
            Some(out)
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// `prompts/get`: the messages of prompt `name` for `principal`, or an invalid-params error
/// (unknown prompt, or a required argument missing).
pub async fn get(
    pool: &PgPool,
    principal: Option<&Principal>,
    name: &str,
    arguments: Option<Map<String, Value>>,
) -> Result<GetPromptResult, McpError> {
    let agent = agents_for(principal)
        .into_iter()
        .find(|d| d.prompt.as_ref().is_some_and(|p| p.name == name))
        .ok_or_else(|| McpError::invalid_params(format!("unknown prompt `{name}`"), None))?;
    let Some(prompt) = agent.prompt.as_ref() else {
        return Err(McpError::invalid_params(
            format!("unknown prompt `{name}`"),
            None,
        ));
    };
    let args = arguments.unwrap_or_default();
    if let Some(unknown) = args
        .keys()
        .find(|k| !prompt.arguments.iter().any(|a| &a.name == *k))
    {
        return Err(McpError::invalid_params(
            format!(
                "prompt `{name}` has no argument `{unknown}`; its arguments are: {}",
                prompt
                    .arguments
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        ));
    }
    for arg in prompt.arguments.iter().filter(|a| a.required) {
        let given = args.get(&arg.name).is_some_and(|v| match v {
            Value::String(s) => !s.trim().is_empty(),
            Value::Null => false,
            _ => true,
        });
        if !given {
            return Err(McpError::invalid_params(
                format!("prompt `{name}` needs `{}`: {}", arg.name, arg.description),
                None,
            ));
        }
    }
    // The system prompt as the agent runs today (an admin's override applies).
    let system = match effective_agent(pool, &agent.name).await {
        Ok(Some(config)) => config
            .system_prompt
            .unwrap_or_else(|| agent.system_prompt.clone()),
        _ => agent.system_prompt.clone(),
    };
    let text = format!(
        "Work as Haven's `{}` would, using Haven's tools with my permissions.\n\n<instructions>\n{}\n</instructions>\n\n{}",
        agent.name,
        system.trim(),
        fill(&prompt.request, &args)
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(MessageRole::User, text)])
            .with_description(&prompt.description),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_drops_lines_of_missing_optional_arguments() {
        let mut args = Map::new();
        args.insert("city".into(), "Lisbon".into());
        args.insert("guests".into(), Value::from(2));
        let text = fill(
            "Stay in {city} for {guests}.\nWishes: {wishes}\nThanks",
            &args,
        );
        assert_eq!(text, "Stay in Lisbon for 2.\nThanks");
    }
}
