//! Setup shared by the benchmarks: a throwaway database (on `DATABASE_URL`, or in a private
//! cluster under `target/bench-pg`), the real server on loopback (real router, real HTTP), users
//! registered over REST, and nearest-rank percentiles.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use haven::app::AppState;
use haven::config::Config;
use haven::db::{self, Attachment, Durability, PrivateCluster};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Executor, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub mod seed;

/// True under `cargo bench` (which passes `--bench`); otherwise says how to run benchmark `name`,
/// so a plain test run (`cargo test --benches`) stays cheap.
pub fn invoked_as_bench(name: &str) -> bool {
    let bench = std::env::args().any(|a| a == "--bench");
    if !bench {
        println!("{name}: run with `cargo bench --bench {name}`");
    }
    bench
}

/// A fresh database for one benchmark run, dropped at the end (and the private cluster left: the
/// last user stops it).
pub struct Database {
    /// Admin connection options of the server that holds it.
    pub admin: PgConnectOptions,
    /// The database's name.
    pub name: String,
    /// This process's use of the private cluster, unless `DATABASE_URL` named a server.
    pub cluster: Option<Attachment>,
}

impl Database {
    /// Creates `haven_bench_<uuid>` on `DATABASE_URL`, or in the private cluster under
    /// `target/bench-pg` (started when needed).
    pub async fn create() -> anyhow::Result<Database> {
        Self::create_in("target/bench-pg", Durability::Relaxed).await
    }

    /// Like [`Database::create`] with Postgres' durable defaults (fsync on), in a private cluster
    /// under `target/bench-pg-durable`: for measuring writes as production commits them.
    #[allow(dead_code)]
    pub async fn create_durable() -> anyhow::Result<Database> {
        Self::create_in("target/bench-pg-durable", Durability::Durable).await
    }

    async fn create_in(dir: &str, durability: Durability) -> anyhow::Result<Database> {
        let (admin, cluster) = if let Ok(url) = std::env::var("DATABASE_URL") {
            let options = url
                .parse::<PgConnectOptions>()
                .context("DATABASE_URL is not a Postgres URL")?;
            (options, None)
        } else {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
            // Benchmark databases are throwaway: the benchmarks trade durability for speed
            // (fsync and full_page_writes off), like the test harness, unless they measure writes.
            let cluster = PrivateCluster::locate(&dir, durability, true)?;
            let attached = Attachment::join(cluster, "bench", true).await?;
            (attached.cluster().options("postgres"), Some(attached))
        };
        let name = format!("haven_bench_{}", Uuid::new_v4().simple());
        db::create_database(admin.clone(), &name, None).await?;
        println!("database {name}");
        Ok(Database {
            admin,
            name,
            cluster,
        })
    }

    /// Connection options for the database itself.
    pub fn options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }

    /// A URL for the database itself, for child processes (`haven serve` as a second replica).
    #[allow(dead_code)] // used by the messaging bench only
    pub fn url(&self) -> anyhow::Result<String> {
        match (&self.cluster, std::env::var("DATABASE_URL")) {
            (Some(attached), _) => Ok(attached.cluster().url(&self.name)),
            (None, Ok(url)) => {
                let mut url = reqwest::Url::parse(&url).context("DATABASE_URL is not a URL")?;
                url.set_path(&format!("/{}", self.name));
                Ok(url.to_string())
            }
            (None, Err(_)) => bail!("no cluster and no DATABASE_URL"),
        }
    }

    /// Drops the database and stops the private cluster; with `HAVEN_BENCH_KEEP=1` the database
    /// and the cluster are kept, for looking at plans by hand afterwards (`psql` on the printed
    /// name).
    pub async fn drop(self) -> anyhow::Result<()> {
        use sqlx::Connection;
        if std::env::var("HAVEN_BENCH_KEEP").is_ok_and(|v| v == "1") {
            println!("kept {} (HAVEN_BENCH_KEEP=1)", self.name);
            if let Some(attached) = self.cluster {
                println!("  psql '{}'", attached.cluster().url(&self.name));
                std::mem::forget(attached);
            }
            return Ok(());
        }
        let admin = self.admin.clone().database("postgres");
        let mut conn = sqlx::PgConnection::connect_with(&admin).await?;
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        conn.execute(sql.as_str()).await?;
        println!("dropped {}", self.name);
        if let Some(attached) = &self.cluster {
            attached.leave();
        }
        Ok(())
    }
}

/// The real server, serving on a loopback port, and how to reach it.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The client every measurement uses (keep-alive connections).
    pub http: reqwest::Client,
    /// The server's own pool (for seeding and direct measurements).
    pub pool: PgPool,
    shutdown: CancellationToken,
    serving: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Migrates `options`' database and serves the real router for `config` on a loopback port;
    /// the client keeps up to `connections` idle connections.
    pub async fn start(
        config: &Config,
        options: PgConnectOptions,
        connections: usize,
    ) -> anyhow::Result<Server> {
        let pool = db::pool(options, config.db_max_connections).await?;
        let t = std::time::Instant::now();
        db::migrate(&pool).await?;
        println!("migrate {:.2} s", t.elapsed().as_secs_f64());
        let state = AppState::with_pool(config.clone(), pool.clone(), None).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let router = haven::http::router(state, shutdown.clone());
        let serving = tokio::spawn(haven::http::serve(listener, router, shutdown.clone()));
        Ok(Server {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(connections)
                .build()?,
            pool,
            shutdown,
            serving,
        })
    }

    /// Stops serving and closes the pool.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.serving.await;
        self.pool.close().await;
    }

    /// `POST path` with a JSON body and an optional bearer token; the status and the JSON answer
    /// (null when it is not JSON).
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        let status = resp.status();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Registers `email` over REST and logs it in; returns the access token.
    pub async fn register(&self, email: &str, fullname: &str) -> anyhow::Result<String> {
        let password = "bench-password-123";
        let (status, body) = self
            .post(
                "/auth-api/v1/registeruser",
                None,
                json!({ "email": email, "password": password, "fullname": fullname }),
            )
            .await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("registering {email}: {status} {body}");
        }
        let (status, body) = self
            .post(
                "/auth-api/login",
                None,
                json!({ "username": email, "password": password }),
            )
            .await?;
        Ok(body["accessToken"]
            .as_str()
            .with_context(|| format!("logging in {email}: {status} {body}"))?
            .to_string())
    }
}

/// The durations in ascending order.
pub fn sorted(latencies: &[Duration]) -> Vec<Duration> {
    let mut v = latencies.to_vec();
    v.sort();
    v
}

/// Nearest-rank percentile `p` (0–100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in milliseconds, two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
