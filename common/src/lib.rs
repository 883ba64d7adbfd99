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
/// root, `/run/kamrs` not writable) and where kamrsctl looks next.
pub fn user_ctl_socket() -> Option<std::path::PathBuf> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let euid = unsafe { libc::geteuid() };
    user_ctl_socket_in(std::env::var_os("XDG_RUNTIME_DIR"), euid)
}

/// [`user_ctl_socket`] for a given `XDG_RUNTIME_DIR` value and effective
/// uid. `None` unless the directory is what the XDG base directory spec
/// requires: an absolute path to a directory owned by `euid` that no one
/// else may read or write (mode 0700). Anything else is ignored: a root
/// kamrsctl run with another user's `XDG_RUNTIME_DIR` (`su` keeps it) must
/// not talk to a socket that user could have put there, nor a root kamrs
/// put its socket where that user could replace it.
pub fn user_ctl_socket_in(
    xdg_runtime_dir: Option<std::ffi::OsString>,
    euid: u32,
) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dir = std::path::PathBuf::from(xdg_runtime_dir?);
    if !dir.is_absolute() {
        return None;
    }
    let meta = std::fs::metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == euid && meta.mode() & 0o077 == 0)
        .then(|| dir.join("kamrs").join("kamrs.sock"))
}

/// Package version of the kamrs suite; the daemon and the CLI are released
/// together and report the same version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn user_socket_only_in_a_private_runtime_dir_of_ours() {
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        let me = unsafe { libc::geteuid() };
        let dir = std::env::temp_dir().join(format!("kamrs-xdg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            user_ctl_socket_in(Some(dir.clone().into()), me),
            Some(dir.join("kamrs").join("kamrs.sock"))
        );
        // Another user's directory, or one others may write: ignored.
        assert_eq!(user_ctl_socket_in(Some(dir.clone().into()), me + 1), None);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(user_ctl_socket_in(Some(dir.clone().into()), me), None);
        // Unset, empty, relative, missing: ignored.
        assert_eq!(user_ctl_socket_in(None, me), None);
        assert_eq!(user_ctl_socket_in(Some("".into()), me), None);
        assert_eq!(user_ctl_socket_in(Some("run/user/0".into()), me), None);
        assert_eq!(user_ctl_socket_in(Some(dir.join("nope").into()), me), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
