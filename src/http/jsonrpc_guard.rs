//! A guard in front of `POST /mcp` that answers malformed JSON-RPC the way JSON-RPC 2.0 says:
//! HTTP 400 with a JSON-RPC error object, instead of the transport's plain-text 415.
//!
//! * a body that is not JSON: `-32700` (parse error), `id: null`;
//! * JSON that is not one JSON-RPC message a client may send (an array, a string, an object
//!   without `"jsonrpc": "2.0"`, a method with the wrong `params` shape): `-32600` (invalid
//!   request), with the message's `id` when it has a usable one;
//! * a `Content-Type` other than `application/json`: `-32600`, saying which type is needed.
//!
//! The body is parsed once, by the transport: the guard keeps a (shared, uncopied) handle on it and
//! looks closer only when the transport refuses it as undeserializable (its 415), answering that
//! refusal in JSON-RPC terms. The closer look uses rmcp's own message type, so what it accepts is
//! exactly what the transport can deserialize; requests for unknown methods still reach the server
//! and get its `-32601`. Other methods (`GET`, `DELETE`) pass untouched.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use rmcp::model::ClientJsonRpcMessage;
use serde_json::{json, Value};

/// JSON-RPC "Parse error": the body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC "Invalid Request": JSON, but not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;

/// The middleware: checks a `POST`'s content type, hands the request on unchanged, and turns the
/// transport's refusal of an undeserializable body into the JSON-RPC error. `max_body` bounds how
/// much is read (the router's body limit applies first in any case).
pub async fn guard(max_body: usize, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    if !is_json(req.headers().get(CONTENT_TYPE)) {
        return refuse(
            INVALID_REQUEST,
            "the request must be a JSON-RPC message sent with Content-Type: application/json",
            Value::Null,
        );
    }
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, max_body).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(error_body(
                    INVALID_REQUEST,
                    &format!("the request body is larger than {max_body} bytes"),
                    Value::Null,
                )),
            )
                .into_response()
        }
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    // The content type was right, so the transport could not deserialize the body: say why.
    match check(&bytes) {
        Err(refusal) => refuse(refusal.code, &refusal.message, refusal.id),
        Ok(()) => response,
    }
}

/// Why a body is not one JSON-RPC message: the JSON-RPC error to answer with.
#[derive(Debug)]
struct Refusal {
    code: i64,
    message: String,
    id: Value,
}

/// `Ok` when `body` is one JSON-RPC message a client may send, else the refusal.
fn check(body: &[u8]) -> Result<(), Refusal> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Refusal {
        code: PARSE_ERROR,
        message: format!("the body is not valid JSON: {e}"),
        id: Value::Null,
    })?;
    let reason = match &value {
        Value::Array(_) => {
            "a batch (JSON array) is not accepted: send one JSON-RPC message per request"
        }
        Value::Object(map) if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") => {
            "the message must be an object with \"jsonrpc\": \"2.0\""
        }
        Value::Object(_) => match serde_json::from_value::<ClientJsonRpcMessage>(value.clone()) {
            Ok(_) => return Ok(()),
            Err(_) => {
                "not a JSON-RPC request, notification or response a client may send (check \
                 `method`, `id` and the shape of `params`)"
            }
        },
        _ => "the message must be a JSON object",
    };
    Err(Refusal {
        code: INVALID_REQUEST,
        message: reason.to_string(),
        id: usable_id(&value),
    })
}

/// The message's `id` when it is a string or a number (JSON-RPC's rule for echoing it), else null.
fn usable_id(value: &Value) -> Value {
    match value.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    }
}

/// True for `application/json`, with or without parameters such as `charset`.
fn is_json(content_type: Option<&axum::http::HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn error_body(code: i64, message: &str, id: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

fn refuse(code: i64, message: &str, id: Value) -> Response {
    (StatusCode::BAD_REQUEST, Json(error_body(code, message, id))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn code_of(body: &str) -> Option<i64> {
        check(body.as_bytes()).err().map(|r| r.code)
    }

    #[test]
    fn valid_messages_pass_and_malformed_ones_are_refused() {
        assert_eq!(code_of(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), None);
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":"nosuch"}"#),
            None
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
        assert_eq!(code_of("not json"), Some(PARSE_ERROR));
        assert_eq!(code_of("[]"), Some(INVALID_REQUEST));
        assert_eq!(code_of(r#""x""#), Some(INVALID_REQUEST));
        assert_eq!(code_of(r#"{"foo":1}"#), Some(INVALID_REQUEST));
        assert_eq!(
            code_of(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            Some(INVALID_REQUEST)
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":5}"#),
            Some(INVALID_REQUEST)
        );
    }

    #[test]
    fn ids_are_echoed_only_when_usable() {
        assert_eq!(usable_id(&json!({"id": 7})), json!(7));
        assert_eq!(usable_id(&json!({"id": "a"})), json!("a"));
        assert_eq!(usable_id(&json!({"id": {"x": 1}})), Value::Null);
        assert_eq!(usable_id(&json!([1])), Value::Null);
    }

    #[test]
    fn content_types() {
        let ok = |s: &'static str| is_json(Some(&HeaderValue::from_static(s)));
        assert!(ok("application/json"));
        assert!(ok("application/json; charset=utf-8"));
        assert!(ok("Application/JSON"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/jsonx"));
        assert!(!is_json(None));
    }
}
