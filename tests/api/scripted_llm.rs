//! A scripted OpenAI-compatible chat-completions server for the agent hub's tests and benchmark:
//! it answers `POST /v1/chat/completions` with queued turns in the real wire format (SSE chunks
//! with `tool_calls` deltas split across chunks, a final usage chunk with empty choices,
//! `data: [DONE]`), or with error statuses, garbage and delays, and remembers every request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One scripted reply of the fake provider.
#[derive(Clone)]
pub enum Turn {
    /// A 200 SSE stream of these chunks, then `data: [DONE]`.
    Sse(Vec<Value>),
    /// A 200 body sent verbatim as `text/event-stream`.
    Raw(String),
    /// An error status with an OpenAI-style error body.
    Status(u16),
    /// Wait, then reply.
    Delay(Duration, Box<Turn>),
}

/// The fake provider: its remaining script and the requests it has seen.
#[derive(Clone, Default)]
pub struct Fake {
    script: Arc<Mutex<VecDeque<Turn>>>,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Fake {
    /// Every request body received so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    /// Queues more turns after the remaining ones.
    pub fn push(&self, turns: impl IntoIterator<Item = Turn>) {
        self.script.lock().unwrap().extend(turns);
    }
}

async fn chat(State(fake): State<Fake>, Json(req): Json<Value>) -> Response {
    let streaming = req["stream"] == json!(true);
    fake.seen.lock().unwrap().push(req);
    if !streaming {
        return reply(Turn::Status(400));
    }
    let turn = fake.script.lock().unwrap().pop_front();
    let mut turn = turn.unwrap_or(Turn::Status(400));
    while let Turn::Delay(d, next) = turn {
        tokio::time::sleep(d).await;
        turn = *next;
    }
    reply(turn)
}

fn reply(turn: Turn) -> Response {
    let sse = |body: String| {
        Response::builder()
            .header(CONTENT_TYPE, "text/event-stream")
            .body(Body::from(body))
            .unwrap()
    };
    match turn {
        Turn::Sse(chunks) => {
            let mut body = String::new();
            for c in chunks {
                body += &format!("data: {c}\n\n");
            }
            sse(body + "data: [DONE]\n\n")
        }
        Turn::Raw(body) => sse(body),
        Turn::Status(code) => Response::builder()
            .status(code)
            .header(CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"error": {"message": format!("scripted {code}"), "type": "scripted"}})
                    .to_string(),
            ))
            .unwrap(),
        Turn::Delay(..) => unreachable!("delays are unwrapped first"),
    }
}

/// Starts the fake provider with `script`; returns it and its base URL (with `/v1`).
pub async fn fake_provider(script: Vec<Turn>) -> (Fake, String) {
    let fake = Fake {
        script: Arc::new(Mutex::new(script.into())),
        ..Fake::default()
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, base)
}

/// One `chat.completion.chunk` with `delta` and an optional finish reason.
pub fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "fake",
           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
}

/// The final usage chunk (empty choices), as sent with `stream_options.include_usage`.
pub fn usage(prompt: i64, completion: i64) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "fake",
           "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": prompt + completion}})
}

/// A turn calling `name` with `args`, the arguments split across two chunks.
pub fn tool_turn(id: &str, name: &str, args: Value, tokens: (i64, i64)) -> Turn {
    let text = args.to_string();
    let (a, b) = text.split_at(text.len() / 2);
    Turn::Sse(vec![
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": id, "type": "function",
                   "function": {"name": name, "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": b}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        usage(tokens.0, tokens.1),
    ])
}

/// A final text turn, the text split across two chunks.
pub fn text_turn(text: &str, tokens: (i64, i64)) -> Turn {
    let (a, b) = text.split_at(text.len() / 2);
    Turn::Sse(vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": a}), None),
        chunk(json!({"content": b}), None),
        chunk(json!({}), Some("stop")),
        usage(tokens.0, tokens.1),
    ])
}
