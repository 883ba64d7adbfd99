//! The JSON-RPC control API (docs/design.md §6): Kamailio's `ul.*`, `stats.*`,
//! `core.*` and `system.listMethods` methods, plus `subscriber.*`,
//! `auth.realm` and `pike.top`, over a Unix socket (default)
//! or HTTP, served by jsonrpsee.
//!
//! Start-up is in two steps so the daemon's contract holds ("`ready` is
//! printed once every socket is bound"): [`bind`] creates the socket or
//! listener and fails start-up with a message saying what to do; once the
//! shared state ([`Core`]) exists, [`Bound::serve`] starts accepting. [`Running::stop`]
//! stops accepting, lets requests in flight finish until the deadline, and
//! removes the socket file.
//!
//! Files: `unix.rs` and `http.rs` (the endpoints and their security),
//! `origin.rs` (telling browsers and their origins apart),
//! `serve.rs` (limits and one connection), `params.rs` (argument checks),
//! `api.rs` (the method table), `dump_names.rs` (the paged dump's sorted
//! names), `ul.rs`, `stats.rs`, `system.rs`,
//! `subscriber.rs` (`subscriber.*`, `auth.realm`), `pike.rs` (`pike.top`)
//! (the methods), `shape.rs` (bindings as Kamailio shows them), `web.rs`
//! (the read-only web view at `/ui`, HTTP only).

mod api;
mod dump_names;
mod http;
mod intercept;
mod metrics;
mod origin;
mod params;
mod pike;
mod serve;
mod shape;
mod stats;
mod subscriber;
mod system;
mod tls;
mod ul;
mod unix;
mod watch;
mod web;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use common::Endpoint;
use jsonrpsee::server::{stop_channel, ServerHandle};
use tokio::task::JoinHandle;

pub use api::{Api, Settings, State, SubscriberFile};
pub use origin::check_origin;
pub use params::check as check_params;
pub use shape::core_hash;
pub use watch::{notification, rendered};

use crate::state::Core;

/// Why the control API cannot start. The text is what the daemon prints.
#[derive(Debug)]
pub struct CtlError(String);

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CtlError {}

/// The control endpoint and its limits (`config.rs` maps `[ctl]` onto
/// them; docs/ctl.md).
///
/// The limits exist because the control socket is a way into the daemon:
/// a local process with the right uid, or anyone holding the HTTP token,
/// must still not be able to make kamrs buffer unbounded requests or keep
/// unbounded connections open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlSettings {
    /// `unix:/path` (mode 0600, root or kamrs's own uid only) or
    /// `http://IP:PORT`.
    pub listen: Endpoint,
    /// The file holding the bearer token HTTP clients must send.
    pub token_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    pub max_request_size: u32,
    /// Largest response, in bytes.
    pub max_response_size: u32,
    /// Most calls in one JSON-RPC batch.
    pub max_batch: u32,
    /// Most control connections open at once; more are closed on accept.
    pub max_connections: u32,
    /// Web origins whose pages may call the HTTP API, with the token.
    pub allowed_origins: Vec<String>,
}

/// The embedded configuration's `[ctl]` (a test in `config.rs` checks
/// they agree).
impl Default for CtlSettings {
    fn default() -> Self {
        CtlSettings {
            listen: Endpoint::default_unix(),
            token_file: None,
            max_request_size: 256 * 1024,
            max_response_size: 1 << 30,
            max_batch: 100,
            max_connections: 32,
            allowed_origins: Vec::new(),
        }
    }
}

enum Endpoints {
    Unix(unix::Bound),
    Http(http::Bound),
    /// The default socket could not be created (see [`bind`]).
    Disabled,
}

/// The control endpoint, bound, not serving yet.
pub struct Bound {
    endpoint: Endpoints,
    /// The limits and origins it serves with.
    ctl: CtlSettings,
}

/// Binds `[ctl] listen`.
///
/// An endpoint the admin chose (config or `--ctl`) must work, so any
/// failure stops start-up. The built-in default `/run/kamrs/kamrs.sock` is
/// best effort: a non-root user trying kamrs, or a second instance on the
/// same machine, gets the per-user socket `$XDG_RUNTIME_DIR/kamrs/kamrs.sock`
/// (which kamrsctl tries next), or, failing that, a warning and a daemon
/// without a control socket rather than no daemon at all.
pub fn bind(ctl: &CtlSettings) -> Result<Bound, CtlError> {
    let endpoint = &ctl.listen;
    if let (Endpoint::Unix(_), Some(file)) = (endpoint, &ctl.token_file) {
        tracing::warn!(
            "ctl.token_file {} is not used: the control API is a Unix socket, where the peer's uid is checked instead",
            file.display()
        );
    }
    let bound = match endpoint {
        Endpoint::Unix(path) => unix::bind(path).map(Endpoints::Unix),
        Endpoint::Http(addr) => http::bind(*addr, ctl.token_file.as_deref()).map(Endpoints::Http),
    };
    let endpoint = match bound {
        Ok(b) => b,
        Err(e) if *endpoint == Endpoint::default_unix() => fallback(&e),
        Err(e) => return Err(e),
    };
    let bound = Bound {
        endpoint,
        ctl: ctl.clone(),
    };
    if let Some(shown) = bound.endpoint() {
        tracing::info!("control API listening on {shown}");
    }
    Ok(bound)
}

/// The default socket could not be created (`e`): the per-user socket
/// (`$XDG_RUNTIME_DIR/kamrs/kamrs.sock`, where kamrsctl looks next), else
/// no control API, each said in the log.
fn fallback(e: &CtlError) -> Endpoints {
    let Some(path) = common::user_ctl_socket() else {
        tracing::warn!(
            "control API disabled, kamrsctl cannot reach this kamrs: {e}; there is no per-user socket either (XDG_RUNTIME_DIR is not set, or is not a directory of kamrs's user with mode 0700)"
        );
        return Endpoints::Disabled;
    };
    match unix::bind(&path) {
        Ok(b) => {
            tracing::info!(
                "the default control socket is not available ({e}); using the per-user socket {} instead (kamrsctl looks there when run with the same XDG_RUNTIME_DIR)",
                path.display()
            );
            Endpoints::Unix(b)
        }
        Err(e2) => {
            tracing::warn!(
                "control API disabled, kamrsctl cannot reach this kamrs: {e}; the per-user socket failed too: {e2}"
            );
            Endpoints::Disabled
        }
    }
}

/// What `kamrs --check` can check of `[ctl]` without binding: an HTTP
/// endpoint's `token_file` is readable and holds a usable token.
pub fn check(ctl: &CtlSettings) -> Result<(), CtlError> {
    match (&ctl.listen, &ctl.token_file) {
        (Endpoint::Http(_), Some(file)) => http::read_token(file).map(drop),
        _ => Ok(()),
    }
}

impl Bound {
    /// Where it listens (with the real port when `:0` was asked), or None
    /// when disabled.
    pub fn endpoint(&self) -> Option<Endpoint> {
        match &self.endpoint {
            Endpoints::Unix(u) => Some(Endpoint::Unix(u.file.path().to_owned())),
            Endpoints::Http(h) => Some(Endpoint::Http(h.local)),
            Endpoints::Disabled => None,
        }
    }

    /// Starts serving the API on the shared state `core`.
    pub fn serve(self, core: Core, settings: Settings) -> Running {
        let state = State::new(core, settings);
        let ctl_stats = Arc::clone(&state.ctl_stats);
        let api = Api::new(state);
        let metrics = metrics::MetricsLayer(api.state());
        let module = api.into_module();
        let (stop, handle) = stop_channel();
        let (task, socket) = match self.endpoint {
            Endpoints::Unix(u) => {
                let conns = serve::Connections::new(
                    &self.ctl,
                    web::WebLayer { enabled: false },
                    http::AuthLayer::unix(ctl_stats),
                    metrics,
                    module.into(),
                    stop,
                );
                (
                    Some(tokio::spawn(unix::accept_loop(u.listener, conns))),
                    Some(u.file),
                )
            }
            Endpoints::Http(h) => {
                let conns = serve::Connections::new(
                    &self.ctl,
                    web::WebLayer { enabled: true },
                    http::AuthLayer::http(
                        h.token,
                        origin::Origins::new(h.local, &self.ctl.allowed_origins),
                        ctl_stats,
                    ),
                    metrics,
                    module.into(),
                    stop,
                );
                (
                    Some(tokio::spawn(http::accept_loop(h.listener, conns))),
                    None,
                )
            }
            Endpoints::Disabled => (None, None),
        };
        Running {
            handle,
            task,
            socket,
        }
    }
}

/// The serving control API.
pub struct Running {
    handle: ServerHandle,
    task: Option<JoinHandle<()>>,
    socket: Option<unix::SocketFile>,
}

impl Running {
    /// Stops accepting, gives open requests until `deadline`, and removes
    /// the socket file.
    pub async fn stop(self, deadline: tokio::time::Instant) {
        // Already stopped is fine: there is nothing more to stop.
        let _ = self.handle.stop();
        if let Some(task) = self.task {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::debug!("the control API did not stop in time");
            }
        }
        if let Some(socket) = self.socket {
            socket.remove();
        }
    }
}
