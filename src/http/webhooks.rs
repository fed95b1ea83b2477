//! `POST /bookingmanagement-api/v1/webhooks/stripe`: the payment provider's signed webhooks. This
//! is a route of its own (not a registry operation) because the signature covers the raw body,
//! which must reach the verifier byte for byte.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use axum::Router;
use haven_tools::booking::payments::flow;
use serde_json::json;

use super::envelope::error_response;
use crate::app::AppState;

/// The webhook route.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/bookingmanagement-api/v1/webhooks/stripe", post(receive))
}

async fn receive(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    match flow::handle_webhook(&state.services, &body, signature).await {
        Ok(outcome) => Json(json!({ "received": true, "outcome": outcome })).into_response(),
        Err(err) => error_response(&err).into_response(),
    }
}
