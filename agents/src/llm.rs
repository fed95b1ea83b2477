//! An OpenAI-compatible streaming chat client (`POST {base}/chat/completions` with
//! `stream: true`) over async-openai 0.43 with its `byot` methods: the request is our own JSON
//! (so `"stream": true` is set here — with `byot` async-openai does not add it) and stream chunks
//! are parsed into lenient structs of our own (real providers omit `index`, `id`, send
//! `finish_reason: ""`…). Tool-call fragments are assembled by index (id and name assigned,
//! arguments appended), usage comes from the final chunk (`stream_options.include_usage`), and a
//! stream that ends without a `finish_reason` is an error. async-openai's retry layer retries 429
//! and 5xx answers and connection failures before the stream starts (3 retries, backoff 100, 200,
//! 400 ms, or the provider's `Retry-After`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::Client;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::definitions::Provider;

/// How the hub reaches providers: one shared HTTP client, plus an optional base URL that replaces
/// every provider's (tests point it at a scripted server; `HAVEN_LLM_BASE_URL`).
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// The HTTP client used for every provider (reqwest 0.13, as async-openai needs).
    pub http: reqwest013::Client,
    /// When set, every provider is reached at this base URL (which includes `/v1`).
    pub base_url_override: Option<String>,
}

impl LlmSettings {
    /// Settings with a fresh HTTP client (connect timeout 10 s; runs bound the rest).
    pub fn new(base_url_override: Option<String>) -> Self {
        // reqwest 0.13 is built without a bundled crypto provider: use ring (already in the tree).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest013::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base_url_override,
        }
    }

    /// The base URL and API key for `provider`: the settings override, else
    /// `HAVEN_LLM_<PROVIDER>_BASE_URL`, else the provider's default; the key from its usual env var.
    pub fn endpoint(&self, provider: Provider) -> Result<(String, Option<String>), LlmError> {
        let (default, key_var) = match provider {
            Provider::Openai => (Some("https://api.openai.com/v1"), Some("OPENAI_API_KEY")),
            Provider::Openrouter => (
                Some("https://openrouter.ai/api/v1"),
                Some("OPENROUTER_API_KEY"),
            ),
            Provider::Anthropic => (
                Some("https://api.anthropic.com/v1"),
                Some("ANTHROPIC_API_KEY"),
            ),
            Provider::Ollama => (Some("http://127.0.0.1:11434/v1"), None),
            Provider::Vllm => (None, Some("VLLM_API_KEY")),
        };
        let name = provider.as_str().to_uppercase();
        let from_env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
        let base = self
            .base_url_override
            .clone()
            .or_else(|| from_env(&format!("HAVEN_LLM_{name}_BASE_URL")))
            .or_else(|| {
                (provider == Provider::Vllm)
                    .then(|| from_env("VLLM_BASE_URL"))
                    .flatten()
            })
            .or_else(|| default.map(str::to_string))
            .ok_or_else(|| {
                LlmError(format!(
                    "provider {} has no base URL: set HAVEN_LLM_{name}_BASE_URL",
                    provider.as_str()
                ))
            })?;
        Ok((
            base.trim_end_matches('/').to_string(),
            key_var.and_then(from_env),
        ))
    }
}

/// A provider failure, written for the execution log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LlmError(pub String);

/// One chat call: the model, the conversation so far and the offered tools.
#[derive(Debug, Clone)]
pub struct ChatRequest<'a> {
    /// The provider's model name.
    pub model: &'a str,
    /// OpenAI chat messages (system, user, assistant with tool_calls, tool).
    pub messages: &'a [Value],
    /// OpenAI function tools; empty offers none.
    pub tools: &'a [Value],
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens of the completion.
    pub max_tokens: u32,
    /// Ask for a JSON object answer.
    pub json: bool,
}

/// A tool call the model asked for, assembled from its streamed fragments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    /// The provider's call id (echoed in the `tool` message).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// Token counts of one completion, when the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: i64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: i64,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: i64,
}

/// One assembled completion.
#[derive(Debug, Clone, Default)]
pub struct ChatResponse {
    /// The answer text (empty when the model only called tools).
    pub text: String,
    /// The tool calls, in index order.
    pub tool_calls: Vec<ToolCall>,
    /// Usage, when the provider sent a usage chunk.
    pub usage: Option<Usage>,
    /// `stop`, `tool_calls`, `length`…
    pub finish_reason: String,
}

#[derive(Debug, Default, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Default, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Collects a streamed completion chunk by chunk.
#[derive(Debug, Default)]
struct Assembly {
    text: String,
    calls: BTreeMap<u32, ToolCall>,
    usage: Option<Usage>,
    finish_reason: Option<String>,
}

impl Assembly {
    fn add(&mut self, chunk: Chunk, on_text: &mut (dyn FnMut(&str) + Send)) {
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        for choice in chunk.choices {
            if let Some(delta) = choice.delta {
                if let Some(t) = delta.content.filter(|t| !t.is_empty()) {
                    on_text(&t);
                    self.text.push_str(&t);
                }
                for tc in delta.tool_calls.unwrap_or_default() {
                    let call = self.calls.entry(tc.index).or_default();
                    if let Some(id) = tc.id.filter(|s| !s.is_empty()) {
                        call.id = id;
                    }
                    if let Some(f) = tc.function {
                        if let Some(n) = f.name.filter(|s| !s.is_empty()) {
                            call.name = n;
                        }
                        if let Some(a) = f.arguments {
                            call.arguments.push_str(&a);
                        }
                    }
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason);
            }
        }
    }

    fn finish(self) -> Result<ChatResponse, LlmError> {
        let finish_reason = self.finish_reason.ok_or_else(|| {
            LlmError("the provider's stream ended without a finish_reason (truncated or not an SSE chat stream)".into())
        })?;
        let tool_calls = self
            .calls
            .into_iter()
            .map(|(i, mut c)| {
                if c.id.is_empty() {
                    c.id = format!("call_{i}");
                }
                c
            })
            .collect();
        Ok(ChatResponse {
            text: self.text,
            tool_calls,
            usage: self.usage,
            finish_reason,
        })
    }
}

/// The JSON body of a streamed chat request.
pub fn request_body(req: &ChatRequest<'_>) -> Value {
    let mut body = json!({
        "model": req.model,
        "messages": req.messages,
        "stream": true,
        "stream_options": { "include_usage": true },
        "temperature": req.temperature,
        "max_tokens": req.max_tokens,
    });
    if !req.tools.is_empty() {
        body["tools"] = Value::Array(req.tools.to_vec());
        body["tool_choice"] = json!("auto");
    }
    if req.json {
        body["response_format"] = json!({ "type": "json_object" });
    }
    body
}

/// Streams one chat completion from `provider`, calling `on_text` with every text delta.
pub async fn chat(
    settings: &LlmSettings,
    provider: Provider,
    req: &ChatRequest<'_>,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<ChatResponse, LlmError> {
    let (base, key) = settings.endpoint(provider)?;
    let config = OpenAIConfig::new()
        .with_api_base(base)
        .with_api_key(key.unwrap_or_default());
    let client = Client::build(settings.http.clone(), config);
    let body = request_body(req);
    let mut stream = client
        .chat()
        .create_stream_byot::<Value, Chunk>(body)
        .await
        .map_err(|e| LlmError(format!("provider {} failed: {e}", provider.as_str())))?;
    let mut acc = Assembly::default();
    while let Some(item) = stream.next().await {
        let chunk = item.map_err(|e| match e {
            OpenAIError::JSONDeserialize(err, content) => LlmError(format!(
                "the provider sent a malformed stream chunk ({err}): {}",
                content.chars().take(200).collect::<String>()
            )),
            other => LlmError(format!("reading the provider's stream failed: {other}")),
        })?;
        acc.add(chunk, on_text);
    }
    acc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[Value]) -> Result<ChatResponse, LlmError> {
        let mut acc = Assembly::default();
        for l in lines {
            acc.add(serde_json::from_value(l.clone()).unwrap(), &mut |_| {});
        }
        acc.finish()
    }

    #[test]
    fn tool_call_fragments_are_assembled_by_index() {
        let r = feed(&[
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":""}}]}}]}),
            json!({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"x\":"}}]}}]}),
            json!({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":""}]}),
            json!({"choices":[{"delta":{},"finish_reason":"tool_calls"}]}),
            json!({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}),
        ])
        .unwrap();
        assert_eq!(r.tool_calls.len(), 1);
        assert_eq!(r.tool_calls[0].arguments, "{\"x\":1}");
        assert_eq!(r.tool_calls[0].name, "f");
        assert_eq!(r.usage.unwrap().total_tokens, 5);
    }

    #[test]
    fn a_stream_without_finish_reason_is_an_error() {
        let err = feed(&[json!({"choices":[{"delta":{"content":"hi"}}]})]).unwrap_err();
        assert!(err.0.contains("finish_reason"), "{err}");
    }
}
