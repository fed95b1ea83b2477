//! One process's use of the private cluster: its lease, and a watchdog that starts the cluster
//! again when it disappears (someone ran `haven db stop`, or postgres was killed), so the pool
//! recovers without restarting the process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::cluster::PrivateCluster;
use super::lease::Lease;

/// How often the watchdog looks for the postmaster.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// A process attached to a private cluster until [`Attachment::leave`].
#[derive(Debug)]
pub struct Attachment {
    cluster: Arc<PrivateCluster>,
    /// `None` once left: the watchdog then never starts the cluster again.
    lease: Arc<Mutex<Option<Lease>>>,
    watchdog: CancellationToken,
}

impl Attachment {
    /// Joins `cluster` as `purpose` (`serve`, `stdio`, ...): initialises it when missing and
    /// `create`, starts it when stopped, takes a lease and starts the watchdog.
    pub async fn join(
        cluster: PrivateCluster,
        purpose: &'static str,
        create: bool,
    ) -> anyhow::Result<Attachment> {
        let cluster = Arc::new(cluster);
        let joining = cluster.clone();
        let lease = tokio::task::spawn_blocking(move || joining.join(purpose, create)).await??;
        let attached = Attachment {
            cluster,
            lease: Arc::new(Mutex::new(Some(lease))),
            watchdog: CancellationToken::new(),
        };
        tokio::spawn(watch(
            attached.cluster.clone(),
            attached.lease.clone(),
            attached.watchdog.clone(),
        ));
        Ok(attached)
    }

    /// The cluster.
    pub fn cluster(&self) -> &PrivateCluster {
        &self.cluster
    }

    /// Stops the watchdog and gives the lease up; the last user leaving stops the cluster (unless
    /// `haven db start` pinned it). Idempotent.
    pub fn leave(&self) {
        self.watchdog.cancel();
        let lease = lock(&self.lease).take();
        if let Some(lease) = lease {
            match self.cluster.leave(lease) {
                Ok(true) => tracing::info!(
                    "stopped the private cluster in {} (no other Haven process uses it)",
                    self.cluster.home().display()
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!("leaving the private cluster: {e:#}"),
            }
        }
    }
}

impl Drop for Attachment {
    /// A process that fails after joining (say, a migration error) still leaves.
    fn drop(&mut self) {
        self.leave();
    }
}

fn lock(lease: &Mutex<Option<Lease>>) -> std::sync::MutexGuard<'_, Option<Lease>> {
    lease.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every [`WATCH_EVERY`] until cancelled: when the postmaster is gone, start it again (never
/// initialising a new cluster), unless this process has left meanwhile.
async fn watch(
    cluster: Arc<PrivateCluster>,
    lease: Arc<Mutex<Option<Lease>>>,
    cancel: CancellationToken,
) {
    // After a failed start, wait 10 s before the next try rather than log an
    // error every second.
    let mut pause = WATCH_EVERY;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = WATCH_EVERY;
        if cluster.is_running() {
            continue;
        }
        let (c, l) = (cluster.clone(), lease.clone());
        let restarted = tokio::task::spawn_blocking(move || {
            // Holding the lease slot keeps `leave` from stopping the cluster while we start it.
            let held = lock(&l);
            if held.is_none() {
                return Ok(false);
            }
            c.ensure_running(false)
        })
        .await;
        match restarted {
            Ok(Ok(true)) => tracing::warn!(
                "the private cluster in {} was not running (stopped or killed); started it again",
                cluster.home().display()
            ),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                pause = Duration::from_secs(10);
                tracing::error!(
                    "the private cluster is down and could not be started (next try in 10 s): {e:#}"
                );
            }
            Err(e) => tracing::error!("the cluster watchdog failed: {e}"),
        }
    }
}
