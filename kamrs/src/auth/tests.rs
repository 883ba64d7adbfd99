use super::subscribers::Subscriber;
use super::*;
use crate::sip::{parse_message, Limits, Message};

const NOW: u64 = 1_700_000_000;

fn users() -> Vec<Subscriber> {
    vec![
        Subscriber::with_password("alice", "example.com", "example.com", "wonderland"),
        Subscriber::with_password("bob", "example.com", "example.com", "builder"),
    ]
}

fn auth() -> Authenticator {
    auth_with(both(), Subscribers::in_memory(users()), 1)
}

/// `algorithms = ["SHA-256", "MD5"]`: the tests exercise both.
fn both() -> AuthSettings {
    AuthSettings {
        algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        ..AuthSettings::default()
    }
}

#[test]
fn by_default_one_md5_challenge() {
    // SIPp and baresip 1.0 give up on a 401 holding any SHA-256 challenge.
    let a = auth_with(AuthSettings::default(), Subscribers::in_memory(users()), 1);
    let ch = a.challenges("example.com", false, 0, source().ip(), NOW);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert!(ch[0].contains("algorithm=MD5"), "{ch:?}");
    let h = answer(
        Algorithm::Sha256,
        "alice",
        "wonderland",
        &nonce_of(&ch[0]),
        1,
        "sip:example.com",
    );
    assert!(
        matches!(
            check(&a, &register("alice", Some(&h)), "alice", NOW + 1),
            Verdict::Challenge { .. }
        ),
        "an algorithm not offered is not accepted"
    );
    let h = answer(
        Algorithm::Md5,
        "alice",
        "wonderland",
        &nonce_of(&ch[0]),
        2,
        "sip:example.com",
    );
    assert_eq!(
        check(&a, &register("alice", Some(&h)), "alice", NOW + 1),
        Verdict::Authorized
    );
}

fn auth_with(settings: AuthSettings, subscribers: Subscribers, boot: u64) -> Authenticator {
    Authenticator::with_boot_id(settings, b"test secret".to_vec(), 300, subscribers, boot)
}

fn source() -> std::net::SocketAddr {
    "192.0.2.1:5060".parse().unwrap()
}

/// What a UA computes for qop=auth (RFC 7616 §3.4.1).
fn answer(alg: Algorithm, user: &str, password: &str, nonce: &str, nc: u32, uri: &str) -> String {
    let ha1 = alg.hash_hex(&format!("{user}:example.com:{password}"));
    let ha2 = alg.hash_hex(&format!("REGISTER:{uri}"));
    let response = alg.hash_hex(&format!("{ha1}:{nonce}:{nc:08x}:c0ffee:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={}, qop=auth, nc={nc:08x}, cnonce=\"c0ffee\"",
        alg.as_str()
    )
}

fn register(to_user: &str, authorization: Option<&str>) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
         From: <sip:{to_user}@example.com>;tag=1\r\nTo: <sip:{to_user}@example.com>\r\n\
         Call-ID: c\r\nCSeq: 1 REGISTER\r\n{auth}Content-Length: 0\r\n\r\n"
    )
}

fn check(a: &Authenticator, text: &str, user: &str, now: u64) -> Verdict {
    check_from(a, text, user, source(), now)
}

fn check_from(
    a: &Authenticator,
    text: &str,
    user: &str,
    from: std::net::SocketAddr,
    now: u64,
) -> Verdict {
    match parse_message(text.as_bytes(), &Limits::default()) {
        Ok(Message::Request(req)) => a.check(&req, user, "example.com", from, now, &|| false),
        other => panic!("{other:?}"),
    }
}

fn nonce_of(challenge: &str) -> String {
    challenge
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn challenge_then_md5_and_sha256_answers() {
    let a = auth();
    assert_eq!(
        check(&a, &register("alice", None), "alice", NOW),
        Verdict::Challenge {
            stale: false,
            failures: 0
        }
    );
    let ch = a.challenges("example.com", false, 0, source().ip(), NOW);
    assert_eq!(ch.len(), 2);
    assert!(ch[0].contains("algorithm=SHA-256") && ch[1].contains("algorithm=MD5"));
    assert!(ch[0].contains("realm=\"example.com\"") && ch[0].contains("qop=\"auth\""));
    let nonce = nonce_of(&ch[0]);
    for (nc, alg) in [(1, Algorithm::Md5), (2, Algorithm::Sha256)] {
        let h = answer(alg, "alice", "wonderland", &nonce, nc, "sip:example.com");
        assert_eq!(
            check(&a, &register("alice", Some(&h)), "alice", NOW + 1),
            Verdict::Authorized,
            "{alg:?}"
        );
    }
}

#[test]
fn wrong_password_is_challenged_a_few_times_then_forbidden() {
    let a = auth();
    let mut failures = 0;
    for round in 1..=3u8 {
        let nonce = nonce_of(&a.challenges("example.com", false, failures, source().ip(), NOW)[0]);
        let h = answer(
            Algorithm::Md5,
            "alice",
            "guess",
            &nonce,
            1,
            "sip:example.com",
        );
        match check(&a, &register("alice", Some(&h)), "alice", NOW) {
            Verdict::Challenge {
                stale: false,
                failures: f,
            } if round < 3 => failures = f,
            Verdict::Forbidden(_) if round == 3 => {}
            other => panic!("round {round}: {other:?}"),
        }
    }
    // An unknown user is treated exactly like a wrong password.
    let nonce = nonce_of(&a.challenges("example.com", false, 0, source().ip(), NOW)[0]);
    let h = answer(Algorithm::Md5, "mallory", "x", &nonce, 1, "sip:example.com");
    assert_eq!(
        check(&a, &register("mallory", Some(&h)), "mallory", NOW),
        Verdict::Challenge {
            stale: false,
            failures: 1
        }
    );
}

#[test]
fn another_users_aor_is_forbidden() {
    let a = auth();
    let nonce = nonce_of(&a.challenges("example.com", false, 0, source().ip(), NOW)[0]);
    let h = answer(
        Algorithm::Sha256,
        "alice",
        "wonderland",
        &nonce,
        1,
        "sip:example.com",
    );
    assert!(matches!(
        check(&a, &register("bob", Some(&h)), "bob", NOW),
        Verdict::Forbidden(_)
    ));
}

#[test]
fn stale_replayed_and_mismatched() {
    let a = auth();
    let nonce = nonce_of(&a.challenges("example.com", false, 0, source().ip(), NOW)[0]);
    let h = answer(
        Algorithm::Md5,
        "alice",
        "wonderland",
        &nonce,
        1,
        "sip:example.com",
    );
    assert_eq!(
        check(&a, &register("alice", Some(&h)), "alice", NOW + 301),
        Verdict::Challenge {
            stale: true,
            failures: 0
        }
    );
    assert_eq!(
        check(&a, &register("alice", Some(&h)), "alice", NOW),
        Verdict::Authorized
    );
    assert_eq!(
        check(&a, &register("alice", Some(&h)), "alice", NOW),
        Verdict::Challenge {
            stale: false,
            failures: 0
        },
        "the same nc again is a replay"
    );
    // SIPp hashes the registrar's address as the digest uri: accepted.
    let other_uri = answer(
        Algorithm::Md5,
        "alice",
        "wonderland",
        &nonce,
        5,
        "sip:127.0.0.1:5060",
    );
    assert_eq!(
        check(&a, &register("alice", Some(&other_uri)), "alice", NOW),
        Verdict::Authorized
    );
    let forged = h.replace(&nonce, &"ab".repeat(nonce::NONCE_LEN / 2));
    assert_eq!(
        check(&a, &register("alice", Some(&forged)), "alice", NOW),
        Verdict::Challenge {
            stale: false,
            failures: 0
        }
    );
    assert!(matches!(
        check(
            &a,
            &register("alice", Some("Digest username=")),
            "alice",
            NOW
        ),
        Verdict::Malformed(_)
    ));
}

#[test]
fn nc_zero_is_refused() {
    let a = auth();
    let nonce = nonce_of(&a.challenges("example.com", false, 0, source().ip(), NOW)[0]);
    let h = answer(
        Algorithm::Md5,
        "alice",
        "wonderland",
        &nonce,
        0,
        "sip:example.com",
    );
    assert!(h.contains("nc=00000000"));
    assert_eq!(
        check(&a, &register("alice", Some(&h)), "alice", NOW),
        Verdict::Malformed("Digest nc Must Start At 00000001")
    );
    let h = answer(
        Algorithm::Md5,
        "alice",
        "wonderland",
        &nonce,
        1,
        "sip:example.com",
    );
    assert_eq!(
        check(&a, &register("alice", Some(&h)), "alice", NOW),
        Verdict::Authorized
    );
}

#[test]
fn another_process_nonce_is_stale_even_with_the_right_answer() {
    // Two processes with the same secret and subscribers: a restart, or a
    // second node.
    let a = auth();
    let b = auth_with(both(), Subscribers::in_memory(users()), 2);
    let nonce = nonce_of(&a.challenges("example.com", false, 0, source().ip(), NOW)[0]);
    let h = answer(
        Algorithm::Md5,
        "alice",
        "wonderland",
        &nonce,
        1,
        "sip:example.com",
    );
    assert_eq!(
        check(&a, &register("alice", Some(&h)), "alice", NOW),
        Verdict::Authorized
    );
    assert_eq!(
        check(&b, &register("alice", Some(&h)), "alice", NOW),
        Verdict::Challenge {
            stale: true,
            failures: 0
        },
        "a captured answer replayed on another process"
    );
}

#[test]
fn lockout_refuses_even_the_right_password_then_ends() {
    let settings = AuthSettings {
        max_failures: 200,
        lockout: lockout::LockoutSettings {
            failures: 4,
            source_failures: 0,
            user_failures: 0,
            window: 60,
            time: 30,
        },
        ..AuthSettings::default()
    };
    let a = auth_with(settings, Subscribers::in_memory(users()), 1);
    let right = |a: &Authenticator, from: std::net::SocketAddr, now| {
        let nonce = nonce_of(&a.challenges("example.com", false, 0, from.ip(), now)[0]);
        let h = answer(
            Algorithm::Md5,
            "alice",
            "wonderland",
            &nonce,
            1,
            "sip:example.com",
        );
        check_from(a, &register("alice", Some(&h)), "alice", from, now)
    };
    for round in 1..=4 {
        // A fresh nonce each time: the per-nonce count never builds up.
        let nonce = nonce_of(&a.challenges("example.com", false, 0, source().ip(), NOW)[0]);
        let h = answer(
            Algorithm::Md5,
            "alice",
            "guess",
            &nonce,
            1,
            "sip:example.com",
        );
        let v = check(&a, &register("alice", Some(&h)), "alice", NOW);
        if round < 4 {
            assert!(matches!(v, Verdict::Challenge { .. }), "{round}: {v:?}");
        } else {
            assert_eq!(v, Verdict::Forbidden(LOCKED_OUT));
        }
    }
    assert_eq!(right(&a, source(), NOW + 1), Verdict::Forbidden(LOCKED_OUT));
    let elsewhere: std::net::SocketAddr = "192.0.2.2:5060".parse().unwrap();
    assert_eq!(right(&a, elsewhere, NOW + 1), Verdict::Authorized);
    assert_eq!(right(&a, source(), NOW + 31), Verdict::Authorized);
    assert_eq!(a.lockout().lockouts.load(Ordering::Relaxed), 1);
    assert_eq!(a.lockout().refused.load(Ordering::Relaxed), 1);
    assert_eq!(a.stats().wrong_credentials.load(Ordering::Relaxed), 4);
}

#[test]
fn without_use_domain_another_domain_is_forbidden() {
    let subs = Subscribers::in_memory_single_domain(users()).unwrap();
    let a = auth_with(both(), subs, 1);
    let text = register("alice", None).replace("@example.com", "@evil.org");
    let v = match parse_message(text.as_bytes(), &Limits::default()) {
        Ok(Message::Request(req)) => a.check(&req, "alice", "evil.org", source(), NOW, &|| false),
        other => panic!("{other:?}"),
    };
    assert!(
        matches!(v, Verdict::Forbidden(r) if r.contains("use_domain")),
        "{v:?}"
    );
    assert!(matches!(
        check(&a, &register("alice", None), "alice", NOW),
        Verdict::Challenge { .. }
    ));
}

#[test]
fn an_answer_from_another_address_is_not_checked() {
    // A guesser spoofing a victim's address over UDP cannot run up its
    // failure count: the nonce was sent to the guesser's own address.
    let a = auth();
    let nonce = nonce_of(&a.challenges("example.com", false, 0, source().ip(), NOW)[0]);
    let h = answer(
        Algorithm::Md5,
        "alice",
        "guess",
        &nonce,
        1,
        "sip:example.com",
    );
    let victim: std::net::SocketAddr = "198.51.100.7:5060".parse().unwrap();
    assert_eq!(
        check_from(&a, &register("alice", Some(&h)), "alice", victim, NOW),
        Verdict::Challenge {
            stale: true,
            failures: 0
        }
    );
    assert_eq!(a.stats().wrong_credentials.load(Ordering::Relaxed), 0);
    assert_eq!(a.lockout().tracked(), 0);
}

proptest::proptest! {
    /// Whatever the Authorization says (with a real nonce spliced in, so the
    /// answer check, failure counting and lock-outs are reached), from any
    /// source: a verdict, never a panic, and the tables stay bounded.
    #[test]
    fn any_answer_from_any_source_ends_in_a_verdict(
        parts in proptest::collection::vec(
            (0u8..=255, "(NONCE|alice|nc=0000000[0-2]|response=\"[0-9a-f]{32}\"|[ -~]{0,12}){0,8}"),
            1..20,
        )
    ) {
        let a = auth_with(
            AuthSettings {
                lockout: lockout::LockoutSettings { failures: 2, source_failures: 3, user_failures: 4, window: 60, time: 60 },
                ..AuthSettings::default()
            },
            Subscribers::in_memory(users()),
            1,
        );
        for (octet, text) in parts {
            let from = std::net::SocketAddr::from(([192, 0, 2, octet], 5060));
            let nonce = nonce_of(&a.challenges("example.com", false, 0, from.ip(), NOW)[0]);
            let value = format!("Digest username=\"alice\", realm=\"example.com\", uri=\"sip:example.com\", qop=auth, cnonce=\"c\", {}", text.replace("NONCE", &format!("nonce=\"{nonce}\"")));
            let _ = check_from(&a, &register("alice", Some(&value)), "alice", from, NOW);
            proptest::prop_assert!(a.lockout().tracked() <= 3 * lockout::CAPACITY);
        }
    }
}

/// A registered binding spares its source the user lock-out, but only for
/// the AoR's own user: alice's phone cannot shelter guesses at bob.
#[test]
fn a_registered_source_is_spared_its_own_users_lockout_only() {
    let a = auth_with(
        AuthSettings {
            max_failures: 200,
            lockout: lockout::LockoutSettings {
                failures: 100,
                source_failures: 0,
                user_failures: 3,
                window: 60,
                time: 60,
            },
            ..AuthSettings::default()
        },
        Subscribers::in_memory(users()),
        1,
    );
    let send = |user: &str, to_user: &str, password: &str, octet: u8, registered: bool| {
        let from = std::net::SocketAddr::from(([192, 0, 2, octet], 5060));
        let nonce = nonce_of(&a.challenges("example.com", false, 0, from.ip(), NOW)[0]);
        let h = answer(Algorithm::Md5, user, password, &nonce, 1, "sip:example.com");
        match parse_message(register(to_user, Some(&h)).as_bytes(), &Limits::default()) {
            Ok(Message::Request(req)) => {
                a.check(&req, to_user, "example.com", from, NOW, &|| registered)
            }
            other => panic!("{other:?}"),
        }
    };
    for octet in 10..13 {
        send("alice", "alice", "guess", octet, false);
        send("bob", "bob", "guess", octet, false);
    }
    // alice's registered phone at .5 (never trusted: say, a restart).
    assert_eq!(
        send("alice", "alice", "wonderland", 5, true),
        Verdict::Authorized
    );
    assert_eq!(
        send("alice", "alice", "wonderland", 6, false),
        Verdict::Forbidden(LOCKED_OUT)
    );
    // Its binding is alice's: an answer as bob in her REGISTER is refused.
    assert_eq!(
        send("bob", "alice", "builder", 5, true),
        Verdict::Forbidden(LOCKED_OUT)
    );
}
