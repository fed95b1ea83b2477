//! Every registry entry appears in all faces: MCP tools/list (with input and output schema and all
//! four annotations), a REST route, and the OpenAPI document.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn every_operation_has_all_faces() {
    let app = TestApp::spawn().await;
    let root = app.user_with_role("root@haven.test", "superAdmin").await;
    let listed = app
        .mcp_at("/mcp?tools=all", Some(&root.token), "tools/list", json!({}))
        .await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    let (status, openapi) = app.rest(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let registry = haven::registry();
    assert_eq!(
        tools.len(),
        registry.len() + 3,
        "a superAdmin's full list is every tool plus search_tools, describe_tool, call_tool"
    );
    for op in registry.all() {
        let tool = tools
            .iter()
            .find(|t| t["name"] == op.name)
            .unwrap_or_else(|| panic!("{} not in tools/list", op.name));
        assert_eq!(tool["inputSchema"]["type"], "object", "{}", op.name);
        assert_eq!(tool["outputSchema"]["type"], "object", "{}", op.name);
        assert!(
            tool["description"].as_str().unwrap().len() > 40,
            "{}",
            op.name
        );
        for hint in [
            "readOnlyHint",
            "destructiveHint",
            "idempotentHint",
            "openWorldHint",
        ] {
            assert!(
                tool["annotations"][hint].is_boolean(),
                "{} lacks {hint}",
                op.name
            );
        }
        let method = op.method.as_str().to_lowercase();
        assert!(
            openapi["paths"][op.path][&method].is_object(),
            "{} {} not in OpenAPI",
            method,
            op.path
        );

        // The REST route exists: a call with made-up ids answers with one of our envelopes,
        // never the router's bare 404/405.
        let path = op
            .path_params()
            .iter()
            .fold(op.path.to_string(), |p, param| {
                p.replace(
                    &format!("{{{param}}}"),
                    "00000000-0000-0000-0000-000000000000",
                )
            });
        let method = Method::from_bytes(op.method.as_str().as_bytes()).unwrap();
        let (status, body) = app.rest(method, &path, Some(&root.token), None).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{}", op.name);
        assert!(
            body.is_object() || body.is_array(),
            "{} {path} answered {status} without JSON",
            op.name
        );
        if status == StatusCode::NOT_FOUND {
            assert_eq!(body["result"], "ERR", "{}: the 404 must be ours", op.name);
        }
    }
}

#[tokio::test]
async fn anonymous_callers_see_only_public_tools() {
    let app = TestApp::spawn().await;
    let listed = app
        .mcp_at("/mcp?tools=all", None, "tools/list", json!({}))
        .await;
    let names: Vec<String> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    let mut public: Vec<&str> = haven::registry()
        .all()
        .filter(|op| op.access == haven_tools::registry::Access::Public)
        .map(|op| op.name)
        .collect();
    public.extend(["search_tools", "describe_tool", "call_tool"]);
    assert_eq!(names, public);
    assert!(names.contains(&"registerUser".to_string()) && names.contains(&"login".to_string()));
    assert!(!names.contains(&"getUser".to_string()));
}

#[tokio::test]
async fn toolsets_and_readonly_narrow_the_list() {
    let app = TestApp::spawn().await;
    let user = app.user("ro@haven.test").await;
    let list = |v: Value| -> Vec<String> {
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let pa = list(
        app.mcp_at(
            "/mcp?toolsets=platformadmin",
            Some(&user.token),
            "tools/list",
            json!({}),
        )
        .await,
    );
    assert_eq!(
        pa,
        vec![
            "createApiKey",
            "createGdprAction",
            "getGdprExport",
            "listApiKeys",
            "listGdprActions",
            "listLocalizationSettings",
            "updateApiKey",
            "search_tools",
            "describe_tool",
            "call_tool"
        ]
    );
    let ro = list(
        app.mcp_at(
            "/mcp?readonly=true&tools=all",
            Some(&user.token),
            "tools/list",
            json!({}),
        )
        .await,
    );
    assert!(ro.contains(&"getUser".to_string()));
    assert!(!ro.contains(&"updateProfile".to_string()));
}

#[tokio::test]
async fn results_carry_structured_content_and_text() {
    let app = TestApp::spawn().await;
    let user = app.user("sc@haven.test").await;
    let r = app
        .mcp(
            Some(&user.token),
            "tools/call",
            json!({ "name": "getUser", "arguments": { "userId": user.id } }),
        )
        .await;
    let result = &r["result"];
    assert_eq!(result["isError"], false);
    assert_eq!(result["structuredContent"]["email"], "sc@haven.test");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"]);
    assert!(result["structuredContent"].get("password").is_none());
    assert!(result["structuredContent"].get("passwordHash").is_none());
}

#[tokio::test]
async fn unknown_tool_is_a_protocol_error() {
    let app = TestApp::spawn().await;
    let r = app
        .mcp(
            None,
            "tools/call",
            json!({ "name": "noSuchTool", "arguments": {} }),
        )
        .await;
    assert!(r["error"]["code"].is_i64(), "{r}");
}
