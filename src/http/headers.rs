//! Security headers on every response: no MIME sniffing, no referrer, never framed, and never
//! cached. HTML pages default to a self-only policy; handlers that need otherwise set their own
//! `Content-Security-Policy` or `Cache-Control` (the Swagger page allows its CDN scripts), and
//! those are kept.

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The policy of answers that are not HTML pages and set none of their own: an API answer loads
/// nothing and is never framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The policy of Haven's own HTML pages (`/live`) that set none: everything from Haven itself, no
/// inline script or style, no plugins, never framed.
pub const PAGE_CSP: &str =
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The middleware.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(if html {
            PAGE_CSP
        } else {
            API_CSP
        }));
    // Answers carry tokens (login, relogin, createApiKey) and personal data: no cache keeps them.
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}
