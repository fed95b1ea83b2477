//! The per-request trace span, with credentials taken out of the URL: the spec lets clients send
//! their token as the `access_token` query parameter, and a logged URL must never carry it.

use axum::extract::Request;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;

/// Query parameters whose values are credentials and are logged as `[redacted]`.
const SECRET_PARAMS: &[&str] = &["access_token", "api_key", "apikey", "token"];

/// The request tracing layer: tower-http's, with [`request_span`] instead of its default span
/// (which records the whole URI, query included).
pub fn layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, fn(&Request) -> Span> {
    TraceLayer::new_for_http().make_span_with(request_span as fn(&Request) -> Span)
}

/// A span with the method, the path and the query with credentials redacted.
pub fn request_span(req: &Request) -> Span {
    tracing::debug_span!(
        "request",
        method = %req.method(),
        uri = %redacted_uri(req.uri().path(), req.uri().query()),
        version = ?req.version(),
    )
}

/// `path?query` with the value of every credential parameter replaced by `[redacted]`; other
/// parameters stay as sent.
pub fn redacted_uri(path: &str, query: Option<&str>) -> String {
    let Some(query) = query else {
        return path.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let raw_key = pair.split('=').next().unwrap_or_default();
            let key: String = form_urlencoded::parse(raw_key.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or_default();
            if SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s)) {
                format!("{raw_key}=[redacted]")
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn credential_values_are_redacted() {
        assert_eq!(
            redacted_uri(
                "/currentuser",
                Some("access_token=eyJ.abc&city=Porto&%61ccess_token=x")
            ),
            "/currentuser?access_token=[redacted]&city=Porto&%61ccess_token=[redacted]"
        );
        assert_eq!(redacted_uri("/health", None), "/health");
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_query_token_never_reaches_the_log_even_at_trace_level() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = Router::new()
            .route("/currentuser", get(|| async { "ok" }))
            .layer(layer());
        let req = Request::builder()
            .uri("/currentuser?access_token=sk_haven_SECRET123&city=Porto")
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("city=Porto"), "the span was logged: {log}");
        assert!(!log.contains("SECRET123"), "{log}");
    }
}
