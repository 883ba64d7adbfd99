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

/// The handshake headers of a browser's `new WebSocket(url, protocols)`
/// from the listener's own page, plus `more`.
fn upgrade(protocols: &str, more: &[(&'static str, &str)]) -> http::HeaderMap {
    let mut h = headers(&[
        ("origin", "http://127.0.0.1:5065"),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-mode", "websocket"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-protocol", protocols),
    ]);
    for (k, v) in more {
        h.insert(*k, http::HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn a_websocket_may_carry_the_token_as_a_subprotocol() {
    let token = "0123456789abcdef/+=:";
    let auth = AuthLayer::http(Some(Arc::from(token)), origins(), Arc::default());
    let get = http::Method::GET;
    let right = format!("kamrs, {WS_TOKEN_PREFIX}{}", hex(token.as_bytes()));
    assert_eq!(
        right,
        "kamrs, kamrs.bearer.303132333435363738396162636465662f2b3d3a"
    );
    assert!(auth.check(&get, &upgrade(&right, &[])).is_ok());
    // Order and spacing do not matter; a second header line is read too.
    let mut two = upgrade("kamrs", &[]);
    two.append(
        "sec-websocket-protocol",
        http::HeaderValue::from_str(&format!("{WS_TOKEN_PREFIX}{}", hex(token.as_bytes())))
            .unwrap(),
    );
    assert!(auth.check(&get, &two).is_ok());

    let wrong = |p: &str| auth.check(&get, &upgrade(p, &[]));
    // One character off, upper-case hex, the raw token, an empty one.
    let off = format!("kamrs,{WS_TOKEN_PREFIX}{}0", &hex(token.as_bytes())[1..]);
    assert_eq!(wrong(&off), Err(Refusal::WrongToken));
    let upper = format!(
        "kamrs,{WS_TOKEN_PREFIX}{}",
        hex(token.as_bytes()).to_uppercase()
    );
    assert_eq!(wrong(&upper), Err(Refusal::WrongToken));
    assert_eq!(
        wrong(&format!("kamrs,{WS_TOKEN_PREFIX}{token}")),
        Err(Refusal::WrongToken)
    );
    assert_eq!(
        wrong(&format!("kamrs,{WS_TOKEN_PREFIX}")),
        Err(Refusal::WrongToken)
    );
    assert_eq!(wrong("kamrs"), Err(Refusal::NoToken));

    // Only on an upgrade: a POST or a plain GET with the same header
    // still needs Authorization.
    let mut post = upgrade(&right, &[]);
    post.remove("upgrade");
    assert_eq!(
        auth.check(&http::Method::POST, &post),
        Err(Refusal::NoToken)
    );
    assert_eq!(auth.check(&get, &post), Err(Refusal::NoToken));
    // A header sent is the one checked.
    assert_eq!(
        auth.check(
            &get,
            &upgrade(&right, &[("authorization", "Bearer 0123456789abcdeX")])
        ),
        Err(Refusal::WrongToken)
    );
    // The token does not lift the browser rules.
    assert_eq!(
        auth.check(
            &get,
            &upgrade(&right, &[("origin", "https://evil.example")])
        ),
        Err(Refusal::ForeignOrigin)
    );
    assert_eq!(
        auth.check(&get, &upgrade(&right, &[("sec-fetch-site", "cross-site")])),
        Err(Refusal::CrossSite)
    );
    // Without a token configured, a browser is refused whatever it offers.
    let open = AuthLayer::http(None, origins(), Arc::default());
    assert_eq!(
        open.check(&get, &upgrade(&right, &[])),
        Err(Refusal::BrowserWithoutToken)
    );
}

/// Runs one request through [`Auth`] around an inner service that
/// answers `status` and records the request headers it saw.
fn through_auth(
    auth: &AuthLayer,
    req_headers: http::HeaderMap,
    status: http::StatusCode,
) -> (HttpResponse, Option<http::HeaderMap>) {
    use tower::{Layer, Service, ServiceExt};
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen_inner = Arc::clone(&seen);
    let inner = tower::service_fn(move |req: HttpRequest<HttpBody>| {
        *seen_inner.lock().unwrap() = Some(req.headers().clone());
        let mut resp = HttpResponse::new(HttpBody::default());
        *resp.status_mut() = status;
        std::future::ready(Ok::<_, std::convert::Infallible>(resp))
    });
    let mut svc = auth.layer(inner);
    let mut req = HttpRequest::new(HttpBody::default());
    *req.headers_mut() = req_headers;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let resp = rt
        .block_on(async { svc.ready().await.unwrap().call(req).await })
        .unwrap();
    let seen = seen.lock().unwrap().take();
    (resp, seen)
}

#[test]
fn a_101_names_kamrs_and_the_token_goes_no_further() {
    let token = "0123456789abcdef";
    let auth = AuthLayer::http(Some(Arc::from(token)), origins(), Arc::default());
    let right = format!("kamrs, {WS_TOKEN_PREFIX}{}", hex(token.as_bytes()));
    let (resp, seen) = through_auth(
        &auth,
        upgrade(&right, &[]),
        http::StatusCode::SWITCHING_PROTOCOLS,
    );
    assert_eq!(resp.headers()["sec-websocket-protocol"], WS_PROTOCOL);
    let seen = seen.expect("passed to the API");
    assert!(!seen.contains_key("sec-websocket-protocol"), "{seen:?}");
    // Not offered: not answered (the client asked for no subprotocol).
    let (resp, _) = through_auth(
        &auth,
        upgrade(&format!("{WS_TOKEN_PREFIX}{}", hex(token.as_bytes())), &[]),
        http::StatusCode::SWITCHING_PROTOCOLS,
    );
    assert!(!resp.headers().contains_key("sec-websocket-protocol"));
    // Not a 101 (jsonrpsee refused the handshake): nothing added.
    let (resp, _) = through_auth(&auth, upgrade(&right, &[]), http::StatusCode::BAD_REQUEST);
    assert!(!resp.headers().contains_key("sec-websocket-protocol"));
    // A wrong token never reaches the API.
    let (resp, seen) = through_auth(
        &auth,
        upgrade("kamrs, kamrs.bearer.00", &[]),
        http::StatusCode::SWITCHING_PROTOCOLS,
    );
    assert_eq!(resp.status(), 401);
    assert!(seen.is_none());
}
