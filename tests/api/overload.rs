//! Connections, load and overload, from the refused side: slow and idle clients are cut, clients
//! past the connection cap get a quick 503 while others are still served, a slow request is
//! stopped, an exhausted pool or an unreachable database answers 503 with Retry-After (MCP:
//! `Unavailable:`), and a crowd of logins neither fails the API nor breaks it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::helpers::*;

const LISTINGS: &str = "/propertycatalog-api/v1/listings";

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes (Ok(bytes read)) or `limit` passes (Err).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, ()> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, stream.read(&mut buf)).await {
            Err(_) => return Err(()),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// A client that never finishes its headers is disconnected after the header-read timeout, and one
/// that sends nothing at all after the idle timeout.
#[tokio::test]
async fn slow_header_and_idle_connections_are_closed() {
    let mut config = test_config();
    config.header_read_timeout_secs = 1;
    config.idle_timeout_secs = 30;
    let app = TestApp::spawn_with(config).await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let closed = read_until_closed(&mut slow, Duration::from_secs(6)).await;
    println!(
        "slow-header connection closed after {:?}",
        started.elapsed()
    );
    assert!(
        closed.is_ok(),
        "a half-sent request must not hold its connection"
    );

    let mut config = test_config();
    config.header_read_timeout_secs = 60;
    config.idle_timeout_secs = 1;
    let app = TestApp::spawn_with(config).await;
    let started = Instant::now();
    let mut idle = TcpStream::connect(addr(&app)).await.unwrap();
    let closed = read_until_closed(&mut idle, Duration::from_secs(6)).await;
    println!("idle connection closed after {:?}", started.elapsed());
    assert!(closed.is_ok(), "an idle connection must not be held open");
}

/// With the cap reached, a new client gets a 503 with Retry-After at once, and the server answers
/// again as soon as connections free up.
#[tokio::test]
async fn connections_past_the_cap_get_503_and_others_are_served_after() {
    let mut config = test_config();
    config.max_connections = 4;
    config.header_read_timeout_secs = 60;
    config.idle_timeout_secs = 60;
    let app = TestApp::spawn_with(config).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    };
    let started = Instant::now();
    let refused = fresh()
        .get(format!("{}/health", app.base))
        .send()
        .await
        .expect("a refusal, not a hang or a reset");
    println!("refusal past the cap took {:?}", started.elapsed());
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let served = fresh()
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
}

/// A request whose body never arrives is stopped after the request timeout with a 503, while an
/// SSE stream opened on the same server outlives that timeout.
#[tokio::test]
async fn a_stalled_request_times_out_but_sse_streams_stay_open() {
    let mut config = test_config();
    config.request_timeout_secs = 1;
    // The request timeout is never shorter than runAgent's wait plus 5 s.
    config.agent_run_wait_ms = 0;
    let app = TestApp::spawn_with(config).await;
    let mut stalled = TcpStream::connect(addr(&app)).await.unwrap();
    stalled
        .write_all(
            b"POST /auth-api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        let n = timeout(Duration::from_secs(6), stalled.read(&mut buf))
            .await
            .expect("a stalled request must be answered, not held")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    println!("stalled request answered after {:?}", started.elapsed());
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after:"), "{answer}");

    let mut sse = TcpStream::connect(addr(&app)).await.unwrap();
    sse.write_all(b"GET /mcp/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let n = timeout(Duration::from_secs(5), sse.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Still open past the request timeout: a read waits (or gets an event) instead of EOF.
    match timeout(Duration::from_millis(300), sse.read(&mut buf)).await {
        Err(_) => {}
        Ok(Ok(n)) => assert!(n > 0, "the SSE stream was closed by the request timeout"),
        Ok(Err(e)) => panic!("the SSE stream broke: {e}"),
    }
}

/// Every pooled connection taken: REST answers 503 with Retry-After and MCP `Unavailable:`, not
/// 500; once connections are back, calls succeed again.
#[tokio::test]
async fn an_exhausted_pool_answers_503_with_retry_after() {
    let mut config = test_config();
    config.db_max_connections = 2;
    config.db_acquire_timeout_ms = 300;
    let app = TestApp::spawn_with(config).await;
    // Take every connection the pool will give (the agent hub's NOTIFY listener holds one).
    let mut held = Vec::new();
    while let Ok(conn) = app.state.services.db.acquire().await {
        held.push(conn);
    }
    assert!(!held.is_empty());
    let resp = app
        .http
        .get(format!("{}{LISTINGS}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errorKind"], "Unavailable", "{body}");
    let (is_error, text) = app.tool(None, "listListings", json!({})).await;
    assert!(is_error);
    assert!(text.as_str().unwrap().starts_with("Unavailable:"), "{text}");
    drop(held);
    let (status, _) = app.rest(Method::GET, LISTINGS, None, None).await;
    assert_eq!(status, StatusCode::OK);
}

/// A socket proxy between the server's pool and Postgres that the test can cut (the listening
/// socket goes away and open links are dropped, as when the database host dies) and restore.
struct DbProxy {
    listen: Listen,
    upstream: Arc<Mutex<Option<PgConnectOptions>>>,
    accepting: Option<JoinHandle<()>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

#[derive(Clone)]
enum Listen {
    Unix(PathBuf),
    Tcp(std::net::SocketAddr),
}

impl DbProxy {
    fn new() -> DbProxy {
        DbProxy {
            listen: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
            upstream: Arc::default(),
            accepting: None,
            links: Arc::default(),
        }
    }

    /// Points `options` at the proxy (same kind of socket as the real one) and starts it.
    fn route(&mut self, options: PgConnectOptions) -> PgConnectOptions {
        *self.upstream.lock().unwrap() = Some(options.clone());
        let routed = if options.get_socket().is_some() {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
                "px{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!(".s.PGSQL.{}", options.get_port()));
            self.listen = Listen::Unix(file);
            options.socket(&dir)
        } else {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let at = probe.local_addr().unwrap();
            drop(probe);
            self.listen = Listen::Tcp(at);
            options.host("127.0.0.1").port(at.port())
        };
        self.up();
        routed
    }

    fn up(&mut self) {
        let upstream = self.upstream.lock().unwrap().clone().unwrap();
        let links = self.links.clone();
        let target = upstream
            .get_socket()
            .map(|dir| dir.join(format!(".s.PGSQL.{}", upstream.get_port())));
        let host = format!("{}:{}", upstream.get_host(), upstream.get_port());
        let task = match self.listen.clone() {
            Listen::Unix(file) => {
                let _ = std::fs::remove_file(&file);
                let listener = tokio::net::UnixListener::bind(&file).unwrap();
                tokio::spawn(async move {
                    while let Ok((mut client, _)) = listener.accept().await {
                        let target = target.clone().unwrap();
                        links.lock().unwrap().push(tokio::spawn(async move {
                            if let Ok(mut server) = tokio::net::UnixStream::connect(target).await {
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        }));
                    }
                })
            }
            Listen::Tcp(at) => {
                let std = std::net::TcpListener::bind(at).unwrap();
                std.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(std).unwrap();
                tokio::spawn(async move {
                    while let Ok((mut client, _)) = listener.accept().await {
                        let host = host.clone();
                        links.lock().unwrap().push(tokio::spawn(async move {
                            if let Ok(mut server) = TcpStream::connect(host).await {
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        }));
                    }
                })
            }
        };
        self.accepting = Some(task);
    }

    /// The outage: no new connections (refused) and every open one broken.
    fn down(&mut self) {
        if let Some(task) = self.accepting.take() {
            task.abort();
        }
        if let Listen::Unix(file) = &self.listen {
            let _ = std::fs::remove_file(file);
        }
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

/// The database goes away under a running server: business calls answer 503 with Retry-After over
/// REST and `Unavailable:` over MCP, never 500, and work again once it is back.
#[tokio::test]
async fn a_database_outage_answers_503_and_recovers() {
    let mut proxy = DbProxy::new();
    let mut config = test_config();
    config.db_acquire_timeout_ms = 1000;
    let app = TestApp::spawn_via(config, |options| proxy.route(options)).await;
    let (status, _) = app.rest(Method::GET, LISTINGS, None, None).await;
    assert_eq!(status, StatusCode::OK);
    let user = app.user("during@outage.test").await;
    proxy.down();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = app
            .http
            .get(format!("{}{LISTINGS}", app.base))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status());
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert!(resp.headers().contains_key("retry-after"));
        }
    }
    println!("REST during the outage: {statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    let (is_error, text) = app.tool(None, "listListings", json!({})).await;
    assert!(is_error);
    assert!(text.as_str().unwrap().starts_with("Unavailable:"), "{text}");
    let (status, body) = app
        .rest(
            Method::POST,
            "/auth-api/login",
            None,
            Some(json!({ "username": "nobody@outage.test", "password": "password123" })),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // A token cannot be checked either: 503 (retry later), not 401 (log in again) or 500.
    let (status, body) = app
        .rest(Method::GET, "/currentuser", Some(&user.token), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    proxy.up();
    let mut back = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..20 {
        back = app.rest(Method::GET, LISTINGS, None, None).await.0;
        if back == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        back,
        StatusCode::OK,
        "the server recovers with the database"
    );
}

/// 48 concurrent logins on a small pool and one hashing worker: no 500 anywhere, every
/// `listListings` in between succeeds, and logins past the hashing queue get 503 with
/// Retry-After. (Latencies are printed, not asserted.)
#[tokio::test]
async fn concurrent_logins_do_not_starve_the_api() {
    let mut config = test_config();
    config.db_max_connections = 3;
    config.hash_workers = 1;
    config.hash_queue = 8;
    // Lockout counts attempts in flight; this test is about hashing, so it is off here.
    config.login_max_failures = 0;
    config.login_max_failures_per_ip = 0;
    let app = TestApp::spawn_with(config).await;
    app.user("crowd@logins.test").await;
    let login = || async {
        let resp = app
            .http
            .post(format!("{}/auth-api/login", app.base))
            .json(&json!({ "username": "crowd@logins.test", "password": "password123" }))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.headers().contains_key("retry-after"))
    };
    let lists = async {
        let mut took = Vec::new();
        for _ in 0..10 {
            let started = Instant::now();
            let (status, _) = app.rest(Method::GET, LISTINGS, None, None).await;
            took.push((status, started.elapsed()));
        }
        took
    };
    let (logins, lists) = tokio::join!(join_all((0..48).map(|_| login())), lists);
    let mut sorted: Vec<_> = lists.iter().map(|(_, d)| *d).collect();
    sorted.sort();
    println!(
        "listListings under 48 logins: p50 {:?}, max {:?}; logins {:?}",
        sorted[sorted.len() / 2],
        sorted.last().unwrap(),
        logins.iter().map(|(s, _)| s.as_u16()).collect::<Vec<_>>()
    );
    assert!(lists.iter().all(|(s, _)| *s == StatusCode::OK), "{lists:?}");
    assert!(logins
        .iter()
        .all(|(s, _)| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE));
    let shed: Vec<_> = logins
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(!shed.is_empty(), "the hashing queue is bounded");
    assert!(shed.iter().all(|(_, retry)| *retry));
}
