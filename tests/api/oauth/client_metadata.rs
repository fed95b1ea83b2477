//! Client ID Metadata Documents: an app that names itself by the https URL of its metadata
//! document signs a user in without registering; Haven fetches the document from a real TLS
//! server (its own certificate, trusted through `HAVEN_OAUTH_CLIENT_METADATA_CA_FILE`), caches
//! it, and refuses documents, hosts and answers that break the rules.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use haven::config::AnonymousMcp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{auth_params, authorize, code_for, exchange, PUBLIC, REDIRECT, VERIFIER};
use crate::helpers::{test_config, TestApp};

/// What the document server answers: status line, extra headers, body.
#[derive(Clone)]
struct Answer {
    status: &'static str,
    headers: Vec<String>,
    body: String,
}

/// An https server on 127.0.0.1 with a self-signed certificate for `localhost`, answering every
/// request with the current [`Answer`] and counting requests.
struct DocumentHost {
    port: u16,
    ca_file: std::path::PathBuf,
    answer: Arc<Mutex<Answer>>,
    hits: Arc<AtomicUsize>,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl DocumentHost {
    async fn start() -> DocumentHost {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let dir = std::env::temp_dir().join(format!("haven-cimd-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, cert.cert.pem()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = Arc::new(Mutex::new(Answer {
            status: "200 OK",
            headers: vec![],
            body: String::new(),
        }));
        let hits = Arc::new(AtomicUsize::new(0));
        let (a, h) = (answer.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, a, h) = (acceptor.clone(), a.clone(), h.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let answer = a.lock().unwrap().clone();
                    let mut head = format!(
                        "HTTP/1.1 {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                        answer.status,
                        answer.body.len()
                    );
                    for header in &answer.headers {
                        head.push_str(header);
                        head.push_str("\r\n");
                    }
                    head.push_str("\r\n");
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(answer.body.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        DocumentHost {
            port,
            ca_file,
            answer,
            hits,
            _dir: tempdir::Dir(dir),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    fn serve(&self, status: &'static str, headers: &[&str], body: Value) {
        *self.answer.lock().unwrap() = Answer {
            status,
            headers: headers.iter().map(|h| h.to_string()).collect(),
            body: body.to_string(),
        };
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Haven trusting the document host's certificate; `private_ok` lists `localhost` as a host whose
/// loopback address may be fetched.
async fn spawn(host: &DocumentHost, private_ok: bool) -> TestApp {
    let mut config = test_config();
    config.public_url = Some(PUBLIC.into());
    config.mcp_anonymous = AnonymousMcp::Explicit;
    config.oauth_client_metadata_ca_file = Some(host.ca_file.clone());
    if private_ok {
        config.oauth_client_metadata_private_hosts = vec!["localhost".into()];
    }
    TestApp::spawn_with(config).await
}

fn document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Test Connector",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

async fn clients(app: &TestApp, id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM oauth.clients WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_app_named_by_its_metadata_document_signs_in_without_registering() {
    let host = DocumentHost::start().await;
    let app = spawn(&host, true).await;
    let (_, meta) = app
        .rest(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            None,
            None,
        )
        .await;
    assert_eq!(meta["client_id_metadata_document_supported"], true);

    let client_id = host.url("/oauth/client.json");
    host.serve(
        "200 OK",
        &["cache-control: max-age=3600"],
        document(&client_id),
    );
    let user = app.user("cimd@haven.test").await;
    let code = code_for(&app, &client_id, &user, &[]).await;
    let (s, t) = exchange(&app, &client_id, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let access = t["access_token"].as_str().unwrap();
    let (err, me) = app.tool(Some(access), "getCurrentUser", json!({})).await;
    assert!(!err, "{me}");
    assert_eq!(me["email"], "cimd@haven.test");
    // The consent page named the site vouching for the app; the document is cached, not
    // fetched on every authorization.
    let page = authorize(&app, &auth_params(&client_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Test Connector (localhost)"), "{page}");
    assert_eq!(host.hits(), 1, "fetched once, then served from the cache");
    // The user sees it among their apps and can revoke it by its URL.
    let (s, apps) = app
        .rest(
            Method::GET,
            "/auth-api/v1/oauth/authorizedapps",
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{apps}");
    assert!(apps.to_string().contains(&client_id), "{apps}");

    // An expired copy is fetched again; a redirect URI the new document dropped is refused
    // with an error page, never a redirect.
    sqlx::query(
        "UPDATE oauth.clients SET metadata_expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(&client_id)
    .execute(&app.db)
    .await
    .unwrap();
    let mut moved = document(&client_id);
    moved["redirect_uris"] = json!(["http://127.0.0.1:9999/elsewhere"]);
    host.serve("200 OK", &[], moved);
    let resp = authorize(&app, &auth_params(&client_id, &[])).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
    assert_eq!(host.hits(), 2);

    // An admin's disabling survives the document's refresh.
    host.serve("200 OK", &[], document(&client_id));
    let admin = app.user_with_role("cimd-admin@haven.test", "admin").await;
    let (err, body) = app
        .tool(
            Some(&admin.token),
            "disableOAuthClient",
            json!({ "clientId": client_id }),
        )
        .await;
    assert!(!err, "{body}");
    sqlx::query(
        "UPDATE oauth.clients SET metadata_expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(&client_id)
    .execute(&app.db)
    .await
    .unwrap();
    let resp = authorize(&app, &auth_params(&client_id, &[])).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("not registered"));
}

#[tokio::test]
async fn documents_hosts_and_answers_that_break_the_rules_are_refused() {
    let host = DocumentHost::start().await;
    let app = spawn(&host, true).await;
    let cases: Vec<(&str, &'static str, Vec<&str>, Value, &str)> = vec![
        (
            "/names-another.json",
            "200 OK",
            vec![],
            document("https://elsewhere.example/client.json"),
            "not the URL it was fetched from",
        ),
        (
            "/secret.json",
            "200 OK",
            vec![],
            {
                let mut d = document(&host.url("/secret.json"));
                d["client_secret"] = json!("s3cret");
                d
            },
            "client secret",
        ),
        (
            "/redirects.json",
            "302 Found",
            vec!["location: https://localhost/other.json"],
            json!({}),
            "HTTP 302",
        ),
        (
            "/huge.json",
            "200 OK",
            vec![],
            {
                let mut d = document(&host.url("/huge.json"));
                d["padding"] = json!("x".repeat(20_000));
                d
            },
            "larger than",
        ),
        (
            "/unsafe-redirect.json",
            "200 OK",
            vec![],
            {
                let mut d = document(&host.url("/unsafe-redirect.json"));
                d["redirect_uris"] = json!(["javascript:alert(1)"]);
                d
            },
            "redirect",
        ),
    ];
    for (path, status, headers, body, why) in cases {
        let client_id = host.url(path);
        host.serve(status, &headers, body);
        let resp = authorize(&app, &auth_params(&client_id, &[])).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(resp.headers().get("location").is_none(), "{path}");
        let page = resp.text().await.unwrap();
        assert!(page.contains(why), "{path}: {page}");
        assert_eq!(clients(&app, &client_id).await, 0, "{path}: nothing stored");
    }
    // URLs the draft forbids are refused before any fetch.
    let before = host.hits();
    for bad in [
        format!("https://localhost:{}/", host.port),
        format!("https://localhost:{}/a/../client.json", host.port),
        format!("https://user:pw@localhost:{}/client.json", host.port),
    ] {
        let resp = authorize(&app, &auth_params(&bad, &[])).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(host.hits(), before);
}

#[tokio::test]
async fn a_document_on_a_private_address_is_not_fetched_unless_the_host_is_allowed() {
    let host = DocumentHost::start().await;
    let app = spawn(&host, false).await;
    let client_id = host.url("/oauth/client.json");
    host.serve("200 OK", &[], document(&client_id));
    let resp = authorize(&app, &auth_params(&client_id, &[])).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("not on the public internet"));
    assert_eq!(host.hits(), 0, "no request left Haven");
    assert_eq!(clients(&app, &client_id).await, 0);
}
