//! The accept loop: a cap on open connections with a quick 503 past it, a header-read timeout, an
//! idle timeout, and graceful shutdown. `axum::serve` has none of these knobs, and without them
//! half-sent requests pile up until the process runs out of file descriptors.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use haven_tools::error::BurstLog;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::Config;

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time allowed for a request's headers, and for an idle HTTP/1 keep-alive connection's next
    /// request.
    pub header_read_timeout: Duration,
    /// Time a connection may carry no bytes with no request in progress before it is closed.
    pub idle_timeout: Duration,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits `config` asks for.
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(1)),
            max_connections: config.max_connections.max(1),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::from_config(&Config::loopback(1))
    }
}

/// Connections being answered 503 at once, past the cap; beyond these, accepting pauses.
const REFUSING_AT_ONCE: usize = 64;

/// The answer to a connection over the cap.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 98\r\n\r\n{\"result\":\"ERR\",\"status\":503,\"errorKind\":\"Unavailable\",\"message\":\"too many connections; retry\"}\n";

/// Raises the soft open-files limit to the hard one and returns the soft limit now in force, so
/// the connection cap can be checked against what the process may actually open.
pub fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
    Some(limit.rlim_cur as u64)
}

/// The connection cap after leaving room under the open-files limit for the database pool, the
/// refusals in progress and the process's own files.
pub fn fit_to_open_files(wanted: usize, open_files: Option<u64>, pool: u32) -> usize {
    let Some(open_files) = open_files else {
        return wanted;
    };
    let reserve = 128 + REFUSING_AT_ONCE as u64 + u64::from(pool);
    let room = open_files.saturating_sub(reserve).max(16) as usize;
    if wanted > room {
        tracing::warn!(
            wanted,
            allowed = room,
            open_files,
            "HAVEN_MAX_CONNECTIONS lowered to fit the open-files limit (raise `ulimit -n`)"
        );
    }
    wanted.min(room)
}

/// Serves `router` on `listener` under `limits` until `shutdown` is cancelled, then lets open
/// requests finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    static ACCEPT_LOG: BurstLog = BurstLog::new();
    static REFUSE_LOG: BurstLog = BurstLog::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.idle_timeout / 2)
        .keep_alive_timeout(limits.header_read_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning; the listener stays open.
                    ACCEPT_LOG.warn("accept failed", &err);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            REFUSE_LOG.warn(
                "connection cap reached; answering 503",
                &format_args!("{} open", limits.max_connections),
            );
            // With every refusal slot busy too, stop accepting until one frees up (each takes at
            // most a second): the rest wait in the kernel's backlog, costing no descriptor.
            let slot = tokio::select! {
                _ = shutdown.cancelled() => break,
                slot = refusing.clone().acquire_owned() => slot,
            };
            if let Ok(slot) = slot {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(slot);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let router = router.clone();
        let calls = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let call = calls.begin();
            let answer = router.clone().oneshot(req.map(axum::body::Body::new));
            async move {
                let answer = answer.await;
                drop(call);
                answer
            }
        });
        let connection = graceful.watch(
            builder
                .serve_connection_with_upgrades(io, service)
                .into_owned(),
        );
        let idle = limits.idle_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(connection);
            let check = (idle / 4).max(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = &mut connection => break,
                    _ = tokio::time::sleep(check) => {
                        if activity.idle_for() >= idle {
                            break; // dropping the connection closes the socket
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open 10 s after shutdown began; closing them");
    }
    Ok(())
}

/// Answers a connection over the cap with a short 503 and closes it, reading what the client
/// already sent first so the close does not turn into a reset that hides the answer.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await;
        let _ = stream.write_all(REFUSAL).await;
        let _ = stream.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await;
    })
    .await;
}

/// When a connection last moved bytes, and how many of its requests are being handled.
#[derive(Clone)]
struct Activity(Arc<ActivityState>);

struct ActivityState {
    born: Instant,
    last_ms: AtomicU64,
    calls: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self(Arc::new(ActivityState {
            born: Instant::now(),
            last_ms: AtomicU64::new(0),
            calls: AtomicUsize::new(0),
        }))
    }

    fn touch(&self) {
        let now = self.0.born.elapsed().as_millis() as u64;
        self.0.last_ms.store(now, Ordering::Relaxed);
    }

    /// Zero while a request is being handled, else the time since bytes last moved.
    fn idle_for(&self) -> Duration {
        if self.0.calls.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = self.0.last_ms.load(Ordering::Relaxed);
        Duration::from_millis((self.0.born.elapsed().as_millis() as u64).saturating_sub(last))
    }

    fn begin(&self) -> CallGuard {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        CallGuard(self.clone())
    }
}

/// Marks a request as being handled until dropped.
struct CallGuard(Activity);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0 .0.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket that records when bytes last moved through it.
struct Watched {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::fit_to_open_files;

    #[test]
    fn the_cap_leaves_room_under_the_open_files_limit() {
        assert_eq!(fit_to_open_files(1024, Some(1_048_576), 20), 1024);
        assert_eq!(
            fit_to_open_files(1024, Some(1024), 20),
            1024 - 128 - 64 - 20
        );
        assert_eq!(fit_to_open_files(1024, None, 20), 1024);
    }
}
