//! The HTTP contract: malformed JSON-RPC on `POST /mcp` is a JSON-RPC error with HTTP 400 (not the
//! transport's plain-text 415), and the OpenAPI document covers every route and status Haven
//! answers with the constraints the server enforces.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// POSTs `body` to `/mcp` with `content_type`; returns status and the JSON body (Null if none).
async fn post_mcp(app: &TestApp, content_type: &str, body: &str) -> (StatusCode, Value) {
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn malformed_json_rpc_is_a_json_rpc_error_with_400() {
    let app = TestApp::spawn().await;
    let json = "application/json";
    let cases: &[(&str, &str, i64, Value)] = &[
        (json, "not json", -32700, Value::Null),
        (
            json,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping""#,
            -32700,
            Value::Null,
        ),
        (json, "[]", -32600, Value::Null),
        (
            json,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            -32600,
            Value::Null,
        ),
        (json, r#""ping""#, -32600, Value::Null),
        (json, r#"{"id":3,"method":"ping"}"#, -32600, json!(3)),
        (
            json,
            r#"{"jsonrpc":"1.0","id":"a","method":"ping"}"#,
            -32600,
            json!("a"),
        ),
        (
            json,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":5}"#,
            -32600,
            json!(4),
        ),
        (
            "text/plain",
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            -32600,
            Value::Null,
        ),
        (
            "application/x-www-form-urlencoded",
            "a=1",
            -32600,
            Value::Null,
        ),
    ];
    for (content_type, body, code, id) in cases {
        let (status, answer) = post_mcp(&app, content_type, body).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{content_type} {body}: {answer}"
        );
        assert_eq!(answer["jsonrpc"], "2.0", "{body}: {answer}");
        assert_eq!(answer["error"]["code"], *code, "{body}: {answer}");
        assert_eq!(answer["id"], *id, "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().len() > 10);
    }
}

#[tokio::test]
async fn well_formed_json_rpc_still_reaches_the_server() {
    let app = TestApp::spawn().await;
    let (status, answer) = post_mcp(
        &app,
        "application/json; charset=utf-8",
        r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["id"], 7);
    assert!(answer["result"].is_object(), "{answer}");
    // An unknown method is the server's own JSON-RPC error, not the guard's.
    let (status, answer) = post_mcp(
        &app,
        "application/json",
        r#"{"jsonrpc":"2.0","id":8,"method":"no/such/method"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    // A notification is accepted without a body.
    let (status, _) = post_mcp(
        &app,
        "application/json",
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The real tool surface answers through the guard.
    assert!(!app.tool_names(None).await.is_empty());
}

#[tokio::test]
async fn openapi_documents_the_routes_outside_the_registry() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.rest(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for (path, method) in [
        ("/health", "get"),
        ("/ready", "get"),
        ("/mcp", "post"),
        ("/mcp/sse", "get"),
        ("/mcp/message", "post"),
        ("/bookingmanagement-api/v1/webhooks/stripe", "post"),
        ("/agenthub-api/v1/agents/{agentName}/run", "post"),
        ("/agenthub-api/v1/agents/{agentName}/stream", "post"),
        ("/agenthub-api/v1/dynamic-agents/run", "post"),
        ("/agenthub-api/v1/dynamic-agents/stream", "post"),
        ("/events", "get"),
        ("/live", "get"),
    ] {
        let entry = &doc["paths"][path][method];
        assert!(entry.is_object(), "{method} {path} is not documented");
        assert!(entry["operationId"].is_string(), "{method} {path}");
        assert!(entry["responses"].is_object(), "{method} {path}");
    }
    let mcp = &doc["paths"]["/mcp"]["post"]["responses"];
    assert!(mcp["400"].is_object(), "POST /mcp documents its 400");
    assert!(
        doc["paths"]["/ready"]["get"]["responses"]["503"].is_object(),
        "/ready documents 503"
    );
    // Every operationId is unique (clients generate method names from them).
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "duplicate operationIds");
}

#[tokio::test]
async fn openapi_documents_every_error_status_with_the_envelope() {
    let app = TestApp::spawn().await;
    let (_, doc) = app.rest(Method::GET, "/openapi.json", None, None).await;
    let envelope = &doc["components"]["schemas"]["Error"];
    assert_eq!(envelope["properties"]["result"]["const"], "ERR");
    for op in haven::registry().all() {
        let method = op.method.as_str().to_lowercase();
        let responses = &doc["paths"][op.path][&method]["responses"];
        for status in ["400", "401", "403", "404", "409", "422", "429", "503"] {
            assert_eq!(
                responses[status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Error",
                "{} does not document {status}",
                op.name
            );
        }
        if op.method != haven_tools::registry::Method::Get {
            assert!(responses["413"].is_object(), "{} lacks 413", op.name);
        }
    }
}

#[tokio::test]
async fn a_refused_error_status_is_documented_for_the_route() {
    // The server's real answer to a refused request carries a status the document lists.
    let app = TestApp::spawn().await;
    let (_, doc) = app.rest(Method::GET, "/openapi.json", None, None).await;
    let (status, body) = app
        .rest(
            Method::GET,
            "/propertycatalog-api/v1/listings?pageRowCount=0",
            None,
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "pageRowCount");
    let responses = &doc["paths"]["/propertycatalog-api/v1/listings"]["get"]["responses"];
    assert!(responses[status.as_str()].is_object());
}

/// The property schema of `name` in `op`'s query parameters or JSON body.
fn param_schema<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    if let Some(p) = op["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
    {
        return &p["schema"];
    }
    &op["requestBody"]["content"]["application/json"]["schema"]["properties"][name]
}

#[tokio::test]
async fn documented_constraints_are_the_ones_the_server_enforces() {
    let app = TestApp::spawn().await;
    let (_, doc) = app.rest(Method::GET, "/openapi.json", None, None).await;
    let listings = "/propertycatalog-api/v1/listings";
    // pageRowCount 0 is refused, so the schema starts at 1.
    let rows = param_schema(&doc, listings, "get", "pageRowCount");
    assert_eq!(rows["minimum"], 1, "{rows}");
    assert_eq!(rows["maximum"], 100, "{rows}");
    // Id filters take UUIDs (or "null"), as the server parses them.
    let host = param_schema(&doc, listings, "get", "hostId").to_string();
    assert!(host.contains(r#""format":"uuid""#), "{host}");
    let (status, body) = app
        .rest(Method::GET, &format!("{listings}?hostId=0"), None, None)
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "hostId");
    // Text refuses blank and control characters; the pattern says so.
    let name = param_schema(&doc, "/auth-api/v1/registeruser", "post", "fullname");
    assert!(name["pattern"].is_string(), "{name}");
    // The callback needs its reservation id.
    let callback = &doc["paths"]["/bookingmanagement-api/v1/callbackreservationpayment"]["post"]
        ["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(callback["required"], json!(["reservationId"]), "{callback}");
    // login needs username or email: the body schema carries the rule.
    let login = &doc["paths"]["/auth-api/login"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_eq!(login["anyOf"].as_array().map(Vec::len), Some(2), "{login}");
    // Prices are more than 0 with at most 2 decimals.
    let price = param_schema(&doc, listings, "post", "pricePerNight");
    assert_eq!(price["exclusiveMinimum"], 0, "{price}");
    assert_eq!(price["multipleOf"], 0.01, "{price}");
}

#[tokio::test]
async fn whole_numbers_written_with_a_decimal_point_are_integers() {
    // JSON Schema counts 5.0 as an integer; the server must accept it where it declares one.
    let app = TestApp::spawn().await;
    let (is_error, payload) = app
        .tool(None, "listListings", json!({ "pageRowCount": 5.0 }))
        .await;
    assert!(!is_error, "{payload}");
    assert_eq!(payload["paging"]["pageRowCount"], 5, "{payload}");
    let (status, body) = app
        .rest(
            Method::GET,
            "/propertycatalog-api/v1/listings?pageRowCount=5",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
