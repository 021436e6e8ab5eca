//! Connections: our accept loop hands each socket to hyper's HTTP/1 server, with every
//! connection bounded in time and bytes.
//!
//! - The request head must arrive within [`Limits::head_deadline`] and fit in
//!   [`Limits::max_head_bytes`] (hyper's header read timeout and header size limit; the same
//!   deadline closes a keep-alive connection that sends no next request).
//! - A connection on which no byte moves either way for [`Limits::idle_timeout`] is closed
//!   (a client that stops reading its response, or a body that trickles in); handlers answer
//!   within [`Limits::handler_timeout`], which is shorter, and event streams send a comment
//!   more often than that.
//! - At most [`Limits::per_client`] connections per client address and
//!   [`Limits::connections`] in all; one more is closed at once with a one-packet 503, so
//!   a handful of slow clients cannot starve the others (they never hold a thread: waiting
//!   costs a task, not a worker).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How much time and how many bytes a client gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// For the whole request head, however slowly it trickles in, and for the next request
    /// on a kept-alive connection.
    pub head_deadline: Duration,
    /// No byte moving either way for this long closes the connection.
    pub idle_timeout: Duration,
    /// A handler that has not answered by then answers 503 (database work included).
    pub handler_timeout: Duration,
    /// For the whole request body (which a read-only server reads only to discard).
    pub body_deadline: Duration,
    pub per_client: usize,
    pub connections: usize,
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head_deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            handler_timeout: Duration::from_secs(20),
            body_deadline: Duration::from_secs(10),
            // A browser opens up to 6 connections per site, and each open page holds one
            // event stream: 32 is several tabs' worth.
            per_client: 32,
            connections: 512,
            // Browsers send heads under 2 KiB.
            max_head_bytes: 8 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// What a refused connection is told, in one write that never waits.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 42\r\nConnection: close\r\nRetry-After: 1\r\n\r\n503: too many connections, try again soon\n";

/// Accepts connections until the runtime is dropped.
pub async fn serve(listener: TcpListener, app: axum::Router, limits: Limits) {
    let clients = Arc::new(Clients { counts: Mutex::default(), per_client: limits.per_client });
    let total = Arc::new(tokio::sync::Semaphore::new(limits.connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: wait a moment instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = clients.take(peer.ip());
        let permit = Arc::clone(&total).try_acquire_owned().ok();
        let (Some(slot), Some(permit)) = (slot, permit) else {
            // No task and no wait for a refused one: what fits in the socket buffer, then close.
            let _ = stream.try_write(BUSY);
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            connection(stream, app, limits).await;
            drop((slot, permit));
        });
    }
}

async fn connection(stream: TcpStream, app: axum::Router, limits: Limits) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { inner: stream, activity: Arc::clone(&activity) });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.head_deadline)
        .max_header_size(limits.max_head_bytes)
        .max_headers(64)
        .keep_alive(true);
    let served = http.serve_connection(io, TowerToHyperService::new(app));
    let watchdog = async {
        let tick = (limits.idle_timeout / 4).max(Duration::from_millis(50));
        while activity.idle_for() < limits.idle_timeout {
            tokio::time::sleep(tick).await;
        }
    };
    // Whichever ends first; dropping the other closes the socket.
    futures_util::future::select(pin!(served), pin!(watchdog)).await;
}

/// Connections open per client address.
struct Clients {
    counts: Mutex<HashMap<IpAddr, usize>>,
    per_client: usize,
}

impl Clients {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = counts.entry(ip).or_insert(0);
        if *open >= self.per_client {
            return None;
        }
        *open += 1;
        Some(Slot { clients: Arc::clone(self), ip })
    }
}

/// One open connection of a client; gives its place back when dropped.
struct Slot {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.clients.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = counts.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// When a byte last moved on a connection.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity { start: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A socket that notes every read and write that moved bytes.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_places_back() {
        let clients = Arc::new(Clients { counts: Mutex::default(), per_client: 2 });
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let (a, b) = (clients.take(ip).unwrap(), clients.take(ip).unwrap());
        assert!(clients.take(ip).is_none(), "a third connection of the same client");
        assert!(clients.take("127.0.0.1".parse().unwrap()).is_some(), "another client");
        drop(a);
        assert!(clients.take(ip).is_some());
        drop(b);
        assert_eq!(BUSY.len() - BUSY.windows(4).position(|w| w == b"\r\n\r\n").unwrap() - 4, 42);
    }
}
