//! REST routes derived from the registry: each operation at its spec path, arguments gathered
//! from path, query string and JSON body into one object, answered in the spec's envelope.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{HeaderValue, SET_COOKIE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Router};
use haven_tools::context::Transport;
use haven_tools::registry::{CookieEffect, FieldKind, Method, Operation};
use haven_tools::{Ctx, ToolError};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

use super::auth::{Caller, TokenSource, TOKEN_NAME};
use super::csrf;
use super::envelope::{error_response, success_body, success_status, Echo};
use crate::app::AppState;

/// Query parameters every REST route accepts (conventions §4) that are not operation inputs.
const COMMON_QUERY: &[&str] = &[
    "getJoins",
    "excludeCQRS",
    "requestId",
    "caching",
    "cacheTTL",
    "access_token",
];

/// Every operation's route (and aliases), grouped by path.
pub fn routes(state: &AppState) -> Router<Arc<AppState>> {
    let mut by_path: BTreeMap<String, MethodRouter<Arc<AppState>>> = BTreeMap::new();
    for op in state.registry.all() {
        for route in op.rest_routes() {
            let method = route.method;
            let path = route.path.clone();
            let bound = route.bound.clone();
            let op = op.clone();
            let handler = move |State(state): State<Arc<AppState>>,
                                Extension(caller): Extension<Caller>,
                                path: Option<Path<HashMap<String, String>>>,
                                RawQuery(query): RawQuery,
                                headers: HeaderMap,
                                body: Bytes| async move {
                let mut params = path.map(|Path(p)| p).unwrap_or_default();
                // A route that fixes a field (`/ReservationDetailView/list`) wins over the request.
                if let Some((field, value)) = &bound {
                    params.insert(field.to_string(), value.clone());
                }
                if let Err(err) = cookie_get_allowed(&op, &caller, &headers) {
                    return error_response(&err).into_response();
                }
                call(&state, &op, caller, params, query, body).await
            };
            let filter = match method {
                Method::Get => MethodFilter::GET,
                Method::Post => MethodFilter::POST,
                Method::Patch => MethodFilter::PATCH,
                Method::Delete => MethodFilter::DELETE,
            };
            let methods = by_path.remove(&path).unwrap_or_default();
            by_path.insert(path, methods.merge(on(filter, handler)));
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, route)| {
            router.route(&path, route)
        })
}

/// A GET that changes state (`relogin`) authenticated by the cookie needs proof it is not a
/// cross-site navigation (see [`super::csrf`]); other methods are checked by the auth middleware.
fn cookie_get_allowed(
    op: &Operation,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<(), ToolError> {
    if op.method == Method::Get
        && !op.annotations.read_only
        && caller.credential == Some(TokenSource::Cookie)
    {
        return csrf::state_changing_get_allowed(headers);
    }
    Ok(())
}

async fn call(
    state: &AppState,
    op: &Operation,
    caller: Caller,
    path: HashMap<String, String>,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let mut request_id = None;
    let args = match gather_args(op, path, query.as_deref(), &body, &mut request_id) {
        Ok(args) => args,
        Err(err) => return error_response(&err).into_response(),
    };
    let request_id = request_id.unwrap_or_else(|| Uuid::new_v4().simple().to_string());
    let echo_user = caller.principal.as_ref().map(|p| p.user_id.to_string());
    let echo_session = caller
        .principal
        .as_ref()
        .and_then(|p| p.session_id())
        .map(|s| s.to_string());
    let ctx = Ctx::new(
        state.services.clone(),
        caller.principal,
        request_id.clone(),
        caller.ip,
    )
    .with_languages(caller.languages)
    .via(Transport::Rest);
    match op.invoke(ctx, Value::Object(args)).await {
        Err(err) => error_response(&err).into_response(),
        Ok(output) => {
            let cookie = cookie_for(op.cookie, &output);
            let echo = Echo {
                request_id: &request_id,
                user_id: echo_user,
                session_id: echo_session,
                elapsed_ms: started.elapsed().as_millis(),
            };
            let mut resp =
                (success_status(op), Json(success_body(op, output, echo))).into_response();
            if let Some((cookie, token)) = cookie {
                resp.headers_mut().insert(SET_COOKIE, cookie);
                if let Some(token) = token {
                    resp.headers_mut().insert(TOKEN_NAME, token);
                }
            }
            resp
        }
    }
}

/// The `Set-Cookie` (and token header) a login or logout answers with.
fn cookie_for(effect: CookieEffect, output: &Value) -> Option<(HeaderValue, Option<HeaderValue>)> {
    match effect {
        CookieEffect::None => None,
        CookieEffect::Clear => HeaderValue::from_str(&format!(
            "{TOKEN_NAME}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0"
        ))
        .ok()
        .map(|c| (c, None)),
        CookieEffect::Set => {
            let token = output.get("accessToken")?.as_str()?;
            let max_age = output.get("expiresIn").and_then(Value::as_i64).unwrap_or(0);
            let cookie = HeaderValue::from_str(&format!(
                "{TOKEN_NAME}={token}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age}"
            ))
            .ok()?;
            Some((cookie, HeaderValue::from_str(token).ok()))
        }
    }
}

/// Merges JSON body, query string and path parameters into the operation's argument object.
/// Query values are coerced to the declared field types (repeated keys become arrays).
fn gather_args(
    op: &Operation,
    path: HashMap<String, String>,
    query: Option<&str>,
    body: &[u8],
    request_id: &mut Option<String>,
) -> Result<Map<String, Value>, ToolError> {
    // An absent body is an empty object; "absent" is JSON's own white space only (RFC 8259:
    // space, tab, LF, CR), so a form feed or other byte is parsed, and refused, as JSON.
    let mut args = if body
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(ToolError::bad_input(
                    "the request body must be a JSON object",
                ))
            }
            Err(e) => {
                return Err(ToolError::bad_input(format!(
                    "the request body is not valid JSON: {e}"
                )))
            }
        }
    };
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "requestId" {
            *request_id = Some(
                value
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(64)
                    .collect(),
            );
        }
        if COMMON_QUERY.contains(&key.as_ref()) {
            continue;
        }
        seen.entry(key.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    for (key, mut values) in seen {
        let kind = op.fields().get(&key).copied().unwrap_or(FieldKind::String);
        let value = match kind {
            FieldKind::List if values.len() > 1 => {
                Value::Array(values.into_iter().map(Value::String).collect())
            }
            _ if values.len() > 1 => {
                return Err(ToolError::field(
                    key,
                    "takes a single value but was repeated in the query string",
                ))
            }
            _ => coerce(kind, values.remove(0)),
        };
        args.insert(key, value);
    }
    for (key, value) in path {
        args.insert(key, Value::String(value));
    }
    Ok(args)
}

/// Turns a query-string value into the JSON type the field declares; values that do not parse stay
/// strings so the input parser reports the field with a clear type error.
fn coerce(kind: FieldKind, raw: String) -> Value {
    match kind {
        FieldKind::Integer => raw
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(raw)),
        FieldKind::Number => raw
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(raw)),
        FieldKind::Boolean => match raw.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw),
        },
        FieldKind::String | FieldKind::List => Value::String(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_coerced_by_declared_kind() {
        assert_eq!(coerce(FieldKind::Integer, "7".into()), Value::from(7));
        assert_eq!(
            coerce(FieldKind::Integer, "x".into()),
            Value::String("x".into())
        );
        assert_eq!(coerce(FieldKind::Boolean, "true".into()), Value::Bool(true));
        assert_eq!(
            coerce(FieldKind::String, "7".into()),
            Value::String("7".into())
        );
    }

    #[test]
    fn repeated_list_keys_become_arrays_and_path_wins() {
        let op = haven_tools::Registry::global().get("listUsers").unwrap();
        let mut rid = None;
        let args = gather_args(
            op,
            HashMap::new(),
            Some("email=a&email=b&pageNumber=2&requestId=abc"),
            b"",
            &mut rid,
        )
        .unwrap();
        assert_eq!(args["email"], serde_json::json!(["a", "b"]));
        assert_eq!(args["pageNumber"], serde_json::json!(2));
        assert_eq!(rid.as_deref(), Some("abc"));
        let op = haven_tools::Registry::global().get("getUser").unwrap();
        let err = gather_args(op, HashMap::new(), None, b"[1]", &mut rid).unwrap_err();
        assert!(err.message.contains("JSON object"));
    }
}
