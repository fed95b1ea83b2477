//! Security headers on every response: no MIME sniffing, no referrer, never framed, and never
//! cached. Handlers that need otherwise set their own `Content-Security-Policy` or `Cache-Control`
//! (the Swagger page allows its scripts), and those are kept.

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The policy of everything but pages that set their own: an API answer loads nothing and is
/// never framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The middleware.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(API_CSP));
    // Answers carry tokens (login, relogin, createApiKey) and personal data: no cache keeps them.
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}
