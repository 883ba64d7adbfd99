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
