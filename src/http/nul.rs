//! Refuses NUL characters (`%00`) in a request's URL before anything reads it: Postgres text cannot
//! hold one, so a NUL in a path segment or query value would otherwise fail deep inside a query.
//! Arguments in bodies are checked by the registry ([`haven_tools::registry::reject_nul`]).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use haven_tools::ToolError;

use super::envelope::error_response;

/// The middleware: 400 naming the query parameter (or the path) that carries a NUL.
pub async fn refuse_nul_in_url(req: Request, next: Next) -> Response {
    match check(req.uri().path(), req.uri().query()) {
        Ok(()) => next.run(req).await,
        Err(err) => error_response(&err).into_response(),
    }
}

fn check(path: &str, query: Option<&str>) -> Result<(), ToolError> {
    // A URI cannot carry a raw NUL, and `%` never follows an escape's hex digits, so every `%00`
    // in a path is an escaped NUL.
    if path.contains("%00") {
        return Err(ToolError::bad_input(
            "the URL path must not contain NUL characters (%00)",
        ));
    }
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key.contains('\0') {
            return Err(ToolError::bad_input(
                "query parameter names must not contain NUL characters (%00)",
            ));
        }
        if value.contains('\0') {
            return Err(ToolError::field(
                key.into_owned(),
                "must not contain NUL characters (%00)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn nul_in_a_query_value_names_the_parameter() {
        let err = check("/propertycatalog-api/v1/listings", Some("city=%00")).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("city"));
        assert!(err.message.contains("NUL"), "{}", err.message);
        assert!(check("/x/%00/y", None).is_err());
        assert!(check("/x/%2500", Some("city=Lisbon&q=%2500")).is_ok());
        assert!(check("/x/%0", Some("a")).is_ok());
    }
}
