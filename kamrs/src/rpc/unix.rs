//! The Unix socket endpoint (`[ctl] listen = "unix:/path"`), the default.
//!
//! - The socket is chmod 0600 right after bind; between the two, the peer
//!   credential check below still refuses other users.
//! - Every connection's peer uid (SO_PEERCRED) must be root or kamrs's own
//!   effective uid, whatever the file mode says.
//! - A socket file left by a crashed kamrs is replaced, but only when it is
//!   safe: kamrs holds an exclusive `flock` on `PATH.lock` for as long as it
//!   serves, so a held lock means a live kamrs owns the socket (refuse); a
//!   free lock means no kamrs does, and the file is removed only if nothing
//!   else answers on it either (a connect is refused) and it is a socket.
//!   Two daemons starting at once serialize on the lock, so neither can
//!   delete the socket the other just bound.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::serve::Connections;
use super::CtlError;

/// A bound control socket, not yet serving.
pub(super) struct Bound {
    pub(super) listener: tokio::net::UnixListener,
    pub(super) file: SocketFile,
}

/// The socket file we created and the lock that says so. Removing it on
/// stop only removes *our* file: if someone replaced it meanwhile (same
/// path, other inode), it stays.
pub struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
    /// Held (flock) until this is dropped.
    _lock: File,
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file if it is still ours, then releases the lock.
    pub fn remove(self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.id {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(
                        "cannot remove the control socket {}: {e}",
                        self.path.display()
                    );
                }
            }
        }
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

pub(super) fn bind(path: &Path) -> Result<Bound, CtlError> {
    let shown = path.display();
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    CtlError(format!(
                        "cannot create {} for the control socket: {e} (run kamrs as a user that may, or choose another path: --ctl unix:/some/dir/kamrs.sock)",
                        dir.display()
                    ))
                })?;
        }
    }
    let lock = take_lock(path)?;
    remove_if_stale(path)?;
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(|e| {
        CtlError(format!(
            "cannot create the control socket {shown}: {e} (check the directory's permissions, or choose another path with [ctl] listen / --ctl)"
        ))
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| CtlError(format!("cannot chmod 600 the control socket {shown}: {e}")))?;
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| CtlError(format!("control socket {shown}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| CtlError(format!("control socket {shown}: {e}")))?;
    let listener = tokio::net::UnixListener::from_std(listener)
        .map_err(|e| CtlError(format!("control socket {shown}: {e}")))?;
    Ok(Bound {
        listener,
        file: SocketFile {
            path: path.to_owned(),
            id: (meta.dev(), meta.ino()),
            _lock: lock,
        },
    })
}

/// Takes the exclusive lock of `PATH.lock`, or says who holds it.
fn take_lock(path: &Path) -> Result<File, CtlError> {
    let lock_path = lock_path(path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| {
            CtlError(format!(
                "cannot open the control socket's lock {}: {e}",
                lock_path.display()
            ))
        })?;
    // SAFETY: flock(2) on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(CtlError(if e.kind() == io::ErrorKind::WouldBlock {
            format!(
                "the control socket {} belongs to another running kamrs, which holds {}; stop that kamrs to use this path",
                path.display(),
                lock_path.display()
            )
        } else {
            format!("cannot lock {}: {e}", lock_path.display())
        }));
    }
    Ok(file)
}

/// Removes a socket file nobody answers on; refuses anything else.
fn remove_if_stale(path: &Path) -> Result<(), CtlError> {
    let shown = path.display();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CtlError(format!("cannot inspect {shown}: {e}"))),
    };
    if !meta.file_type().is_socket() {
        return Err(CtlError(format!(
            "{shown} exists and is not a socket; refusing to replace it (remove it, or choose another path with [ctl] listen / --ctl)"
        )));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(CtlError(format!(
            "{shown} is in use: another program answers on it; refusing to replace it (stop that program to use this path)"
        ))),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!("replacing the stale control socket {shown} (left by a stopped kamrs)");
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(CtlError(format!("cannot remove the stale control socket {shown}: {e}"))),
            }
        }
        Err(e) => Err(CtlError(format!(
            "cannot check whether {shown} is in use: {e}; refusing to replace it"
        ))),
    }
}

/// Accepts connections until the API stops, keeping only root and our own
/// uid.
pub(super) async fn accept_loop(listener: tokio::net::UnixListener, conns: Connections) {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let own_uid = unsafe { libc::geteuid() };
    let stopped = conns.stop_handle().clone().shutdown();
    tokio::pin!(stopped);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut stopped => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == 0 || cred.uid() == own_uid => {
                let peer = match cred.pid() {
                    Some(pid) => format!("uid {} pid {pid}", cred.uid()),
                    None => format!("uid {}", cred.uid()),
                };
                conns.serve(stream, &peer);
            }
            Ok(cred) => tracing::warn!(
                "control connection from uid {} refused: only root and kamrs's own uid {own_uid} may use the control socket",
                cred.uid()
            ),
            Err(e) => tracing::warn!("control connection refused: cannot read its credentials: {e}"),
        }
    }
}

#[cfg(test)]
mod tests;
