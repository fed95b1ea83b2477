//! Cross-site request forgery defence for requests authenticated by the `haven-access-token`
//! cookie (the one credential a browser attaches on its own). Such a request, when it can change
//! something (any method but GET, HEAD and OPTIONS), must
//!
//! - send a JSON body type (`Content-Type: application/json` or `…+json`): an HTML form or a
//!   "simple" cross-site `fetch` can only send `text/plain`, form-encoded or multipart bodies;
//! - come from an allowed origin: its `Origin` (or, without one, its `Referer`) is the server's own
//!   (the request's `Host`), one of `HAVEN_ALLOWED_ORIGINS`, or, when that list is empty, an origin
//!   on one of `HAVEN_ALLOWED_HOSTS`. A request with neither header is refused.
//!
//! A cookie-authenticated GET that changes state (`relogin`) must carry `X-Requested-With`, which
//! a cross-site navigation cannot send ([`state_changing_get_allowed`]). Requests authenticated by
//! `Authorization: Bearer`, the `haven-access-token` header or an API key are not affected: a
//! browser never adds those by itself.

use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN, REFERER};
use axum::http::{HeaderMap, Method};
use haven_tools::ToolError;

use super::guard::same_host;
use crate::config::Config;

/// The header a script sends to show a cookie-authenticated GET is not a cross-site navigation.
pub const REQUESTED_WITH: &str = "x-requested-with";

/// Whether `method` can change state (everything but GET, HEAD, OPTIONS and TRACE).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Checks a cookie-authenticated request that can change state; the error is a 403 saying what to
/// send instead.
pub fn check_cookie_mutation(headers: &HeaderMap, config: &Config) -> Result<(), ToolError> {
    if !is_json(headers) {
        return Err(ToolError::forbidden(
            "a change authenticated by the haven-access-token cookie must send Content-Type: application/json \
             (or send the token as Authorization: Bearer instead of the cookie)",
        ));
    }
    let origin = headers
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(origin_of)
        });
    let Some(origin) = origin else {
        return Err(ToolError::forbidden(
            "a change authenticated by the haven-access-token cookie must carry an Origin or Referer header \
             of this site (or send the token as Authorization: Bearer instead of the cookie)",
        ));
    };
    if !origin_allowed(&origin, headers, config) {
        return Err(ToolError::forbidden(format!(
            "cross-site request refused: origin {origin} may not make changes with the haven-access-token \
             cookie (allowed: this server's own origin and HAVEN_ALLOWED_ORIGINS)"
        )));
    }
    Ok(())
}

/// Whether a GET that changes state may run on the cookie: only with [`REQUESTED_WITH`] set.
pub fn state_changing_get_allowed(headers: &HeaderMap) -> Result<(), ToolError> {
    if headers.contains_key(REQUESTED_WITH) {
        return Ok(());
    }
    Err(ToolError::forbidden(
        "this GET changes your session: with the haven-access-token cookie it needs the X-Requested-With \
         header (or send the token as Authorization: Bearer)",
    ))
}

/// `application/json`, `application/<anything>+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// `scheme://authority` of a URL such as a `Referer`.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

fn origin_allowed(origin: &str, headers: &HeaderMap, config: &Config) -> bool {
    let Some((_, authority)) = origin.split_once("://") else {
        return false; // "null" (sandboxed frames, file:) and garbage
    };
    let own = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| host.eq_ignore_ascii_case(authority));
    if own {
        return true;
    }
    if !config.allowed_origins.is_empty() {
        return config
            .allowed_origins
            .iter()
            .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin));
    }
    config.allowed_hosts.iter().any(|a| same_host(authority, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn json_same_origin_passes_and_the_rest_is_refused() {
        let config = Config::loopback(1);
        let ok = [
            ("host", "127.0.0.1:8080"),
            ("content-type", "application/json; charset=utf-8"),
            ("origin", "http://127.0.0.1:8080"),
        ];
        assert!(check_cookie_mutation(&headers(&ok), &config).is_ok());
        let referer = [
            ("host", "haven.example"),
            ("content-type", "application/merge-patch+json"),
            ("referer", "https://haven.example/swagger?x=1"),
        ];
        assert!(check_cookie_mutation(&headers(&referer), &config).is_ok());
        for bad in [
            vec![
                ("host", "127.0.0.1:8080"),
                ("content-type", "text/plain"),
                ("origin", "http://127.0.0.1:8080"),
            ],
            vec![
                ("host", "127.0.0.1:8080"),
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "http://127.0.0.1:8080"),
            ],
            vec![
                ("host", "127.0.0.1:8080"),
                ("content-type", "application/json"),
                ("origin", "https://evil.example"),
            ],
            vec![
                ("host", "127.0.0.1:8080"),
                ("content-type", "application/json"),
                ("origin", "null"),
            ],
            vec![
                ("host", "127.0.0.1:8080"),
                ("content-type", "application/json"),
            ],
            vec![
                ("host", "127.0.0.1:8080"),
                ("content-type", "application/json"),
                ("referer", "https://evil.example/x"),
            ],
        ] {
            let err = check_cookie_mutation(&headers(&bad), &config).unwrap_err();
            assert_eq!(err.kind, haven_tools::ErrorKind::Forbidden, "{bad:?}");
        }
    }

    #[test]
    fn configured_origins_replace_the_allowed_hosts_rule() {
        let mut config = Config::loopback(1);
        config.allowed_origins = vec!["https://app.example/".into()];
        let from = |origin: &'static str| {
            headers(&[
                ("host", "api.example"),
                ("content-type", "application/json"),
                ("origin", origin),
            ])
        };
        assert!(check_cookie_mutation(&from("https://app.example"), &config).is_ok());
        assert!(check_cookie_mutation(&from("https://api.example"), &config).is_ok());
        assert!(check_cookie_mutation(&from("http://localhost:3000"), &config).is_err());
    }
}
