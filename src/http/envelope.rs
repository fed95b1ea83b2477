//! The spec's response envelopes (conventions §5–6): success with the payload under `dataName`,
//! and the error body with its status.

use axum::http::header::RETRY_AFTER;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use haven_tools::registry::{Action, Envelope, Operation};
use haven_tools::ToolError;
use serde_json::{json, Map, Value};

/// Request facts echoed in the success envelope.
pub struct Echo<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// The caller's user id.
    pub user_id: Option<String>,
    /// The caller's session id.
    pub session_id: Option<String>,
    /// Milliseconds spent.
    pub elapsed_ms: u128,
}

/// The HTTP status of a successful call.
pub fn success_status(op: &Operation) -> StatusCode {
    if op.action == Action::Create && op.envelope == Envelope::Standard {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// Wraps an operation's output for REST.
pub fn success_body(op: &Operation, output: Value, echo: Echo<'_>) -> Value {
    match op.envelope {
        Envelope::Raw => return output,
        Envelope::RawField(field) => return output.get(field).cloned().unwrap_or(Value::Null),
        Envelope::Standard | Envelope::Fields => {}
    }
    let status = success_status(op);
    let mut body = Map::new();
    body.insert("status".into(), json!("OK"));
    body.insert("statusCode".into(), json!(status.as_u16()));
    body.insert("elapsedMs".into(), json!(echo.elapsed_ms));
    body.insert("source".into(), json!("db"));
    body.insert("userId".into(), json!(echo.user_id));
    body.insert("sessionId".into(), json!(echo.session_id));
    body.insert("requestId".into(), json!(echo.request_id));
    body.insert("dataName".into(), json!(op.data_name));
    body.insert("method".into(), json!(op.method.as_str()));
    body.insert("action".into(), json!(op.action.as_str()));
    body.insert("appVersion".into(), json!(env!("CARGO_PKG_VERSION")));
    if op.action == Action::List || op.envelope == Envelope::Fields {
        let rows = match output.get(op.data_name) {
            Some(Value::Array(items)) => items.len(),
            Some(Value::Null) | None => 0,
            Some(_) => 1,
        };
        body.insert("rowCount".into(), json!(rows));
        if let Value::Object(fields) = output {
            body.extend(fields);
        }
        body.insert("filters".into(), json!([]));
        body.insert("uiPermissions".into(), json!([]));
    } else {
        body.insert("rowCount".into(), json!(1));
        body.insert(op.data_name.into(), output);
    }
    Value::Object(body)
}

/// The spec's error body for `err`, with the matching status and, for 429 and 503, a
/// `Retry-After` header in seconds.
pub fn error_response(err: &ToolError) -> Response {
    let status =
        StatusCode::from_u16(err.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = err
        .retry_after_secs()
        .map(|secs| [(RETRY_AFTER, secs.to_string())]);
    (
        status,
        retry_after,
        Json(json!({
            "result": "ERR",
            "status": status.as_u16(),
            "message": err.message,
            "errCode": status.as_u16(),
            "errorKind": err.kind,
            "field": err.field,
            "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })),
    )
        .into_response()
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

/// A [`ToolError`] answered over REST.
pub struct RestError(pub ToolError);
