//! Client ID Metadata Documents (MCP authorization 2025-11-25 and later;
//! draft-ietf-oauth-client-id-metadata-document): a client may skip registration and use an
//! `https` URL as its `client_id`; Haven fetches the JSON document at that URL, checks that it
//! names itself (`client_id` equal to the URL) and lists the redirect URIs, and keeps it as an
//! `oauth.clients` row (so codes, grants, the user's "authorized apps" and an admin's disabling
//! work exactly as for registered clients) until its cache lifetime runs out.
//!
//! Fetching a URL a stranger chose is a server-side request, so it is bounded: `https` only, no
//! credentials, fragments or dot segments in the URL, the host's addresses must all be public
//! (loopback, private, link-local and similar ranges are refused unless the host is listed in
//! `HAVEN_OAUTH_CLIENT_METADATA_PRIVATE_HOSTS`), the connection is pinned to the checked address
//! (no DNS rebinding between check and fetch), no redirects followed, a 5-second timeout, at most
//! [`MAX_DOCUMENT_BYTES`], and at most [`MAX_CONCURRENT_FETCHES`] fetches at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use url::Url;

use super::register::{check_redirect_uri, MAX_REDIRECT_URIS};
use crate::app::AppState;

/// Largest accepted metadata document.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// Longest accepted `client_id` URL.
pub const MAX_URL_LEN: usize = 255;
/// Fetches in flight at once, process-wide.
pub const MAX_CONCURRENT_FETCHES: usize = 4;
/// How long a document is kept without `Cache-Control: max-age`, and the bounds of a max-age.
const DEFAULT_TTL_SECS: u64 = 3600;
const MIN_TTL_SECS: u64 = 300;
const MAX_TTL_SECS: u64 = 24 * 3600;

static FETCHES: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(MAX_CONCURRENT_FETCHES));

/// Whether `client_id` claims to be a metadata document URL (an `https` URL); such ids are never
/// issued by registration (those are `haven-…`).
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// The URL rules of the draft (§3): https, a path beyond `/`, no fragment, no user info, no
/// `.`/`..` segments, bounded length.
pub fn check_url(client_id: &str) -> Result<Url, String> {
    if client_id.len() > MAX_URL_LEN {
        return Err(format!(
            "the client_id URL is longer than {MAX_URL_LEN} characters"
        ));
    }
    let raw_path = client_id
        .strip_prefix("https://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    if raw_path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .split('/')
        .any(|seg| seg == "." || seg == "..")
    {
        return Err("the client_id URL must not contain . or .. path segments".into());
    }
    let url = Url::parse(client_id).map_err(|_| "the client_id is not a valid URL".to_string())?;
    if url.scheme() != "https" {
        return Err("a client_id URL must use https".into());
    }
    if url.fragment().is_some() {
        return Err("the client_id URL must not have a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the client_id URL must not carry a user name or password".into());
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(
            "the client_id URL must have a path (e.g. https://app.example/oauth/client.json)"
                .into(),
        );
    }
    if url.host_str().is_none() {
        return Err("the client_id URL has no host".into());
    }
    Ok(url)
}

/// Whether `ip` is an address on the public internet (not loopback, private, link-local,
/// carrier-grade NAT, unique-local, documentation, multicast, unspecified or broadcast).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// A checked metadata document: what `oauth.clients` keeps of it.
#[derive(Debug, PartialEq)]
pub struct ClientDocument {
    /// The name to show on the consent page (the URL's host when the document has none).
    pub client_name: String,
    /// The redirect URIs it lists.
    pub redirect_uris: Vec<String>,
    /// The document as fetched.
    pub metadata: Value,
}

/// Checks a fetched document against the URL it came from (§4): a JSON object whose
/// `client_id` is exactly that URL, with redirect URIs Haven would accept at registration, for a
/// public client (no secret; `token_endpoint_auth_method` absent or `none`).
pub fn check_document(url: &str, body: &[u8]) -> Result<ClientDocument, String> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|_| "the client metadata document is not JSON".to_string())?;
    let Some(obj) = doc.as_object() else {
        return Err("the client metadata document is not a JSON object".into());
    };
    if obj.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(
            "the client metadata document's client_id is not the URL it was fetched from".into(),
        );
    }
    if obj.contains_key("client_secret") || obj.contains_key("client_secret_expires_at") {
        return Err("a client metadata document must not contain a client secret".into());
    }
    match obj
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
    {
        None | Some("none") => {}
        Some(other) => {
            return Err(format!(
            "token_endpoint_auth_method `{}` is not supported; Haven serves public clients (none)",
            other.chars().take(40).collect::<String>()
        ))
        }
    }
    if let Some(grants) = obj.get("grant_types") {
        let ok = grants
            .as_array()
            .is_some_and(|g| g.iter().any(|v| v == "authorization_code"));
        if !ok {
            return Err("grant_types must include authorization_code".into());
        }
    }
    let uris: Vec<String> = obj
        .get("redirect_uris")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if uris.is_empty() {
        return Err("the client metadata document lists no redirect_uris".into());
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(format!(
            "the client metadata document lists more than {MAX_REDIRECT_URIS} redirect_uris"
        ));
    }
    for uri in &uris {
        check_redirect_uri(uri).map_err(|why| {
            format!("the client metadata document lists a redirect URI Haven refuses: {why}")
        })?;
    }
    let host = Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let client_name = obj
        .get("client_name")
        .and_then(Value::as_str)
        .map(|n| n.trim().chars().take(100).collect::<String>())
        .filter(|n| !n.is_empty())
        .unwrap_or(host);
    Ok(ClientDocument {
        client_name,
        redirect_uris: uris,
        metadata: doc,
    })
}

/// The cache lifetime a response's `Cache-Control` asks for, within Haven's bounds.
fn ttl_of(headers: &reqwest::header::HeaderMap) -> u64 {
    let max_age = headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok())
        });
    max_age
        .unwrap_or(DEFAULT_TTL_SECS)
        .clamp(MIN_TTL_SECS, MAX_TTL_SECS)
}

/// Makes sure `oauth.clients` holds a fresh copy of the document at `client_id`, fetching it
/// when there is none or it expired. An admin's disabling survives a refresh. The error is a
/// sentence for the error page.
pub async fn ensure_fresh(state: &AppState, client_id: &str) -> Result<(), String> {
    let config = &state.config;
    if !config.oauth_client_metadata {
        return Err("this Haven does not accept client metadata document URLs as client_id; register the app instead".into());
    }
    let db = &state.services.db;
    let fresh: Option<bool> = sqlx::query_scalar(
        "SELECT metadata_expires_at > now() FROM oauth.clients WHERE id = $1 AND metadata_document",
    )
    .bind(client_id)
    .fetch_optional(db)
    .await
    .map_err(|e| {
        tracing::error!(%e, "loading a client metadata document");
        "Haven failed; try again.".to_string()
    })?;
    if fresh == Some(true) {
        return Ok(());
    }
    let url = check_url(client_id)?;
    let (doc, ttl) = fetch(state, &url, client_id).await?;
    sqlx::query(
        "INSERT INTO oauth.clients (id, client_name, redirect_uris, scope, metadata, metadata_document, metadata_expires_at)
         VALUES ($1, $2, $3, $4, $5, true, now() + make_interval(secs => $6))
         ON CONFLICT (id) DO UPDATE SET client_name = EXCLUDED.client_name, redirect_uris = EXCLUDED.redirect_uris,
             metadata = EXCLUDED.metadata, metadata_expires_at = EXCLUDED.metadata_expires_at
         WHERE oauth.clients.metadata_document",
    )
    .bind(client_id)
    .bind(&doc.client_name)
    .bind(&doc.redirect_uris)
    .bind(super::SCOPES.join(" "))
    .bind(&doc.metadata)
    .bind(ttl as f64)
    .execute(db)
    .await
    .map_err(|e| {
        tracing::error!(%e, "storing a client metadata document");
        "Haven failed; try again.".to_string()
    })?;
    Ok(())
}

/// Fetches and checks the document (see the module's bounds); returns it and its cache lifetime.
async fn fetch(
    state: &AppState,
    url: &Url,
    client_id: &str,
) -> Result<(ClientDocument, u64), String> {
    let config = &state.config;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let unreachable = || format!("Haven could not fetch the app's metadata document from {host}");
    let _permit = tokio::time::timeout(Duration::from_secs(5), FETCHES.acquire())
        .await
        .map_err(|_| unreachable())?
        .map_err(|_| unreachable())?;
    let lookup = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .map_err(|_| unreachable())?
    .map_err(|_| unreachable())?;
    let addrs: Vec<SocketAddr> = lookup.collect();
    let private_ok = config
        .oauth_client_metadata_private_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&host));
    if addrs.is_empty() || (!private_ok && addrs.iter().any(|a| !is_public(a.ip()))) {
        return Err(format!(
            "the app's metadata document host {host} is not on the public internet"
        ));
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .user_agent("Haven OAuth (client metadata)")
        .resolve(&host, addrs[0]);
    if let Some(path) = &config.oauth_client_metadata_ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            tracing::error!(%e, path = %path.display(), "reading HAVEN_OAUTH_CLIENT_METADATA_CA_FILE");
            unreachable()
        })?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|_| unreachable())?;
        builder = builder.add_root_certificate(cert);
    }
    let client = builder.build().map_err(|_| unreachable())?;
    let mut resp = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| {
            tracing::info!(%e, %host, "fetching a client metadata document");
            unreachable()
        })?;
    if !resp.status().is_success() {
        return Err(format!(
            "the app's metadata document answered HTTP {} (redirects are not followed)",
            resp.status().as_u16()
        ));
    }
    let ttl = ttl_of(resp.headers());
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| unreachable())? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(format!(
                "the app's metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"
            ));
        }
    }
    Ok((check_document(client_id, &body)?, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_id_urls_follow_the_drafts_rules() {
        assert!(check_url("https://app.example/oauth/client.json").is_ok());
        for bad in [
            "http://app.example/client.json",
            "https://app.example",
            "https://app.example/",
            "https://app.example/a/../client.json",
            "https://app.example/./client.json",
            "https://user:pw@app.example/client.json",
            "https://app.example/client.json#x",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        let long = format!("https://app.example/{}", "a".repeat(300));
        assert!(check_url(&long).is_err());
    }

    #[test]
    fn only_public_addresses_are_fetched() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_document_must_name_itself_and_list_acceptable_redirects() {
        let url = "https://app.example/client.json";
        let good = json!({ "client_id": url, "client_name": "App", "redirect_uris": ["http://127.0.0.1:3000/cb"] });
        let doc = check_document(url, good.to_string().as_bytes()).unwrap();
        assert_eq!(doc.client_name, "App");
        let cases = [
            json!({ "client_id": "https://other.example/client.json", "redirect_uris": ["http://127.0.0.1/cb"] }),
            json!({ "client_id": url, "redirect_uris": [] }),
            json!({ "client_id": url, "redirect_uris": ["javascript:alert(1)"] }),
            json!({ "client_id": url, "redirect_uris": ["http://127.0.0.1/cb"], "client_secret": "s" }),
            json!({ "client_id": url, "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "client_secret_basic" }),
            json!({ "client_id": url, "redirect_uris": ["http://127.0.0.1/cb"], "grant_types": ["implicit"] }),
            json!(["not", "an", "object"]),
        ];
        for case in cases {
            assert!(
                check_document(url, case.to_string().as_bytes()).is_err(),
                "{case}"
            );
        }
        let unnamed = json!({ "client_id": url, "redirect_uris": ["http://127.0.0.1/cb"] });
        assert_eq!(
            check_document(url, unnamed.to_string().as_bytes())
                .unwrap()
                .client_name,
            "app.example"
        );
    }
}
