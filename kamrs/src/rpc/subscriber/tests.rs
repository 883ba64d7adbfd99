use super::*;
use crate::auth::subscribers::{ha1_md5, ha1_sha256, Subscribers};
use crate::auth::AuthSettings;
use crate::rpc::api::tests::{state_for, state_with_auth};
use crate::rpc::Settings;

fn authenticator(
    realm: Option<&str>,
    algorithms: Vec<Algorithm>,
    subs: Subscribers,
) -> Authenticator {
    Authenticator::new(
        AuthSettings {
            realm: realm.map(str::to_owned),
            algorithms,
            ..AuthSettings::default()
        },
        vec![7; 32],
        300,
        subs,
    )
}

fn both() -> Vec<Algorithm> {
    vec![Algorithm::Sha256, Algorithm::Md5]
}

#[test]
fn add_list_rm() {
    let a = authenticator(None, both(), Subscribers::in_memory(Vec::new()));
    let md5 = ha1_md5("alice", "example.com", "pw");
    let sha = ha1_sha256("alice", "example.com", "pw");
    add(
        &a,
        "alice".into(),
        "Example.COM".into(),
        md5.to_uppercase(),
        sha.clone(),
    )
    .unwrap();
    add(
        &a,
        "bob".into(),
        "example.com".into(),
        String::new(),
        sha.clone(),
    )
    .unwrap();
    let stored = a.subscribers().get("alice", "example.com").unwrap();
    assert_eq!(stored.domain, "example.com");
    assert_eq!(stored.ha1.as_deref(), Some(md5.as_str()), "lower-cased");
    assert_eq!(a.subscribers().get("bob", "example.com").unwrap().ha1, None);
    let names = list(&a);
    assert_eq!(
        names,
        [
            SubscriberEntry {
                username: "alice".into(),
                domain: "example.com".into()
            },
            SubscriberEntry {
                username: "bob".into(),
                domain: "example.com".into()
            }
        ]
    );
    let text = serde_json::to_string(&names).unwrap();
    assert!(!text.contains(&md5) && !text.contains(&sha), "{text}");

    rm(&a, "alice", "EXAMPLE.com").unwrap();
    let e = rm(&a, "alice", "example.com").unwrap_err();
    assert_eq!((e.code(), e.message()), (404, "Subscriber not found"));
    assert_eq!(list(&a).len(), 1);
    assert_eq!(reload(&a).unwrap(), 1, "in memory: nothing to re-read");
}

#[test]
fn add_needs_a_hash_kamrs_can_use() {
    let a = authenticator(None, both(), Subscribers::in_memory(Vec::new()));
    let e = add(&a, "alice".into(), "d".into(), String::new(), String::new()).unwrap_err();
    assert_eq!(e.code(), error::INVALID_PARAMS);
    assert!(
        e.message().starts_with("subscriber.add: ") && e.message().contains("`ha1_sha256`"),
        "{}",
        e.message()
    );
    let sha_only = authenticator(
        None,
        vec![Algorithm::Sha256],
        Subscribers::in_memory(Vec::new()),
    );
    let e = add(
        &sha_only,
        "alice".into(),
        "d".into(),
        ha1_md5("alice", "d", "pw"),
        String::new(),
    )
    .unwrap_err();
    assert!(
        e.message().contains("only SHA-256") && e.message().contains("argument 4 `ha1_sha256`"),
        "{}",
        e.message()
    );
    assert!(sha_only.subscribers().is_empty());
}

#[test]
fn a_second_domain_needs_use_domain() {
    let subs = Subscribers::in_memory_single_domain(Vec::new()).unwrap();
    let a = authenticator(None, both(), subs);
    let sha = |d: &str| ha1_sha256("alice", d, "pw");
    add(
        &a,
        "alice".into(),
        "example.com".into(),
        String::new(),
        sha("example.com"),
    )
    .unwrap();
    let e = add(
        &a,
        "alice".into(),
        "evil.org".into(),
        String::new(),
        sha("evil.org"),
    )
    .unwrap_err();
    assert_eq!(e.code(), error::INVALID_PARAMS);
    assert!(
        e.message().starts_with("subscriber.add: ") && e.message().contains("use_domain = true"),
        "{}",
        e.message()
    );
    assert_eq!(list(&a).len(), 1);
    // use_domain = true: any number of domains.
    let a = authenticator(None, both(), Subscribers::in_memory(Vec::new()));
    add(
        &a,
        "alice".into(),
        "example.com".into(),
        String::new(),
        sha("example.com"),
    )
    .unwrap();
    add(
        &a,
        "alice".into(),
        "evil.org".into(),
        String::new(),
        sha("evil.org"),
    )
    .unwrap();
}

#[test]
fn realm_is_the_configured_one_or_the_domain() {
    let a = authenticator(None, both(), Subscribers::in_memory(Vec::new()));
    assert_eq!(realm(&a, "Example.COM"), "example.com");
    let fixed = authenticator(Some("kamrs"), both(), Subscribers::in_memory(Vec::new()));
    assert_eq!(realm(&fixed, "example.com"), "kamrs");
}

#[test]
fn file_errors_keep_the_old_list() {
    let dir = std::env::temp_dir().join(format!("kamrs-rpc-subs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("subscribers.toml");
    let a = authenticator(None, both(), Subscribers::open(&path, false).unwrap());
    add(
        &a,
        "alice".into(),
        "example.com".into(),
        ha1_md5("alice", "example.com", "pw"),
        String::new(),
    )
    .unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().contains("alice"));
    std::fs::write(&path, "this is not toml [").unwrap();
    let e = reload(&a).unwrap_err();
    assert_eq!(e.code(), error::INTERNAL);
    assert!(
        e.message()
            .contains("old one (1 subscribers) stays in force")
            && e.message().contains("subscribers.toml"),
        "{}",
        e.message()
    );
    assert_eq!(list(&a).len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_auth_on_the_registrars_authenticator() {
    let s = state_with_auth(authenticator(
        None,
        both(),
        Subscribers::in_memory(Vec::new()),
    ));
    let a = auth(&s).unwrap();
    assert!(std::ptr::eq(&*a, &**s.core.auth.as_ref().unwrap()));
}

#[test]
fn with_auth_off_the_subscriber_file_is_managed_as_digest_will_use_it() {
    let dir = std::env::temp_dir().join(format!("kamrs-rpc-off-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("subscribers.toml");
    let secret_file = dir.join("nonce.secret");
    let mut settings = Settings::default();
    settings.auth.path = path.clone();
    settings.auth.settings.realm = Some("pbx".into());
    let s = state_for(settings);
    assert!(s.core.auth.is_none(), "authentication is off");
    let a = auth(&s).unwrap();
    assert_eq!(realm(&a, "example.com"), "pbx", "the realm digest will use");
    assert_eq!(a.algorithms(), [Algorithm::Md5], "the default algorithms");
    add(
        &a,
        "alice".into(),
        "example.com".into(),
        ha1_md5("alice", "pbx", "pw"),
        String::new(),
    )
    .unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().contains("alice"));
    assert!(!secret_file.exists(), "no secret while off");
    // use_domain = false: one domain, as digest will require.
    let e = add(
        &a,
        "bob".into(),
        "other.example".into(),
        ha1_md5("bob", "pbx", "pw"),
        String::new(),
    )
    .unwrap_err();
    assert!(e.message().contains("use_domain = true"), "{}", e.message());
    // Re-read at every call: a hand edit is seen, never overwritten.
    let hand = format!(
        "{}[[subscriber]]\nusername = \"carol\"\ndomain = \"example.com\"\nha1 = \"{}\"\n",
        std::fs::read_to_string(&path).unwrap(),
        ha1_md5("carol", "pbx", "pw")
    );
    std::fs::write(&path, hand).unwrap();
    assert_eq!(list(&auth(&s).unwrap()).len(), 2);
    // A broken file: what is wrong, where, and what to do.
    std::fs::write(&path, "[[subscriber]\n").unwrap();
    let e = auth(&s).err().unwrap();
    assert_eq!(e.code(), error::INTERNAL);
    assert!(
        e.message().starts_with(AUTH_OFF)
            && e.message().contains("subscribers.toml")
            && e.message().contains("`[auth] subscribers`"),
        "{}",
        e.message()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_auth_off_an_unreadable_file_says_so() {
    // A directory where the file should be: unreadable as a file, also
    // for root.
    let dir = std::env::temp_dir().join(format!("kamrs-rpc-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("subscribers.toml")).unwrap();
    let mut settings = Settings::default();
    settings.auth.path = dir.join("subscribers.toml");
    let e = auth(&state_for(settings)).err().unwrap();
    assert!(
        e.message().contains("cannot read") && e.message().contains("subscribers.toml"),
        "{}",
        e.message()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
