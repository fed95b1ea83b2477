//! Agent hub, first slice: overrides (admin CRUD, refusals, validation naming the field), the
//! effective configuration of agents, the tool catalog mirrored from the registry, and the
//! execution log's visibility (own runs, admins all) over rows written by the run-loop helpers.

use haven_agents::executions::{
    finish_execution, record_tool_call, start_execution, AgentType, NewExecution, Outcome, Source,
    Status, TokenUsage, ToolCallRecord,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;
use haven_agents::definitions::NOT_SELECTABLE;

const OVERRIDE: &str = "/agenthub-api/v1/agentoverride";

#[tokio::test]
async fn overrides_crud_changes_the_effective_configuration() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let (status, before) = app
        .rest(
            Method::GET,
            "/agenthub-api/v1/agents/guest-booking-assistant",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["agent"]["temperature"], 0.3);
    assert_eq!(before["agent"]["guardrails"]["maxToolCalls"], 12);
    assert!(before["agent"]["systemPrompt"]
        .as_str()
        .unwrap()
        .contains("quoteReservation"));
    assert_eq!(before["agent"]["overrideId"], Value::Null);

    let (status, created) = app
        .rest(
            Method::POST,
            OVERRIDE,
            Some(&admin.token),
            Some(json!({
                "agentName": "guest-booking-assistant",
                "model": "llama3.1:8b",
                "provider": "ollama",
                "temperature": 1.25,
                "selectedTools": ["listListings", "quoteReservation"],
                "guardrails": { "maxToolCalls": 3, "timeoutSeconds": 30, "maxTokenBudget": 5000 }
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let ov = &created["sys_agentOverride"];
    let id = ov["id"].as_str().unwrap().to_string();
    assert_eq!(ov["updatedBy"], admin.id.to_string());
    assert_eq!(ov["temperature"], 1.25);
    assert_eq!(ov["enabled"], Value::Null);
    assert_eq!(ov["systemPrompt"], Value::Null);

    let agent = get_agent(&app, &admin.token, "guest-booking-assistant").await;
    assert_eq!(agent["model"], "llama3.1:8b");
    assert_eq!(agent["provider"], "ollama");
    assert_eq!(agent["temperature"], 1.25);
    assert_eq!(agent["tools"], json!(["listListings", "quoteReservation"]));
    assert_eq!(agent["guardrails"]["maxToolCalls"], 3);
    assert_eq!(
        agent["maxTokens"], before["agent"]["maxTokens"],
        "null = design default"
    );
    assert_eq!(agent["overrideId"], id.as_str());
    assert!(agent["overriddenFields"]
        .as_array()
        .unwrap()
        .contains(&json!("guardrails")));

    // get, list
    let (status, got) = app
        .rest(
            Method::GET,
            &format!("{OVERRIDE}/{id}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["sys_agentOverride"]["model"], "llama3.1:8b");
    let (status, list) = app
        .rest(
            Method::GET,
            "/agenthub-api/v1/agentoverrides",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["sys_agentOverrides"].as_array().unwrap().len(), 1);

    // update: disable, clear the model with an explicit null
    let (status, updated) = app
        .rest(
            Method::PATCH,
            &format!("{OVERRIDE}/{id}"),
            Some(&admin.token),
            Some(json!({ "enabled": false, "model": null, "recordVersion": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["sys_agentOverride"]["enabled"], false);
    assert_eq!(updated["sys_agentOverride"]["model"], Value::Null);
    assert_eq!(updated["sys_agentOverride"]["provider"], "ollama");
    let agent = get_agent(&app, &admin.token, "guest-booking-assistant").await;
    assert_eq!(agent["enabled"], false);
    assert_eq!(agent["model"], before["agent"]["model"]);
    let (status, stale) = app
        .rest(
            Method::PATCH,
            &format!("{OVERRIDE}/{id}"),
            Some(&admin.token),
            Some(json!({ "enabled": true, "recordVersion": 1 })),
        )
        .await;
    assert_error(status, &stale, StatusCode::CONFLICT, "stale");

    // a disabled agent is hidden from users, shown to admins
    let user = app.user("guest@haven.test").await;
    let (_, user_list) = app
        .rest(
            Method::GET,
            "/agenthub-api/v1/agents",
            Some(&user.token),
            None,
        )
        .await;
    let names = field_of(&user_list["agents"], "name");
    assert!(!names.contains(&"guest-booking-assistant"), "{names:?}");
    assert!(names.contains(&"host-listing-copywriter"));
    assert!(user_list["agents"][0].get("systemPrompt").is_none());
    let (_, admin_list) = app
        .rest(
            Method::GET,
            "/agenthub-api/v1/agents",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(
        admin_list["agents"].as_array().unwrap().len(),
        haven_agents::definitions::all().unwrap().len()
    );

    // delete: design defaults again
    let (status, deleted) = app
        .rest(
            Method::DELETE,
            &format!("{OVERRIDE}/{id}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["sys_agentOverride"]["isActive"], false);
    let agent = get_agent(&app, &admin.token, "guest-booking-assistant").await;
    assert_eq!(agent, before["agent"]);
    let (status, _) = app
        .rest(
            Method::GET,
            &format!("{OVERRIDE}/{id}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // and a new override may be created once the old one is gone
    let (status, body) = app
        .rest(
            Method::POST,
            OVERRIDE,
            Some(&admin.token),
            Some(json!({ "agentName": "guest-booking-assistant", "maxTokens": 100 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn get_agent(app: &TestApp, token: &str, name: &str) -> Value {
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("/agenthub-api/v1/agents/{name}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["agent"].clone()
}

#[tokio::test]
async fn overrides_are_admin_only_and_validated() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let user = app.user("user@haven.test").await;
    let good = json!({ "agentName": "dispute-triage", "temperature": 0.5 });

    let (status, body) = app
        .rest(
            Method::POST,
            OVERRIDE,
            Some(&user.token),
            Some(good.clone()),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "admin");
    let (status, body) = app
        .rest(Method::POST, OVERRIDE, None, Some(good.clone()))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = app
        .rest(
            Method::GET,
            "/agenthub-api/v1/agentoverrides",
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .rest(Method::GET, "/agenthub-api/v1/agents", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for (bad, field) in [
        (
            json!({ "agentName": "dispute-triage", "temperature": 3 }),
            "temperature",
        ),
        (
            json!({ "agentName": "dispute-triage", "maxTokens": 0 }),
            "maxTokens",
        ),
        (
            json!({ "agentName": "dispute-triage", "selectedTools": ["launchRockets"] }),
            "selectedTools",
        ),
        (json!({ "agentName": "no-such-agent" }), "agentName"),
        (
            json!({ "agentName": "dispute-triage", "updatedBy": admin.id }),
            "updatedBy",
        ),
        (
            json!({ "agentName": "dispute-triage", "enabled": false }),
            "enabled",
        ),
        (
            json!({ "agentName": "dispute-triage", "provider": "skynet" }),
            "provider",
        ),
        (
            json!({ "agentName": "dispute-triage", "guardrails": { "maxToolCalls": 500, "timeoutSeconds": 5, "maxTokenBudget": 10 } }),
            "guardrails.maxToolCalls",
        ),
    ] {
        let (status, body) = app
            .rest(
                Method::POST,
                OVERRIDE,
                Some(&admin.token),
                Some(bad.clone()),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, field);
    }
    assert_eq!(
        app.count("agenthub.agent_overrides").await,
        0,
        "nothing written"
    );

    let (status, created) = app
        .rest(
            Method::POST,
            OVERRIDE,
            Some(&admin.token),
            Some(good.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, body) = app
        .rest(Method::POST, OVERRIDE, Some(&admin.token), Some(good))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "already has an override",
    );
    assert_eq!(app.count("agenthub.agent_overrides").await, 1);

    let id = created["sys_agentOverride"]["id"].as_str().unwrap();
    let (status, body) = app
        .rest(
            Method::PATCH,
            &format!("{OVERRIDE}/{id}"),
            Some(&admin.token),
            Some(json!({ "agentName": "host-listing-copywriter" })),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "agentName");
    let (status, body) = app
        .rest(
            Method::PATCH,
            &format!("{OVERRIDE}/{id}"),
            Some(&user.token),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "admin");
    let (status, body) = app
        .rest(
            Method::GET,
            "/agenthub-api/v1/agents/no-such-agent",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // the same over MCP
    let (is_error, payload) = app
        .tool(
            Some(&user.token),
            "createAgentOverride",
            json!({ "agentName": "dispute-triage" }),
        )
        .await;
    assert!(is_error, "{payload}");
}

#[tokio::test]
async fn the_tool_catalog_mirrors_the_registry() {
    let app = TestApp::spawn().await;
    let user = app.user("user@haven.test").await;
    let registry = haven::registry();
    let agents = haven_agents::definitions::all().unwrap();
    let selectable = || {
        registry
            .all()
            .filter(|op| !NOT_SELECTABLE.contains(&op.name))
    };
    let expected = selectable().count() + agents.len();
    assert_eq!(app.count("agenthub.tool_catalog").await, expected as i64);
    let (status, body) = app
        .rest(
            Method::GET,
            "/agenthub-api/v1/toolcatalog?pageNumber=0",
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries = body["sys_toolCatalogs"].as_array().unwrap();
    assert_eq!(entries.len(), expected);
    // Starting runs is not a tool; agents are, under their own names.
    for name in NOT_SELECTABLE {
        assert!(entries.iter().all(|e| e["toolName"] != *name), "{name}");
    }
    for def in agents {
        let entry = entries.iter().find(|e| e["toolName"] == def.name).unwrap();
        assert_eq!(entry["serviceName"], "agenthub");
        assert_eq!(
            entry["parameters"],
            Value::Object(haven_agents::delegate::parameters())
        );
        assert!(entry["description"]
            .as_str()
            .unwrap()
            .contains(&def.description));
    }
    for op in selectable() {
        let entry = entries
            .iter()
            .find(|e| e["toolName"] == op.name)
            .unwrap_or_else(|| panic!("{} not in the catalog", op.name));
        assert_eq!(entry["serviceName"], op.service.segment());
        assert_eq!(
            entry["parameters"],
            Value::Object((*op.input_schema).clone())
        );
        assert_eq!(entry["access"], op.access.as_str());
        assert!(entry["lastRefreshed"].is_string());
    }

    let (_, booking) = app
        .rest(
            Method::GET,
            "/agenthub-api/v1/toolcatalog?serviceName=booking&toolName=quote",
            Some(&user.token),
            None,
        )
        .await;
    let names = field_of(&booking["sys_toolCatalogs"], "toolName");
    assert_eq!(names, ["quoteReservation"]);
    let id = booking["sys_toolCatalogs"][0]["id"].as_str().unwrap();
    let (status, one) = app
        .rest(
            Method::GET,
            &format!("/agenthub-api/v1/toolcatalogentry/{id}"),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["sys_toolCatalog"]["parameters"]["type"], "object");
    let (status, _) = app
        .rest(Method::GET, "/agenthub-api/v1/toolcatalog", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A refresh deactivates tools that vanished and keeps the rest unchanged.
    sqlx::query("INSERT INTO agenthub.tool_catalog (tool_name, service_name, description, parameters, output_schema, access) VALUES ('oldTool', 'auth', 'gone', '{}', '{}', 'public')")
        .execute(&app.db)
        .await
        .unwrap();
    haven_agents::catalog::refresh(&app.db, registry, haven_agents::definitions::all().unwrap())
        .await
        .unwrap();
    let (active, bumped): (bool, i64) = sqlx::query_as(
        "SELECT (SELECT is_active FROM agenthub.tool_catalog WHERE tool_name = 'oldTool'),
                (SELECT count(*) FROM agenthub.tool_catalog WHERE record_version > 1 AND tool_name <> 'oldTool')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(!active);
    assert_eq!(bumped, 0, "an unchanged tool keeps its version");
}

async fn seed_run(app: &TestApp, user: Uuid, agent: &str) -> Uuid {
    let input = json!({ "message": "find me a flat in Lisbon" });
    let id = start_execution(
        &app.db,
        NewExecution {
            agent_name: agent,
            agent_type: AgentType::Design,
            source: Source::Rest,
            user_id: Some(user),
            input: &input,
            parent_execution_id: None,
        },
    )
    .await
    .unwrap();
    for (tool, is_error) in [("listListings", false), ("quoteReservation", true)] {
        record_tool_call(
            &app.db,
            id,
            ToolCallRecord {
                tool_name: tool,
                arguments: &json!({ "city": "Lisbon" }),
                result: &json!({ "ok": !is_error }),
                is_error,
                duration_ms: 7,
            },
        )
        .await
        .unwrap();
    }
    let usage = TokenUsage {
        prompt: 120,
        completion: 30,
        total: 150,
    };
    let output = json!({ "text": "Here are three flats." });
    assert!(finish_execution(
        &app.db,
        id,
        Outcome {
            status: Status::Success,
            output: Some(&output),
            error: None,
            token_usage: usage,
            tool_calls: 2,
        },
    )
    .await
    .unwrap());
    // A finished run is not finished twice.
    assert!(!finish_execution(
        &app.db,
        id,
        Outcome {
            status: Status::Timeout,
            output: None,
            error: Some("late"),
            token_usage: usage,
            tool_calls: 2,
        },
    )
    .await
    .unwrap());
    id
}

#[tokio::test]
async fn executions_are_visible_to_their_user_and_admins() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let alice = app.user("alice@haven.test").await;
    let bob = app.user("bob@haven.test").await;
    let run = seed_run(&app, alice.id, "guest-booking-assistant").await;
    seed_run(&app, bob.id, "host-listing-copywriter").await;

    let path = format!("/agenthub-api/v1/agentexecution/{run}");
    let (status, own) = app.rest(Method::GET, &path, Some(&alice.token), None).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let e = &own["sys_agentExecution"];
    assert_eq!(e["status"], "success");
    assert_eq!(e["status_idx"], 0);
    assert_eq!(e["agentType"], "design");
    assert_eq!(e["source"], "rest");
    assert_eq!(e["toolCalls"], 2);
    assert_eq!(
        e["tokenUsage"],
        json!({ "prompt": 120, "completion": 30, "total": 150 })
    );
    assert_eq!(e["output"]["text"], "Here are three flats.");
    assert!(e["durationMs"].as_i64().unwrap() >= 0);
    let trace = e["toolCallTrace"].as_array().unwrap();
    assert_eq!(trace.len(), 2);
    assert_eq!(trace[0]["seq"], 1);
    assert_eq!(trace[0]["toolName"], "listListings");
    assert_eq!(trace[1]["isError"], true);

    let (status, body) = app.rest(Method::GET, &path, Some(&bob.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = app.rest(Method::GET, &path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.rest(Method::GET, &path, Some(&admin.token), None).await;
    assert_eq!(status, StatusCode::OK);

    let bobs = format!("?userId={}", bob.id);
    assert_eq!(
        run_names(&app, &alice.token, "").await,
        ["guest-booking-assistant"]
    );
    // Asking for someone else's runs still shows only one's own.
    assert!(run_names(&app, &alice.token, &bobs).await.is_empty());
    assert_eq!(run_names(&app, &admin.token, "").await.len(), 2);
    assert_eq!(
        run_names(&app, &admin.token, &bobs).await,
        ["host-listing-copywriter"]
    );
    assert_eq!(
        run_names(
            &app,
            &admin.token,
            "?agentName=GUEST&status=SUCCESS&source=rest"
        )
        .await,
        ["guest-booking-assistant"]
    );
    assert!(run_names(&app, &admin.token, "?status=timeout")
        .await
        .is_empty());
}

async fn run_names(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("/agenthub-api/v1/agentexecutions{query}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["sys_agentExecutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["agentName"].as_str().unwrap().to_string())
        .collect()
}
