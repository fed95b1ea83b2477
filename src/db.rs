//! The database: a pool over `DATABASE_URL`, or over a private PostgreSQL cluster that Haven starts
//! itself from the machine's installed binaries (unix socket only, so no port clashes).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

/// The embedded migrations (one schema per service).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A private cluster under a directory of ours.
#[derive(Debug)]
pub struct PrivateCluster {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<&'static str>,
    started_here: bool,
}

impl PrivateCluster {
    /// Initialises (first time) and starts (if not running) a cluster in `dir`. As root it runs the
    /// server as the `postgres` user, because `initdb` refuses root.
    pub fn ensure(dir: &Path) -> anyhow::Result<Self> {
        let bin = postgres_bin_dir()?;
        let run_as = is_root().then_some("postgres");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut dir = dir.canonicalize()?;
        if run_as.is_some() && !traversable_by_others(&dir) {
            // The postgres user cannot reach a cluster under a private home directory.
            let alt = PathBuf::from(format!(
                "/tmp/haven-pg-{:x}",
                fxhash(dir.to_string_lossy().as_bytes())
            ));
            std::fs::create_dir_all(&alt)?;
            dir = alt;
        }
        if run_as.is_some() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
            run(Command::new("chown").arg("postgres").arg(&dir))?;
        }
        let mut cluster = PrivateCluster {
            dir,
            bin,
            run_as,
            started_here: false,
        };
        let data = cluster.data_dir();
        if !data.join("PG_VERSION").exists() {
            let mut cmd = cluster.pg("initdb");
            cmd.args([
                "-A",
                "trust",
                "-U",
                "haven",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
                "-D",
            ])
            .arg(&data);
            run(&mut cmd).context("initdb failed")?;
        }
        let mut status = cluster.pg("pg_ctl");
        status.arg("status").arg("-D").arg(&data);
        if !status.output().map(|o| o.status.success()).unwrap_or(false) {
            let opts = format!(
                "-k {} -c listen_addresses='' -c max_connections=300 -c fsync=off -c full_page_writes=off",
                cluster.dir.display()
            );
            let mut start = cluster.pg("pg_ctl");
            start
                .args(["-w", "-t", "60", "-o", &opts, "-l"])
                .arg(cluster.dir.join("postgres.log"));
            start.arg("-D").arg(&data).arg("start");
            run(&mut start).with_context(|| {
                format!(
                    "pg_ctl start failed; see {}/postgres.log",
                    cluster.dir.display()
                )
            })?;
            cluster.started_here = true;
        }
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// Connection options for database `name` over the cluster's unix socket.
    pub fn options(&self, name: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.dir)
            .username("haven")
            .database(name)
    }

    /// A URL for database `name`, for tools and child processes.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://haven@localhost/{name}?host={}",
            self.dir.display()
        )
    }

    /// Stops the cluster if this process started it.
    pub fn stop(&self) {
        if self.started_here {
            let mut stop = self.pg("pg_ctl");
            stop.args(["-m", "fast", "-w", "-D"])
                .arg(self.data_dir())
                .arg("stop");
            if let Err(e) = run(&mut stop) {
                tracing::warn!("could not stop the private cluster: {e:#}");
            }
        }
    }
}

/// Creates database `name` in the cluster unless it exists.
pub async fn create_database(
    admin: PgConnectOptions,
    name: &str,
    template: Option<&str>,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(&admin.database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let sql = match template {
            Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
            None => format!("CREATE DATABASE \"{name}\""),
        };
        sqlx::query(&sql).execute(&mut conn).await?;
    }
    Ok(())
}

/// A pool over `options`, with short acquire timeouts so an outage fails fast instead of hanging.
pub async fn pool(options: PgConnectOptions, max: u32) -> anyhow::Result<PgPool> {
    pool_with(options, max, Duration::from_secs(5)).await
}

/// A pool of `max` connections whose callers wait at most `acquire_timeout` for one (then the call
/// answers 503 rather than queueing without end).
pub async fn pool_with(
    options: PgConnectOptions,
    max: u32,
    acquire_timeout: Duration,
) -> anyhow::Result<PgPool> {
    let options = options.log_statements(tracing::log::LevelFilter::Trace);
    Ok(PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await?)
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("running migrations")
}

fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("HAVEN_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    candidates.sort();
    match candidates.pop() {
        Some(dir) => Ok(dir),
        None => bail!("no PostgreSQL server binaries found: install PostgreSQL or set DATABASE_URL (or HAVEN_PG_BIN)"),
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn traversable_by_others(dir: &Path) -> bool {
    dir.ancestors().all(|p| {
        std::fs::metadata(p)
            .map(|m| m.mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

fn fxhash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
