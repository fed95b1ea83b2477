//! Who uses a private cluster, kept in its data dir: one lease file per process, held under an
//! exclusive `flock` for as long as the process uses the cluster (the kernel drops the lock when the
//! process dies, even by `kill -9`, so a dead process never counts as a user), and one control lock
//! that serialises initdb, starting, stopping, joining and leaving, so two processes never run
//! `initdb` or `pg_ctl` at once and "am I the last user?" is answered without a race.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// The control lock (`<data dir>/cluster.lock`), held while a process starts, stops, joins or
/// leaves the cluster. Released when dropped (or when the process dies).
#[derive(Debug)]
pub struct ControlLock {
    _file: File,
}

impl ControlLock {
    /// Waits for the control lock of `data_dir`.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<ControlLock> {
        let path = data_dir.join("cluster.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(ControlLock { _file: file })
    }
}

/// One process's claim on the cluster: `<data dir>/leases/<pid>-<nanos>.lease`, locked for the
/// process's lifetime. Dropping it without [`Lease::release`] leaves a stale file that the next
/// [`live_leases`] scan removes.
#[derive(Debug)]
pub struct Lease {
    file: File,
    path: PathBuf,
}

impl Lease {
    /// Takes a lease for this process, saying what it is for (`serve`, `stdio`, ...). The control
    /// lock must be held, so a concurrent scan never mistakes the new file for a stale one.
    pub fn take(data_dir: &Path, purpose: &str, _held: &ControlLock) -> anyhow::Result<Lease> {
        let dir = data_dir.join("leases");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let pid = std::process::id();
        let path = dir.join(format!("{pid}-{}.lease", now.as_nanos()));
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        writeln!(file, "{pid} {} {purpose}", now.as_secs())?;
        Ok(Lease { file, path })
    }

    /// Gives the lease up: removes its file, then drops the lock.
    pub fn release(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

/// A live process holding a lease.
#[derive(Debug, Clone)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// What it uses the cluster for (`serve`, `stdio`, ...).
    pub purpose: String,
    /// When it took the lease (seconds since the Unix epoch).
    pub since: u64,
}

/// The processes that hold a lease on `data_dir`'s cluster, this process's own lease files
/// excepted (a `flock` on a second descriptor of our own file would look taken). Lease files whose
/// process has died are removed. The control lock must be held.
pub fn live_leases(data_dir: &Path, _held: &ControlLock) -> Vec<Holder> {
    let own = format!("{}-", std::process::id());
    let Ok(entries) = std::fs::read_dir(data_dir.join("leases")) else {
        return Vec::new();
    };
    let mut live = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".lease") || name.starts_with(&own) {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {
                // Nobody holds it: its process died without leaving.
                let _ = std::fs::remove_file(&path);
            }
            Err(TryLockError::WouldBlock) => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let mut fields = text.split_whitespace();
                let pid = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let since = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let purpose = fields.next().unwrap_or("?").to_string();
                live.push(Holder {
                    pid,
                    purpose,
                    since,
                });
            }
            Err(TryLockError::Error(_)) => {}
        }
    }
    live.sort_by_key(|h| h.since);
    live
}
