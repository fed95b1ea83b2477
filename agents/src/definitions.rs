//! Design-time agents: TOML files in `agents/definitions/`, embedded in the binary at compile time
//! and parsed and validated at startup, so a bad file stops the server with a message naming the
//! file and the field. The effective configuration of an agent is its definition with an admin's
//! override (see [`crate::overrides`]) laid on top.

use std::borrow::Cow;
use std::sync::OnceLock;

use haven_tools::{Registry, ToolError};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// The shipped definitions, `(file name, contents)`; add a file here to ship another agent.
pub const FILES: &[(&str, &str)] = &[
    (
        "guest-booking-assistant.toml",
        include_str!("../definitions/guest-booking-assistant.toml"),
    ),
    (
        "host-listing-copywriter.toml",
        include_str!("../definitions/host-listing-copywriter.toml"),
    ),
    (
        "dispute-triage.toml",
        include_str!("../definitions/dispute-triage.toml"),
    ),
    (
        "review-moderation-assistant.toml",
        include_str!("../definitions/review-moderation-assistant.toml"),
    ),
    (
        "trust-safety-desk.toml",
        include_str!("../definitions/trust-safety-desk.toml"),
    ),
    (
        "host-request-assistant.toml",
        include_str!("../definitions/host-request-assistant.toml"),
    ),
];

/// An OpenAI-compatible provider, configured by name (base URL and key come from the environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// api.openai.com.
    Openai,
    /// A local Ollama server.
    Ollama,
    /// A vLLM server.
    Vllm,
    /// openrouter.ai.
    Openrouter,
    /// Anthropic's OpenAI-compatible endpoint.
    Anthropic,
}

impl Provider {
    /// The provider's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Ollama => "ollama",
            Provider::Vllm => "vllm",
            Provider::Openrouter => "openrouter",
            Provider::Anthropic => "anthropic",
        }
    }
}

/// Whether the final answer is free text or a JSON object (validated by the run loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// One JSON object.
    Json,
}

impl ResponseFormat {
    /// The format's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseFormat::Text => "text",
            ResponseFormat::Json => "json",
        }
    }
}

/// An integer in `MIN..=MAX`, refused with the range when outside it (parse, don't validate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Bounded<const MIN: u32, const MAX: u32>(u32);

impl<const MIN: u32, const MAX: u32> Bounded<MIN, MAX> {
    /// The value.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<const MIN: u32, const MAX: u32> TryFrom<i64> for Bounded<MIN, MAX> {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        if (MIN as i64..=MAX as i64).contains(&v) {
            Ok(Bounded(v as u32))
        } else {
            Err(format!("must be between {MIN} and {MAX} (got {v})"))
        }
    }
}

impl<const MIN: u32, const MAX: u32> From<Bounded<MIN, MAX>> for u32 {
    fn from(b: Bounded<MIN, MAX>) -> u32 {
        b.0
    }
}

impl<const MIN: u32, const MAX: u32> JsonSchema for Bounded<MIN, MAX> {
    fn schema_name() -> Cow<'static, str> {
        format!("Bounded{MIN}to{MAX}").into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": MIN, "maximum": MAX })
    }
}

/// Sampling temperature, 0 to 2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Temperature(f64);

impl Temperature {
    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Temperature {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if (0.0..=2.0).contains(&v) {
            Ok(Temperature(v))
        } else {
            Err(format!("must be between 0 and 2 (got {v})"))
        }
    }
}

impl From<Temperature> for f64 {
    fn from(t: Temperature) -> f64 {
        t.0
    }
}

impl JsonSchema for Temperature {
    fn schema_name() -> Cow<'static, str> {
        "Temperature".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number", "minimum": 0, "maximum": 2 })
    }
}

/// Most tokens one completion may produce.
pub type MaxTokens = Bounded<1, 32_000>;

/// Limits that end a run: a run over any of them stops with status `error` (tool calls, token
/// budget) or `timeout` (wall clock), with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Guardrails {
    /// Most tool calls in one run (nested agent calls count against the parent).
    pub max_tool_calls: Bounded<1, 100>,
    /// Wall-clock limit of one run, in seconds.
    pub timeout_seconds: Bounded<1, 600>,
    /// Most tokens (prompt + completion, summed over the run's LLM calls).
    pub max_token_budget: Bounded<1, 1_000_000>,
}

/// One design-time agent, as its file declares it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentDefinition {
    /// Unique kebab-case or camelCase name; the run and override APIs refer to it.
    pub name: String,
    /// What the agent is for (shown to people and to other agents calling it as a tool).
    pub description: String,
    /// The LLM provider.
    pub provider: Provider,
    /// The provider's model name.
    pub model: String,
    /// The system prompt.
    pub system_prompt: String,
    /// Sampling temperature (0–2).
    pub temperature: Temperature,
    /// Most tokens per completion.
    pub max_tokens: MaxTokens,
    /// `text` or `json`.
    pub response_format: ResponseFormat,
    /// Registry operations the agent may call (always with its caller's own permissions).
    pub tools: Vec<String>,
    /// Run limits.
    pub guardrails: Guardrails,
    /// Whether the agent may be run.
    pub enabled: bool,
    /// The MCP prompt built from this agent, if it offers one (Claude Desktop shows prompts as
    /// slash commands, run by the client's own model over Haven's tools, without the hub's LLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptSpec>,
}

/// An MCP prompt offered from a design-time agent: the agent's system prompt plus a request
/// filled from typed arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromptSpec {
    /// The prompt's name (kebab-case), e.g. `plan-and-book-a-stay`.
    pub name: String,
    /// Its display name.
    pub title: String,
    /// What it helps with.
    pub description: String,
    /// Who is offered it: `anyone` (anonymous callers too), `user` (anyone logged in, the default)
    /// or `admin`.
    #[serde(default = "PromptSpec::default_audience")]
    pub audience: String,
    /// Its arguments.
    #[serde(default)]
    pub arguments: Vec<PromptArgumentSpec>,
    /// The user's request, with `{argument}` placeholders; a line naming an optional argument the
    /// caller did not give is left out.
    pub request: String,
}

impl PromptSpec {
    fn default_audience() -> String {
        "user".into()
    }
}

/// One argument of a [`PromptSpec`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromptArgumentSpec {
    /// camelCase name, used as `{name}` in the request.
    pub name: String,
    /// What to give, with an example.
    pub description: String,
    /// Whether the prompt needs it.
    #[serde(default)]
    pub required: bool,
}

/// Checks a prompt: a kebab-case name, a known audience, unique camelCase arguments, and a request
/// whose placeholders are all declared and that uses every required argument.
fn validate_prompt(prompt: &PromptSpec) -> Result<(), Fault> {
    let kebab = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !kebab(&prompt.name) {
        return Err(Fault::new(
            "prompt.name",
            "must be kebab-case, at most 64 characters",
        ));
    }
    if !["anyone", "user", "admin"].contains(&prompt.audience.as_str()) {
        return Err(Fault::new(
            "prompt.audience",
            "must be `anyone`, `user` or `admin`",
        ));
    }
    for (i, arg) in prompt.arguments.iter().enumerate() {
        let field = format!("prompt.arguments[{i}].name");
        if arg.name.is_empty() || !arg.name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Fault::new(field, "must be a camelCase word"));
        }
        if prompt.arguments[..i].iter().any(|a| a.name == arg.name) {
            return Err(Fault::new(
                field,
                format!("`{}` is declared twice", arg.name),
            ));
        }
        if arg.required && !prompt.request.contains(&format!("{{{}}}", arg.name)) {
            return Err(Fault::new(
                "prompt.request",
                format!("does not use the required argument `{{{}}}`", arg.name),
            ));
        }
    }
    for placeholder in placeholders(&prompt.request) {
        if !prompt.arguments.iter().any(|a| a.name == placeholder) {
            return Err(Fault::new(
                "prompt.request",
                format!("names `{{{placeholder}}}`, which is not a declared argument"),
            ));
        }
    }
    Ok(())
}

/// The `{name}` placeholders of a request template.
pub fn placeholders(template: &str) -> Vec<&str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect()
}

/// A definition file that does not load: names the file, the field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("agent definition agents/definitions/{file}: field `{field}`: {message}")]
pub struct DefinitionError {
    /// The file's name.
    pub file: String,
    /// The field at fault (dotted path for nested fields, e.g. `guardrails.maxToolCalls`).
    pub field: String,
    /// What is wrong, with the line when the parser knows it.
    pub message: String,
}

fn fault(file: &str, field: &str, message: impl Into<String>) -> DefinitionError {
    DefinitionError {
        file: file.to_string(),
        field: field.to_string(),
        message: message.into(),
    }
}

/// A field of a definition that does not hold, independent of where the definition came from
/// (a file at startup, or a dynamic agent in a request body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The field at fault (dotted path for nested fields).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Fault {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Fault {
            field: field.into(),
            message: message.into(),
        }
    }

    fn in_file(self, file: &str) -> DefinitionError {
        fault(file, &self.field, self.message)
    }
}

/// Operations an agent may not be given: starting runs from inside a run would escape the parent's
/// guardrails and log the child under the wrong source. An agent calls another agent by naming
/// that agent in `tools` instead.
pub const NOT_SELECTABLE: &[&str] = &["runAgent", "runDynamicAgent"];

/// Whether `name` names something an agent may be given: a selectable operation of `registry`,
/// or one of `agents` (another agent, called as a tool).
pub fn is_tool(registry: &Registry, agents: &[&str], name: &str) -> bool {
    (registry.get(name).is_some() && !NOT_SELECTABLE.contains(&name)) || agents.contains(&name)
}

/// Checks what serde cannot: the name's shape (and that it is not an operation's name, since
/// agents are offered as tools under their names), non-empty texts, and tools that exist (an
/// operation or one of `agents`) and are listed once.
pub fn validate(def: &AgentDefinition, registry: &Registry, agents: &[&str]) -> Result<(), Fault> {
    if !is_agent_name(&def.name) {
        return Err(Fault::new(
            "name",
            format!(
                "`{}` must be kebab-case or camelCase (letters and digits, starting with a lower-case letter)",
                def.name
            ),
        ));
    }
    if registry.get(&def.name).is_some() {
        return Err(Fault::new(
            "name",
            format!("`{}` is already the name of an operation", def.name),
        ));
    }
    for (field, value) in [
        ("description", &def.description),
        ("model", &def.model),
        ("systemPrompt", &def.system_prompt),
    ] {
        if value.trim().is_empty() {
            return Err(Fault::new(field, "must not be empty"));
        }
    }
    for (i, tool) in def.tools.iter().enumerate() {
        let field = format!("tools[{i}]");
        if NOT_SELECTABLE.contains(&tool.as_str()) {
            return Err(Fault::new(
                field,
                format!(
                    "`{tool}` cannot be given to an agent: name the other agent itself to call it"
                ),
            ));
        }
        if !is_tool(registry, agents, tool) {
            return Err(Fault::new(
                field,
                format!("`{tool}` is neither an operation in the registry nor an agent"),
            ));
        }
        if def.tools[..i].contains(tool) {
            return Err(Fault::new(field, format!("`{tool}` is listed twice")));
        }
    }
    if let Some(prompt) = &def.prompt {
        validate_prompt(prompt)?;
    }
    Ok(())
}

/// Parses one definition file (its shape and types only; [`validate`] checks the rest).
pub fn parse(file_name: &str, text: &str) -> Result<AgentDefinition, DefinitionError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.message().to_string();
        // The path ends at the culprit; for a missing top-level field serde names it itself.
        let field = match backticked(&message) {
            Some(name) if path == "." => name.to_string(),
            _ => path,
        };
        let line = inner
            .span()
            .map(|s| format!(" (line {})", text[..s.start].lines().count().max(1)))
            .unwrap_or_default();
        fault(file_name, &field, format!("{message}{line}"))
    })
}

/// Parses and validates every shipped file against `registry`; names must be unique across
/// files, and a tool may name any shipped agent.
pub fn load(registry: &Registry) -> Result<Vec<AgentDefinition>, DefinitionError> {
    load_files(FILES, registry)
}

fn load_files(
    files: &[(&str, &str)],
    registry: &Registry,
) -> Result<Vec<AgentDefinition>, DefinitionError> {
    let mut defs: Vec<AgentDefinition> = Vec::with_capacity(files.len());
    for (file, text) in files {
        let def = parse(file, text)?;
        if defs.iter().any(|d| d.name == def.name) {
            return Err(fault(
                file,
                "name",
                format!("another file already defines an agent named `{}`", def.name),
            ));
        }
        defs.push(def);
    }
    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    for ((file, _), def) in files.iter().zip(&defs) {
        validate(def, registry, &names).map_err(|f| f.in_file(file))?;
    }
    Ok(defs)
}

static LOADED: OnceLock<Vec<AgentDefinition>> = OnceLock::new();

/// Loads and validates the definitions once per process (the server calls it at startup, so a bad
/// file fails startup); later calls return the first result.
pub fn init(registry: &Registry) -> Result<&'static [AgentDefinition], DefinitionError> {
    if let Some(defs) = LOADED.get() {
        return Ok(defs);
    }
    let defs = load(registry)?;
    Ok(LOADED.get_or_init(|| defs))
}

/// The design-time agents (validated against the process registry on first use).
pub fn all() -> Result<&'static [AgentDefinition], ToolError> {
    init(Registry::global()).map_err(ToolError::internal)
}

/// The design-time agent called `name`.
pub fn find(name: &str) -> Result<Option<&'static AgentDefinition>, ToolError> {
    Ok(all()?.iter().find(|d| d.name == name))
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Kebab-case (`guest-booking-assistant`) or camelCase (`disputeTriage`), at most 64 characters.
fn is_agent_name(name: &str) -> bool {
    let starts_lower = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let chars_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let kebab_ok = !name.contains('-')
        || (!name.contains("--") && !name.ends_with('-') && !name.contains(char::is_uppercase));
    starts_lower && chars_ok && kebab_ok && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::haven()
    }

    /// Loads `text` as the only file.
    fn load_one(file: &str, text: &str, r: &Registry) -> Result<AgentDefinition, DefinitionError> {
        load_files(&[(file, text)], r).map(|mut defs| defs.remove(0))
    }

    #[test]
    fn prompts_are_checked() {
        let text = shipped();
        let base = &text[..text.find("[prompt]").unwrap_or(text.len())];
        let with = |prompt: &str| format!("{base}\n[prompt]\n{prompt}\n");
        let ok = r#"name = "p"
title = "P"
description = "d"
arguments = [{ name = "city", description = "c", required = true }]
request = "Stay in {city}""#;
        assert!(load_one("a.toml", &with(ok), &registry()).is_ok());
        for (bad, field, needle) in [
            (
                ok.replace("name = \"p\"", "name = \"Bad Name\""),
                "prompt.name",
                "kebab",
            ),
            (ok.replace("{city}", "{town}"), "prompt.request", "city"),
            (
                ok.replace("Stay in {city}", "Stay in {city} {x}"),
                "prompt.request",
                "x",
            ),
            (
                format!("{ok}\naudience = \"everyone\""),
                "prompt.audience",
                "anyone",
            ),
        ] {
            let err = load_one("a.toml", &with(&bad), &registry()).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.message.contains(needle), "{err}");
        }
    }

    #[test]
    fn every_shipped_definition_loads() {
        let defs = load(&registry()).unwrap();
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "guest-booking-assistant",
                "host-listing-copywriter",
                "dispute-triage",
                "review-moderation-assistant",
                "trust-safety-desk",
                "host-request-assistant"
            ]
        );
        for def in &defs {
            assert!(
                def.system_prompt.len() > 400,
                "{} needs a real prompt",
                def.name
            );
            assert!(!def.tools.is_empty(), "{}", def.name);
        }
        let triage = defs.iter().find(|d| d.name == "dispute-triage").unwrap();
        assert_eq!(triage.response_format, ResponseFormat::Json);
    }

    fn shipped() -> &'static str {
        FILES[0].1
    }

    #[test]
    fn an_out_of_range_field_names_file_and_field() {
        let text = shipped().replace("maxToolCalls = 12", "maxToolCalls = 500");
        let err = load_one("broken.toml", &text, &registry()).unwrap_err();
        assert_eq!(err.file, "broken.toml");
        assert_eq!(err.field, "guardrails.maxToolCalls");
        let shown = err.to_string();
        assert!(shown.contains("agents/definitions/broken.toml"), "{shown}");
        assert!(shown.contains("between 1 and 100"), "{shown}");
        assert!(shown.contains("line"), "{shown}");
    }

    #[test]
    fn unknown_missing_and_ill_typed_fields_are_named() {
        let r = registry();
        let unknown = format!("colour = \"red\"\n{}", shipped());
        assert_eq!(
            load_one("a.toml", &unknown, &r).unwrap_err().field,
            "colour"
        );
        let nested = shipped().replace("[guardrails]", "[guardrails]\nretries = 3");
        assert_eq!(
            load_one("a.toml", &nested, &r).unwrap_err().field,
            "guardrails.retries"
        );
        let missing: String = shipped()
            .lines()
            .filter(|l| !l.starts_with("model"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(load_one("a.toml", &missing, &r).unwrap_err().field, "model");
        let typed = shipped().replace("temperature = 0.3", "temperature = \"warm\"");
        assert_eq!(
            load_one("a.toml", &typed, &r).unwrap_err().field,
            "temperature"
        );
        let provider = shipped().replace("provider = \"openai\"", "provider = \"skynet\"");
        assert_eq!(
            load_one("a.toml", &provider, &r).unwrap_err().field,
            "provider"
        );
    }

    #[test]
    fn unknown_tools_and_bad_names_are_refused() {
        let r = registry();
        let tool = shipped().replace("\"listListings\"", "\"launchRockets\"");
        let err = load_one("t.toml", &tool, &r).unwrap_err();
        assert_eq!(err.field, "tools[0]");
        assert!(err.message.contains("launchRockets"));
        let name = shipped().replace(
            "name = \"guest-booking-assistant\"",
            "name = \"Guest_Assistant\"",
        );
        assert_eq!(load_one("n.toml", &name, &r).unwrap_err().field, "name");
        assert!(is_agent_name("disputeTriage") && is_agent_name("a-b2"));
        let op = shipped().replace(
            "name = \"guest-booking-assistant\"",
            "name = \"listListings\"",
        );
        let err = load_one("o.toml", &op, &r).unwrap_err();
        assert!(err.message.contains("operation"), "{err}");
        assert!(!is_agent_name("a--b") && !is_agent_name("a-B") && !is_agent_name("-a"));
    }

    #[test]
    fn tools_may_name_other_agents_but_not_the_run_operations() {
        let r = registry();
        let other = FILES[2].1;
        let calls = shipped().replace("\"listListings\"", "\"dispute-triage\"");
        let defs = load_files(&[("a.toml", &calls), ("b.toml", other)], &r).unwrap();
        assert!(defs[0].tools.contains(&"dispute-triage".to_string()));
        let err = load_one("a.toml", &calls, &r).unwrap_err();
        assert_eq!(err.field, "tools[0]");
        assert!(err.message.contains("neither"), "{err}");
        let run = shipped().replace("\"listListings\"", "\"runAgent\"");
        let err = load_one("r.toml", &run, &r).unwrap_err();
        assert_eq!(err.field, "tools[0]");
        assert!(err.message.contains("name the other agent"), "{err}");
    }
}
