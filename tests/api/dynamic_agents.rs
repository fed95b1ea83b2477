//! Dynamic agents: an admin runs an agent defined in the request body (MCP `runDynamicAgent`, REST
//! `…/dynamic-agents/run`, SSE `…/dynamic-agents/stream`) against the scripted provider; the run
//! is logged as `dynamic` with its trigger's source, and everyone else and every bad definition is
//! refused before anything is written.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::fixtures::listing;
use crate::helpers::*;
use crate::scripted_llm::*;

/// The hub wired to a fake provider answering `script`.
async fn hub(script: Vec<Turn>) -> (TestApp, Fake) {
    let (fake, base) = fake_provider(script).await;
    let mut config = test_config();
    config.llm_base_url = Some(base);
    (TestApp::spawn_with(config).await, fake)
}

/// A dynamic agent that may search listings.
fn scout() -> Value {
    json!({
        "name": "listing-scout",
        "provider": "openai",
        "model": "scout-model-1",
        "systemPrompt": "You find listings. Answer in one sentence.",
        "temperature": 0.7,
        "tools": ["listListings"],
    })
}

fn run_body(agent: Value) -> Value {
    json!({ "agent": agent, "input": "Anything in Lisbon?" })
}

/// A guest turn that searches, then an answer.
fn search_then_answer() -> Vec<Turn> {
    vec![
        tool_turn("c1", "listListings", json!({ "pageRowCount": 5 }), (30, 10)),
        text_turn("One loft in Lisbon.", (40, 8)),
    ]
}

/// The logged row of execution `id`: (agent_name, agent_type, source, tool_calls, user_id, status).
async fn row(app: &TestApp, id: &Value) -> (String, String, String, i32, Option<Uuid>, String) {
    sqlx::query_as(
        "SELECT agent_name, agent_type, source, tool_calls, user_id, status
         FROM agenthub.agent_executions WHERE id = $1",
    )
    .bind(Uuid::parse_str(id.as_str().unwrap()).unwrap())
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// The function names offered in a provider request.
fn offered(request: &Value) -> Vec<String> {
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
async fn an_admin_runs_a_dynamic_agent_over_mcp_with_a_real_tool() {
    let (app, fake) = hub(search_then_answer()).await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let host = app.user("host@haven.test").await;
    let listing_id = listing(&app, &host, json!({})).await;

    let (is_error, run) = app
        .tool(Some(&admin.token), "runDynamicAgent", run_body(scout()))
        .await;
    assert!(!is_error, "{run}");
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["output"], "One loft in Lisbon.");
    assert_eq!(run["toolCalls"], 1);
    assert_eq!(run["tokenUsage"]["total"], 88);

    let (name, agent_type, source, tool_calls, user, status) = row(&app, &run["executionId"]).await;
    assert_eq!(
        (name.as_str(), agent_type.as_str(), source.as_str()),
        ("listing-scout", "dynamic", "mcp")
    );
    assert_eq!(
        (tool_calls, user, status.as_str()),
        (1, Some(admin.id), "success")
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first["model"], "scout-model-1");
    assert_eq!(first["temperature"], 0.7);
    assert_eq!(first["max_tokens"], 1000, "the default maxTokens");
    assert_eq!(first["messages"][0]["role"], "system");
    assert_eq!(
        first["messages"][0]["content"],
        "You find listings. Answer in one sentence."
    );
    assert_eq!(first["messages"][1]["content"], "Anything in Lisbon?");
    assert_eq!(
        offered(first),
        vec!["listListings"],
        "only the selected tool"
    );
    // The tool really ran: the second request carries the real listing.
    let tool_msg = &requests[1]["messages"][3];
    assert_eq!(tool_msg["role"], "tool");
    let listed: Value = serde_json::from_str(tool_msg["content"].as_str().unwrap()).unwrap();
    assert_eq!(listed["listings"][0]["id"], json!(listing_id));
}

#[tokio::test]
async fn the_rest_routes_log_source_rest_and_accept_design_agents_as_tools() {
    let (app, fake) = hub(vec![
        text_turn("Hello from REST.", (3, 2)),
        text_turn("Hello from the operation.", (3, 2)),
    ])
    .await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let mut agent = scout();
    agent["tools"] = json!(["listListings", "dispute-triage"]);
    agent["guardrails"] = json!({ "maxToolCalls": 2, "timeoutSeconds": 30, "maxTokenBudget": 500 });
    let (status, body) = app
        .rest(
            Method::POST,
            "/agenthub-api/v1/dynamic-agents/run",
            Some(&admin.token),
            Some(run_body(agent)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["output"], "Hello from REST.");
    let (name, agent_type, source, _, user, _) = row(&app, &body["executionId"]).await;
    assert_eq!(
        (name.as_str(), agent_type.as_str(), source.as_str(), user),
        ("listing-scout", "dynamic", "rest", Some(admin.id))
    );

    // The registry's own REST face of runDynamicAgent is logged `rest` too.
    let (status, body) = app
        .rest(
            Method::POST,
            "/agenthub-api/v1/dynamic-agents/runs",
            Some(&admin.token),
            Some(run_body(scout())),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let sources: Vec<(String, String)> = sqlx::query_as(
        "SELECT agent_type, source FROM agenthub.agent_executions ORDER BY created_at",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let expected = ("dynamic".to_string(), "rest".to_string());
    assert_eq!(sources, vec![expected.clone(), expected]);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn the_dynamic_stream_shows_the_run_live() {
    let (app, _fake) = hub(search_then_answer()).await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let path = "/agenthub-api/v1/dynamic-agents/stream";
    let resp = app.open_sse(path, &admin.token, run_body(scout())).await;
    let text = resp.text().await.unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    let expected =
        "run_started tool_call_started tool_call_finished text_delta text_delta run_finished";
    assert_eq!(names.join(" "), expected, "{text}");
    let finished: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .next_back()
        .map(|d| serde_json::from_str(d).unwrap())
        .unwrap();
    assert_eq!(finished["status"], "success", "{finished}");
    assert_eq!(finished["toolCalls"], 1);
    let (name, agent_type, source, tool_calls, _, _) = row(&app, &finished["executionId"]).await;
    assert_eq!(
        (
            name.as_str(),
            agent_type.as_str(),
            source.as_str(),
            tool_calls
        ),
        ("listing-scout", "dynamic", "sse", 1)
    );
}

#[tokio::test]
async fn only_admins_run_dynamic_agents() {
    let (app, fake) = hub(search_then_answer()).await;
    let guest = app.user("guest@haven.test").await;
    let host = app.user("host@haven.test").await;
    listing(&app, &host, json!({})).await;
    let audit_before = app.count("platformadmin.audit_logs").await;
    for user in [&guest, &host] {
        assert!(!app
            .tool_names(Some(&user.token))
            .await
            .contains(&"runDynamicAgent".to_string()));
        let (is_error, text) = app
            .tool(Some(&user.token), "runDynamicAgent", run_body(scout()))
            .await;
        assert!(is_error, "{text}");
        assert!(text.as_str().unwrap().contains("Forbidden"), "{text}");
        for path in ["run", "stream", "runs"] {
            let (status, body) = app
                .rest(
                    Method::POST,
                    &format!("/agenthub-api/v1/dynamic-agents/{path}"),
                    Some(&user.token),
                    Some(run_body(scout())),
                )
                .await;
            assert_error(status, &body, StatusCode::FORBIDDEN, "admin");
        }
    }
    for path in ["run", "stream"] {
        let (status, body) = app
            .rest(
                Method::POST,
                &format!("/agenthub-api/v1/dynamic-agents/{path}"),
                None,
                Some(run_body(scout())),
            )
            .await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "login");
    }
    assert_eq!(app.count("agenthub.agent_executions").await, 0);
    assert_eq!(app.count("platformadmin.audit_logs").await, audit_before);
    assert!(fake.requests().is_empty(), "no provider call was made");
}

#[tokio::test]
async fn bad_definitions_are_refused_naming_the_field_and_nothing_is_written() {
    let (app, fake) = hub(vec![]).await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let audit_before = app.count("platformadmin.audit_logs").await;
    let with = |key: &str, value: Value| {
        let mut agent = scout();
        agent[key] = value;
        run_body(agent)
    };
    let cases = [
        (
            with("colour", json!("red")),
            "agent.colour",
            "unknown field",
        ),
        (
            with(
                "guardrails",
                json!({ "maxToolCalls": 500, "timeoutSeconds": 30, "maxTokenBudget": 500 }),
            ),
            "agent.guardrails.maxToolCalls",
            "a whole number from 1 to 100",
        ),
        (
            with("tools", json!(["launchRockets"])),
            "agent.tools[0]",
            "launchRockets",
        ),
        (
            with("tools", json!(["runAgent"])),
            "agent.tools[0]",
            "name the other agent",
        ),
        (
            with("name", json!("guest-booking-assistant")),
            "agent.name",
            "design-time agent",
        ),
        (
            with("temperature", json!(3)),
            "agent.temperature",
            "a number from 0 to 2",
        ),
    ];
    for (body, field, why) in cases {
        let (is_error, text) = app
            .tool(Some(&admin.token), "runDynamicAgent", body.clone())
            .await;
        assert!(is_error, "{field}: {text}");
        let text = text.as_str().unwrap();
        assert!(
            text.contains(field) && text.contains(why),
            "{field}: {text}"
        );
        for path in ["run", "stream"] {
            let (status, resp) = app
                .rest(
                    Method::POST,
                    &format!("/agenthub-api/v1/dynamic-agents/{path}"),
                    Some(&admin.token),
                    Some(body.clone()),
                )
                .await;
            assert_error(status, &resp, StatusCode::BAD_REQUEST, why);
            assert_eq!(resp["field"], field, "{resp}");
        }
    }
    assert_eq!(app.count("agenthub.agent_executions").await, 0);
    assert_eq!(app.count("platformadmin.audit_logs").await, audit_before);
    assert!(fake.requests().is_empty(), "no provider call was made");
}
