//! Types shared by the `kamrs` daemon and the `kamrsctl` CLI.
//!
//! This crate will hold the one JSON-RPC API trait (jsonrpsee `#[rpc]`,
//! server side behind a feature so the CLI never builds it) and the serde
//! types of its results, so that the daemon and the CLI cannot disagree on
//! a method name or a field. For now it carries what both already share.

/// Default path of the control socket, shared so the daemon's default and
/// the CLI's default can never drift apart.
pub const DEFAULT_CTL_SOCKET: &str = "/run/kamrs/kamrs.sock";

/// Package version of the kamrs suite; the daemon and the CLI are released
/// together and report the same version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
