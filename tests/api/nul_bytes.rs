//! A NUL character (`\u0000`, `%00`) in any string input is refused with a 400 naming the field,
//! over REST (query, path, body) and MCP, before it reaches Postgres (which cannot store it and
//! used to answer 500).

use haven_tools::registry::{FieldKind, Method as OpMethod};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

#[tokio::test]
async fn nul_in_a_rest_query_filter_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let (s, body) = app
        .rest(
            Method::GET,
            "/propertycatalog-api/v1/listings?city=%00",
            None,
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "`city`");
    assert!(body["message"].as_str().unwrap().contains("NUL"), "{body}");
    assert_eq!(body["field"], "city");
}

#[tokio::test]
async fn every_rest_query_field_and_path_refuses_nul() {
    let app = TestApp::spawn().await;
    let root = app.user_with_role("root@nul.test", "superAdmin").await;
    let mut checked = 0;
    for op in app.state.registry.all() {
        if op.method != OpMethod::Get {
            continue;
        }
        let params = op.path_params();
        let path = params.iter().fold(op.path.to_string(), |p, name| {
            p.replace(&format!("{{{name}}}"), "%00")
        });
        if !params.is_empty() {
            let (s, body) = app.rest(Method::GET, &path, Some(&root.token), None).await;
            assert_error(s, &body, StatusCode::BAD_REQUEST, "NUL");
        }
        let base = params.iter().fold(op.path.to_string(), |p, name| {
            p.replace(
                &format!("{{{name}}}"),
                "00000000-0000-4000-8000-000000000000",
            )
        });
        for (field, kind) in op.fields() {
            if params.contains(&field.as_str())
                || !matches!(kind, FieldKind::String | FieldKind::List)
            {
                continue;
            }
            let (s, body) = app
                .rest(
                    Method::GET,
                    &format!("{base}?{field}=a%00b"),
                    Some(&root.token),
                    None,
                )
                .await;
            assert_error(s, &body, StatusCode::BAD_REQUEST, &format!("`{field}`"));
            assert!(
                body["message"].as_str().unwrap().contains("NUL"),
                "{} {field}: {body}",
                op.name
            );
            checked += 1;
        }
    }
    assert!(checked >= 27, "only {checked} query fields checked");
}

#[tokio::test]
async fn nul_in_login_and_nested_body_fields_is_a_400() {
    let app = TestApp::spawn().await;
    let (s, body) = app
        .rest(
            Method::POST,
            "/auth-api/login",
            None,
            Some(json!({ "username": "a\u{0}@x.test", "password": "whatever-123" })),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "`username`");
    let host = app.user("host@nul.test").await;
    let before = app.count("catalog.listings").await;
    let (s, body) = app
        .rest(
            Method::POST,
            "/propertycatalog-api/v1/listings",
            Some(&host.token),
            Some(json!({ "title": "Loft", "location": { "city": "Lis\u{0}bon" } })),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "`location.city`");
    let (s, body) = app
        .rest(
            Method::POST,
            "/propertycatalog-api/v1/listings",
            Some(&host.token),
            Some(json!({ "title": "Loft", "amenityIds": ["ok", "\u{0}"] })),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "`amenityIds[1]`");
    assert_eq!(app.count("catalog.listings").await, before);
}

#[tokio::test]
async fn every_mcp_tool_refuses_nul_in_its_string_fields() {
    let app = TestApp::spawn().await;
    let root = app.user_with_role("root@nul.test", "superAdmin").await;
    let (err, text) = app
        .tool(
            None,
            "login",
            json!({ "username": "\u{0}", "password": "whatever-123" }),
        )
        .await;
    assert!(err);
    assert!(text.as_str().unwrap().contains("`username`"), "{text}");
    let mut checked = 0;
    for op in app.state.registry.all() {
        let Some(Value::Object(props)) = op.input_schema.get("properties") else {
            continue;
        };
        for field in props.keys() {
            if op.fields().get(field) != Some(&FieldKind::String) {
                continue;
            }
            let (err, text) = app
                .tool(Some(&root.token), op.name, json!({ field: "x\u{0}" }))
                .await;
            let text = text.as_str().unwrap_or_default().to_string();
            assert!(
                err && text.contains(&format!("`{field}`")) && text.contains("NUL"),
                "{}.{field}: {text}",
                op.name
            );
            checked += 1;
        }
    }
    assert!(checked >= 27, "only {checked} fields checked");
}
