//! The OpenAPI 3.1 document, derived from the registry, and a Swagger UI page.

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
}

async fn swagger() -> impl IntoResponse {
    Html(
        r##"<!doctype html><html><head><title>Haven API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div><script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script></body></html>"##,
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
