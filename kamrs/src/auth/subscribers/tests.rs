use super::*;

#[test]
fn ha1_known_values() {
    // RFC 2617 §3.5's example user, realm and password.
    assert_eq!(
        ha1_md5("Mufasa", "testrealm@host.com", "Circle Of Life"),
        "939e7578ed9e3c518a452acee763bce9"
    );
}

#[test]
fn file_round_trip_and_reload() {
    let dir = std::env::temp_dir().join(format!("kamrs-subs-{}", std::process::id()));
    let path = dir.join("subscribers.toml");
    let _ = std::fs::remove_dir_all(&dir);
    let s = Subscribers::open(&path, false).unwrap();
    assert!(s.is_empty());
    s.add(Subscriber::with_password(
        "alice",
        "Example.com",
        "example.com",
        "pw",
    ))
    .unwrap();
    s.add(Subscriber::with_password(
        "bob",
        "example.com",
        "example.com",
        "pw2",
    ))
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("pw2"), "no password on disk");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = Subscribers::open(&path, false).unwrap();
    assert_eq!(
        again.list(),
        [
            ("alice".into(), "example.com".into()),
            ("bob".into(), "example.com".into())
        ]
    );
    assert!(again.get("alice", "EXAMPLE.COM").is_some());
    assert!(again.remove("alice", "example.com").unwrap());
    assert!(!again.remove("alice", "example.com").unwrap());
    s.reload().unwrap();
    assert!(s.get("alice", "example.com").is_none());
    std::fs::write(
        &path,
        "[[subscriber]]\nusername = \"x\"\ndomain = \"d\"\nha1 = \"zz\"\n",
    )
    .unwrap();
    assert!(s.reload().unwrap_err().contains("32 hex digits"));
    std::fs::write(&path, "[[subscriber]]\nusername = \"x\"\nbad\n").unwrap();
    let e = s.reload().unwrap_err();
    assert!(e.contains("subscribers.toml: line 3: "), "{e}");
    assert!(
        s.get("bob", "example.com").is_some(),
        "a bad file keeps the old list"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_domain_without_use_domain() {
    let dir = std::env::temp_dir().join(format!("kamrs-subs1-{}", std::process::id()));
    let path = dir.join("subscribers.toml");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let two = "[[subscriber]]\nusername = \"alice\"\ndomain = \"example.com\"\nha1 = \"00000000000000000000000000000000\"\n\n[[subscriber]]\nusername = \"alice\"\ndomain = \"evil.org\"\nha1 = \"00000000000000000000000000000000\"\n";
    std::fs::write(&path, two).unwrap();
    let e = Subscribers::open(&path, true).err().unwrap();
    assert!(
        e.contains("use_domain = true") && e.contains("evil.org, example.com"),
        "{e}"
    );
    assert!(Subscribers::open(&path, false).is_ok());
    // One domain: fine; a second by add or by reload is refused and the
    // list in force stays as it was.
    std::fs::remove_file(&path).unwrap();
    let s = Subscribers::open(&path, true).unwrap();
    assert!(s.serves_domain("anything.example"), "empty list");
    s.add(Subscriber::with_password(
        "alice",
        "Example.COM",
        "example.com",
        "pw",
    ))
    .unwrap();
    assert!(s.serves_domain("example.com") && !s.serves_domain("evil.org"));
    let e = s
        .add(Subscriber::with_password(
            "alice", "evil.org", "evil.org", "pw",
        ))
        .unwrap_err();
    assert!(e.contains("use_domain = true"), "{e}");
    assert!(s.admits("evil.org").is_err() && s.admits("EXAMPLE.com").is_ok());
    assert!(s.get("alice", "evil.org").is_none());
    std::fs::write(&path, two).unwrap();
    assert!(s.reload().unwrap_err().contains("use_domain = true"));
    assert!(s.get("alice", "example.com").is_some() && !s.serves_domain("evil.org"));
    // Removing the last subscriber frees the domain.
    std::fs::remove_file(&path).unwrap();
    assert!(s.remove("alice", "example.com").unwrap());
    assert!(s.serves_domain("evil.org"));
    let _ = std::fs::remove_dir_all(&dir);
}
