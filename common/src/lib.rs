//! Types shared by the `kamrs` daemon and the `kamrsctl` CLI: the JSON-RPC
//! control API (one jsonrpsee `#[rpc]` trait, [`api`]), the serde types of
//! its results ([`types`]) and the control endpoint syntax ([`endpoint`]).
//!
//! The daemon builds this crate with feature `server`, the CLI with
//! `client`, so neither compiles the other's half; they cannot disagree on a
//! method name, an argument or a field.

#[cfg(any(feature = "server", feature = "client"))]
pub mod api;
pub mod endpoint;
pub mod raw;
pub mod types;

pub use endpoint::Endpoint;
pub use raw::Raw;

/// Default path of the control socket, shared so the daemon's default and
/// the CLI's default can never drift apart.
pub const DEFAULT_CTL_SOCKET: &str = "/run/kamrs/kamrs.sock";

/// The per-user control socket, `$XDG_RUNTIME_DIR/kamrs/kamrs.sock`: where
/// the daemon puts its socket when the default one cannot be created (not
/// root, `/run/kamrs` not writable) and where kamrsctl looks next. `None`
/// when `XDG_RUNTIME_DIR` is unset, empty or not an absolute path (the XDG
/// base directory spec says to ignore it then).
pub fn user_ctl_socket() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?);
    dir.is_absolute()
        .then(|| dir.join("kamrs").join("kamrs.sock"))
}

/// Package version of the kamrs suite; the daemon and the CLI are released
/// together and report the same version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
