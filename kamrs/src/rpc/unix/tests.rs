use super::*;

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kamrs-unix-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test]
async fn creates_dir_socket_0600_and_replaces_only_stale_sockets() {
    let dir = temp("a");
    let path = dir.join("sub").join("ctl.sock");
    let bound = bind(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);

    // Live: the lock is held, a second bind refuses.
    let e = bind(&path).err().unwrap();
    assert!(e.0.contains("another running kamrs"), "{}", e.0);
    // Where else to listen is said once, by the caller (the warning for
    // the default socket, or the config key the admin set): not here.
    assert!(!e.0.contains("--ctl") && !e.0.contains("[ctl]"), "{}", e.0);

    // Crash: the lock is released but the file stays; it is replaced.
    let Bound { listener, file } = bound;
    drop(listener);
    drop(file);
    assert!(path.exists());
    let again = bind(&path).unwrap();
    again.file.remove();
    assert!(!path.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn refuses_a_socket_someone_answers_on_and_non_sockets() {
    let dir = temp("b");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ctl.sock");
    // Another program (no kamrs lock) listening there.
    let other = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let e = bind(&path).err().unwrap();
    assert!(e.0.contains("another program answers"), "{}", e.0);
    assert!(!e.0.contains("--ctl") && !e.0.contains("[ctl]"), "{}", e.0);
    drop(other);
    std::fs::remove_file(&path).unwrap();

    std::fs::write(&path, "not a socket").unwrap();
    let e = bind(&path).err().unwrap();
    assert!(e.0.contains("is not a socket"), "{}", e.0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn remove_leaves_a_file_that_is_not_ours() {
    let dir = temp("c");
    let path = dir.join("ctl.sock");
    let Bound { listener, file } = bind(&path).unwrap();
    drop(listener);
    // Replaced by a rename, so the new file has another inode.
    let other = dir.join("other");
    std::fs::write(&other, "someone else's").unwrap();
    std::fs::rename(&other, &path).unwrap();
    file.remove();
    assert!(path.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
