//! Password hashing off the async threads, bounded: at most `workers` Argon2 computations at once
//! (about one per core) and at most `queue` more waiting; past that a login answers 503 at once
//! instead of piling up behind the CPU and taking the rest of the API down with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::{BurstLog, ToolError};

/// The gate every Argon2 computation passes.
#[derive(Debug)]
pub struct HashGate {
    workers: Arc<Semaphore>,
    capacity: usize,
    admitted: AtomicUsize,
}

impl HashGate {
    /// `workers` concurrent hashes (0 = the number of cores) and `queue` waiting ones.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            workers
        };
        Self {
            workers: Arc::new(Semaphore::new(workers)),
            capacity: workers + queue,
            admitted: AtomicUsize::new(0),
        }
    }

    /// Runs `work` on the blocking pool once a worker is free, or refuses with `Unavailable` when
    /// the queue is full.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ToolError>
    where
        F: FnOnce() -> Result<T, ToolError> + Send + 'static,
        T: Send + 'static,
    {
        static LOG: BurstLog = BurstLog::new();
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            LOG.warn(
                "password hashing queue full; answering 503",
                &format_args!("{} admitted", self.capacity),
            );
            return Err(ToolError::unavailable(
                "too many logins are being checked right now; retry in a second",
                1,
            ));
        }
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _leave = Leave(&self.admitted);
        let _worker = self
            .workers
            .acquire()
            .await
            .map_err(|_| ToolError::unavailable("the server is shutting down", 1))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(ToolError::internal)?
    }
}

impl Default for HashGate {
    fn default() -> Self {
        Self::new(0, 64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_refused_as_unavailable() {
        let gate = Arc::new(HashGate::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut running = Vec::new();
        for _ in 0..2 {
            let (gate, rx) = (gate.clone(), rx.clone());
            running.push(tokio::spawn(async move {
                gate.run(move || {
                    let _ = rx.lock().unwrap().recv();
                    Ok(())
                })
                .await
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let refused = gate.run(|| Ok(())).await.unwrap_err();
        assert_eq!(refused.kind, crate::ErrorKind::Unavailable);
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        for r in running {
            r.await.unwrap().unwrap();
        }
        gate.run(|| Ok(())).await.unwrap();
    }
}
