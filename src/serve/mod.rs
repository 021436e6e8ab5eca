//! `foldsweep serve`: a live, read-only view of the results database in the browser.
//!
//! Why it looks like this:
//! - Private by default: it binds to loopback unless told otherwise, answers only to its own
//!   host names and needs a token on every address ([`auth`]), as Jupyter does.
//! - HTTP is hyper's, through axum on tokio ([`net`], [`routes`]): a connection that waits
//!   costs a task, not a thread, and every connection is bounded in time and bytes
//!   ([`net::Limits`]); tower-http bounds bodies and handlers.
//! - Database reads run on tokio's blocking pool, at most `workers` at once, each on its own
//!   read-only connection ([`data::open`]) dropped before the response is written, so a slow
//!   client never holds the database; the sweep's coordinator keeps writing (WAL readers).
//! - Nothing from disk but the database: routes are a fixed table; unknown paths get 404.
//! - Live by light polling: pages reload their main part every few seconds (assets/app.js);
//!   scripts poll the JSON API ([`api`]).
//! - The library does not print: errors met while serving go to the caller's callback.

pub mod api;
pub mod auth;
pub mod data;
mod guard;
pub mod http;
mod live;
pub mod net;
pub mod pages;
pub mod plots;
mod routes;
pub mod space_plots;
mod sweep_page;
pub mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use self::auth::{AllowedHosts, TokenChoice};
use self::http::Response;
pub use self::net::Limits;
use crate::error::InputError;

/// What `foldsweep serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub db: PathBuf,
    pub addr: SocketAddr,
    pub token: Option<auth::Token>,
    /// Database reads at once, 1 to 64 (the CLI's `--workers` checks the range).
    pub workers: usize,
}

/// Who may read, beyond [`ServeOptions`]: `--no-token` and `--allow-host`.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub no_token: bool,
    pub allow_hosts: Vec<String>,
}

/// Something that happened while serving, for the caller to tell (the library prints nothing).
#[derive(Debug, Clone, PartialEq)]
pub enum ServeEvent {
    /// A request that could not be answered from the database (answered 500).
    ReadFailed { request: String, error: String },
}

/// A bound, not yet running server (the CLI announces it in between).
pub struct Server {
    listener: std::net::TcpListener,
    db: PathBuf,
    token: Option<String>,
    hosts: AllowedHosts,
    workers: usize,
    limits: Limits,
}

impl Server {
    /// Checks the database opens read-only, decides the token and the Host names to answer
    /// to, and binds the address.
    pub fn bind(options: ServeOptions, access: Access, limits: Limits) -> anyhow::Result<Server> {
        data::open(&options.db)?;
        anyhow::ensure!(
            (1..=64).contains(&options.workers),
            "serve takes 1 to 64 workers, not {}",
            options.workers
        );
        let addr = options.addr;
        let choice = match (options.token, access.no_token) {
            (Some(_), true) => {
                Err(InputError::new("a token and no token at once: give one of them")
                    .field("no_token"))?
            }
            (Some(token), false) => TokenChoice::Given(token),
            (None, true) => TokenChoice::Off,
            (None, false) => TokenChoice::Generate,
        };
        let token = auth::required_token(addr.ip(), choice)?;
        let hosts =
            AllowedHosts::new(addr.ip(), &access.allow_hosts, &crate::util::process::hostname());
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
        Ok(Server { listener, db: options.db, token, hosts, workers: options.workers, limits })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The token requests need, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// What to print at start: the bound address first (tests read it), then the link.
    pub fn announcement(&self) -> anyhow::Result<String> {
        let addr = self.local_addr()?;
        let mut text =
            format!("foldsweep serve: http://{addr}/ (read-only, {})\n", self.db.display());
        if let Some(token) = self.token() {
            let host = if addr.ip().is_unspecified() {
                crate::util::process::hostname()
            } else {
                auth::host_literal(addr.ip())
            };
            text += &format!("open http://{host}:{}/?token={token}\n", addr.port());
        }
        Ok(text)
    }

    /// Serves until the process ends, telling `on_event` what went wrong on the way.
    pub fn run_with(
        self,
        on_event: impl Fn(ServeEvent) + Send + Sync + 'static,
    ) -> anyhow::Result<()> {
        let port = self.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // Connections cost tasks, not threads: two threads carry any number of them.
            .worker_threads(2)
            .max_blocking_threads(self.workers)
            .thread_name("serve")
            .enable_io()
            .enable_time()
            .build()?;
        self.listener.set_nonblocking(true)?;
        let listener = {
            let _inside = runtime.enter();
            tokio::net::TcpListener::from_std(self.listener)?
        };
        let context = Arc::new(routes::Context {
            db: self.db,
            token: self.token,
            cookie: auth::cookie_name(port),
            hosts: self.hosts,
            limits: self.limits,
            db_slots: Arc::new(tokio::sync::Semaphore::new(self.workers)),
            events: Arc::new(on_event),
        });
        runtime.block_on(net::serve(listener, routes::router(context), self.limits));
        Ok(())
    }
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
