//! Cancellation for stateless Streamable HTTP. A 2025-era client cancels a call by POSTing
//! `notifications/cancelled` as a request of its own, which a stateless server would never route to
//! the call it names. Calls in flight are registered here by (caller, request id), and a layer in
//! front of `/mcp` cancels the named call when such a notification arrives from the same caller.
//! Replicas share nothing but Postgres, so a cancellation that finds no such call here is passed
//! on with `NOTIFY haven_mcp_cancel` and every replica's listener tries it locally.
//! (Stateful transports — stdio, legacy SSE — get this from rmcp itself; 2026-07-28 clients cancel
//! by closing the response stream, which rmcp turns into the same token.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::http::auth::Caller;
use haven_tools::pools::own_connection_pool;

/// Who a call belongs to: the user, or an anonymous caller's address.
pub fn caller_key(caller: &Caller) -> String {
    match &caller.principal {
        Some(p) => format!("user:{}", p.user_id),
        None => format!("ip:{}", caller.ip.as_deref().unwrap_or("?")),
    }
}

/// The channel replicas pass cancellations on.
pub const CANCEL_CHANNEL: &str = "haven_mcp_cancel";

/// The calls in flight in this process, by (caller key, JSON-RPC request id), and the pool that
/// passes cancellations on to the other replicas.
#[derive(Default, Clone)]
pub struct InFlight {
    calls: Arc<Mutex<HashMap<(String, String), CancellationToken>>>,
    pool: Option<PgPool>,
}

/// Removes its call from [`InFlight`] when the call ends.
pub struct Registration {
    inflight: InFlight,
    key: (String, String),
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.inflight.lock().remove(&self.key);
    }
}

impl InFlight {
    /// A registry that passes cancellations it cannot serve on to other replicas over `pool`.
    pub fn shared(pool: PgPool) -> Self {
        InFlight {
            calls: Arc::default(),
            pool: Some(pool),
        }
    }

    /// Follows [`CANCEL_CHANNEL`] until `stop`, cancelling the calls it names that run here;
    /// reconnects after a lost connection.
    pub async fn listen(self, stop: CancellationToken) {
        let Some(pool) = self.pool.clone() else {
            return;
        };
        while !stop.is_cancelled() {
            if let Ok(mut listener) = PgListener::connect_with(&own_connection_pool(&pool)).await {
                if listener.listen(CANCEL_CHANNEL).await.is_ok() {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            note = listener.recv() => match note {
                                Ok(note) => {
                                    if let Some((caller, id)) = note.payload().split_once('|') {
                                        self.cancel(caller, id);
                                    }
                                }
                                Err(_) => break,
                            },
                        }
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }

    /// Cancels the call here, or passes the cancellation on to the other replicas.
    async fn cancel_anywhere(&self, caller: &str, request_id: &str) {
        if self.cancel(caller, request_id) {
            return;
        }
        if let Some(pool) = &self.pool {
            let payload = format!("{caller}|{request_id}");
            if let Err(err) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CANCEL_CHANNEL)
                .bind(payload)
                .execute(pool)
                .await
            {
                tracing::debug!(%err, "could not pass an MCP cancellation on");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), CancellationToken>> {
        // The map stays consistent even if a holder panicked.
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a call so that a `notifications/cancelled` naming `request_id` from the same
    /// caller cancels `token`; the registration ends when the guard is dropped.
    pub fn register(
        &self,
        caller: String,
        request_id: String,
        token: CancellationToken,
    ) -> Registration {
        let key = (caller, request_id);
        self.lock().insert(key.clone(), token);
        Registration {
            inflight: self.clone(),
            key,
        }
    }

    /// Cancels the call `request_id` of `caller`; says whether one was running.
    pub fn cancel(&self, caller: &str, request_id: &str) -> bool {
        match self
            .lock()
            .get(&(caller.to_string(), request_id.to_string()))
        {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

/// The JSON form of a request id (`7` and `"7"` are different ids).
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

/// The layer: a POST whose body is a `notifications/cancelled` (alone or in a batch) cancels the
/// named call of the same caller, then goes on to rmcp as usual (which answers 202).
pub async fn intercept_cancel(
    State(inflight): State<InFlight>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => {
            return Response::builder()
                .status(axum::http::StatusCode::PAYLOAD_TOO_LARGE)
                .body(Body::from("request body too large"))
                .unwrap_or_default()
        }
    };
    if memchr::memmem::find(&bytes, b"notifications/cancelled").is_some() {
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
            let messages = match &value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            if let Some(caller) = parts.extensions.get::<Caller>() {
                let key = caller_key(caller);
                for m in messages {
                    if m.get("method").and_then(Value::as_str) == Some("notifications/cancelled") {
                        if let Some(id) = m.pointer("/params/requestId") {
                            tracing::info!(request_id = %id, "MCP call cancelled by the client");
                            inflight.cancel_anywhere(&key, &id_key(id)).await;
                        }
                    }
                }
            }
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
