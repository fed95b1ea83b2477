//! The private PostgreSQL cluster Haven starts itself from the machine's installed binaries (unix
//! socket only, so no port clashes), shared by every Haven process on one data dir.
//!
//! Where it lives: `<data dir>/data` (the socket and `postgres.log` next to it). As root the server
//! runs as the `postgres` user (initdb refuses root); when that user cannot traverse to the data
//! dir (say, under a private home directory) the cluster lives in `/var/lib/haven/<hash of the
//! data dir>` instead, recorded in `<data dir>/cluster-location`: a durable place, never a temp dir.
//!
//! Who stops it: every process takes a [`Lease`] while it uses the cluster; the last one to leave
//! stops it, unless `haven db start` pinned it (`<data dir>/keep-running`, removed by
//! `haven db stop`). A process that finds it gone starts it again ([`PrivateCluster::ensure_running`]).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::postgres::PgConnectOptions;

use super::lease::{self, ControlLock, Holder, Lease};

/// How hard the cluster works to keep acknowledged writes across an OS crash or power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Postgres defaults (fsync and full_page_writes on): what `haven serve` and `stdio` use.
    Durable,
    /// fsync and full_page_writes off, initdb without syncing: only for the test harness and
    /// benchmarks, whose databases are throwaway.
    Relaxed,
}

/// A private cluster: where it lives and how to run its tools.
#[derive(Debug)]
pub struct PrivateCluster {
    /// Haven's data dir (`HAVEN_DATA_DIR`): the control lock, leases and pin live here.
    data_dir: PathBuf,
    /// The cluster's home: `data/`, the socket and `postgres.log`.
    home: PathBuf,
    bin: PathBuf,
    run_as: Option<&'static str>,
    durability: Durability,
}

/// The file in the data dir that records a cluster home elsewhere (see the module docs).
const LOCATION_FILE: &str = "cluster-location";
/// The pin left by `haven db start`: the last user leaving does not stop the cluster.
const PIN_FILE: &str = "keep-running";
/// Where clusters live whose data dir the `postgres` user cannot reach.
const RELOCATED_ROOT: &str = "/var/lib/haven";

/// What [`PrivateCluster::status`] found.
#[derive(Debug)]
pub struct Status {
    /// The postmaster's pid, when it runs.
    pub running: Option<u32>,
    /// Whether a cluster was ever initialised there.
    pub exists: bool,
    /// Whether `haven db start` pinned it.
    pub pinned: bool,
    /// The processes using it.
    pub users: Vec<Holder>,
}

impl PrivateCluster {
    /// Finds the cluster of `data_dir`. With `create` the data dir (and a relocated home) is
    /// created when missing; without, a missing data dir is refused with a message saying no
    /// Haven database is there.
    pub fn locate(
        data_dir: &Path,
        durability: Durability,
        create: bool,
    ) -> anyhow::Result<PrivateCluster> {
        if create {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
        } else if !data_dir.is_dir() {
            bail!("{}", no_database(data_dir));
        }
        let data_dir = data_dir.canonicalize()?;
        let bin = postgres_bin_dir()?;
        let run_as = is_root().then_some("postgres");
        let home = if run_as.is_some() && !traversable_by_others(&data_dir) {
            relocated_home(&data_dir, create)?
        } else {
            data_dir.clone()
        };
        // A unix socket path holds at most 107 bytes.
        let socket = home.join(".s.PGSQL.5432");
        if socket.as_os_str().len() > 107 {
            bail!(
                "the data dir {} is too deep for a Postgres unix socket ({} > 107 bytes); choose a shorter HAVEN_DATA_DIR",
                data_dir.display(),
                socket.as_os_str().len()
            );
        }
        if run_as.is_some() && create {
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755))?;
            run(Command::new("chown").arg("postgres").arg(&home))?;
        }
        Ok(PrivateCluster {
            data_dir,
            home,
            bin,
            run_as,
            durability,
        })
    }

    /// Haven's data dir (absolute).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the cluster lives: its `data/` directory, socket and `postgres.log`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.home.join("postgres.log")
    }

    fn pgdata(&self) -> PathBuf {
        self.home.join("data")
    }

    /// True when a cluster was initialised here.
    pub fn exists(&self) -> bool {
        self.pgdata().join("PG_VERSION").exists()
    }

    /// The running postmaster's pid: the one in `postmaster.pid`, when that process is alive.
    pub fn postmaster(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.pgdata().join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ...`: a zombie is no server.
        let (comm, rest) = stat.split_once(") ")?;
        let alive = comm.contains("postgres") && !rest.starts_with('Z');
        alive.then_some(pid)
    }

    /// True when the postmaster runs.
    pub fn is_running(&self) -> bool {
        self.postmaster().is_some()
    }

    /// Takes this process's lease on the cluster, first initialising it (when missing and
    /// `create`) and starting it (when stopped). Without `create` a missing cluster is refused
    /// with a message naming the data dir, and nothing is written.
    pub fn join(&self, purpose: &str, create: bool) -> anyhow::Result<Lease> {
        if !create && !self.exists() {
            bail!("{}", no_database(&self.data_dir));
        }
        let held = ControlLock::acquire(&self.data_dir)?;
        self.init_and_start(create)?;
        Lease::take(&self.data_dir, purpose, &held)
    }

    /// Gives `lease` up and, when no other live process holds one and the cluster is not pinned,
    /// stops the cluster. Returns true when it stopped it.
    pub fn leave(&self, lease: Lease) -> anyhow::Result<bool> {
        let held = ControlLock::acquire(&self.data_dir)?;
        lease.release();
        if !lease::live_leases(&self.data_dir, &held).is_empty() || self.pinned() {
            return Ok(false);
        }
        if !self.is_running() {
            return Ok(false);
        }
        self.pg_stop()?;
        Ok(true)
    }

    /// Starts the cluster when it is not running (initialising it first when missing and
    /// `create`). Returns true when this call started it.
    pub fn ensure_running(&self, create: bool) -> anyhow::Result<bool> {
        let _held = ControlLock::acquire(&self.data_dir)?;
        self.init_and_start(create)
    }

    /// `haven db start`: starts the cluster and pins it, so it keeps running when the last user
    /// leaves. Returns true when this call started it.
    pub fn start_pinned(&self) -> anyhow::Result<bool> {
        let _held = ControlLock::acquire(&self.data_dir)?;
        let started = self.init_and_start(true)?;
        std::fs::write(self.data_dir.join(PIN_FILE), "pinned by haven db start\n")?;
        Ok(started)
    }

    /// `haven db stop`: removes the pin and stops the cluster now, even while processes use it
    /// (they start it again on their own). Returns the processes still using it and whether it was
    /// running.
    pub fn stop(&self) -> anyhow::Result<(bool, Vec<Holder>)> {
        let held = ControlLock::acquire(&self.data_dir)?;
        let _ = std::fs::remove_file(self.data_dir.join(PIN_FILE));
        let users = lease::live_leases(&self.data_dir, &held);
        let was_running = self.is_running();
        if was_running {
            self.pg_stop()?;
        }
        Ok((was_running, users))
    }

    /// `haven db status`.
    pub fn status(&self) -> anyhow::Result<Status> {
        let users = if self.data_dir.join("leases").is_dir() {
            let held = ControlLock::acquire(&self.data_dir)?;
            lease::live_leases(&self.data_dir, &held)
        } else {
            Vec::new()
        };
        Ok(Status {
            running: self.postmaster(),
            exists: self.exists(),
            pinned: self.pinned(),
            users,
        })
    }

    fn pinned(&self) -> bool {
        self.data_dir.join(PIN_FILE).exists()
    }

    /// Initialises (when missing and `create`) and starts (when stopped); the control lock must
    /// be held. Returns true when it started the server.
    fn init_and_start(&self, create: bool) -> anyhow::Result<bool> {
        if !self.exists() {
            if !create {
                bail!("{}", no_database(&self.data_dir));
            }
            self.initdb()?;
        }
        if self.is_running() {
            return Ok(false);
        }
        // A postmaster.pid naming a dead (or zombie, or reused) pid would make postgres refuse to
        // start; the shared-memory interlock still protects against backends left running.
        let _ = std::fs::remove_file(self.pgdata().join("postmaster.pid"));
        self.pg_start()?;
        Ok(true)
    }

    fn initdb(&self) -> anyhow::Result<()> {
        tracing::info!(
            "initialising a new private Postgres cluster in {}",
            self.pgdata().display()
        );
        let mut cmd = self.pg("initdb");
        cmd.args(["-A", "trust", "-U", "haven", "-E", "UTF8", "--locale=C"]);
        if self.durability == Durability::Relaxed {
            // Throwaway clusters (tests, benchmarks) skip syncing the new files to disk.
            cmd.arg("--no-sync");
        }
        cmd.arg("-D").arg(self.pgdata());
        run(&mut cmd).context("initdb failed")
    }

    fn pg_start(&self) -> anyhow::Result<()> {
        let mut opts = format!(
            "-k {} -c listen_addresses='' -c max_connections=300",
            self.home.display()
        );
        if self.durability == Durability::Relaxed {
            // Tests and benchmarks only: an OS crash may lose acknowledged writes.
            opts.push_str(" -c fsync=off -c full_page_writes=off");
        }
        // After a kill -9 of the postmaster its backends take a moment to notice and exit; until
        // they do, a new postmaster refuses to start. Try for a while.
        let mut last = None;
        for attempt in 0..20 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500));
            }
            let mut start = self.pg("pg_ctl");
            start
                .args(["-w", "-t", "60", "-o", &opts, "-l"])
                .arg(self.log_file())
                .arg("-D")
                .arg(self.pgdata())
                .arg("start");
            match run(&mut start) {
                Ok(()) => return Ok(()),
                Err(e) if self.is_running() => {
                    tracing::debug!("pg_ctl start: {e:#}");
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
            .with_context(|| format!("pg_ctl start failed; see {}", self.log_file().display()))
    }

    fn pg_stop(&self) -> anyhow::Result<()> {
        let mut stop = self.pg("pg_ctl");
        stop.args(["-m", "fast", "-w", "-t", "60", "-D"])
            .arg(self.pgdata())
            .arg("stop");
        run(&mut stop).context("stopping the private cluster")
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
            .socket(&self.home)
            .username("haven")
            .database(name)
    }

    /// A URL for database `name`, for tools and child processes.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://haven@localhost/{name}?host={}",
            self.home.display()
        )
    }
}

/// The message for a data dir without a Haven database.
pub fn no_database(data_dir: &Path) -> String {
    let shown = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!(
        "no Haven database in {} (HAVEN_DATA_DIR): nothing was created there. Create one by running \
         `haven serve` or `haven migrate` once with the same HAVEN_DATA_DIR, or set DATABASE_URL",
        shown.display()
    )
}

/// The home of a cluster whose data dir the `postgres` user cannot reach: the one recorded in the
/// data dir, or `/var/lib/haven/<hash of the data dir>` (recorded there when `create`).
fn relocated_home(data_dir: &Path, create: bool) -> anyhow::Result<PathBuf> {
    let record = data_dir.join(LOCATION_FILE);
    if let Ok(text) = std::fs::read_to_string(&record) {
        let home = PathBuf::from(text.trim());
        if home.is_absolute() {
            return Ok(home);
        }
    }
    let home = Path::new(RELOCATED_ROOT).join(format!(
        "{:016x}",
        fxhash(data_dir.to_string_lossy().as_bytes())
    ));
    if create {
        std::fs::create_dir_all(&home).with_context(|| {
            format!(
                "the postgres user cannot reach {}, so the cluster lives in {}; creating it",
                data_dir.display(),
                home.display()
            )
        })?;
        std::fs::write(&record, format!("{}\n", home.display()))
            .with_context(|| format!("writing {}", record.display()))?;
    }
    Ok(home)
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
