//! The OpenAPI entries of the routes Haven serves outside the registry: the probes, the document
//! itself, the MCP transports, the payment provider's webhook and the agent run triggers. Each is a
//! route of its own in this crate (see the module it names), so its entry is written here, next to
//! nothing else; body and result schemas come from the Rust types the handlers use.

use haven_agents::dynamic::DynamicRunInput;
use haven_agents::runner::RunResult;
use haven_tools::registry::schema_for;
use serde_json::{json, Map, Value};

use super::agents::RunBody;
use super::mcp::selection::toolset_names;
use super::openapi::error;

/// Path → path item, for every non-registry route.
pub fn paths() -> Map<String, Value> {
    let mut paths = Map::new();
    paths.insert("/health".into(), json!({ "get": health() }));
    paths.insert("/ready".into(), json!({ "get": ready() }));
    paths.insert("/openapi.json".into(), json!({ "get": document() }));
    paths.insert("/swagger".into(), json!({ "get": swagger() }));
    paths.insert("/events".into(), json!({ "get": events() }));
    for (path, id, media, what) in [
        (
            "/live",
            "livePage",
            "text/html",
            "The live page: sign in, watch your events, run an agent",
        ),
        (
            "/live.css",
            "livePageStyle",
            "text/css",
            "The live page's style sheet",
        ),
        (
            "/live.js",
            "livePageScript",
            "text/javascript",
            "The live page's script",
        ),
    ] {
        paths.insert(path.into(), json!({ "get": static_page(id, media, what) }));
    }
    paths.insert("/mcp".into(), json!({ "post": mcp_post() }));
    paths.insert("/mcp/sse".into(), json!({ "get": mcp_sse() }));
    paths.insert("/mcp/message".into(), json!({ "post": mcp_message() }));
    paths.insert(
        "/bookingmanagement-api/v1/webhooks/stripe".into(),
        json!({ "post": stripe_webhook() }),
    );
    let agent = json!({ "name": "agentName", "in": "path", "required": true,
        "schema": { "type": "string", "minLength": 1, "maxLength": 200 },
        "description": "A design-time agent's name (see listAgents)" });
    paths.insert(
        "/agenthub-api/v1/agents/{agentName}/run".into(),
        json!({ "post": agent_run("runAgentRoute", "Run a design-time agent", Some(&agent), schema_of::<RunBody>(), false) }),
    );
    paths.insert(
        "/agenthub-api/v1/agents/{agentName}/stream".into(),
        json!({ "post": agent_run("streamAgentRoute", "Run a design-time agent, streamed", Some(&agent), schema_of::<RunBody>(), true) }),
    );
    paths.insert(
        "/agenthub-api/v1/dynamic-agents/run".into(),
        json!({ "post": agent_run("runDynamicAgentRoute", "Run an agent defined in the body (admins)", None, schema_of::<DynamicRunInput>(), false) }),
    );
    paths.insert(
        "/agenthub-api/v1/dynamic-agents/stream".into(),
        json!({ "post": agent_run("streamDynamicAgentRoute", "Run an agent defined in the body (admins), streamed", None, schema_of::<DynamicRunInput>(), true) }),
    );
    paths
}

fn schema_of<T: schemars::JsonSchema>() -> Value {
    Value::Object(schema_for::<T>())
}

fn json_body(schema: Value) -> Value {
    json!({ "content": { "application/json": { "schema": schema } } })
}

/// A refusal answered as plain text by the transport itself, or as JSON by the layers in front of
/// it (the NUL and Host/Origin guards).
fn text_or_json(description: &str) -> Value {
    json!({ "description": description, "content": {
        "text/plain": { "schema": { "type": "string" } },
        "application/json": { "schema": { "type": "object" } }
    } })
}

fn text(description: &str) -> Value {
    json!({ "description": description, "content": { "text/plain": { "schema": { "type": "string" } } } })
}

/// Every route refuses a token that is sent and invalid, even where none is needed.
fn bad_token() -> Value {
    error("A token was sent and is invalid or expired (send none to call anonymously)")
}

fn health() -> Value {
    json!({
        "operationId": "health", "summary": "Liveness", "tags": ["probes"],
        "description": "The process is up; touches nothing else.",
        "responses": { "200": { "description": "Alive", "content": { "application/json": { "schema": {
            "type": "object", "required": ["status", "version"],
            "properties": { "status": { "const": "ok" }, "version": { "type": "string" } }
        } } } }, "401": bad_token() }
    })
}

fn ready() -> Value {
    let body = |status: &str| {
        json!({ "content": { "application/json": { "schema": {
            "type": "object", "required": ["status"], "properties": { "status": { "const": status } }
        } } } })
    };
    let mut ok = body("ready");
    ok["description"] = json!("The database answers");
    let mut down = body("database unavailable");
    down["description"] = json!("The database did not answer within a second");
    json!({
        "operationId": "ready", "summary": "Readiness", "tags": ["probes"],
        "description": "Ready to serve: the database answers within a second.",
        "responses": { "200": ok, "401": bad_token(), "503": down }
    })
}

fn document() -> Value {
    json!({
        "operationId": "openApiDocument", "summary": "This document", "tags": ["docs"],
        "responses": { "200": { "description": "The OpenAPI 3.1 document", "content": { "application/json": { "schema": { "type": "object" } } } }, "401": bad_token() }
    })
}

fn swagger() -> Value {
    json!({
        "operationId": "swaggerUi", "summary": "Swagger UI for this document", "tags": ["docs"],
        "responses": { "200": { "description": "An HTML page", "content": { "text/html": { "schema": { "type": "string" } } } }, "401": bad_token() }
    })
}

/// `GET /events` (`super::events`): the caller's domain events as SSE.
fn events() -> Value {
    let id = json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX });
    json!({
        "operationId": "events", "summary": "The changes that concern the caller, as server-sent events",
        "tags": ["events"],
        "description": "Events named after the operation that caused them (createReservation, approveReservation, …) for the actor and the parties the object names; admins see all. Resumable with Last-Event-ID; works across replicas. Any other query parameter is refused.",
        "parameters": [
            { "name": "lastEventId", "in": "query", "required": false, "schema": id, "description": "Resume after this event id" },
            { "name": "Last-Event-ID", "in": "header", "required": false, "schema": { "type": "string" }, "description": "Resume after this event id (what EventSource sends)" },
            { "name": "kinds", "in": "query", "required": false, "schema": { "type": "string" }, "description": "Comma-separated operation names to keep" }
        ],
        "responses": {
            "200": { "description": "The event stream", "content": { "text/event-stream": { "schema": {} } } },
            "400": error("An unknown parameter, a lastEventId that is not a whole number, or a kind that is not an operation"),
            "401": error("No login, or an invalid token"),
            "429": error("Too many requests: wait for Retry-After seconds"),
            "503": error("The database is unavailable: retry after Retry-After seconds")
        },
        "security": [{ "bearer": [] }]
    })
}

/// A static file of the live page (`super::live`).
fn static_page(id: &str, media: &str, what: &str) -> Value {
    json!({
        "operationId": id, "summary": what, "tags": ["live"],
        "responses": { "200": { "description": what, "content": { media: { "schema": { "type": "string" } } } }, "401": bad_token() }
    })
}

/// A JSON-RPC 2.0 message a client may send: a request (with `id`), a notification (without),
/// or a response to a server request.
fn jsonrpc_message() -> Value {
    let id = json!({ "anyOf": [
        { "type": "string" },
        { "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX }
    ] });
    // Any method name: unknown requests get the server's -32601, unknown notifications are ignored.
    let method = json!({ "type": "string" });
    json!({ "oneOf": [
        { "type": "object", "title": "request", "required": ["jsonrpc", "id", "method"],
          "properties": { "jsonrpc": { "const": "2.0" }, "id": id, "method": method, "params": { "type": ["object", "null"] } } },
        { "type": "object", "title": "notification", "required": ["jsonrpc", "method"], "not": { "required": ["id"] },
          "properties": { "jsonrpc": { "const": "2.0" }, "method": method, "params": { "type": ["object", "null"] } } }
    ] })
}

/// A JSON-RPC 2.0 answer: a result or an error.
fn jsonrpc_answer() -> Value {
    json!({ "type": "object", "required": ["jsonrpc"], "properties": {
        "jsonrpc": { "const": "2.0" },
        "id": { "type": ["string", "number", "null"] },
        "result": { "type": "object" },
        "error": { "type": "object", "required": ["code", "message"], "properties": {
            "code": { "type": "integer" }, "message": { "type": "string" }, "data": {} } }
    } })
}

/// The connection's tool selection (`super::mcp::selection`), as query parameters and headers.
fn selection_parameters() -> Vec<Value> {
    let names = toolset_names();
    let one = format!("({}|all)", names.join("|"));
    let toolsets = json!({ "type": "string", "pattern": format!("^{one}(,{one})*$") });
    let readonly =
        json!({ "type": "string", "enum": ["true", "false", "1", "0", "yes", "no", "on", "off"] });
    let tools = json!({ "type": "string", "enum": ["core", "default", "all", "full"] });
    let about = [
        ("toolsets", "X-MCP-Toolsets", toolsets, format!("Comma-separated toolsets this connection is limited to (calls outside them are refused): {}, or all", names.join(", "))),
        ("readonly", "X-MCP-Readonly", readonly, "Only read-only tools (calls that change data are refused)".to_string()),
        ("tools", "X-MCP-Tools", tools, "`core` (default without toolsets: the role's core tools plus search_tools/describe_tool/call_tool) or `all`".to_string()),
    ];
    about
        .into_iter()
        .flat_map(|(query, header, schema, description)| {
            [
                json!({ "name": query, "in": "query", "required": false, "schema": schema, "description": description }),
                json!({ "name": header, "in": "header", "required": false, "schema": schema, "description": format!("Same as the `{query}` query parameter") }),
            ]
        })
        .collect()
}

fn mcp_post() -> Value {
    let mut parameters = vec![json!({ "name": "Accept", "in": "header", "required": true,
        "schema": { "type": "string", "enum": ["application/json, text/event-stream"] },
        "description": "Must accept both application/json and text/event-stream (406 otherwise)" })];
    parameters.extend(selection_parameters());
    let mut body = json_body(jsonrpc_message());
    body["required"] = json!(true);
    json!({
        "operationId": "mcpStreamableHttp", "summary": "MCP over Streamable HTTP (stateless, JSON responses)",
        "tags": ["mcp"],
        "description": "One JSON-RPC message per request; every registry operation is a tool. The caller is the request's own token (none: anonymous). Host and Origin are checked against HAVEN_ALLOWED_HOSTS / HAVEN_ALLOWED_ORIGINS. Malformed JSON-RPC answers 400 with error -32700 (not JSON) or -32600 (not a JSON-RPC message, or not sent as application/json).",
        "parameters": parameters,
        "requestBody": body,
        "responses": {
            "200": { "description": "The JSON-RPC answer (a JSON-RPC error is still HTTP 200)", "content": { "application/json": { "schema": jsonrpc_answer() } } },
            "202": { "description": "A notification or response, accepted" },
            "400": { "description": "Malformed JSON-RPC: error -32700 or -32600; an unknown toolset or selection value (-32602); or a NUL character in the URL (the error envelope)", "content": { "application/json": { "schema": { "anyOf": [jsonrpc_answer(), { "$ref": "#/components/schemas/Error" }] } } } },
            "401": error("A token was sent and is invalid, or HAVEN_MCP_REQUIRE_AUTH is on and none was sent"),
            "403": { "description": "Host or Origin not allowed (DNS-rebinding protection), or insufficient_scope: an OAuth token holding only haven:read called a tool that changes data (WWW-Authenticate names the scopes to request)", "content": { "application/json": { "schema": jsonrpc_answer() } } },
            "406": { "description": "The Accept header does not allow both application/json and text/event-stream" },
            "413": { "description": "The request body is larger than HAVEN_MAX_BODY_BYTES" },
            "429": error("Too many requests: wait for Retry-After seconds"),
            "503": error("Overloaded: retry after Retry-After seconds")
        },
        "security": [{}, { "bearer": [] }]
    })
}

fn mcp_sse() -> Value {
    json!({
        "operationId": "mcpLegacySse", "summary": "MCP over the legacy HTTP+SSE transport: open the stream",
        "tags": ["mcp"],
        "description": "Opens a server-sent event stream whose first `endpoint` event names the /mcp/message URL to POST JSON-RPC messages to; answers arrive as `message` events. The session belongs to the caller that opened it, with the tool selection given here.",
        "parameters": selection_parameters(),
        "responses": {
            "200": { "description": "The event stream", "content": { "text/event-stream": { "schema": {} } } },
            "400": { "description": "An unknown toolset or selection value (-32602), or a NUL character in the URL", "content": { "application/json": { "schema": { "type": "object" } } } },
            "401": error("A token was sent and is invalid, or HAVEN_MCP_REQUIRE_AUTH is on and none was sent"),
            "403": text_or_json("Host or Origin not allowed (DNS-rebinding protection)")
        },
        "security": [{}, { "bearer": [] }]
    })
}

fn mcp_message() -> Value {
    let mut body = json_body(jsonrpc_message());
    body["required"] = json!(true);
    json!({
        "operationId": "mcpLegacyMessage", "summary": "MCP over the legacy HTTP+SSE transport: send a message",
        "tags": ["mcp"],
        "parameters": [ { "name": "sessionId", "in": "query", "required": true, "schema": { "type": "string" },
            "description": "From the stream's `endpoint` event" } ],
        "requestBody": body,
        "responses": {
            "202": { "description": "Accepted; the answer arrives on the stream" },
            "400": text_or_json("Not a JSON-RPC message, no sessionId, or a NUL character in the URL (the error envelope)"),
            "401": error("A token was sent and is invalid, or HAVEN_MCP_REQUIRE_AUTH is on and none was sent"),
            "403": text_or_json("Host or Origin not allowed (a JSON-RPC error), or the session belongs to another caller"),
            "404": text("Unknown or closed session"),
            "410": text("The session closed"),
            "413": text("The request body is larger than HAVEN_MAX_BODY_BYTES")
        },
        "security": [{}, { "bearer": [] }]
    })
}

fn stripe_webhook() -> Value {
    json!({
        "operationId": "stripeWebhook", "summary": "The payment provider's signed webhook",
        "tags": ["bookingmanagement-api"],
        "description": "Stripe events, verified with the Stripe-Signature header over the raw body (STRIPE_WEBHOOK_SECRET); the payment they describe is re-read from Stripe before anything changes.",
        "parameters": [ { "name": "Stripe-Signature", "in": "header", "required": false, "schema": { "type": "string" } } ],
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object" } } } },
        "responses": {
            "200": { "description": "Received", "content": { "application/json": { "schema": {
                "type": "object", "required": ["received"], "properties": { "received": { "const": true }, "outcome": {} } } } } },
            "400": error("Not a Stripe event, or a missing or wrong signature"),
            "401": error("A token was sent and is invalid"),
            "404": error("Webhooks are off: the payment provider is not Stripe"),
            "409": error("Conflict with the payment's current state"),
            "413": { "description": "The request body is larger than HAVEN_MAX_BODY_BYTES" },
            "422": error("The event does not apply to the payment's current state"),
            "429": error("Too many requests: wait for Retry-After seconds"),
            "503": error("The provider or the database is unavailable: retry after Retry-After seconds")
        }
    })
}

fn agent_run(id: &str, summary: &str, agent: Option<&Value>, body: Value, stream: bool) -> Value {
    let success = if stream {
        json!({ "description": "The run's events (run_started, text_delta, tool_call_started, tool_call_finished, run_finished) while it runs", "content": { "text/event-stream": { "schema": {} } } })
    } else {
        json!({ "description": "The finished run", "content": { "application/json": { "schema": schema_of::<RunResult>() } } })
    };
    let mut request = json_body(body);
    request["required"] = json!(true);
    json!({
        "operationId": id, "summary": summary, "tags": ["agenthub-api"],
        "description": "Runs the agent as the calling user (its tools see exactly what the caller may do). Needs a login; dynamic agents need an admin.",
        "parameters": agent.into_iter().cloned().collect::<Vec<_>>(),
        "requestBody": request,
        "responses": {
            "200": success,
            "400": error("Bad input: the message names the field"),
            "401": error("No login, or an invalid token"),
            "403": error("The caller's role may not run this agent"),
            "404": error("No such agent, or it is disabled"),
            "409": error("Conflict"),
            "413": { "description": "The request body is larger than HAVEN_MAX_BODY_BYTES" },
            "422": error("The agent definition is not valid"),
            "429": error("Too many requests, or the run's budget is spent"),
            "503": error("The LLM provider or the database is unavailable: retry after Retry-After seconds")
        },
        "security": [{ "bearer": [] }]
    })
}
