//! `foldsweep serve`: a live, read-only view of the results database in the browser.
//!
//! Why it looks like this:
//! - Safe by default: it binds to loopback unless told otherwise, and anywhere else it needs
//!   a token (see [`auth`]). Every request gets its own read-only connection (see
//!   [`data::open`]), built and dropped before the response is written, so a slow client
//!   never holds the database; the sweep's coordinator keeps writing (WAL readers).
//! - Bounded: a fixed pool of worker threads takes connections from a short queue (a full
//!   queue answers 503 at once), each request head is size- and time-limited, and sockets
//!   have read and write timeouts ([`http`]).
//! - Nothing from disk but the database: routes are a fixed table; unknown paths get 404.
//! - Live by light polling: pages reload their main part every few seconds (assets/app.js);
//!   scripts poll the JSON API ([`api`]).

pub mod api;
pub mod auth;
pub mod data;
pub mod http;
pub mod pages;

use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

use self::auth::Gate;
use self::http::{ReadError, Request, Response};

/// Waiting for the next bytes of a request, or for the client to take the response.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections accepted but not yet taken by a worker; beyond this, 503.
const QUEUE: usize = 32;

/// What `foldsweep serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub db: PathBuf,
    pub addr: SocketAddr,
    pub token: Option<auth::Token>,
    /// Requests served at once, 1 to 64 (the CLI's `--workers` checks the range).
    pub workers: usize,
}

/// A bound, not yet running server (the CLI announces it in between).
pub struct Server {
    listener: TcpListener,
    context: Arc<Shared>,
    workers: usize,
}

/// What every request needs.
struct Shared {
    db: PathBuf,
    token: Option<String>,
}

impl Server {
    /// Checks the database opens read-only and binds the address.
    pub fn bind(options: ServeOptions) -> anyhow::Result<Server> {
        data::open(&options.db)?;
        anyhow::ensure!(
            (1..=64).contains(&options.workers),
            "serve takes 1 to 64 workers, not {}",
            options.workers
        );
        let addr = options.addr;
        let token = auth::required_token(addr.ip(), options.token);
        let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
        Ok(Server {
            listener,
            context: Arc::new(Shared { db: options.db, token }),
            workers: options.workers,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The token requests need, if any.
    pub fn token(&self) -> Option<&str> {
        self.context.token.as_deref()
    }

    /// What to print at start: the bound address first (tests read it), then the link.
    pub fn announcement(&self) -> anyhow::Result<String> {
        let addr = self.local_addr()?;
        let mut text =
            format!("foldsweep serve: http://{addr}/ (read-only, {})\n", self.context.db.display());
        if let Some(token) = self.token() {
            let host = if addr.ip().is_unspecified() {
                crate::util::process::hostname()
            } else {
                link_host(addr.ip())
            };
            text += &format!("open http://{host}:{}/?token={token}\n", addr.port());
        }
        Ok(text)
    }

    /// Serves until the process ends.
    pub fn run(self) -> anyhow::Result<()> {
        let (sender, receiver) = sync_channel::<TcpStream>(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..self.workers {
            let receiver = Arc::clone(&receiver);
            let context = Arc::clone(&self.context);
            std::thread::Builder::new()
                .name(format!("serve-{i}"))
                .spawn(move || worker(&receiver, &context))?;
        }
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else { continue };
            if let Err(TrySendError::Full(stream)) = sender.try_send(stream) {
                refuse_busy(stream);
            }
        }
        Ok(())
    }
}

fn link_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

fn worker(receiver: &Mutex<Receiver<TcpStream>>, context: &Shared) {
    loop {
        // The lock is held only while waiting for the next connection, never while serving.
        let next = receiver.lock().map(|r| r.recv());
        match next {
            Ok(Ok(stream)) => handle(stream, context),
            _ => return,
        }
    }
}

fn refuse_busy(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = Response::text(503, "503: busy, try again").write_to(&mut stream, false);
}

fn handle(mut stream: TcpStream, context: &Shared) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let refusal = match http::read_request(&mut stream) {
        Ok(request) => {
            let _ = respond(&request, context).write_to(&mut stream, request.method == "HEAD");
            return;
        }
        Err(ReadError::Closed) => return,
        Err(ReadError::Timeout) => Response::text(408, "408: request timeout"),
        Err(ReadError::TooLarge) => Response::text(431, "431: request head too large"),
        Err(ReadError::Malformed) => Response::text(400, "400: bad request"),
    };
    if refusal.write_to(&mut stream, false).is_ok() {
        linger(&mut stream);
    }
}

/// After refusing a request that was not read to its end: closing with unread bytes would
/// reset the connection and could destroy the answer before the client reads it, so stop
/// sending and discard what still comes, briefly and boundedly.
fn linger(stream: &mut TcpStream) {
    use std::io::Read;
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 256 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Token check, then the route; any internal error is a 500 without details.
fn respond(request: &Request, context: &Shared) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        return Response::text(405, "405: read-only; only GET and HEAD")
            .with_header("Allow", "GET, HEAD");
    }
    let Some(segments) = &request.segments else {
        return not_found();
    };
    let is_api = segments.first().is_some_and(|s| s == "api");
    match auth::check(request, context.token.as_deref(), is_api) {
        Gate::Pass => {}
        Gate::SetCookie(response) | Gate::Deny(response) => return response,
    }
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let routed = match segments.as_slice() {
        ["assets", name] => return pages::asset(name).unwrap_or_else(not_found),
        ["api", rest @ ..] => api::route(&context.db, rest, request),
        rest => pages::route(&context.db, rest, request),
    };
    routed.unwrap_or_else(|error| {
        // A database that cannot be read right now (locked past the busy timeout, corrupt):
        // say so without echoing internals to a client.
        eprintln!("foldsweep serve: {} {}: {error:#}", request.method, request.path);
        if is_api {
            Response::json_error(500, "internal error reading the results database")
        } else {
            Response::text(500, "500: internal error reading the results database")
        }
    })
}

pub fn not_found() -> Response {
    Response::text(404, "404: not found")
}

/// Config ids are 12 lowercase hex digits (docs/schema.md); anything else is never looked up.
pub fn is_config_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Sweep names come from sweep files; anything longer is not one of them.
pub fn is_plausible_sweep_name(text: &str) -> bool {
    !text.is_empty() && text.len() <= 200 && !text.chars().any(char::is_control)
}
