use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, http::HeaderValue::from_str(v).unwrap());
    }
    h
}

fn origins() -> Origins {
    Origins::new(
        "127.0.0.1:5065".parse().unwrap(),
        &["https://admin.example.com".to_owned()],
    )
}

#[test]
fn browsers_need_an_allowed_origin_and_the_token() {
    let open = AuthLayer::http(None, origins(), Arc::default());
    let get = http::Method::GET;
    let check = |a: &AuthLayer, h: &[(&'static str, &str)]| a.check(&get, &headers(h));
    // kamrsctl and curl: no Origin, no Sec-Fetch-*.
    assert!(check(&open, &[("host", "127.0.0.1:5065")]).is_ok());
    for (h, want) in [
        (
            vec![("origin", "https://evil.example")],
            Refusal::ForeignOrigin,
        ),
        (vec![("origin", "null")], Refusal::ForeignOrigin),
        (vec![("sec-fetch-site", "cross-site")], Refusal::CrossSite),
        (vec![("sec-fetch-site", "same-site")], Refusal::CrossSite),
        (
            vec![
                ("origin", "https://admin.example.com"),
                ("sec-fetch-site", "cross-site"),
            ],
            Refusal::CrossSite,
        ),
        // Allowed or own origin, but no token configured.
        (
            vec![("origin", "https://admin.example.com")],
            Refusal::BrowserWithoutToken,
        ),
        (
            vec![("origin", "http://127.0.0.1:5065")],
            Refusal::BrowserWithoutToken,
        ),
        (
            vec![("sec-fetch-site", "same-origin")],
            Refusal::BrowserWithoutToken,
        ),
        (
            vec![("sec-fetch-mode", "websocket")],
            Refusal::BrowserWithoutToken,
        ),
    ] {
        assert_eq!(check(&open, &h), Err(want), "{h:?}");
        assert_eq!(want.response().status(), 403);
    }
    let tok = AuthLayer::http(
        Some(Arc::from("0123456789abcdef")),
        origins(),
        Arc::default(),
    );
    let bearer = ("authorization", "Bearer 0123456789abcdef");
    assert!(check(&tok, &[("origin", "https://admin.example.com"), bearer]).is_ok());
    assert!(check(&tok, &[("origin", "http://127.0.0.1:5065"), bearer]).is_ok());
    assert_eq!(
        check(&tok, &[("origin", "https://admin.example.com")]),
        Err(Refusal::NoToken)
    );
    assert_eq!(
        check(&tok, &[("origin", "https://evil.example"), bearer]),
        Err(Refusal::ForeignOrigin)
    );
    // The Unix socket has no browser rules.
    assert!(AuthLayer::unix(Arc::default())
        .check(&get, &headers(&[("origin", "https://evil.example")]))
        .is_ok());
}

#[test]
fn posts_must_declare_json_on_both_endpoints() {
    let post = http::Method::POST;
    for layer in [
        AuthLayer::http(None, origins(), Arc::default()),
        AuthLayer::unix(Arc::default()),
    ] {
        assert!(layer
            .check(&post, &headers(&[("content-type", "application/json")]))
            .is_ok());
        for bad in [vec![], vec![("content-type", "text/plain")]] {
            assert_eq!(layer.check(&post, &headers(&bad)), Err(Refusal::NotJson));
        }
    }
    assert_eq!(Refusal::NotJson.response().status(), 415);
}

#[test]
fn refusals_are_counted() {
    let stats = Arc::new(CtlStats::default());
    let layer = AuthLayer::http(None, origins(), Arc::clone(&stats));
    let h = headers(&[("origin", "https://evil.example")]);
    for _ in 0..3 {
        let r = layer.check(&http::Method::GET, &h).unwrap_err();
        layer.refused(r, &h);
    }
    layer.refused(Refusal::NotJson, &h);
    assert_eq!(stats.refused_cross_origin.load(Ordering::Relaxed), 3);
    assert_eq!(stats.refused_content_type.load(Ordering::Relaxed), 1);
}

#[test]
fn token_is_required_when_configured() {
    let auth = AuthLayer::http(
        Some(Arc::from("0123456789abcdef")),
        origins(),
        Arc::default(),
    );
    assert!(auth
        .check(
            &http::Method::GET,
            &headers(&[("authorization", "Bearer 0123456789abcdef")])
        )
        .is_ok());
    assert!(auth
        .check(
            &http::Method::GET,
            &headers(&[("authorization", "bearer  0123456789abcdef ")])
        )
        .is_ok());
    for bad in [
        vec![],
        vec![("authorization", "Bearer 0123456789abcdeX")],
        vec![("authorization", "Basic 0123456789abcdef")],
        vec![("authorization", "Bearer")],
    ] {
        let resp = auth
            .check(&http::Method::GET, &headers(&bad))
            .unwrap_err()
            .response();
        assert_eq!(resp.status(), 401, "{bad:?}");
        assert!(resp.headers().contains_key("www-authenticate"));
    }
    // With a token, any Host is fine: the token is the protection.
    assert!(auth
        .check(
            &http::Method::GET,
            &headers(&[
                ("authorization", "Bearer 0123456789abcdef"),
                ("host", "kamrs.example.com")
            ])
        )
        .is_ok());
}

#[test]
fn loopback_without_token_checks_host() {
    let auth = AuthLayer::http(None, origins(), Arc::default());
    for ok in [
        "127.0.0.1:5065",
        "localhost:5065",
        "LOCALHOST",
        "[::1]:5065",
        "10.1.2.3",
    ] {
        assert!(
            auth.check(&http::Method::GET, &headers(&[("host", ok)]))
                .is_ok(),
            "{ok}"
        );
    }
    assert!(auth.check(&http::Method::GET, &headers(&[])).is_ok());
    for bad in [
        "evil.example.com",
        "evil.example.com:5065",
        "[::1",
        "127.0.0.1.nip.io:5065",
    ] {
        assert_eq!(
            auth.check(&http::Method::GET, &headers(&[("host", bad)]))
                .unwrap_err(),
            Refusal::ForeignHost,
            "{bad}"
        );
        assert_eq!(Refusal::ForeignHost.response().status(), 403);
    }
    assert!(AuthLayer::unix(Arc::default())
        .check(&http::Method::GET, &headers(&[("host", "anything")]))
        .is_ok());
}

#[test]
fn constant_time_compare() {
    assert!(same(b"abc", b"abc"));
    assert!(!same(b"abc", b"abd"));
    assert!(!same(b"abc", b"abcd"));
}

#[test]
fn token_file_rules() {
    let dir = std::env::temp_dir().join(format!("kamrs-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("token");
    std::fs::write(&f, "  0123456789abcdef0123\n").unwrap();
    assert_eq!(&*read_token(&f).unwrap(), "0123456789abcdef0123");
    std::fs::write(&f, "short\n").unwrap();
    assert!(read_token(&f).unwrap_err().0.contains("at least 16"));
    std::fs::write(&f, "0123456789 abcdef0123\n").unwrap();
    assert!(read_token(&f).is_err());
    let e = read_token(&dir.join("missing")).unwrap_err();
    assert!(e.0.contains("cannot read ctl.token_file"), "{}", e.0);
    std::fs::remove_dir_all(&dir).unwrap();
}
