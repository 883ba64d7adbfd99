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
mod tests {
    use super::*;

    fn temp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("kamrs-check-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn defaults_pass_and_are_summarised() {
        let ok = check(&Config::default(), "built-in defaults").unwrap();
        assert!(ok.starts_with("built-in defaults (listen udp:127.0.0.1:5060, tcp:127.0.0.1:5060; auth none; store none; control unix:/run/kamrs/kamrs.sock)"), "{ok}");
    }

    #[test]
    fn secret_exists_creatable_short_or_impossible() {
        let d = temp("secret");
        let f = d.join("nonce.secret");
        assert_eq!(check_secret(&f), Ok("will be created"));
        assert_eq!(
            check_secret(&d.join("a/b/nonce.secret")),
            Ok("will be created")
        );
        assert!(
            !f.exists() && !d.join("a").exists(),
            "--check creates nothing"
        );
        std::fs::write(&f, [7u8; 32]).unwrap();
        assert_eq!(check_secret(&f), Ok("exists"));
        std::fs::write(&f, [7u8; 4]).unwrap();
        assert!(check_secret(&f)
            .unwrap_err()
            .contains("shorter than 16 bytes"));
        // Under a regular file: neither readable nor creatable.
        let e = check_secret(&f.join("x")).unwrap_err();
        assert!(
            e.contains("nonce secret") && e.contains("nonce.secret/x"),
            "{e}"
        );
        // A directory nobody may write (root may write anywhere).
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        if unsafe { libc::geteuid() } != 0 {
            let e = check_secret(Path::new("/proc/kamrs-nonce.secret")).unwrap_err();
            assert!(e.contains("cannot create the nonce secret"), "{e}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn digest_needs_a_subscriber_file_that_parses() {
        let d = temp("subs");
        let mut c = Config::default();
        c.auth.mode = AuthMode::Digest;
        c.auth.secret_file = d.join("nonce.secret");
        c.auth.subscribers = d.join("subscribers.toml");
        // Missing: an empty list, as at start.
        let ok = check(&c, "x").unwrap();
        assert!(ok.contains("auth digest, 0 subscribers in"), "{ok}");
        assert!(ok.contains("will be created"), "{ok}");
        std::fs::write(&c.auth.subscribers, "[[subscriber]]\nusername = \n").unwrap();
        let e = check(&c, "x").unwrap_err();
        assert!(e.contains("subscribers.toml"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sqlite_directory_must_exist() {
        let d = temp("sqlite");
        let mut c = Config::default();
        c.store.backend = StoreBackend::Sqlite;
        c.store.path = d.join("nope").join("location.db");
        let e = check(&c, "x").unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        c.store.path = d.join("location.db");
        assert!(check(&c, "x").unwrap().contains("store sqlite"));
        assert!(!c.store.path.exists(), "--check creates nothing");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
