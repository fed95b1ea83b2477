//! The MCP surface real clients get: a default `tools/list` that fits Cursor and Claude Desktop
//! for every role and still reaches every operation (search_tools / call_tool), connection
//! filters that refuse what they exclude on every transport, Origin checks on `POST /mcp`,
//! progress and cancellation, prompts and resources.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::fixtures::{day, listing};
use crate::helpers::*;
use crate::scripted_llm::*;

/// Clients' limits: Cursor forwards the first 40 tools; 60 KB keeps well inside Claude Desktop.
const MAX_TOOLS: usize = 40;
const MAX_BYTES: usize = 60 * 1024;

/// `tools/list` at `path` as `token`: the tools as JSON.
async fn tools_at(app: &TestApp, path: &str, token: Option<&str>) -> Vec<Value> {
    let r = app.mcp_at(path, token, "tools/list", json!({})).await;
    r["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list at {path}: {r}"))
        .clone()
}

fn names(tools: &[Value]) -> Vec<&str> {
    tools.iter().map(|t| t["name"].as_str().unwrap()).collect()
}

/// The bytes a client forwards to its model for one tool: name, description, input schema.
fn forwarded(tool: &Value) -> usize {
    json!({ "name": tool["name"], "description": tool["description"], "inputSchema": tool["inputSchema"] })
        .to_string()
        .len()
}

/// The size of `value` as Python's `json.dumps` writes it (`", "` and `": "` separators): the
/// measure the CI's Python MCP client checks, a little larger than compact JSON.
fn spaced_len(value: &Value) -> usize {
    match value {
        Value::Array(items) => {
            2 + items.iter().map(spaced_len).sum::<usize>() + 2 * items.len().saturating_sub(1)
        }
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| Value::String(k.clone()).to_string().len() + 2 + spaced_len(v))
                .sum::<usize>()
                + 2 * map.len().saturating_sub(1)
        }
        scalar => scalar.to_string().len(),
    }
}

async fn api_key_count(app: &TestApp) -> i64 {
    app.count("platformadmin.api_keys").await
}

#[tokio::test]
async fn the_default_surface_fits_every_role_and_tools_all_lists_everything() {
    let app = TestApp::spawn().await;
    let user = app.user("guest@haven.test").await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let root = app.user_with_role("root@haven.test", "superAdmin").await;
    println!("role        | tools | bytes  | forwarded | full list: tools, bytes");
    for (role, token) in [
        ("anonymous", None),
        ("user", Some(user.token.as_str())),
        ("admin", Some(admin.token.as_str())),
        ("superAdmin", Some(root.token.as_str())),
    ] {
        let core = tools_at(&app, "/mcp", token).await;
        let bytes = spaced_len(&Value::Array(core.clone()));
        let fwd: usize = core.iter().map(forwarded).sum();
        let all = tools_at(&app, "/mcp?tools=all", token).await;
        let all_bytes = serde_json::to_string(&all).unwrap().len();
        println!(
            "{role:11} | {:5} | {bytes:6} | {fwd:9} | {}, {all_bytes}",
            core.len(),
            all.len()
        );
        assert!(core.len() <= MAX_TOOLS, "{role}: {} tools", core.len());
        assert!(bytes <= MAX_BYTES, "{role}: {bytes} bytes");
        let listed = names(&core);
        for meta in ["search_tools", "describe_tool", "call_tool"] {
            assert!(listed.contains(&meta), "{role} lacks {meta}");
        }
        // The full list is every tool the role may call, plus the meta-tools.
        let visible = app
            .state
            .registry
            .visible_to(
                app.state
                    .services
                    .tokens
                    .authenticate(&app.db, token.unwrap_or(""))
                    .await
                    .ok()
                    .as_ref(),
            )
            .count();
        assert_eq!(all.len(), visible + 3, "{role}: the full list");
        assert!(all.len() >= core.len());
        // Every tool carries all four annotations.
        for t in &core {
            for hint in [
                "readOnlyHint",
                "destructiveHint",
                "idempotentHint",
                "openWorldHint",
            ] {
                assert!(
                    t["annotations"][hint].is_boolean(),
                    "{role}: {} lacks {hint}",
                    t["name"]
                );
            }
        }
    }
    // The guest's booking flow comes first, in order of use.
    let guest = names(&tools_at(&app, "/mcp", Some(&user.token)).await)
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    assert_eq!(
        &guest[..4],
        [
            "listListings",
            "getListing",
            "checkListingAvailability",
            "quoteReservation"
        ]
    );
    for needed in [
        "createReservation",
        "startReservationPayment",
        "getReservation",
        "cancelReservation",
        "createReview",
    ] {
        assert!(
            guest.contains(&needed.to_string()),
            "guest core lacks {needed}"
        );
    }
    // Admins get the moderation flow first; anonymous callers no account tools.
    let admin_names = names(&tools_at(&app, "/mcp", Some(&admin.token)).await)
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    assert_eq!(admin_names[0], "listDisputes");
    let anon = tools_at(&app, "/mcp", None).await;
    assert!(names(&anon).contains(&"login") && !names(&anon).contains(&"createReservation"));
}

#[tokio::test]
async fn a_client_that_forwards_only_the_first_40_tools_can_search_quote_book_and_pay() {
    let app = TestApp::spawn().await;
    let host = app.user("host@haven.test").await;
    let guest = app.user("guest@haven.test").await;
    listing(&app, &host, json!({ "title": "Alfama loft" })).await;
    let first: Vec<String> = names(&tools_at(&app, "/mcp", Some(&guest.token)).await)
        .into_iter()
        .take(MAX_TOOLS)
        .map(String::from)
        .collect();
    let call = |name: &'static str, args: Value| {
        assert!(
            first.iter().any(|n| n == name),
            "{name} is not among the first 40 tools"
        );
        let app = &app;
        let token = guest.token.clone();
        async move { app.tool_at("/mcp", Some(&token), name, args).await }
    };
    let (err, found) = call("listListings", json!({ "city": "lisbon" })).await;
    assert!(!err, "{found}");
    let listing_id = found["listings"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no listing found: {found}"))
        .to_string();
    let stay = json!({ "listingId": listing_id, "checkIn": day(20), "checkOut": day(23), "guestCount": 2 });
    let (err, quote) = call("quoteReservation", stay.clone()).await;
    assert!(!err, "{quote}");
    let (err, booked) = call("createReservation", stay).await;
    assert!(!err, "{booked}");
    let reservation = booked["id"].as_str().unwrap().to_string();
    let (err, paid) = call(
        "startReservationPayment",
        json!({ "reservationId": reservation, "paymentUserParams": { "paymentMethodId": "pm_card_visa" } }),
    )
    .await;
    assert!(!err, "{paid}");
    let (err, got) = call("getReservation", json!({ "reservationId": reservation })).await;
    assert!(!err, "{got}");
    assert_eq!(got["bookingStatus"], "confirmed", "{got}");
}

#[tokio::test]
async fn search_tools_finds_what_the_list_leaves_out_and_call_tool_calls_it() {
    let app = TestApp::spawn().await;
    let user = app.user("guest@haven.test").await;
    let listed = tools_at(&app, "/mcp", Some(&user.token)).await;
    assert!(
        !names(&listed).contains(&"createApiKey"),
        "createApiKey is not core"
    );
    let (err, found) = app
        .tool_at(
            "/mcp",
            Some(&user.token),
            "search_tools",
            json!({ "query": "create an api key" }),
        )
        .await;
    assert!(!err, "{found}");
    let hits: Vec<&str> = found["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(hits[..3].contains(&"createApiKey"), "{hits:?}");
    assert!(found["tools"][0]["inputSchema"]["type"] == "object");
    // Admin tools never show up for a user.
    let (_, admin_only) = app
        .tool_at(
            "/mcp",
            Some(&user.token),
            "search_tools",
            json!({ "query": "list users", "limit": 20 }),
        )
        .await;
    assert!(
        !admin_only.to_string().contains("\"listUsers\""),
        "{admin_only}"
    );
    // describe_tool gives the full definition, output schema included.
    let (err, described) = app
        .tool_at(
            "/mcp",
            Some(&user.token),
            "describe_tool",
            json!({ "name": "createApiKey" }),
        )
        .await;
    assert!(!err, "{described}");
    assert!(described["tool"]["outputSchema"].is_object());
    let (err, hidden) = app
        .tool_at(
            "/mcp",
            Some(&user.token),
            "describe_tool",
            json!({ "name": "listUsers" }),
        )
        .await;
    assert!(
        err && hidden.as_str().unwrap().contains("NotFound"),
        "{hidden}"
    );
    // call_tool takes the same path as tools/call.
    let before = api_key_count(&app).await;
    let (err, key) = app
        .tool_at(
            "/mcp",
            Some(&user.token),
            "call_tool",
            json!({ "name": "createApiKey", "arguments": { "description": "from call_tool" } }),
        )
        .await;
    assert!(!err, "{key}");
    assert!(
        key["key"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sk_haven_"),
        "{key}"
    );
    assert_eq!(api_key_count(&app).await, before + 1);
    // ... the same access rules and errors.
    let (err, refused) = app
        .tool_at(
            "/mcp",
            Some(&user.token),
            "call_tool",
            json!({ "name": "listUsers", "arguments": {} }),
        )
        .await;
    assert!(
        err && refused.as_str().unwrap().starts_with("Forbidden"),
        "{refused}"
    );
    let (err, bad) = app
        .tool_at(
            "/mcp",
            Some(&user.token),
            "call_tool",
            json!({ "name": "createApiKey", "arguments": { "id": "x" } }),
        )
        .await;
    assert!(err && bad.as_str().unwrap().contains("id"), "{bad}");
    let (err, none) = app
        .tool_at(
            "/mcp",
            Some(&user.token),
            "call_tool",
            json!({ "name": "noSuchTool" }),
        )
        .await;
    assert!(
        err && none.as_str().unwrap().contains("search_tools"),
        "{none}"
    );
}

#[tokio::test]
async fn a_read_only_connection_cannot_write_over_streamable_http_by_query_or_header() {
    let app = TestApp::spawn().await;
    let user = app.user("guest@haven.test").await;
    let before = api_key_count(&app).await;
    for path in ["/mcp?readonly=true", "/mcp?readonly=1&tools=all"] {
        let listed = tools_at(&app, path, Some(&user.token)).await;
        for t in &listed {
            if t["name"] != "call_tool" {
                assert_eq!(
                    t["annotations"]["readOnlyHint"], true,
                    "{path} lists {}",
                    t["name"]
                );
            }
        }
        let (err, text) = app
            .tool_at(
                path,
                Some(&user.token),
                "createApiKey",
                json!({ "description": "x" }),
            )
            .await;
        assert!(err, "{path}: {text}");
        assert!(text.as_str().unwrap().contains("read-only"), "{text}");
        let (err, text) = app
            .tool_at(
                path,
                Some(&user.token),
                "call_tool",
                json!({ "name": "createApiKey", "arguments": { "description": "x" } }),
            )
            .await;
        assert!(
            err && text.as_str().unwrap().contains("read-only"),
            "{text}"
        );
        // Reads still work.
        let (err, _) = app
            .tool_at(path, Some(&user.token), "listListings", json!({}))
            .await;
        assert!(!err);
    }
    // The header form, as the GitHub MCP server spells it.
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .bearer_auth(&user.token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("X-MCP-Readonly", "true")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": { "name": "createApiKey", "arguments": { "description": "x" } } }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert_eq!(api_key_count(&app).await, before, "nothing was written");
}

#[tokio::test]
async fn toolsets_restrict_calls_and_an_unknown_toolset_is_a_400_naming_the_valid_ones() {
    let app = TestApp::spawn().await;
    let user = app.user("guest@haven.test").await;
    let listed = tools_at(&app, "/mcp?toolsets=propertycatalog", Some(&user.token)).await;
    for t in names(&listed) {
        assert!(
            ["search_tools", "describe_tool", "call_tool"].contains(&t)
                || app.state.registry.get(t).unwrap().service.segment() == "propertycatalog",
            "{t}"
        );
    }
    let (err, text) = app
        .tool_at(
            "/mcp?toolsets=propertycatalog",
            Some(&user.token),
            "createApiKey",
            json!({}),
        )
        .await;
    assert!(err && text.as_str().unwrap().contains("toolsets"), "{text}");
    let (_, found) = app
        .tool_at(
            "/mcp?toolsets=propertycatalog",
            Some(&user.token),
            "search_tools",
            json!({ "query": "api key" }),
        )
        .await;
    assert!(!found.to_string().contains("createApiKey"), "{found}");
    // Header form.
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .bearer_auth(&user.token)
        .header("accept", "application/json, text/event-stream")
        .header("X-MCP-Toolsets", "reviewsystem")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": { "name": "listListings", "arguments": {} } }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["result"]["isError"], true, "{body}");
    // Unknown toolsets: 400 with the valid names, on both HTTP transports.
    for path in ["/mcp?toolsets=nosuchset", "/mcp/sse?toolsets=nosuchset"] {
        let req = if path.starts_with("/mcp/sse") {
            app.http.get(format!("{}{path}", app.base))
        } else {
            app.http
                .post(format!("{}{path}", app.base))
                .header("accept", "application/json, text/event-stream")
                .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        };
        let resp = req.bearer_auth(&user.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("nosuchset") && text.contains("bookingmanagement"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn post_mcp_validates_origin_like_the_sse_endpoint() {
    let app = TestApp::spawn().await;
    let send = |origin: Option<&'static str>| {
        let mut req = app
            .http
            .post(format!("{}/mcp", app.base))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    assert_eq!(
        send(Some("https://evil.example")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(Some("http://localhost:3000")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(send(None).await.unwrap().status(), StatusCode::OK);
    let sse = app
        .http
        .get(format!("{}/mcp/sse", app.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::FORBIDDEN);
}

/// Reads an SSE or JSON MCP answer into its JSON-RPC messages.
fn messages(body: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return vec![v];
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

async fn execution_status(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM agenthub.agent_executions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn latest_execution(app: &TestApp) -> Option<Uuid> {
    sqlx::query_scalar("SELECT id FROM agenthub.agent_executions ORDER BY created_at DESC LIMIT 1")
        .fetch_optional(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn run_agent_reports_progress_and_a_cancelled_call_ends_the_run_cancelled() {
    let (fake, base) = fake_provider(vec![
        tool_turn(
            "call_1",
            "listListings",
            json!({ "city": "Lisbon" }),
            (10, 5),
        ),
        tool_turn(
            "call_2",
            "listListings",
            json!({ "city": "Porto" }),
            (10, 5),
        ),
        text_turn("Nothing in Porto.", (10, 5)),
    ])
    .await;
    let mut config = test_config();
    config.llm_base_url = Some(base);
    let app = TestApp::spawn_with(config).await;
    let user = app.user("guest@haven.test").await;

    // Progress: one notification per tool call, before the answer, on the response stream.
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .bearer_auth(&user.token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(
            &json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "runAgent",
            "arguments": { "agentName": "guest-booking-assistant", "input": "Lisbon or Porto?" },
            "_meta": { "progressToken": "p-1" } } }),
        )
        .send()
        .await
        .unwrap();
    let body = resp.text().await.unwrap();
    let msgs = messages(&body);
    let progress: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 2, "{body}");
    assert_eq!(progress[0]["params"]["progressToken"], "p-1");
    assert_eq!(progress[1]["params"]["progress"], 2.0);
    assert!(
        progress[1]["params"]["message"]
            .as_str()
            .unwrap()
            .contains("tokens"),
        "{body}"
    );
    let last = msgs.last().unwrap();
    assert_eq!(last["id"], 7);
    assert_eq!(
        last["result"]["structuredContent"]["status"], "success",
        "{body}"
    );

    // Cancellation: a slow run, then notifications/cancelled for its request id.
    fake.push([Turn::Delay(
        Duration::from_secs(12),
        Box::new(text_turn("too late", (1, 1))),
    )]);
    let call = {
        let http = app.http.clone();
        let url = format!("{}/mcp", app.base);
        let token = user.token.clone();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-06-18")
                .json(
                    &json!({ "jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {
                    "name": "runAgent",
                    "arguments": { "agentName": "guest-booking-assistant", "input": "slow" } } }),
                )
                .send()
                .await
        })
    };
    let first = latest_execution(&app).await;
    let mut id = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = latest_execution(&app).await;
        if now.is_some() && now != first {
            id = now;
            break;
        }
    }
    let id = id.expect("the slow run started");
    assert_eq!(execution_status(&app, id).await, "running");
    // Another user's cancellation for the same request id reaches nothing.
    let other = app.user("other@haven.test").await;
    // A second replica on the same database: a cancellation it receives reaches the call over
    // Postgres NOTIFY.
    let (replica, stop) = app.spawn_replica().await;
    tokio::time::sleep(Duration::from_millis(300)).await; // its listener subscribes
    let cancel = |token: String, base: String| {
        app.http
            .post(format!("{base}/mcp"))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(
                &json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                           "params": { "requestId": 42, "reason": "user pressed stop" } }),
            )
            .send()
    };
    assert_eq!(
        cancel(other.token.clone(), app.base.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(execution_status(&app, id).await, "running");
    assert_eq!(
        cancel(user.token.clone(), replica.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    let mut status = String::new();
    for _ in 0..100 {
        status = execution_status(&app, id).await;
        if status != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "cancelled", "the run ends cancelled, not success");
    let _ = tokio::time::timeout(Duration::from_secs(5), call).await;
    stop.cancel();
}

#[tokio::test]
async fn prompts_and_resources_are_declared_and_follow_the_access_rules() {
    let app = TestApp::spawn().await;
    let host = app.user("host@haven.test").await;
    let guest = app.user("guest@haven.test").await;
    let stranger = app.user("stranger@haven.test").await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let init = app
        .mcp(
            Some(&guest.token),
            "initialize",
            json!({
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": { "name": "test", "version": "1" } }),
        )
        .await;
    let caps = &init["result"]["capabilities"];
    assert!(
        caps["tools"].is_object() && caps["prompts"].is_object() && caps["resources"].is_object(),
        "{caps}"
    );
    assert!(
        caps.get("completions").is_none(),
        "completions are not served: {caps}"
    );

    let prompt_names = |r: Value| -> Vec<String> {
        r["result"]["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let user_prompts = prompt_names(app.mcp(Some(&guest.token), "prompts/list", json!({})).await);
    assert!(
        user_prompts.contains(&"plan-and-book-a-stay".into()),
        "{user_prompts:?}"
    );
    assert!(
        !user_prompts.contains(&"triage-disputes".into()),
        "{user_prompts:?}"
    );
    let admin_prompts = prompt_names(app.mcp(Some(&admin.token), "prompts/list", json!({})).await);
    assert!(
        admin_prompts.contains(&"triage-disputes".into()),
        "{admin_prompts:?}"
    );

    let got = app
        .mcp(Some(&guest.token), "prompts/get", json!({ "name": "plan-and-book-a-stay", "arguments": {
            "destination": "Lisbon", "checkIn": "2027-03-10", "checkOut": "2027-03-14", "guests": "2" } }))
        .await;
    let text = got["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{got}"));
    assert!(
        text.contains("booking assistant") && text.contains("Lisbon from 2027-03-10 to 2027-03-14"),
        "{text}"
    );
    assert!(
        !text.contains("{wishes}") && !text.contains("What matters"),
        "{text}"
    );
    let missing = app
        .mcp(
            Some(&guest.token),
            "prompts/get",
            json!({ "name": "plan-and-book-a-stay", "arguments": { "destination": "Lisbon" } }),
        )
        .await;
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("checkIn"),
        "{missing}"
    );
    let hidden = app
        .mcp(
            Some(&guest.token),
            "prompts/get",
            json!({ "name": "triage-disputes" }),
        )
        .await;
    assert!(hidden["error"].is_object(), "{hidden}");

    let templates = app
        .mcp(Some(&guest.token), "resources/templates/list", json!({}))
        .await;
    let uris: Vec<&str> = templates["result"]["resourceTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uriTemplate"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "haven://listings/{listingId}",
            "haven://reservations/{reservationId}"
        ]
    );

    let listing_id = listing(&app, &host, json!({})).await;
    let read = |token: String, uri: String| {
        let app = &app;
        async move {
            app.mcp(Some(&token), "resources/read", json!({ "uri": uri }))
                .await
        }
    };
    let got = read(
        guest.token.clone(),
        format!("haven://listings/{listing_id}"),
    )
    .await;
    let body: Value =
        serde_json::from_str(got["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["id"], listing_id.to_string(), "{body}");

    let booked = crate::fixtures::booked(&app, &guest, listing_id, 30, 2).await;
    let uri = format!("haven://reservations/{booked}");
    let got = read(guest.token.clone(), uri.clone()).await;
    let body: Value = serde_json::from_str(
        got["result"]["contents"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{got}")),
    )
    .unwrap();
    assert_eq!(body["id"], booked.to_string(), "{body}");
    assert!(
        body["timeline"].as_array().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    // A stranger gets "not found", exactly as for a reservation that does not exist.
    let theirs = read(stranger.token.clone(), uri).await;
    let nothing = read(
        stranger.token.clone(),
        format!("haven://reservations/{}", Uuid::new_v4()),
    )
    .await;
    assert!(theirs["error"].is_object(), "{theirs}");
    assert_eq!(theirs["error"]["code"], nothing["error"]["code"]);
    assert!(
        !theirs.to_string().contains(&booked.to_string())
            || theirs["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not found")
    );
}
