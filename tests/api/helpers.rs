//! The test harness: spawns Haven against a fresh database and talks to it over HTTP.

use std::sync::Arc;
use std::time::Duration;

use haven::app::AppState;
use haven::config::Config;
use haven::db::{self, Durability, PrivateCluster};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Where test databases live: admin connection options and the migrated template's name.
struct Server {
    admin: PgConnectOptions,
    url_base: UrlBase,
    template: String,
}

enum UrlBase {
    Cluster(String),
    External(String),
}

static SERVER: OnceCell<Server> = OnceCell::const_new();

async fn server() -> &'static Server {
    SERVER
        .get_or_init(|| async {
            let (admin, url_base) = match std::env::var("DATABASE_URL") {
                Ok(url) => (
                    url.parse::<PgConnectOptions>().expect("DATABASE_URL"),
                    UrlBase::External(url),
                ),
                Err(_) => {
                    let dir =
                        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("haven-test-pg");
                    // Throwaway databases: the harness alone trades durability for speed
                    // (fsync and full_page_writes off). It takes no lease, so the cluster is left
                    // running between runs.
                    let cluster = tokio::task::spawn_blocking(move || {
                        let cluster = PrivateCluster::locate(&dir, Durability::Relaxed, true)?;
                        cluster.ensure_running(true)?;
                        anyhow::Ok(cluster)
                    })
                    .await
                    .unwrap()
                    .expect("starting the private test cluster");
                    (
                        cluster.options("postgres"),
                        UrlBase::Cluster(cluster.url("postgres")),
                    )
                }
            };
            let checksum: String = db::MIGRATOR
                .iter()
                .map(|m| format!("{}{:?}", m.version, m.checksum))
                .collect();
            let template = format!("haven_tmpl_{:016x}", fnv(checksum.as_bytes()));
            let mut lock = sqlx::PgConnection::connect_with(&admin.clone().database("postgres"))
                .await
                .unwrap();
            use sqlx::Connection;
            sqlx::query("SELECT pg_advisory_lock(7213)")
                .execute(&mut lock)
                .await
                .unwrap();
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&template)
                    .fetch_one(&mut lock)
                    .await
                    .unwrap();
            if !exists {
                let building = format!("{template}_building");
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{building}\""))
                    .execute(&mut lock)
                    .await
                    .unwrap();
                db::create_database(admin.clone(), &building, None)
                    .await
                    .unwrap();
                let pool = db::pool(admin.clone().database(&building), 2)
                    .await
                    .unwrap();
                db::migrate(&pool).await.unwrap();
                haven_tools::auth::tokens::TokenService::load_or_create(
                    &pool,
                    "haven",
                    "haven-api",
                    Duration::from_secs(600),
                )
                .await
                .unwrap();
                pool.close().await;
                sqlx::query(&format!(
                    "ALTER DATABASE \"{building}\" RENAME TO \"{template}\""
                ))
                .execute(&mut lock)
                .await
                .unwrap();
            }
            drop_stale_databases(&mut lock, &template).await;
            sqlx::query("SELECT pg_advisory_unlock(7213)")
                .execute(&mut lock)
                .await
                .unwrap();
            Server {
                admin,
                url_base,
                template,
            }
        })
        .await
}

/// How long a test database outlives the run that made it: longer than any test still running in
/// another `cargo test` on the same cluster, short enough that the cluster under `target/tmp` does
/// not grow without end across runs (a full run leaves about 3 GB).
const STALE_AFTER_SECS: u64 = 20 * 60;

/// Drops the test databases of earlier runs (`t_<unix secs>_<uuid>` older than
/// [`STALE_AFTER_SECS`]) and templates of other migration sets; each test's database is otherwise
/// kept for post-mortem inspection.
async fn drop_stale_databases(conn: &mut sqlx::PgConnection, template: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%' OR datname LIKE 'haven\\_tmpl\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in names {
        let stale = match name.strip_prefix("t_") {
            Some(rest) => match rest
                .split_once('_')
                .and_then(|(secs, _)| secs.parse::<u64>().ok())
            {
                Some(made) => now.saturating_sub(made) > STALE_AFTER_SECS,
                None => true, // the unstamped names of older harness versions
            },
            None => name != template && !name.ends_with("_building"),
        };
        if stale {
            // Best effort: a database still in use elsewhere is left for a later run.
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .execute(&mut *conn)
                .await;
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// A running Haven on a fresh database.
pub struct TestApp {
    /// `http://127.0.0.1:port`
    pub base: String,
    /// A pool on the test database, for assertions.
    pub db: PgPool,
    /// A URL for the test database (for child processes).
    pub db_url: String,
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The server's state (for what a test must do as the process itself, e.g. shutting down).
    pub state: Arc<AppState>,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A test configuration: loopback, small pool.
pub fn test_config() -> Config {
    Config::loopback(5)
}

/// A user created for a test.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// Id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Access token.
    pub token: String,
}

impl TestApp {
    /// Spawns Haven with the default test configuration.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(test_config()).await
    }

    /// Spawns Haven with `config` on a fresh database cloned from the template.
    pub async fn spawn_with(config: Config) -> TestApp {
        Self::spawn_via(config, |options| options).await
    }

    /// Like [`TestApp::spawn_with`], with the server's pool connecting through `route(options)`
    /// (e.g. a proxy the test can cut to simulate a database outage); `db` is that same pool.
    pub async fn spawn_via(
        config: Config,
        route: impl FnOnce(PgConnectOptions) -> PgConnectOptions,
    ) -> TestApp {
        let server = server().await;
        let made = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!("t_{made}_{}", Uuid::new_v4().simple());
        db::create_database(server.admin.clone(), &name, Some(&server.template))
            .await
            .unwrap();
        let options = server.admin.clone().database(&name);
        let db_url = match &server.url_base {
            UrlBase::Cluster(url) => url.replacen("/postgres?", &format!("/{name}?"), 1),
            UrlBase::External(url) => {
                let mut u = reqwest::Url::parse(url).unwrap();
                u.set_path(&format!("/{name}"));
                u.to_string()
            }
        };
        let pool = db::pool_with(
            route(options.clone()),
            config.db_max_connections,
            Duration::from_millis(config.db_acquire_timeout_ms),
        )
        .await
        .unwrap();
        let limits = haven::http::ConnectionLimits::from_config(&config);
        let state = AppState::with_pool(config, pool.clone(), None)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let router = haven::http::router(state.clone(), shutdown.clone());
        tokio::spawn(haven::http::serve_with(
            listener,
            router,
            limits,
            shutdown.clone(),
        ));
        TestApp {
            state,
            base: format!("http://{addr}"),
            db: pool,
            db_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            shutdown,
        }
    }

    /// A REST call; returns status and JSON body (Null when not JSON).
    pub async fn rest(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Opens an SSE stream with `POST path` and `body` as `token`; asserts it answers 200 with
    /// `text/event-stream` and returns the response (read it, or drop it to disconnect).
    pub async fn open_sse(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("haven-access-token", token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        resp
    }

    /// One JSON-RPC request to `/mcp` (stateless, protocol 2025-06-18); returns the whole response.
    pub async fn mcp(&self, token: Option<&str>, method: &str, params: Value) -> Value {
        self.mcp_at("/mcp", token, method, params).await
    }

    /// Like [`TestApp::mcp`] at another path (e.g. with a query string).
    pub async fn mcp_at(
        &self,
        path: &str,
        token: Option<&str>,
        method: &str,
        params: Value,
    ) -> Value {
        let mut req = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("MCP answered {status}: {text}"))
    }

    /// Starts a second replica on this app's database (its own router and listeners); returns its
    /// base URL and the token that stops it.
    pub async fn spawn_replica(&self) -> (String, CancellationToken) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let router = haven::http::router(self.state.clone(), stop.clone());
        tokio::spawn(haven::http::serve(listener, router, stop.clone()));
        (base, stop)
    }

    /// The names `tools/list` shows to `token`.
    pub async fn tool_names(&self, token: Option<&str>) -> Vec<String> {
        let r = self.mcp(token, "tools/list", json!({})).await;
        r["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Calls a tool; returns (isError, structuredContent or the text).
    pub async fn tool(&self, token: Option<&str>, name: &str, args: Value) -> (bool, Value) {
        self.tool_at("/mcp", token, name, args).await
    }

    /// [`TestApp::tool`] at another MCP path (e.g. with `?readonly=true`).
    pub async fn tool_at(
        &self,
        path: &str,
        token: Option<&str>,
        name: &str,
        args: Value,
    ) -> (bool, Value) {
        let r = self
            .mcp_at(
                path,
                token,
                "tools/call",
                json!({ "name": name, "arguments": args }),
            )
            .await;
        let result = &r["result"];
        assert!(result.is_object(), "tools/call {name} gave no result: {r}");
        let is_error = result["isError"].as_bool().unwrap_or(false);
        let payload = if is_error {
            result["content"][0]["text"].clone()
        } else {
            result["structuredContent"].clone()
        };
        // Every answer fits its declared output schema (types, enums, required fields), as
        // clients that validate structuredContent require.
        if let (false, Some(op)) = (is_error, haven::registry().get(name)) {
            let schema = Value::Object((*op.output_schema).clone());
            if let Err(why) = fits(&schema, &payload, name, false) {
                panic!("{name} answered outside its output schema: {why}");
            }
        }
        (is_error, payload)
    }

    /// Registers a user over REST and logs them in.
    pub async fn user(&self, email: &str) -> TestUser {
        let (status, body) = self
            .rest(
                Method::POST,
                "/auth-api/v1/registeruser",
                None,
                Some(json!({ "email": email, "password": "password123", "fullname": "Test User" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = Uuid::parse_str(body["user"]["id"].as_str().unwrap()).unwrap();
        let token = self.login(email, "password123").await;
        TestUser {
            id,
            email: email.to_string(),
            token,
        }
    }

    /// A user with `role` (set directly in the database, as a superAdmin would).
    pub async fn user_with_role(&self, email: &str, role: &str) -> TestUser {
        let user = self.user(email).await;
        sqlx::query("UPDATE auth.users SET role_id = $2 WHERE id = $1")
            .bind(user.id)
            .bind(role)
            .execute(&self.db)
            .await
            .unwrap();
        user
    }

    /// Logs in over REST; returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .rest(
                Method::POST,
                "/auth-api/login",
                None,
                Some(json!({ "username": email, "password": password })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["accessToken"].as_str().unwrap().to_string()
    }

    /// Rows in `table` (for "nothing was written" checks).
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// A user's stored row as JSON (for "nothing changed" checks).
    pub async fn user_row(&self, id: Uuid) -> Value {
        sqlx::query_scalar("SELECT to_jsonb(u) FROM auth.users u WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }
}

/// Asserts an error envelope with `status` whose message mentions `needle`.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, needle: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["result"], "ERR", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "message {message:?} should mention {needle:?}"
    );
}

/// Seeds a listing of `host_id` and a reservation of it by `guest_id` in `status` straight into
/// the database (e.g. a `complete` stay to review); returns (listing id, reservation id).
pub async fn seed_stay(app: &TestApp, host_id: Uuid, guest_id: Uuid, status: &str) -> (Uuid, Uuid) {
    let listing: Uuid = sqlx::query_scalar(
        "INSERT INTO catalog.listings (host_id, title, description, address, city, property_type,
             approval_type, price_per_night, currency, is_published, owner_id)
         VALUES ($1, 'Seeded flat', 'A seeded flat', '1 Seed Street', 'Lisbon', 'apartment',
             'instant', 10000, 'EUR', true, $1) RETURNING id",
    )
    .bind(host_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let reservation: Uuid = sqlx::query_scalar(
        "INSERT INTO booking.reservations (listing_id, guest_id, host_id, approval_type, booking_status,
             check_in, check_out, guest_count, currency, total_price, price_breakdown,
             booking_policies_snapshot, cancellation_policy_snapshot, owner_id)
         VALUES ($1, $2, $3, 'instant', $4, current_date - 5, current_date - 2, 1, 'EUR', 30000,
             '{}', '{}', '{}', $2) RETURNING id",
    )
    .bind(listing)
    .bind(guest_id)
    .bind(host_id)
    .bind(status)
    .fetch_one(&app.db)
    .await
    .unwrap();
    (listing, reservation)
}

/// The string `field` of every object in the array `list` (e.g. the names in a list answer).
pub fn field_of<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|item| {
            item[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {item}"))
        })
        .collect()
}

/// The six-digit verification code in a message a user received (an email's text, an SMS body).
pub fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no 6-digit code in {text:?}"))
        .to_string()
}

/// Whether `value` fits `schema`: strings/numbers/booleans/arrays/objects are where the schema
/// says, enum values are allowed ones, required fields are present, and (when `strict`, for
/// inputs a reader pastes) objects carry only declared fields. Not a full JSON Schema validator:
/// enough to catch an example that would be refused or an answer outside its declared enums.
pub fn fits(schema: &Value, value: &Value, at: &str, strict: bool) -> Result<(), String> {
    if let Some(alts) = schema
        .get("anyOf")
        .or(schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        return if alts.iter().any(|a| fits(a, value, at, strict).is_ok()) {
            Ok(())
        } else {
            Err(format!("{at}: {value} matches none of {schema}"))
        };
    }
    if let Some(c) = schema.get("const") {
        return if c == value {
            Ok(())
        } else {
            Err(format!("{at}: {value} is not {c}"))
        };
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let admitted = types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
    if !admitted {
        return Err(format!(
            "{at}: {value} is a {kind}, the schema wants {types:?}"
        ));
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, v) in map {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => fits(sub, v, &format!("{at}.{k}"), strict)?,
                    None if strict && props.is_some() => {
                        return Err(format!("{at}: unknown field {k}"))
                    }
                    None => {}
                }
            }
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let req = req.as_str().unwrap_or_default();
                if !map.contains_key(req) {
                    return Err(format!("{at}: required field {req} missing"));
                }
            }
            Ok(())
        }
        Value::Array(items) => match schema.get("items") {
            Some(sub) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| fits(sub, v, &format!("{at}[{i}]"), strict)),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}
