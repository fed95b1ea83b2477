//! DNS-rebinding guard for the MCP endpoints we serve ourselves (legacy SSE): the Host must be an
//! allowed host, and a browser Origin must be allowed or sit on an allowed host.

use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;

/// True when the request's Host and Origin pass.
pub fn host_and_origin_allowed(
    headers: &HeaderMap,
    allowed_hosts: &[String],
    allowed_origins: &[String],
) -> bool {
    let host_ok = match headers.get(HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => allowed_hosts.is_empty() || allowed_hosts.iter().any(|a| same_host(host, a)),
        None => false,
    };
    let origin_ok = match headers.get(ORIGIN).and_then(|h| h.to_str().ok()) {
        None => true,
        Some(origin) if !allowed_origins.is_empty() => allowed_origins
            .iter()
            .any(|a| a.trim_end_matches('/') == origin),
        Some(origin) => {
            let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            allowed_hosts.iter().any(|a| same_host(authority, a))
        }
    };
    host_ok && origin_ok
}

/// Compares `authority` (host[:port]) with an allowed entry (host or host:port).
pub(crate) fn same_host(authority: &str, allowed: &str) -> bool {
    let (host, port) = split_authority(authority);
    let (a_host, a_port) = split_authority(allowed);
    host.eq_ignore_ascii_case(a_host) && (a_port.is_none() || a_port == port)
}

fn split_authority(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        // [::1]:8080
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':'));
    }
    if s.matches(':').count() > 1 {
        return (s, None); // bare IPv6
    }
    match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn hosts_and_origins() {
        let hosts = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        assert!(host_and_origin_allowed(
            &headers("127.0.0.1:8080", None),
            &hosts,
            &[]
        ));
        assert!(host_and_origin_allowed(
            &headers("[::1]:8080", None),
            &hosts,
            &[]
        ));
        assert!(!host_and_origin_allowed(
            &headers("evil.example", None),
            &hosts,
            &[]
        ));
        assert!(host_and_origin_allowed(
            &headers("localhost:8080", Some("http://localhost:3000")),
            &hosts,
            &[]
        ));
        assert!(!host_and_origin_allowed(
            &headers("localhost:8080", Some("https://evil.example")),
            &hosts,
            &[]
        ));
        let origins = vec!["https://app.example".to_string()];
        assert!(host_and_origin_allowed(
            &headers("localhost", Some("https://app.example")),
            &hosts,
            &origins
        ));
        assert!(!host_and_origin_allowed(
            &headers("localhost", Some("http://localhost")),
            &hosts,
            &origins
        ));
    }
}
