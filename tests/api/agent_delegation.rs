//! Agent-to-agent calls and cancellation, driven by the scripted provider: the trust-and-safety
//! desk hands casework to the review moderation agent as a tool; the nested run is its own
//! execution row (source `agent`, parent id) spending the desk's guardrails; a timeout or cancel
//! stops the whole chain with every row closed.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::agent_runs::{execution_over_mcp, hub, hub_waiting, override_named};
use crate::helpers::*;
use crate::scripted_llm::*;

const DESK: &str = "trust-safety-desk";
const MODERATOR: &str = "review-moderation-assistant";

/// One execution row: status, source, parent, tool calls, total tokens, error.
#[derive(Debug, sqlx::FromRow)]
struct Row {
    status: String,
    source: String,
    parent_execution_id: Option<Uuid>,
    tool_calls: i32,
    total_tokens: i64,
    error: Option<String>,
}

async fn row(app: &TestApp, id: Uuid) -> Row {
    sqlx::query_as(
        "SELECT status, source, parent_execution_id, tool_calls,
                (token_usage->>'total')::bigint AS total_tokens, error
         FROM agenthub.agent_executions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// The nested runs of `parent`.
async fn children(app: &TestApp, parent: Uuid) -> Vec<Uuid> {
    sqlx::query_scalar(
        "SELECT id FROM agenthub.agent_executions WHERE parent_execution_id = $1 ORDER BY created_at",
    )
    .bind(parent)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

fn id_of(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().unwrap()).unwrap()
}

/// Runs the desk over REST as `admin` and returns the run result.
async fn run_desk(app: &TestApp, admin: &TestUser) -> Value {
    let (status, body) = app
        .rest(
            Method::POST,
            &format!("/agenthub-api/v1/agents/{DESK}/run"),
            Some(&admin.token),
            Some(json!({ "input": "Anything in the review queue?" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Runs the desk as an admin with guardrails `(maxToolCalls, timeoutSeconds, maxTokenBudget)`
/// against `script`; returns the app and the run result.
async fn desk_run_limited(script: Vec<Turn>, limits: (u32, u32, u32)) -> (TestApp, Value) {
    let (app, _fake) = hub(script).await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let (calls, seconds, tokens) = limits;
    override_named(
        &app,
        &admin,
        DESK,
        json!({ "guardrails": { "maxToolCalls": calls, "timeoutSeconds": seconds, "maxTokenBudget": tokens } }),
    )
    .await;
    let result = run_desk(&app, &admin).await;
    (app, result)
}

/// The desk's first turn: hand the review queue to the moderator.
fn delegate_turn() -> Turn {
    tool_turn(
        "call_desk_1",
        MODERATOR,
        json!({ "input": "Moderate the pending reviews." }),
        (100, 10),
    )
}

fn function_names(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_agent_calls_another_agent_as_a_nested_run() {
    let (app, fake) = hub(vec![
        delegate_turn(),
        tool_turn(
            "call_mod_1",
            "listReviews",
            json!({ "pageRowCount": 5 }),
            (50, 5),
        ),
        text_turn(
            r#"{"approved": [], "rejected": [], "flagged": []}"#,
            (60, 6),
        ),
        text_turn("Nothing waits for moderation.", (150, 12)),
    ])
    .await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let result = run_desk(&app, &admin).await;
    assert_eq!(result["status"], "success", "{result}");
    assert_eq!(result["output"], "Nothing waits for moderation.");
    // The nested call counts against the desk: its own call plus the moderator's.
    assert_eq!(result["toolCalls"], 2);
    assert_eq!(result["tokenUsage"]["total"], 110 + 55 + 66 + 162);

    let desk_id = id_of(&result["executionId"]);
    let desk = row(&app, desk_id).await;
    assert_eq!((desk.source.as_str(), desk.tool_calls), ("rest", 2));
    assert_eq!(desk.total_tokens, 393);
    let nested = children(&app, desk_id).await;
    assert_eq!(nested.len(), 1);
    let moderator = row(&app, nested[0]).await;
    assert_eq!(moderator.status, "success");
    assert_eq!(moderator.source, "agent");
    assert_eq!(moderator.parent_execution_id, Some(desk_id));
    assert_eq!((moderator.tool_calls, moderator.total_tokens), (1, 121));
    let (agent, user): (String, Uuid) =
        sqlx::query_as("SELECT agent_name, user_id FROM agenthub.agent_executions WHERE id = $1")
            .bind(nested[0])
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((agent.as_str(), user), (MODERATOR, admin.id));

    // What the provider saw: the desk offered the specialists as functions taking `input`; the
    // moderator got its own prompt, the desk's message, and its own tools only.
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    let offered = function_names(&requests[0]);
    assert!(offered.contains(&MODERATOR.to_string()), "{offered:?}");
    assert!(
        offered.contains(&"dispute-triage".to_string()),
        "{offered:?}"
    );
    let moderator_fn = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == MODERATOR)
        .unwrap();
    assert_eq!(
        moderator_fn["function"]["parameters"]["required"],
        json!(["input"])
    );
    let child_messages = requests[1]["messages"].as_array().unwrap();
    assert!(child_messages[0]["content"]
        .as_str()
        .unwrap()
        .contains("review moderation assistant"));
    assert_eq!(
        child_messages[1]["content"],
        "Moderate the pending reviews."
    );
    assert_eq!(
        function_names(&requests[1]),
        ["listReviews", "getReview", "updateReview"]
    );
    // The desk's second turn carries the moderator's answer and execution id.
    let tool_message = requests[3]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap();
    let content: Value = serde_json::from_str(tool_message["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["executionId"], json!(nested[0]));
    assert_eq!(content["answer"]["flagged"], json!([]));

    // The desk's trace shows the delegation as one call; getAgentExecution shows the parent id.
    let child = execution_over_mcp(&app, &admin.token, &json!(nested[0])).await;
    assert_eq!(child["parentExecutionId"], json!(desk_id));
    let parent = execution_over_mcp(&app, &admin.token, &json!(desk_id)).await;
    let trace = parent["toolCallTrace"].as_array().unwrap();
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0]["toolName"], MODERATOR);
    assert_eq!(trace[0]["isError"], false);
}

#[tokio::test]
async fn nested_tool_calls_spend_the_callers_tool_call_guardrail() {
    let (app, result) = desk_run_limited(
        vec![
            delegate_turn(),
            tool_turn("call_mod_1", "listReviews", json!({}), (10, 1)),
            tool_turn("call_mod_2", "listReviews", json!({}), (10, 1)),
            text_turn("The moderator could not finish.", (10, 1)),
        ],
        (2, 30, 100000),
    )
    .await;
    // The desk itself answers; its nested run hit the desk's limit on its second call.
    assert_eq!(result["status"], "success", "{result}");
    assert_eq!(result["toolCalls"], 2);
    let desk_id = id_of(&result["executionId"]);
    let moderator = row(&app, children(&app, desk_id).await[0]).await;
    assert_eq!(moderator.status, "error");
    assert_eq!(
        moderator.error.as_deref(),
        Some("guardrail of the calling agent `trust-safety-desk`: more than 2 tool calls")
    );
    assert_eq!(moderator.tool_calls, 1);
    let trace: (bool, Value) = sqlx::query_as(
        "SELECT is_error, result FROM agenthub.agent_tool_calls WHERE execution_id = $1",
    )
    .bind(desk_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(trace.0);
    let message = trace.1["error"].as_str().unwrap();
    assert!(
        message.contains("ended with status error") && message.contains("more than 2"),
        "{message}"
    );
}

#[tokio::test]
async fn nested_tokens_spend_the_callers_token_budget() {
    let (app, result) = desk_run_limited(
        vec![
            delegate_turn(),
            text_turn(r#"{"flagged": []}"#, (150, 50)),
            text_turn("Done.", (5, 5)),
        ],
        (10, 30, 300),
    )
    .await;
    assert_eq!(result["status"], "error", "{result}");
    assert_eq!(
        result["error"],
        "guardrail: token budget of 300 tokens exceeded (320 used)"
    );
    let moderator = row(&app, children(&app, id_of(&result["executionId"])).await[0]).await;
    assert_eq!(moderator.status, "error");
    assert_eq!(
        moderator.error.as_deref(),
        Some("guardrail of the calling agent `trust-safety-desk`: token budget of 300 tokens exceeded (310 used)")
    );
    assert_eq!(moderator.total_tokens, 200);
}

#[tokio::test]
async fn the_callers_deadline_stops_the_nested_run_and_both_rows_close() {
    let (app, result) = desk_run_limited(
        vec![
            delegate_turn(),
            Turn::Delay(
                Duration::from_secs(10),
                Box::new(text_turn("too late", (1, 1))),
            ),
        ],
        (10, 1, 100000),
    )
    .await;
    assert_eq!(result["status"], "timeout", "{result}");
    assert_eq!(result["error"], "guardrail: the run took longer than 1 s");
    let moderator = row(&app, children(&app, id_of(&result["executionId"])).await[0]).await;
    assert_eq!(moderator.status, "timeout");
    assert_eq!(
        moderator.error.as_deref(),
        Some("guardrail of the calling agent: its 1 s ran out")
    );
}

#[tokio::test]
async fn an_agent_cannot_call_an_agent_already_in_its_chain() {
    let (app, fake) = hub(vec![
        delegate_turn(),
        tool_turn("call_mod_1", DESK, json!({ "input": "loop" }), (1, 1)),
        text_turn(r#"{"flagged": []}"#, (1, 1)),
        text_turn("Done.", (1, 1)),
    ])
    .await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    // A misconfiguration: the moderator may call the desk, which calls the moderator.
    override_named(
        &app,
        &admin,
        MODERATOR,
        json!({ "selectedTools": ["listReviews", DESK] }),
    )
    .await;
    let result = run_desk(&app, &admin).await;
    assert_eq!(result["status"], "success", "{result}");
    // Not offered to the moderator, and refused when called anyway.
    assert_eq!(function_names(&fake.requests()[1]), ["listReviews"]);
    let nested = children(&app, id_of(&result["executionId"])).await;
    assert_eq!(nested.len(), 1, "no run of the desk inside the moderator");
    let (is_error, result): (bool, Value) = sqlx::query_as(
        "SELECT is_error, result FROM agenthub.agent_tool_calls WHERE execution_id = $1",
    )
    .bind(nested[0])
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(is_error);
    assert!(result["error"].as_str().unwrap().starts_with("not allowed"));
}

/// Waits until the run `id` is no longer running; returns its row.
async fn ended(app: &TestApp, id: Uuid) -> Row {
    for _ in 0..200 {
        let r = row(app, id).await;
        if r.status != "running" {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} did not end");
}

#[tokio::test]
async fn cancelling_a_run_stops_it_and_its_nested_runs() {
    let (app, _fake) = hub_waiting(
        vec![
            delegate_turn(),
            Turn::Delay(
                Duration::from_secs(30),
                Box::new(text_turn("never", (1, 1))),
            ),
        ],
        Some(200),
    )
    .await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let other = app.user("other@haven.test").await;
    let (is_error, started) = app
        .tool(
            Some(&admin.token),
            "runAgent",
            json!({ "agentName": DESK, "input": "Review queue?" }),
        )
        .await;
    assert!(!is_error, "{started}");
    assert_eq!(started["status"], "running");
    let desk_id = id_of(&started["executionId"]);
    let mut nested = Vec::new();
    for _ in 0..100 {
        nested = children(&app, desk_id).await;
        if !nested.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(nested.len(), 1, "the nested run started");

    let cancel = format!("/agenthub-api/v1/agentexecution/{desk_id}/cancel");
    // Someone else's run is not found, and stays running.
    let (status, body) = app
        .rest(Method::POST, &cancel, Some(&other.token), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not found");
    assert_eq!(row(&app, desk_id).await.status, "running");

    let (status, body) = app
        .rest(Method::POST, &cancel, Some(&admin.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["sys_agentExecution"]["cancelRequestedAt"].is_string());

    let desk = ended(&app, desk_id).await;
    assert_eq!(desk.status, "cancelled");
    assert_eq!(desk.error.as_deref(), Some("cancelled on request"));
    let moderator = ended(&app, nested[0]).await;
    assert_eq!(moderator.status, "cancelled");
    assert_eq!(
        moderator.error.as_deref(),
        Some("cancelled with the calling run")
    );
    let seen = execution_over_mcp(&app, &admin.token, &json!(desk_id)).await;
    assert_eq!(seen["status_idx"], 4);

    // An ended run cannot be cancelled.
    let (status, body) = app
        .rest(Method::POST, &cancel, Some(&admin.token), None)
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "already ended");
}

/// Starts the moderator over MCP as an admin against `script`, with `runAgent` answering
/// `running` after 100 ms; returns the app and the run's id.
async fn moderator_running(script: Vec<Turn>) -> (TestApp, Uuid) {
    let (app, _fake) = hub_waiting(script, Some(100)).await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let (_, started) = app
        .tool(
            Some(&admin.token),
            "runAgent",
            json!({ "agentName": MODERATOR, "input": "Moderate." }),
        )
        .await;
    assert_eq!(started["status"], "running", "{started}");
    (app, id_of(&started["executionId"]))
}

#[tokio::test]
async fn a_cancel_recorded_without_its_notification_stops_the_run_after_its_next_tool_call() {
    let (app, id) = moderator_running(vec![
        Turn::Delay(
            Duration::from_millis(800),
            Box::new(tool_turn("call_1", "listReviews", json!({}), (1, 1))),
        ),
        text_turn("should not be asked", (1, 1)),
    ])
    .await;
    // As if the request landed on a replica whose NOTIFY never arrived here.
    sqlx::query("UPDATE agenthub.agent_executions SET cancel_requested_at = now() WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let run = ended(&app, id).await;
    assert_eq!(run.status, "cancelled");
    assert_eq!(run.tool_calls, 1);
}

#[tokio::test]
async fn runs_abandoned_by_a_stopped_server_are_closed_by_the_sweep() {
    let app = TestApp::spawn().await;
    let user = app.user("user@haven.test").await;
    let (old, fresh): (Uuid, Uuid) = sqlx::query_as(
        "WITH a AS (INSERT INTO agenthub.agent_executions (agent_name, agent_type, source, user_id, input, created_at)
                    VALUES ('dispute-triage', 'design', 'rest', $1, '{}', now() - interval '20 minutes') RETURNING id),
              b AS (INSERT INTO agenthub.agent_executions (agent_name, agent_type, source, user_id, input)
                    VALUES ('dispute-triage', 'design', 'rest', $1, '{}') RETURNING id)
         SELECT a.id, b.id FROM a, b",
    )
    .bind(user.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        haven_agents::cancel::close_abandoned(&app.db)
            .await
            .unwrap(),
        1
    );
    let closed = row(&app, old).await;
    assert_eq!(closed.status, "error");
    assert!(closed.error.unwrap().contains("interrupted"));
    assert_eq!(row(&app, fresh).await.status, "running");
}

#[tokio::test]
async fn shutting_down_closes_the_runs_in_flight() {
    let (app, id) = moderator_running(vec![Turn::Delay(
        Duration::from_secs(30),
        Box::new(text_turn("never", (1, 1))),
    )])
    .await;
    app.state.stop_agent_runs(Duration::from_secs(5)).await;
    let run = row(&app, id).await;
    assert_eq!(run.status, "error");
    assert!(run.error.unwrap().contains("shut down"));
}
