//! The other MCP transports: the legacy HTTP+SSE transport (protocol 2024-11-05) and stdio acting as
//! the owner of an API key.

use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;

use crate::helpers::*;
use crate::stdio_child::StdioChild;

const STEP: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Legacy SSE
// ---------------------------------------------------------------------------------------------

/// A minimal Server-Sent Events reader over a response body.
struct SseReader<S> {
    stream: Pin<Box<S>>,
    buf: Vec<u8>,
}

impl<S, B> SseReader<S>
where
    S: Stream<Item = reqwest::Result<B>>,
    B: AsRef<[u8]>,
{
    fn new(stream: S) -> Self {
        Self {
            stream: Box::pin(stream),
            buf: Vec::new(),
        }
    }

    /// The next event with data as (event name, data); comment-only frames (keep-alives) are skipped.
    /// `None` when the stream ends.
    async fn next_event(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(pos) = find_frame_end(&self.buf) {
                let (end, sep) = pos;
                let frame = String::from_utf8_lossy(&self.buf[..end]).replace("\r\n", "\n");
                self.buf.drain(..end + sep);
                let mut event = "message".to_string();
                let mut data = Vec::new();
                for line in frame.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    let (key, value) = match line.split_once(':') {
                        Some((k, v)) => (k, v.strip_prefix(' ').unwrap_or(v)),
                        None => (line, ""),
                    };
                    match key {
                        "event" => event = value.to_string(),
                        "data" => data.push(value.to_string()),
                        _ => {}
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((event, data.join("\n")));
            }
            let chunk = self.stream.next().await?.ok()?;
            self.buf.extend_from_slice(chunk.as_ref());
        }
    }

    /// The next event within [`STEP`], panicking on timeout or end of stream.
    async fn expect_event(&mut self) -> (String, String) {
        timeout(STEP, self.next_event())
            .await
            .expect("timed out waiting for an SSE event")
            .expect("the SSE stream ended")
    }

    /// Reads `message` events until the JSON-RPC response with `id` arrives.
    async fn response_for(&mut self, id: i64) -> Value {
        loop {
            let (event, data) = self.expect_event().await;
            if event != "message" {
                continue;
            }
            let msg: Value = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("bad SSE message {data:?}: {e}"));
            if msg["id"] == json!(id) {
                return msg;
            }
        }
    }
}

/// Where the first frame in `buf` ends, and the separator's length.
fn find_frame_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Opens `GET /mcp/sse` as `token`; returns the reader and the POST endpoint's full URL.
async fn open_sse(
    app: &TestApp,
    token: Option<&str>,
) -> (
    SseReader<impl Stream<Item = reqwest::Result<impl AsRef<[u8]>>>>,
    String,
) {
    open_sse_at(app, token, "").await
}

/// Opens `GET /mcp/sse?{query}` as `token` (the query binds the session's selection).
async fn open_sse_at(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
) -> (
    SseReader<impl Stream<Item = reqwest::Result<impl AsRef<[u8]>>>>,
    String,
) {
    // The harness client has a 30 s whole-request timeout, which would cut a long stream; use a
    // client without one.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut req = client
        .get(format!("{}/mcp/sse{}", app.base, query))
        .header("accept", "text/event-stream");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = timeout(STEP, req.send())
        .await
        .expect("GET /mcp/sse timed out")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "GET /mcp/sse");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "content-type {content_type:?}"
    );
    let mut reader = SseReader::new(resp.bytes_stream());
    let (event, data) = reader.expect_event().await;
    assert_eq!(
        event, "endpoint",
        "the first event names the POST endpoint (data {data:?})"
    );
    assert!(
        data.starts_with("/mcp/message?sessionId="),
        "endpoint {data:?}"
    );
    assert!(
        data.len() > "/mcp/message?sessionId=".len(),
        "endpoint has an empty session id: {data:?}"
    );
    let url = format!("{}{}", app.base, data);
    (reader, url)
}

/// POSTs a JSON-RPC message to a legacy session endpoint; returns status and body text.
async fn post_message(
    app: &TestApp,
    url: &str,
    token: Option<&str>,
    msg: Value,
) -> (StatusCode, String) {
    let mut req = app.http.post(url).json(&msg);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = timeout(STEP, req.send())
        .await
        .expect("POST /mcp/message timed out")
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap_or_default())
}

fn initialize(id: i64, version: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": { "name": "haven-tests", "version": "0.0.1" }
        }
    })
}

fn initialized() -> Value {
    json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })
}

fn tool_names_of(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list gave no tools: {list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn legacy_sse_session_initialises_lists_and_calls_tools() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice.sse@example.com").await;
    let (mut sse, url) = open_sse(&app, Some(&alice.token)).await;

    let (status, body) =
        post_message(&app, &url, Some(&alice.token), initialize(1, "2024-11-05")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "initialize: {body}");
    let init = sse.response_for(1).await;
    assert!(init["error"].is_null(), "initialize failed: {init}");
    assert!(init["result"]["protocolVersion"].is_string(), "{init}");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "the server announces tools: {init}"
    );
    assert!(init["result"]["serverInfo"]["name"].is_string(), "{init}");

    let (status, body) = post_message(&app, &url, Some(&alice.token), initialized()).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "notifications/initialized: {body}"
    );

    let (status, body) = post_message(
        &app,
        &url,
        Some(&alice.token),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {} }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "tools/list: {body}");
    let list = sse.response_for(2).await;
    let names = tool_names_of(&list);
    assert!(
        names.iter().any(|n| n == "search_tools"),
        "tools/list lacks search_tools: {names:?}"
    );
    assert!(
        names.iter().any(|n| n == "getCurrentUser"),
        "tools/list lacks getCurrentUser: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n == "updateUserRole"),
        "a plain user must not see admin tools: {names:?}"
    );

    let (status, body) = post_message(
        &app,
        &url,
        Some(&alice.token),
        json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": { "name": "getCurrentUser", "arguments": {} } }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "tools/call: {body}");
    let call = sse.response_for(3).await;
    assert_ne!(
        call["result"]["isError"],
        json!(true),
        "getCurrentUser failed: {call}"
    );
    let me = &call["result"]["structuredContent"];
    assert_eq!(me["email"], alice.email.as_str(), "{call}");
    assert_eq!(me["userId"], alice.id.to_string(), "{call}");
    assert_eq!(me["credential"], "session", "{call}");

    // A failing tool comes back as an isError result on the stream, not as a transport error.
    let (status, _) = post_message(
        &app,
        &url,
        Some(&alice.token),
        json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/call",
                "params": { "name": "getUserGroup", "arguments": { "userGroupId": uuid::Uuid::new_v4() } } }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let missing = sse.response_for(4).await;
    assert_eq!(missing["result"]["isError"], json!(true), "{missing}");
    let text = missing["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("not found"), "{missing}");
}

#[tokio::test]
async fn legacy_sse_session_belongs_to_its_opener() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice.owner@example.com").await;
    let mallory = app.user("mallory.owner@example.com").await;
    let (mut sse, url) = open_sse(&app, Some(&alice.token)).await;

    // Another user may not feed alice's session, nor may an anonymous caller.
    let (status, body) = post_message(
        &app,
        &url,
        Some(&mallory.token),
        initialize(1, "2024-11-05"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another user's POST: {body}");
    assert!(body.contains("another principal"), "{body}");
    let (status, body) = post_message(&app, &url, None, initialize(1, "2024-11-05")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "anonymous POST into a user's session: {body}"
    );

    // Nothing was delivered: the first message on the stream answers alice's own initialize (id 7).
    let (status, body) =
        post_message(&app, &url, Some(&alice.token), initialize(7, "2024-11-05")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (event, data) = sse.expect_event().await;
    assert_eq!(event, "message");
    let first: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(
        first["id"],
        json!(7),
        "refused POSTs must not reach the session: {first}"
    );

    // A session id nobody opened.
    let unknown = format!(
        "{}/mcp/message?sessionId={}",
        app.base,
        uuid::Uuid::new_v4().simple()
    );
    let (status, body) = post_message(
        &app,
        &unknown,
        Some(&alice.token),
        initialize(1, "2024-11-05"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown session: {body}");

    // Garbage into the real session is a 400, not a crash of the session.
    let resp = app
        .http
        .post(&url)
        .bearer_auth(&alice.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (status, _) = post_message(
        &app,
        &url,
        Some(&alice.token),
        json!({ "jsonrpc": "2.0", "id": 8, "method": "ping" }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let pong = sse.response_for(8).await;
    assert!(
        pong["error"].is_null(),
        "the session still answers after a bad POST: {pong}"
    );
}

#[tokio::test]
async fn legacy_sse_checks_host_header() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice.host@example.com").await;

    let resp = timeout(
        STEP,
        app.http
            .get(format!("{}/mcp/sse", app.base))
            .bearer_auth(&alice.token)
            .header("host", "evil.example")
            .send(),
    )
    .await
    .expect("GET /mcp/sse timed out")
    .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = resp.text().await.unwrap();
    assert!(body.contains("Host or Origin"), "{body}");

    // A foreign Origin is refused too.
    let resp = timeout(
        STEP,
        app.http
            .get(format!("{}/mcp/sse", app.base))
            .bearer_auth(&alice.token)
            .header("origin", "https://evil.example")
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // POSTs into a real session from a foreign Host are refused as well.
    let (_sse, url) = open_sse(&app, Some(&alice.token)).await;
    let resp = app
        .http
        .post(&url)
        .bearer_auth(&alice.token)
        .header("host", "evil.example")
        .json(&initialize(1, "2024-11-05"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn legacy_sse_session_ends_when_the_stream_closes() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice.close@example.com").await;
    let (sse, url) = open_sse(&app, Some(&alice.token)).await;
    let (status, _) =
        post_message(&app, &url, Some(&alice.token), initialize(1, "2024-11-05")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    drop(sse);

    // The server notices the closed stream at the latest on its next keep-alive (15 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let (status, _) = post_message(
            &app,
            &url,
            Some(&alice.token),
            json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" }),
        )
        .await;
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            break;
        }
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session outlived its closed stream by 40 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// stdio
// ---------------------------------------------------------------------------------------------

fn haven_stdio(app: &TestApp, key: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_haven"));
    cmd.arg("stdio")
        .env("DATABASE_URL", &app.db_url)
        .env("HAVEN_API_KEY", key)
        .env("HAVEN_DB_MAX_CONNECTIONS", "2")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn stdio_serves_mcp_as_the_api_key_owner() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner.stdio@example.com").await;
    let (is_error, created) = app
        .tool(
            Some(&owner.token),
            "createApiKey",
            json!({ "description": "stdio test" }),
        )
        .await;
    assert!(!is_error, "createApiKey: {created}");
    let key = created["key"]
        .as_str()
        .expect("createApiKey returns the key")
        .to_string();
    assert!(key.starts_with("sk_haven_"), "{key}");

    let mut child = StdioChild::spawn(haven_stdio(&app, &key));
    child.send(initialize(1, "2025-06-18")).await;
    let init = child.response_for(1).await;
    assert!(init["error"].is_null(), "initialize failed: {init}");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    child.send(initialized()).await;

    child
        .send(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {} }))
        .await;
    let list = child.response_for(2).await;
    let names = tool_names_of(&list);
    assert!(names.iter().any(|n| n == "getCurrentUser"), "{names:?}");
    assert!(names.iter().any(|n| n == "call_tool"), "{names:?}");
    for admin_tool in ["updateUserRole", "createUserGroup", "deleteUserGroupMember"] {
        assert!(
            !names.iter().any(|n| n == admin_tool),
            "a plain user's key must not list {admin_tool}: {names:?}"
        );
    }

    child
        .send(json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": { "name": "getCurrentUser", "arguments": {} } }))
        .await;
    let call = child.response_for(3).await;
    assert_ne!(call["result"]["isError"], json!(true), "{call}");
    let me = &call["result"]["structuredContent"];
    assert_eq!(me["email"], owner.email.as_str(), "{call}");
    assert_eq!(me["userId"], owner.id.to_string(), "{call}");
    assert_eq!(me["credential"], "apiKey", "{call}");

    // Admin tools are refused when called anyway, and nothing is written.
    let groups = app.count("auth.user_groups").await;
    child
        .send(json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/call",
                      "params": { "name": "createUserGroup", "arguments": { "groupName": "via stdio" } } }))
        .await;
    let refused = child.response_for(4).await;
    assert_eq!(refused["result"]["isError"], json!(true), "{refused}");
    let text = refused["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("Forbidden"), "{refused}");
    assert_eq!(app.count("auth.user_groups").await, groups);

    // Closing stdin ends the server cleanly.
    child.close().await;
}

#[tokio::test]
async fn stdio_refuses_a_bogus_api_key() {
    let app = TestApp::spawn().await;
    let mut child = haven_stdio(&app, "sk_haven_this_is_not_a_real_key_0000000000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning haven stdio");
    let waited = timeout(Duration::from_secs(60), async {
        let mut out = String::new();
        let mut err = String::new();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (a, b) = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        a.unwrap();
        b.unwrap();
        (child.wait().await.unwrap(), out, err)
    })
    .await;
    let (status, out, err) = match waited {
        Ok(r) => r,
        Err(_) => {
            child.kill().await.unwrap();
            panic!("haven stdio with a bogus key did not exit within 60 s");
        }
    };
    assert!(
        !status.success(),
        "a bogus key must fail; stdout {out:?}, stderr {err:?}"
    );
    assert!(
        err.contains("HAVEN_API_KEY was refused"),
        "stderr should say why: {err}"
    );
    assert!(
        !out.contains("jsonrpc"),
        "no MCP traffic for a refused key: {out:?}"
    );

    // A revoked key is refused the same way.
    let owner = app.user("revoked.stdio@example.com").await;
    let (_, created) = app
        .tool(Some(&owner.token), "createApiKey", json!({}))
        .await;
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    let (is_error, revoked) = app
        .tool(
            Some(&owner.token),
            "updateApiKey",
            json!({ "apiKeyId": id, "active": false }),
        )
        .await;
    assert!(!is_error, "{revoked}");
    let status = timeout(
        Duration::from_secs(60),
        haven_stdio(&app, &key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status(),
    )
    .await
    .expect("haven stdio with a revoked key did not exit within 60 s")
    .unwrap();
    assert!(!status.success(), "a revoked key must fail");
}

#[tokio::test]
async fn a_read_only_legacy_sse_session_refuses_writes_whatever_its_posts_say() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice.ro@example.com").await;
    let (mut sse, url) = open_sse_at(&app, Some(&alice.token), "?readonly=true").await;
    let (status, _) =
        post_message(&app, &url, Some(&alice.token), initialize(1, "2024-11-05")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    sse.response_for(1).await;
    post_message(&app, &url, Some(&alice.token), initialized()).await;
    let keys = app.count("platformadmin.api_keys").await;
    // The POST's own query cannot widen the session.
    let widened = format!("{url}&readonly=false&toolsets=all");
    for (id, name, args) in [
        (2, "createApiKey", json!({ "description": "x" })),
        (
            3,
            "call_tool",
            json!({ "name": "createApiKey", "arguments": {} }),
        ),
    ] {
        let (status, _) = post_message(
            &app,
            &widened,
            Some(&alice.token),
            json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": { "name": name, "arguments": args } }),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let refused = sse.response_for(id).await;
        assert_eq!(refused["result"]["isError"], json!(true), "{refused}");
        assert!(
            refused["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("read-only"),
            "{refused}"
        );
    }
    assert_eq!(app.count("platformadmin.api_keys").await, keys);
    let (status, _) = post_message(
        &app,
        &url,
        Some(&alice.token),
        json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {} }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let list = sse.response_for(4).await;
    for t in list["result"]["tools"].as_array().unwrap() {
        assert_eq!(t["annotations"]["readOnlyHint"], true, "{}", t["name"]);
    }
}

#[tokio::test]
async fn stdio_narrows_with_flags_and_refuses_an_unknown_toolset_at_startup() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner.ro@example.com").await;
    let (_, created) = app
        .tool(Some(&owner.token), "createApiKey", json!({}))
        .await;
    let key = created["key"].as_str().unwrap().to_string();

    // An unknown toolset stops startup with the valid names.
    let out = timeout(
        Duration::from_secs(60),
        haven_stdio(&app, &key)
            .args(["--toolsets", "nosuchset"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("haven stdio --toolsets nosuchset did not exit")
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nosuchset") && err.contains("propertycatalog"),
        "{err}"
    );

    // --readonly (and HAVEN_MCP_TOOLSETS from the environment) restrict every call.
    let mut cmd = haven_stdio(&app, &key);
    cmd.arg("--readonly")
        .env("HAVEN_MCP_TOOLSETS", "platformadmin,propertycatalog");
    let mut child = StdioChild::spawn(cmd);
    child.handshake(1).await;
    let keys = app.count("platformadmin.api_keys").await;
    let refused = child.call(2, "createApiKey", json!({})).await;
    assert_eq!(refused["isError"], json!(true), "{refused}");
    assert!(refused.to_string().contains("read-only"), "{refused}");
    let outside = child.call(3, "getCurrentUser", json!({})).await;
    assert!(outside.to_string().contains("toolsets"), "{outside}");
    let allowed = child.call(4, "listApiKeys", json!({})).await;
    assert_ne!(allowed["isError"], json!(true), "{allowed}");
    assert_eq!(app.count("platformadmin.api_keys").await, keys);
    child.close().await;
}
