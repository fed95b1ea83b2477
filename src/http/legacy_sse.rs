//! The legacy HTTP+SSE MCP transport (protocol 2024-11-05) for older clients: `GET /mcp/sse`
//! opens a stream whose first event names the POST endpoint; `POST /mcp/message?sessionId=` feeds
//! client messages in. rmcp 3 dropped this transport, so it is built here over `serve_server`
//! with a Sink/Stream pair. A session belongs to the principal that opened it and ends when the
//! stream closes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures::{stream, SinkExt, Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use serde::Deserialize;
use tokio::sync::{mpsc, RwLock};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, PollSender};
use uuid::Uuid;

use super::auth::Caller;
use super::mcp::{self, HavenMcp, Selection};
use crate::app::AppState;

struct Session {
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    owner: Option<Uuid>,
    /// The toolsets / read-only / listing chosen at `GET /mcp/sse`, for every message of the session.
    selection: Selection,
}

type Sessions = Arc<RwLock<HashMap<String, Session>>>;

#[derive(Clone)]
struct Legacy {
    server: HavenMcp,
    sessions: Sessions,
    shutdown: CancellationToken,
}

/// `GET /mcp/sse` and `POST /mcp/message`.
pub fn routes(state: &Arc<AppState>, shutdown: CancellationToken) -> Router<Arc<AppState>> {
    let legacy = Legacy {
        server: HavenMcp::new(state.clone()),
        sessions: Arc::default(),
        shutdown,
    };
    Router::new()
        .route("/mcp/sse", get(open_stream))
        .route("/mcp/message", post(post_message))
        .layer(axum::middleware::from_fn(mcp::bind_selection))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            mcp::check_host_and_origin,
        ))
        .layer(Extension(legacy))
}

/// Removes the session when the client's stream is dropped, which ends the server loop.
struct SessionGuard {
    id: String,
    sessions: Sessions,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let (id, sessions) = (self.id.clone(), self.sessions.clone());
        tokio::spawn(async move {
            sessions.write().await.remove(&id);
        });
    }
}

async fn open_stream(
    Extension(legacy): Extension<Legacy>,
    Extension(caller): Extension<Caller>,
    Extension(selection): Extension<Selection>,
) -> Response {
    let id = Uuid::new_v4().simple().to_string();
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(64);
    let owner = caller.principal.as_ref().map(|p| p.user_id);
    legacy.sessions.write().await.insert(
        id.clone(),
        Session {
            to_server,
            owner,
            selection,
        },
    );

    let sink = PollSender::new(to_client).sink_map_err(std::io::Error::other);
    let server = legacy.server.clone();
    let ct = legacy.shutdown.child_token();
    tokio::spawn(async move {
        match rmcp::service::serve_server_with_ct(
            server,
            (sink, ReceiverStream::new(from_client)),
            ct,
        )
        .await
        {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => tracing::debug!("legacy SSE session ended before initialisation: {e}"),
        }
    });

    let guard = SessionGuard {
        id: id.clone(),
        sessions: legacy.sessions.clone(),
    };
    let endpoint = stream::once(async move {
        Ok(Event::default()
            .event("endpoint")
            .data(format!("/mcp/message?sessionId={id}")))
    });
    let messages = ReceiverStream::new(from_server).map(move |msg| {
        let _keep = &guard;
        let data = serde_json::to_string(&msg).unwrap_or_default();
        Ok::<_, Infallible>(Event::default().event("message").data(data))
    });
    let shutdown = legacy.shutdown.clone();
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(
        endpoint
            .chain(messages)
            .take_until(async move { shutdown.cancelled().await }),
    );
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[derive(Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

async fn post_message(
    State(state): State<Arc<AppState>>,
    Extension(legacy): Extension<Legacy>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<SessionQuery>,
    req: Request,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let Some((to_server, owner, selection)) = legacy
        .sessions
        .read()
        .await
        .get(&query.session_id)
        .map(|s| (s.to_server.clone(), s.owner, s.selection.clone()))
    else {
        return (StatusCode::NOT_FOUND, "unknown or closed session").into_response();
    };
    if owner != caller.principal.as_ref().map(|p| p.user_id) {
        return (
            StatusCode::FORBIDDEN,
            "this session belongs to another principal",
        )
            .into_response();
    }
    let bytes = match axum::body::to_bytes(body, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a JSON-RPC message: {e}"),
            )
                .into_response()
        }
    };
    // The session's selection, bound when it opened, governs every message (a POST's own query
    // cannot widen it).
    parts.extensions.insert(selection);
    message.insert_extension(parts);
    match to_server.send(message).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(_) => (StatusCode::GONE, "session closed").into_response(),
    }
}
