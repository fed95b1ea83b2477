//! The embedded database as users run it: real `haven serve` and `haven stdio` processes sharing one
//! private cluster in one data dir, started and ended in any order (kill -9 included), the cluster
//! stopped or killed from under them, durability, and stdio's refusal to create a database.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use haven::db::{Durability, PrivateCluster};
use serde_json::{json, Value};
use sqlx::Connection;

use crate::stdio_child::StdioChild;

/// A fresh, short (unix socket paths are limited) folder under the test tmp dir; a test's data
/// dir is its `d`, and process logs sit next to it. Tests remove it when they pass.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "edb-{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Stops the cluster of a data dir when a test ends (say, fails) with it running, so no postgres
/// outlives the test, and removes a relocated cluster home (outside the test tmp dir).
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(cluster) = PrivateCluster::locate(&self.0, Durability::Durable, false) {
            if cluster.is_running() {
                let _ = cluster.stop();
            }
            if cluster.home() != cluster.data_dir() {
                let _ = std::fs::remove_dir_all(cluster.home());
            }
        }
    }
}

/// The `haven` binary on data dir `dir`, never on `DATABASE_URL`.
fn haven(dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_haven"));
    cmd.env_remove("DATABASE_URL")
        .env("HAVEN_DATA_DIR", dir)
        .env("HAVEN_DB_MAX_CONNECTIONS", "3")
        .env("RUST_LOG", "haven=info,warn")
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .kill_on_drop(true);
    cmd
}

/// Runs `haven <args>` on `dir` to completion (60 s at most); returns (success, stdout, stderr).
async fn run_haven(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        haven(dir).args(args).stdin(Stdio::null()).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("haven {args:?} did not finish within 60 s"))
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The cluster of `dir`, as Haven finds it.
fn cluster(dir: &Path) -> PrivateCluster {
    PrivateCluster::locate(dir, Durability::Durable, false).expect("locating the cluster")
}

/// Waits (up to `within`) until `check` holds.
async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A `haven serve` child on a free loopback port, its output in files next to the data dir.
struct Serve {
    child: tokio::process::Child,
    base: String,
    stdout: PathBuf,
    stderr: PathBuf,
    http: reqwest::Client,
}

impl Serve {
    /// Starts `haven serve` on `dir` and waits until `/ready` answers 200.
    async fn start(dir: &Path, label: &str) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let stdout = dir.with_extension(format!("{label}.stdout"));
        let stderr = dir.with_extension(format!("{label}.stderr"));
        let child = haven(dir)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawning haven serve");
        let mut serve = Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        let start = Instant::now();
        while serve.ready().await != 200 {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("haven serve exited with {status}:\n{}", serve.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "haven serve was not ready within 120 s:\n{}",
                serve.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        serve
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The first-start API key (`HAVEN_ADMIN_API_KEY=` on stdout).
    fn admin_key(&self) -> String {
        let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        out.lines()
            .find_map(|l| l.strip_prefix("HAVEN_ADMIN_API_KEY="))
            .unwrap_or_else(|| panic!("no admin key printed; stdout:\n{out}"))
            .to_string()
    }

    /// `GET /ready`'s status (0 when unreachable).
    async fn ready(&self) -> u16 {
        match self.http.get(format!("{}/ready", self.base)).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// `tools/call getCurrentUser` over Streamable HTTP as `key`: the caller's email, or the error.
    async fn current_user(&self, key: &str) -> Result<String, String> {
        let resp = self
            .http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": { "name": "getCurrentUser", "arguments": {} } }))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        email_of(&body["result"])
    }

    /// Asserts `/ready` is 200 and a tool call answers as `key`'s owner.
    async fn assert_serving(&self, key: &str, email: &str) {
        assert_eq!(self.ready().await, 200, "serve not ready:\n{}", self.log());
        assert_eq!(self.current_user(key).await.as_deref(), Ok(email));
    }

    /// SIGTERM, then waits (30 s at most) for a clean exit.
    async fn terminate(mut self) -> String {
        let pid = self.child.id().expect("serve still running").to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("haven serve did not exit within 30 s of SIGTERM")
            .unwrap();
        assert!(
            status.success(),
            "serve exited with {status}:\n{}",
            self.log()
        );
        self.log()
    }

    /// SIGKILL: the process gets no chance to clean up.
    async fn kill9(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// The caller's email from a `tools/call getCurrentUser` result, or the error text.
fn email_of(result: &Value) -> Result<String, String> {
    if result["isError"] == json!(true) || !result.is_object() {
        return Err(result.to_string());
    }
    result["structuredContent"]["email"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| result.to_string())
}

/// A `haven stdio` child on `dir` acting as `key`, after the MCP handshake.
async fn stdio(dir: &Path, key: &str) -> StdioChild {
    let mut cmd = haven(dir);
    cmd.arg("stdio").env("HAVEN_API_KEY", key);
    let mut child = StdioChild::spawn(cmd);
    child.handshake(1).await;
    child
}

/// Asserts the stdio child answers a real tool call as `email` (ids from `*next`).
async fn assert_stdio_serving(child: &mut StdioChild, next: &mut i64, email: &str) {
    *next += 1;
    let result = child.call(*next, "getCurrentUser", json!({})).await;
    assert_eq!(email_of(&result).as_deref(), Ok(email));
}

/// Retries a stdio tool call (new id each time) until it answers as `email` (the cluster is
/// coming back).
async fn stdio_recovers(child: &mut StdioChild, next: &mut i64, email: &str) {
    let start = Instant::now();
    loop {
        *next += 1;
        let result = child.call(*next, "getCurrentUser", json!({})).await;
        match email_of(&result) {
            Ok(got) => {
                assert_eq!(got, email);
                return;
            }
            Err(e) => assert!(
                start.elapsed() < Duration::from_secs(60),
                "stdio did not recover within 60 s: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

const ADMIN: &str = "admin@haven.local";

#[tokio::test]
async fn serve_and_stdio_processes_share_one_cluster_in_any_exit_order() {
    let root = fresh_dir("share");
    let dir = root.join("d");
    let _stop = StopOnDrop(dir.clone());
    let s1 = Serve::start(&dir, "s1").await;
    let key = s1.admin_key();
    s1.assert_serving(&key, ADMIN).await;

    // Two stdio sessions next to the server (Claude Desktop runs several and restarts them).
    let mut ids = 10;
    let mut a = stdio(&dir, &key).await;
    let mut b = stdio(&dir, &key).await;
    assert_stdio_serving(&mut a, &mut ids, ADMIN).await;
    assert_stdio_serving(&mut b, &mut ids, ADMIN).await;

    // The process that started the cluster ends cleanly while others use it: nothing stops under
    // them, and a new server joins.
    let log = s1.terminate().await;
    assert!(
        cluster(&dir).is_running(),
        "the starter's exit stopped the cluster:\n{log}"
    );
    assert_stdio_serving(&mut a, &mut ids, ADMIN).await;
    assert_stdio_serving(&mut b, &mut ids, ADMIN).await;
    let s2 = Serve::start(&dir, "s2").await;
    s2.assert_serving(&key, ADMIN).await;

    // A stdio session ending cleanly stops nothing under the others.
    a.close().await;
    assert_stdio_serving(&mut b, &mut ids, ADMIN).await;
    s2.assert_serving(&key, ADMIN).await;

    // Neither does one killed.
    b.child.kill().await.unwrap();
    drop(b);
    s2.assert_serving(&key, ADMIN).await;

    // Nor a server killed with -9: a new stdio and a new server join.
    let mut c = stdio(&dir, &key).await;
    s2.kill9().await;
    assert!(
        cluster(&dir).is_running(),
        "the cluster died with the server"
    );
    assert_stdio_serving(&mut c, &mut ids, ADMIN).await;
    let s3 = Serve::start(&dir, "s3").await;
    s3.assert_serving(&key, ADMIN).await;

    // `haven db status` lists the live users only (the killed ones' leases are stale).
    let (ok, status, err) = run_haven(&dir, &["db", "status"]).await;
    assert!(ok, "{err}");
    assert!(status.contains("running"), "{status}");
    assert!(status.contains("users:    2"), "{status}");

    // Someone runs `haven db stop`: the users start it again, the server's pool recovers.
    let (ok, out, err) = run_haven(&dir, &["db", "stop"]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("stopped"), "{out}");
    stdio_recovers(&mut c, &mut ids, ADMIN).await;
    eventually(
        Duration::from_secs(60),
        "serve /ready back to 200",
        async || s3.ready().await == 200,
    )
    .await;
    s3.assert_serving(&key, ADMIN).await;

    // Postgres killed with -9: the same.
    let pid = cluster(&dir).postmaster().expect("a running postmaster");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // (Connections may answer for a moment after the postmaster died: wait for its successor.)
    eventually(Duration::from_secs(60), "a new postmaster", async || {
        cluster(&dir).postmaster().is_some_and(|new| new != pid)
    })
    .await;
    eventually(
        Duration::from_secs(60),
        "serve /ready back to 200 after kill -9 of postgres",
        async || s3.ready().await == 200 && s3.current_user(&key).await.is_ok(),
    )
    .await;
    stdio_recovers(&mut c, &mut ids, ADMIN).await;

    // The server ends cleanly while a stdio session still uses the cluster: nothing stops under it.
    let log = s3.terminate().await;
    assert!(
        cluster(&dir).is_running(),
        "the server's exit stopped the cluster under stdio:\n{log}"
    );
    assert_stdio_serving(&mut c, &mut ids, ADMIN).await;

    // The last user (stdio, ended by SIGTERM as clients do) leaving cleanly, after the kill -9s
    // above, stops the cluster: no orphaned postgres.
    let err = c.terminate().await;
    assert!(
        !cluster(&dir).is_running(),
        "postgres left running after the last user exited:\n{err}"
    );
    let (ok, status, _) = run_haven(&dir, &["db", "status"]).await;
    assert!(ok);
    assert!(status.contains("stopped"), "{status}");
    assert!(status.contains("users:    0"), "{status}");
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn the_servers_cluster_is_durable() {
    let root = fresh_dir("durable");
    let dir = root.join("d");
    let _stop = StopOnDrop(dir.clone());
    let serve = Serve::start(&dir, "s").await;
    let mut conn = sqlx::PgConnection::connect_with(&cluster(&dir).options("haven"))
        .await
        .unwrap();
    for setting in ["fsync", "full_page_writes"] {
        let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            value, "on",
            "haven serve's cluster runs with {setting}={value}"
        );
    }
    conn.close().await.unwrap();
    let log = serve.terminate().await;
    // Where the cluster lives is in the log, and it is the data dir (not a temp dir).
    let home = cluster(&dir).home().display().to_string();
    assert!(
        log.contains(&format!("private Postgres cluster in {home}")),
        "{log}"
    );
    // Alone on the cluster, its clean exit stopped it.
    assert!(!cluster(&dir).is_running(), "{log}");

    // `haven db start` pins it: one-shot users come and go and it keeps running until `db stop`.
    let (ok, out, err) = run_haven(&dir, &["db", "start"]).await;
    assert!(ok && out.contains("started"), "{out}{err}");
    let (ok, _, err) = run_haven(&dir, &["migrate"]).await;
    assert!(ok, "{err}");
    assert!(cluster(&dir).is_running(), "the pinned cluster stopped");
    let (_, status, _) = run_haven(&dir, &["db", "status"]).await;
    assert!(status.contains("pinned"), "{status}");
    let (ok, out, err) = run_haven(&dir, &["db", "stop"]).await;
    assert!(ok && out.contains("stopped"), "{out}{err}");
    assert!(!cluster(&dir).is_running());
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn two_first_starts_at_once_make_one_cluster_and_one_superadmin() {
    let root = fresh_dir("twin");
    let dir = root.join("d");
    let _stop = StopOnDrop(dir.clone());
    // Neither finds a cluster: one runs initdb while the other waits, then both serve.
    let (first, second) = tokio::join!(Serve::start(&dir, "a"), Serve::start(&dir, "b"));
    let printed: Vec<String> = [&first, &second]
        .iter()
        .filter_map(|s| {
            let out = std::fs::read_to_string(&s.stdout).unwrap_or_default();
            out.lines()
                .find_map(|l| l.strip_prefix("HAVEN_ADMIN_API_KEY="))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        printed.len(),
        1,
        "exactly one first start prints a key: {printed:?}"
    );
    first.assert_serving(&printed[0], ADMIN).await;
    second.assert_serving(&printed[0], ADMIN).await;
    // Ending in the other order from starting: the cluster stops with the last.
    let log = second.terminate().await;
    assert!(cluster(&dir).is_running(), "{log}");
    first.assert_serving(&printed[0], ADMIN).await;
    let log = first.terminate().await;
    assert!(!cluster(&dir).is_running(), "{log}");
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn stdio_never_creates_a_database() {
    let parent = fresh_dir("nodb");
    let missing = parent.join("missing");
    let empty = parent.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for dir in [&missing, &empty] {
        let (ok, out, err) = run_haven(dir, &["stdio", "--api-key", "sk_haven_whatever"]).await;
        assert!(!ok, "stdio on {} must fail; stdout {out:?}", dir.display());
        assert!(
            err.contains("no Haven database in") && err.contains(&dir.display().to_string()),
            "stderr should name the data dir and say no database is there: {err}"
        );
        assert!(
            err.contains("haven serve") && err.contains("haven migrate"),
            "stderr should say how to create one: {err}"
        );
        assert!(!err.contains("HAVEN_API_KEY was refused"), "{err}");
        assert!(!out.contains("jsonrpc"), "{out}");
    }
    assert!(!missing.exists(), "stdio created {}", missing.display());
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "stdio wrote into the empty data dir"
    );
    let _ = std::fs::remove_dir_all(&parent);
}

#[tokio::test]
async fn a_data_dir_postgres_cannot_reach_keeps_its_cluster_in_a_durable_place() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !is_root {
        eprintln!("skipped: only root runs the cluster as another user");
        return;
    }
    // A private parent (like a home directory) that the postgres user cannot traverse.
    let parent = fresh_dir("priv");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = parent.join("d");
    let _stop = StopOnDrop(dir.clone());
    let (ok, _, err) = run_haven(&dir, &["migrate"]).await;
    assert!(ok, "{err}");
    let home = cluster(&dir).home().to_path_buf();
    let cleanup = || {
        let _ = std::fs::remove_dir_all(&home);
        let _ = std::fs::remove_dir_all(&parent);
    };
    let tmp = std::env::temp_dir();
    if home.starts_with(&tmp) || home.starts_with("/tmp") || home.starts_with("/var/tmp") {
        cleanup();
        panic!("the cluster lives in a temp dir: {}", home.display());
    }
    assert!(home.starts_with("/var/lib/haven"), "{}", home.display());
    assert!(home.join("data/PG_VERSION").exists());
    assert!(
        err.contains(&format!("private Postgres cluster in {}", home.display())),
        "the log should say where the cluster lives: {err}"
    );
    // It is found again (recorded in the data dir), and the one-shot command stopped it.
    let (ok, status, _) = run_haven(&dir, &["db", "status"]).await;
    assert!(
        ok && status.contains(&home.display().to_string()),
        "{status}"
    );
    assert!(status.contains("stopped"), "{status}");
    cleanup();
}
