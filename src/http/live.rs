//! `GET /live`: a small page (plain HTML, CSS and JavaScript served by Haven itself; no build step,
//! no CDN) where a person signs in and watches the changes that concern them arrive over
//! `GET /events`, and runs an agent while its stream arrives. The event types it listens for come
//! from the registry: every operation that changes something.

use std::sync::Arc;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::app::AppState;

const PAGE: &str = include_str!("live.html");
const STYLE: &str = include_str!("live.css");
const SCRIPT: &str = include_str!("live.js");

/// `GET /live`, `/live.css`, `/live.js`.
pub fn routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let kinds: Vec<&str> = state
        .registry
        .all()
        .filter(|op| !op.annotations.read_only)
        .map(|op| op.name)
        .collect();
    let script = SCRIPT.replace(
        "/*KINDS*/[]",
        &serde_json::to_string(&kinds).unwrap_or_else(|_| "[]".into()),
    );
    Router::new()
        .route(
            "/live",
            get(|| async { ([(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }),
        )
        .route(
            "/live.css",
            get(|| async { ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route(
            "/live.js",
            get(move || {
                let script = script.clone();
                async move {
                    (
                        [
                            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
                            (CACHE_CONTROL, "no-cache"),
                        ],
                        script,
                    )
                        .into_response()
                }
            }),
        )
}
