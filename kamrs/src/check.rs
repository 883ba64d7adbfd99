//! `kamrs --check` (like `kamailio -c`): what can be checked of a config
//! without binding a socket or changing a file.
//!
//! The config itself has already been loaded and validated (that is where
//! its file, line and key errors come from). This adds the files the
//! daemon would need at start: the subscriber list parses (and keeps to one
//! domain without `use_domain`), the nonce secret is readable or can be
//! created, the SQLite store's directory exists, the HTTP control token is
//! valid. Each failure is the message start-up would print; `--check`
//! creates nothing, so a secret that is missing but creatable passes.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::config::{AuthMode, Config, StoreBackend};

/// Checks `config`; `Ok` is the one-line summary after `config OK: `.
pub fn check(config: &Config, origin: &str) -> Result<String, String> {
    let mut parts = vec![format!(
        "listen {}",
        config
            .listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )];
    match config.auth.mode {
        AuthMode::None => parts.push("auth none".to_owned()),
        AuthMode::Digest => {
            let secret = check_secret(&config.auth.secret_file)?;
            let subscribers = crate::auth::subscribers::Subscribers::open(
                &config.auth.subscribers,
                !config.use_domain,
            )?;
            parts.push(format!(
                "auth digest, {} subscriber{} in {}, nonce secret {} {secret}",
                subscribers.len(),
                if subscribers.len() == 1 { "" } else { "s" },
                config.auth.subscribers.display(),
                config.auth.secret_file.display(),
            ));
        }
    }
    match config.store.backend {
        StoreBackend::None => parts.push("store none".to_owned()),
        StoreBackend::Sqlite => {
            let path = &config.store.path;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    return Err(format!(
                        "cannot open the sqlite location store {}: directory {} does not exist: create it (writable by kamrs) or set `[store] path`",
                        path.display(),
                        dir.display()
                    ));
                }
            }
            parts.push(format!("store sqlite {}", path.display()));
        }
        StoreBackend::Redis => {
            parts.push(format!("store redis {} (not contacted)", config.store.url))
        }
    }
    crate::rpc::check(&config.ctl_settings()).map_err(|e| e.to_string())?;
    parts.push(format!("control {}", config.ctl.listen));
    Ok(format!("{origin} ({})", parts.join("; ")))
}

/// The nonce secret as start-up reads or creates it: `Ok("exists")` or
/// `Ok("will be created")`, or the error start-up would stop with.
fn check_secret(path: &Path) -> Result<&'static str, String> {
    let shown = path.display();
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 16 => Ok("exists"),
        Ok(_) => Err(format!(
            "{shown}: the nonce secret is shorter than 16 bytes; delete the file and kamrs creates a new one"
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Start-up creates the missing directories, then the file: the
            // nearest existing ancestor must be a directory we may write.
            let dir = path
                .ancestors()
                .skip(1)
                .find(|d| d.as_os_str().is_empty() || d.exists())
                .map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d })
                .unwrap_or(Path::new("/"));
            if dir.is_dir() && writable(dir) {
                Ok("will be created")
            } else {
                Err(format!(
                    "cannot create the nonce secret {shown}: {} is not a directory kamrs may write to (set `[auth] secret_file` to a writable path, or run --check as the user kamrs runs as)",
                    dir.display()
                ))
            }
        }
        Err(e) => Err(format!("cannot read the nonce secret {shown}: {e}")),
    }
}

/// Whether this process (its effective uid and gid) may create files in
/// `dir`.
fn writable(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: faccessat(2) reads the NUL-terminated path we own and
    // nothing else.
    unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        ) == 0
    }
}

#[cfg(test)]
mod tests;
