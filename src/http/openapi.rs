//! The OpenAPI 3.1 document, derived from the registry, and a Swagger UI page.
//!
//! Every registry operation becomes one entry (and one per alias) from its declaration: path and
//! query parameters or the JSON body from its input schema, the success status and envelope, and
//! every error status the REST layer can answer, each with the error envelope. The routes Haven
//! serves outside the registry (probes, MCP transports, the payment webhook, agent run triggers)
//! come from [`super::openapi_routes`].

use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use axum::Router;
use haven_tools::registry::{Action, Envelope, Method, Operation, Route};
use haven_tools::{ErrorKind, Registry};
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
    let mut paths: Map<String, Value> = super::openapi_routes::paths();
    // The agent run routes refuse NUL in their strings like the registry operations (a JSON-RPC
    // message is rmcp's to judge).
    for (path, entry) in paths.iter_mut() {
        if path.starts_with("/agenthub-api/") {
            refuse_nul(entry);
        }
    }
    for op in registry.all() {
        for route in op.rest_routes() {
            let entry = paths.entry(route.path.clone()).or_insert_with(|| json!({}));
            entry[route.method.as_str().to_lowercase()] = operation(op, &route);
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
            },
            "schemas": { "Error": error_schema() }
        },
        "paths": paths,
    })
}

fn operation(op: &Operation, route: &Route) -> Value {
    let path_params = haven_tools::registry::path_params(&route.path);
    let bound: Vec<&str> = route.bound.iter().map(|(field, _)| *field).collect();
    // A GET route of an operation declared as another verb takes only its scalar inputs from the
    // query string (a `filters` object travels in the POST body).
    let extra_get = route.method == Method::Get && op.method != Method::Get;
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
    let mut props = props;
    props.values_mut().for_each(refuse_nul);
    let mut parameters: Vec<Value> = path_params
        .iter()
        .map(|p| {
            let mut schema = props.get(*p).cloned().unwrap_or(json!({"type":"string"}));
            single_value(&mut schema);
            json!({ "name": p, "in": "path", "required": true, "schema": schema })
        })
        .collect();
    let mut body_props = Map::new();
    for (name, schema) in &props {
        if path_params.contains(&name.as_str()) || bound.contains(&name.as_str()) {
            continue;
        }
        if extra_get && takes_object(schema) {
            continue;
        }
        if route.method == Method::Get {
            parameters.push(json!({ "name": name, "in": "query", "required": required.contains(name), "schema": schema }));
        } else {
            body_props.insert(name.clone(), schema.clone());
        }
    }
    let mut entry = json!({
        "operationId": format!("{}{}", op.name, route.id_suffix),
        "summary": op.title,
        "description": op.description,
        "tags": [op.service.segment()],
        "parameters": parameters,
        "responses": responses(op),
    });
    if route.method != Method::Get {
        let body_required: Vec<&String> = required
            .iter()
            .filter(|r| !path_params.contains(&r.as_str()) && !bound.contains(&r.as_str()))
            .collect();
        let mut body = json!({
            "type": "object", "properties": body_props, "required": body_required, "additionalProperties": false
        });
        // Rules over several fields ("one of username or email") travel with the body.
        for key in ["anyOf", "oneOf", "allOf", "minProperties"] {
            if let Some(rule) = op.input_schema.get(key) {
                body[key] = rule.clone();
            }
        }
        entry["requestBody"] = json!({
            "required": !body_required.is_empty() || body.get("anyOf").is_some(),
            "content": { "application/json": { "schema": body } }
        });
    }
    if op.access != haven_tools::registry::Access::Public {
        entry["security"] = json!([{ "bearer": [] }]);
    }
    entry
}

/// Whether a property schema admits a JSON object (it then cannot come from a query string).
fn takes_object(schema: &Value) -> bool {
    let mut found = false;
    let mut stack = vec![schema];
    while let Some(s) = stack.pop() {
        match s.get("type") {
            Some(Value::String(t)) if t == "object" => found = true,
            Some(Value::Array(ts)) if ts.iter().any(|t| t == "object") => found = true,
            _ => {}
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(alts)) = s.get(key) {
                stack.extend(alts.iter());
            }
        }
    }
    found
}

/// Adds the rule every string input follows (no NUL characters, refused with a 400 naming the
/// field) to the free strings of `schema`, so the document says exactly what the server accepts.
fn refuse_nul(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let free_string = map.get("type").is_some_and(|t| {
                t == "string"
                    || t.as_array()
                        .is_some_and(|ts| ts.iter().any(|x| x == "string"))
            }) && !["format", "enum", "const", "pattern"]
                .iter()
                .any(|k| map.contains_key(*k));
            if free_string {
                map.insert("pattern".into(), Value::String("^[^\\u0000]*$".into()));
            }
            map.values_mut().for_each(refuse_nul);
        }
        Value::Array(items) => items.iter_mut().for_each(refuse_nul),
        _ => {}
    }
}

/// A path segment carries one value: drops the list alternatives of a filter schema ("one value or
/// an array of values"), which only a query string can carry.
fn single_value(schema: &mut Value) {
    if let Value::Object(map) = schema {
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(alts)) = map.get_mut(key) {
                alts.retain(|a| a.get("type") != Some(&Value::String("array".into())));
                alts.iter_mut().for_each(single_value);
            }
        }
    }
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

/// The errors every registry route can answer, by kind (the REST status is [`ErrorKind::status`]),
/// with what they mean for the caller. `Internal` (500) is left out on purpose: it is a bug.
const ERRORS: &[(ErrorKind, &str)] = &[
    (ErrorKind::BadInput, "Bad input: the message names the field (also rules the schema cannot express, such as a date in the past or checkOut before checkIn)"),
    (ErrorKind::Unauthenticated, "Missing, expired or invalid credentials (a bad token is refused even on public routes)"),
    (ErrorKind::Forbidden, "The caller's role may not do this"),
    (ErrorKind::NotFound, "Not found (or not visible to the caller)"),
    (ErrorKind::Conflict, "Conflict: a duplicate, a stale recordVersion, or nights already taken"),
    (ErrorKind::Unprocessable, "Well-formed but not possible in the record's current state"),
    (ErrorKind::RateLimited, "Too many requests: wait for Retry-After seconds"),
    (ErrorKind::Unavailable, "The database or a provider is unavailable or overloaded: retry after Retry-After seconds"),
];

/// Success, then every error status, for one registry operation.
fn responses(op: &Operation) -> Value {
    let mut responses = Map::new();
    responses.insert(
        success_code(op).into(),
        json!({ "description": "Success", "content": { "application/json": { "schema": response_schema(op) } } }),
    );
    for (kind, description) in ERRORS {
        responses.insert(kind.status().to_string(), error(description));
    }
    if op.method != Method::Get {
        responses.insert(
            "413".into(),
            json!({ "description": "The request body is larger than HAVEN_MAX_BODY_BYTES" }),
        );
    }
    Value::Object(responses)
}

/// The error envelope every REST error answers with (conventions §6).
fn error_schema() -> Value {
    json!({ "type": "object", "required": ["result", "status", "message", "errCode", "errorKind", "date"], "properties": {
        "result": { "const": "ERR" },
        "status": { "type": "integer", "description": "The HTTP status" },
        "message": { "type": "string", "description": "What went wrong, in words, naming the field" },
        "errCode": { "type": "integer", "description": "Same as status" },
        "errorKind": { "type": "string", "enum": ERRORS.iter().map(|(kind, _)| *kind).chain([ErrorKind::Internal]).collect::<Vec<_>>() },
        "field": { "type": ["string", "null"], "description": "The input field at fault, when there is one" },
        "date": { "type": "string", "format": "date-time" }
    } })
}

/// A response with the error envelope.
pub(super) fn error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}
