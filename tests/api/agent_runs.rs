//! Agent hub run loop: a scripted OpenAI-compatible server (real SSE wire format: streamed
//! `tool_calls` deltas split across chunks, a final usage chunk with empty choices, `[DONE]`)
//! drives runs through the real REST trigger, real operations and real Postgres.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::fixtures::{day, listing};
use crate::helpers::*;
use crate::scripted_llm::*;

/// The hub wired to a fake provider answering `script`.
pub(crate) async fn hub(script: Vec<Turn>) -> (TestApp, Fake) {
    hub_waiting(script, None).await
}

/// The hub wired to a fake provider answering `script`; `runAgent` waits `wait_ms` if given.
pub(crate) async fn hub_waiting(script: Vec<Turn>, wait_ms: Option<u64>) -> (TestApp, Fake) {
    let (fake, base) = fake_provider(script).await;
    let mut config = test_config();
    config.llm_base_url = Some(base);
    if let Some(wait) = wait_ms {
        config.agent_run_wait_ms = wait;
    }
    (TestApp::spawn_with(config).await, fake)
}

const AGENT: &str = "guest-booking-assistant";

async fn run_agent(app: &TestApp, token: &str, input: &str) -> (StatusCode, Value) {
    app.rest(
        Method::POST,
        &format!("/agenthub-api/v1/agents/{AGENT}/run"),
        Some(token),
        Some(json!({ "input": input })),
    )
    .await
}

/// Lays an admin override on the booking assistant.
async fn override_agent(app: &TestApp, changes: Value) {
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    override_named(app, &admin, AGENT, changes).await;
}

/// Lays `admin`'s override with `changes` on the agent `name`.
pub(crate) async fn override_named(app: &TestApp, admin: &TestUser, name: &str, changes: Value) {
    let mut body = json!({ "agentName": name });
    if let (Value::Object(b), Value::Object(c)) = (&mut body, changes) {
        b.extend(c);
    }
    let (status, body) = app
        .rest(
            Method::POST,
            "/agenthub-api/v1/agentoverride",
            Some(&admin.token),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn execution_row(app: &TestApp, id: &Value) -> (String, i32, Option<String>, Value) {
    let id = Uuid::parse_str(id.as_str().unwrap()).unwrap();
    sqlx::query_as::<_, (String, i32, Option<String>, Value)>(
        "SELECT status, tool_calls, error, token_usage FROM agenthub.agent_executions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

async fn source_of(app: &TestApp, id: &Value) -> String {
    let id = Uuid::parse_str(id.as_str().unwrap()).unwrap();
    sqlx::query_scalar("SELECT source FROM agenthub.agent_executions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// Opens `POST …/stream` for the booking assistant as `token`.
async fn open_stream(app: &TestApp, token: &str) -> reqwest::Response {
    let path = format!("/agenthub-api/v1/agents/{AGENT}/stream");
    app.open_sse(&path, token, json!({ "input": "find me a place" }))
        .await
}

#[tokio::test]
async fn the_sse_stream_shows_the_run_live_in_order() {
    let (app, _fake) = hub(vec![
        tool_turn("c1", "listListings", json!({}), (10, 5)),
        text_turn("Nothing free, sorry.", (20, 5)),
    ])
    .await;
    let guest = app.user("guest@haven.test").await;
    let text = open_stream(&app, &guest.token).await.text().await.unwrap();
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_string(), serde_json::from_str(data).unwrap()))
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "run_started",
            "tool_call_started",
            "tool_call_finished",
            "text_delta",
            "text_delta",
            "run_finished"
        ],
        "{text}"
    );
    assert_eq!(events[1].1["name"], "listListings");
    assert_eq!(events[2].1["isError"], false);
    let finished = &events[5].1;
    assert_eq!(finished["status"], "success", "{finished}");
    assert_eq!(finished["output"], "Nothing free, sorry.");
    assert_eq!(finished["tokenUsage"]["total"], 40);
    assert_eq!(finished["executionId"], events[0].1["executionId"]);
    assert_eq!(source_of(&app, &finished["executionId"]).await, "sse");
}

#[tokio::test]
async fn a_viewer_disconnecting_does_not_kill_the_run() {
    let slow = Turn::Delay(
        Duration::from_millis(800),
        Box::new(text_turn("Done.", (3, 2))),
    );
    let (app, _fake) = hub(vec![slow]).await;
    let guest = app.user("guest@haven.test").await;
    drop(open_stream(&app, &guest.token).await);
    let mut status = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = sqlx::query_scalar("SELECT status FROM agenthub.agent_executions")
            .fetch_optional(&app.db)
            .await
            .unwrap()
            .unwrap_or_default();
        if status == "success" {
            break;
        }
    }
    assert_eq!(status, "success", "the run finished after its viewer left");
}

#[tokio::test]
async fn booking_assistant_searches_and_books_through_real_operations() {
    let (fake, base) = fake_provider(vec![]).await;
    let mut config = test_config();
    config.llm_base_url = Some(base);
    let app = TestApp::spawn_with(config).await;
    let host = app.user("host@haven.test").await;
    let guest = app.user("guest@haven.test").await;
    let listing_id = listing(&app, &host, json!({})).await;
    fake.push([
        tool_turn("call_1", "listListings", json!({ "pageRowCount": 5 }), (100, 20)),
        tool_turn(
            "call_2",
            "createReservation",
            json!({ "listingId": listing_id, "checkIn": day(10), "checkOut": day(13), "guestCount": 2 }),
            (200, 30),
        ),
        text_turn("Booked: Sea view loft for 3 nights.", (300, 15)),
    ]);

    let (status, body) = run_agent(&app, &guest.token, "Book me the Lisbon loft").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["output"], "Booked: Sea view loft for 3 nights.");
    assert_eq!(body["toolCalls"], 2);
    assert_eq!(
        body["tokenUsage"],
        json!({ "prompt": 600, "completion": 65, "total": 665 })
    );
    assert!(body["error"].is_null());

    let (status, tool_calls, error, tokens) = execution_row(&app, &body["executionId"]).await;
    assert_eq!((status.as_str(), tool_calls, error), ("success", 2, None));
    assert_eq!(source_of(&app, &body["executionId"]).await, "rest");
    assert_eq!(tokens["total"], 665);
    let trace: Vec<(String, bool)> = sqlx::query_as(
        "SELECT tool_name, is_error FROM agenthub.agent_tool_calls WHERE execution_id = $1 ORDER BY seq",
    )
    .bind(Uuid::parse_str(body["executionId"].as_str().unwrap()).unwrap())
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        trace,
        vec![
            ("listListings".to_string(), false),
            ("createReservation".to_string(), false)
        ]
    );
    let owner: Uuid =
        sqlx::query_scalar("SELECT guest_id FROM booking.reservations WHERE listing_id = $1")
            .bind(listing_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        owner, guest.id,
        "the reservation belongs to the calling guest"
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r["stream"] == json!(true)));
    assert_eq!(requests[0]["stream_options"]["include_usage"], true);
    assert_eq!(requests[0]["messages"][0]["role"], "system");
    assert_eq!(
        requests[0]["messages"][1]["content"],
        "Book me the Lisbon loft"
    );
    // The second request carries the assistant's tool call and the tool's real result.
    let history = requests[1]["messages"].as_array().unwrap();
    assert_eq!(history[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(history[3]["role"], "tool");
    assert_eq!(history[3]["tool_call_id"], "call_1");
    let listed: Value = serde_json::from_str(history[3]["content"].as_str().unwrap()).unwrap();
    assert_eq!(listed["listings"][0]["id"], json!(listing_id));
}

/// Runs the booking assistant as a guest under `limits` (maxToolCalls, timeoutSeconds,
/// maxTokenBudget) against `script`; returns the app, the fake and the run's JSON result.
async fn guarded_run(script: Vec<Turn>, limits: (u32, u32, u32)) -> (TestApp, Fake, Value) {
    let (app, fake) = hub(script).await;
    let guardrails = json!({ "guardrails": {
        "maxToolCalls": limits.0, "timeoutSeconds": limits.1, "maxTokenBudget": limits.2 } });
    override_agent(&app, guardrails).await;
    let guest = app.user("guest@haven.test").await;
    let (status, body) = run_agent(&app, &guest.token, "hello").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (app, fake, body)
}

#[tokio::test]
async fn max_tool_calls_guardrail_stops_the_run() {
    let script = vec![
        tool_turn("c1", "listListings", json!({}), (10, 5)),
        tool_turn("c2", "listListings", json!({}), (10, 5)),
        text_turn("never reached", (10, 5)),
    ];
    let (app, _fake, body) = guarded_run(script, (1, 60, 10_000)).await;
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["error"], "guardrail: more than 1 tool calls");
    assert_eq!(body["toolCalls"], 1);
    let (status, calls, error, _) = execution_row(&app, &body["executionId"]).await;
    assert_eq!((status.as_str(), calls), ("error", 1));
    assert_eq!(error.as_deref(), Some("guardrail: more than 1 tool calls"));
}

#[tokio::test]
async fn timeout_guardrail_ends_the_run_with_timeout() {
    let slow = Turn::Delay(
        Duration::from_secs(4),
        Box::new(text_turn("too late", (10, 5))),
    );
    let (app, _fake, body) = guarded_run(vec![slow], (5, 1, 10_000)).await;
    assert_eq!(body["status"], "timeout", "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("guardrail"), "{body}");
    assert!(body["durationMs"].as_i64().unwrap() < 3500, "{body}");
    let (status, _, _, _) = execution_row(&app, &body["executionId"]).await;
    assert_eq!(status, "timeout");
}

#[tokio::test]
async fn token_budget_guardrail_stops_the_run() {
    let script = vec![
        tool_turn("c1", "listListings", json!({}), (80, 40)),
        text_turn("never reached", (10, 5)),
    ];
    let (app, fake, body) = guarded_run(script, (5, 60, 100)).await;
    assert_eq!(body["status"], "error", "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.starts_with("guardrail: token budget"), "{body}");
    assert_eq!(body["tokenUsage"]["total"], 120);
    assert_eq!(
        body["toolCalls"], 0,
        "no tool runs once the budget is spent"
    );
    assert_eq!(fake.requests().len(), 1);
    let (status, _, _, tokens) = execution_row(&app, &body["executionId"]).await;
    assert_eq!(
        (status.as_str(), tokens["total"].as_i64()),
        ("error", Some(120))
    );
}

#[tokio::test]
async fn a_429_is_retried_then_the_run_succeeds() {
    let (app, fake) = hub(vec![Turn::Status(429), text_turn("Hello!", (5, 2))]).await;
    let guest = app.user("guest@haven.test").await;
    let (_, body) = run_agent(&app, &guest.token, "hi").await;
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["output"], "Hello!");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn persistent_5xx_and_malformed_streams_end_in_error() {
    let (app, fake) = hub(vec![
        Turn::Status(503),
        Turn::Status(503),
        Turn::Status(503),
        Turn::Status(503),
        // A stream cut before any finish_reason.
        Turn::Raw(format!(
            "data: {}\n\n",
            chunk(json!({"content": "Hel"}), None)
        )),
        // Garbage instead of chunks.
        Turn::Raw("data: {not json\n\n".into()),
    ])
    .await;
    let guest = app.user("guest@haven.test").await;
    let (_, body) = run_agent(&app, &guest.token, "hi").await;
    assert_eq!(body["status"], "error", "{body}");
    assert!(body["error"].as_str().unwrap().contains("503"), "{body}");
    assert_eq!(fake.requests().len(), 4, "the first attempt and 3 retries");

    let (_, body) = run_agent(&app, &guest.token, "hi").await;
    assert_eq!(body["status"], "error", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("without a finish_reason"),
        "{body}"
    );

    let (_, body) = run_agent(&app, &guest.token, "hi").await;
    assert_eq!(body["status"], "error", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("malformed stream chunk"),
        "{body}"
    );
    let (status, _, error, _) = execution_row(&app, &body["executionId"]).await;
    assert_eq!(status, "error");
    assert!(error.unwrap().contains("malformed"));
}

#[tokio::test]
async fn a_guest_run_agent_cannot_use_a_selected_admin_tool() {
    let (app, fake) = hub(vec![
        tool_turn("c1", "listUsers", json!({}), (10, 5)),
        text_turn("I cannot list users.", (10, 5)),
    ])
    .await;
    override_agent(
        &app,
        json!({ "selectedTools": ["listListings", "listUsers"] }),
    )
    .await;
    let guest = app.user("guest@haven.test").await;
    let (_, body) = run_agent(&app, &guest.token, "list every user").await;
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["toolCalls"], 1);

    let requests = fake.requests();
    let offered: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        vec!["listListings"],
        "the admin tool is not offered to a guest"
    );
    let tool_msg = &requests[1]["messages"].as_array().unwrap()[3];
    assert_eq!(tool_msg["role"], "tool");
    let content = tool_msg["content"].as_str().unwrap();
    assert!(content.contains("not allowed"), "{content}");
    assert!(
        !content.contains("admin@haven.test"),
        "nothing leaks: {content}"
    );

    let (is_error,): (bool,) =
        sqlx::query_as("SELECT is_error FROM agenthub.agent_tool_calls WHERE execution_id = $1")
            .bind(Uuid::parse_str(body["executionId"].as_str().unwrap()).unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(is_error);
}

#[tokio::test]
async fn unknown_or_disabled_agents_are_404_and_json_agents_must_answer_json() {
    let (app, _fake) = hub(vec![text_turn("not json", (1, 1))]).await;
    let guest = app.user("guest@haven.test").await;
    let (status, body) = app
        .rest(
            Method::POST,
            "/agenthub-api/v1/agents/no-such-agent/run",
            Some(&guest.token),
            Some(json!({ "input": "hi" })),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "agent");
    let (status, body) = app
        .rest(
            Method::POST,
            &format!("/agenthub-api/v1/agents/{AGENT}/run"),
            None,
            Some(json!({ "input": "hi" })),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "login");
    assert_eq!(app.count("agenthub.agent_executions").await, 0);

    override_agent(&app, json!({ "responseFormat": "json" })).await;
    let (_, body) = run_agent(&app, &guest.token, "hi").await;
    assert_eq!(body["status"], "error", "{body}");
    assert!(body["error"].as_str().unwrap().contains("JSON"), "{body}");
}

/// The hub with `runAgent` waiting only `wait_ms` before it answers `running`.
pub(crate) async fn quick_hub(script: Vec<Turn>, wait_ms: u64) -> TestApp {
    hub_waiting(script, Some(wait_ms)).await.0
}

/// Calls the MCP tool `runAgent` for `agent` as `token`.
async fn run_over_mcp(app: &TestApp, token: Option<&str>, agent: &str) -> (bool, Value) {
    app.tool(
        token,
        "runAgent",
        json!({ "agentName": agent, "input": "find me a place" }),
    )
    .await
}

pub(crate) async fn execution_over_mcp(app: &TestApp, token: &str, id: &Value) -> Value {
    let (is_error, run) = app
        .tool(
            Some(token),
            "getAgentExecution",
            json!({ "sys_agentExecutionId": id }),
        )
        .await;
    assert!(!is_error, "{run}");
    run
}

#[tokio::test]
async fn run_agent_over_mcp_answers_when_the_run_is_quick() {
    let app = quick_hub(vec![text_turn("Here you go.", (4, 3))], 5_000).await;
    let guest = app.user("guest@haven.test").await;
    let (is_error, run) = run_over_mcp(&app, Some(&guest.token), AGENT).await;
    assert!(!is_error, "{run}");
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["output"], "Here you go.");
    assert_eq!(run["tokenUsage"]["total"], 7);
    let logged = execution_over_mcp(&app, &guest.token, &run["executionId"]).await;
    assert_eq!(logged["source"], "mcp", "{logged}");
    assert_eq!(logged["status"], "success");
    assert_eq!(logged["id"], run["executionId"]);
}

#[tokio::test]
async fn run_agent_over_mcp_answers_running_then_the_run_finishes() {
    let slow = Turn::Delay(
        Duration::from_millis(2_000),
        Box::new(text_turn("Done.", (3, 2))),
    );
    let app = quick_hub(vec![slow], 300).await;
    let guest = app.user("guest@haven.test").await;
    let (is_error, run) = run_over_mcp(&app, Some(&guest.token), AGENT).await;
    assert!(!is_error, "{run}");
    assert_eq!(run["status"], "running", "{run}");
    assert!(run["output"].is_null());
    let mut logged = Value::Null;
    for _ in 0..100 {
        logged = execution_over_mcp(&app, &guest.token, &run["executionId"]).await;
        if logged["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(logged["status"], "success", "{logged}");
    assert_eq!(logged["output"], "Done.");
    assert_eq!(logged["source"], "mcp");
}

#[tokio::test]
async fn run_agent_over_mcp_needs_a_login_and_a_known_agent() {
    let app = quick_hub(vec![], 1_000).await;
    let guest = app.user("guest@haven.test").await;
    let (is_error, message) = app
        .tool(
            None,
            "runAgent",
            json!({ "agentName": AGENT, "input": "hi" }),
        )
        .await;
    assert!(is_error, "{message}");
    assert!(message.as_str().unwrap().contains("login"), "{message}");
    let (is_error, message) = run_over_mcp(&app, Some(&guest.token), "no-such-agent").await;
    assert!(is_error, "{message}");
    assert!(message.as_str().unwrap().contains("not found"), "{message}");
    assert_eq!(app.count("agenthub.agent_executions").await, 0);
}
