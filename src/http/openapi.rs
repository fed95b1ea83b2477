//! The OpenAPI 3.1 document, derived from the registry, and a Swagger UI page.

use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use axum::Router;
use haven_tools::registry::{Action, Envelope, Method, Operation};
use haven_tools::Registry;
use serde_json::{json, Map, Value};
use std::sync::Arc;

use crate::app::AppState;

/// `/openapi.json` and `/swagger`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/openapi.json",
            get(|| async { Json(document(crate::registry())) }),
        )
        .route("/swagger", get(swagger))
        .route("/swagger/init.js", get(swagger_init))
}

/// The pinned Swagger UI release the page loads from the CDN, with the Subresource Integrity
/// hashes of its two files (sha384 of `swagger-ui-bundle.js` and `swagger-ui.css` in the npm
/// package `swagger-ui-dist@5.35.0`): a changed file on the CDN is refused by the browser.
const SWAGGER_UI: &str = "https://unpkg.com/swagger-ui-dist@5.35.0";
const SWAGGER_JS_SRI: &str =
    "sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9";
const SWAGGER_CSS_SRI: &str =
    "sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I";

/// The page's policy: scripts only from Haven and the pinned CDN files, requests only to Haven,
/// never framed.
const SWAGGER_CSP: &str = "default-src 'none'; script-src 'self' https://unpkg.com; \
    style-src https://unpkg.com 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn swagger() -> impl IntoResponse {
    let page = format!(
        r##"<!doctype html><html><head><meta charset="utf-8"><title>Haven API</title>
<link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css" integrity="{SWAGGER_CSS_SRI}" crossorigin="anonymous"></head>
<body><div id="ui"></div><script src="{SWAGGER_UI}/swagger-ui-bundle.js" integrity="{SWAGGER_JS_SRI}" crossorigin="anonymous"></script>
<script src="/swagger/init.js"></script></body></html>"##
    );
    ([(CONTENT_SECURITY_POLICY, SWAGGER_CSP)], Html(page))
}

/// The page's start-up script, served by Haven so the page needs no inline script.
async fn swagger_init() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
        r##"SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});"##,
    )
}

/// The whole document.
pub fn document(registry: &Registry) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for op in registry.all() {
        for path in std::iter::once(&op.path).chain(op.aliases.iter()) {
            let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
            entry[op.method.as_str().to_lowercase()] = operation(op, path != &op.path);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Haven",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Short-term-rental marketplace API. Every operation here is also an MCP tool at /mcp."
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "JWT access token from login, or an sk_haven_ API key" }
            }
        },
        "paths": paths,
    })
}

fn operation(op: &Operation, alias: bool) -> Value {
    let path_params = op.path_params();
    let props = op
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required: Vec<String> = op
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut parameters: Vec<Value> = path_params
        .iter()
        .map(|p| json!({ "name": p, "in": "path", "required": true, "schema": props.get(*p).cloned().unwrap_or(json!({"type":"string"})) }))
        .collect();
    let mut body_props = Map::new();
    for (name, schema) in &props {
        if path_params.contains(&name.as_str()) {
            continue;
        }
        if op.method == Method::Get {
            parameters.push(json!({ "name": name, "in": "query", "required": required.contains(name), "schema": schema }));
        } else {
            body_props.insert(name.clone(), schema.clone());
        }
    }
    let mut entry = json!({
        "operationId": if alias { format!("{}Alias", op.name) } else { op.name.to_string() },
        "summary": op.title,
        "description": op.description,
        "tags": [op.service.segment()],
        "parameters": parameters,
        "responses": {
            success_code(op): { "description": "Success", "content": { "application/json": { "schema": response_schema(op) } } },
            "400": error("Bad input: the message names the field"),
            "401": error("Missing or invalid credentials"),
            "403": error("The caller's role may not do this"),
            "404": error("Not found (or not visible to the caller)"),
            "409": error("Conflict: duplicate or stale recordVersion"),
        }
    });
    if op.method != Method::Get {
        let body_required: Vec<&String> = required
            .iter()
            .filter(|r| !path_params.contains(&r.as_str()))
            .collect();
        entry["requestBody"] = json!({
            "required": !body_required.is_empty(),
            "content": { "application/json": { "schema": {
                "type": "object", "properties": body_props, "required": body_required, "additionalProperties": false
            } } }
        });
    }
    if op.access != haven_tools::registry::Access::Public {
        entry["security"] = json!([{ "bearer": [] }]);
    }
    entry
}

fn success_code(op: &Operation) -> &'static str {
    if op.action == Action::Create && op.envelope == Envelope::Standard {
        "201"
    } else {
        "200"
    }
}

fn response_schema(op: &Operation) -> Value {
    let output = Value::Object((*op.output_schema).clone());
    match op.envelope {
        Envelope::Raw => output,
        Envelope::RawField(field) => output["properties"][field].clone(),
        Envelope::Fields => json!({ "allOf": [envelope_schema(), output] }),
        Envelope::Standard if op.action == Action::List => json!({
            "allOf": [envelope_schema(), output]
        }),
        Envelope::Standard => json!({
            "allOf": [envelope_schema(), { "type": "object", "properties": { op.data_name: output } }]
        }),
    }
}

fn envelope_schema() -> Value {
    json!({ "type": "object", "properties": {
        "status": { "type": "string" }, "statusCode": { "type": "integer" }, "dataName": { "type": "string" },
        "requestId": { "type": "string" }, "rowCount": { "type": "integer" }, "action": { "type": "string" }
    }})
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "type": "object", "properties": {
        "result": { "const": "ERR" }, "status": { "type": "integer" }, "message": { "type": "string" },
        "errCode": { "type": "integer" }, "field": { "type": ["string", "null"] }, "date": { "type": "string" }
    } } } } })
}
