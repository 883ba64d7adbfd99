use super::*;

#[test]
fn own_origin_and_allowed_ones() {
    let local: SocketAddr = "127.0.0.1:5065".parse().unwrap();
    let o = Origins::new(local, &["https://Admin.example.com/".to_owned()]);
    for ok in [
        "http://127.0.0.1:5065",
        "HTTP://127.0.0.1:5065",
        "https://admin.example.com",
        "https://ADMIN.example.com/",
    ] {
        assert!(o.allows(ok), "{ok}");
    }
    for bad in [
        "https://evil.example",
        "null",
        "",
        "http://127.0.0.1:8080",
        "https://127.0.0.1:5065",
        "http://localhost:5065",
        "http://admin.example.com",
        "https://admin.example.com.evil.example",
    ] {
        assert!(!o.allows(bad), "{bad}");
    }
    let v6 = Origins::new("[::1]:80".parse().unwrap(), &[]);
    assert!(v6.allows("http://[::1]:80") && v6.allows("http://[::1]"));
}

#[test]
fn fetch_site_values() {
    assert_eq!(fetch_site(b"cross-site"), FetchSite::Foreign);
    assert_eq!(fetch_site(b" Same-Site "), FetchSite::Foreign);
    assert_eq!(fetch_site(b"same-origin"), FetchSite::Other);
    assert_eq!(fetch_site(b"none"), FetchSite::Other);
}

#[test]
fn only_json_content_types() {
    for ok in [
        &b"application/json"[..],
        b"Application/JSON; charset=utf-8",
        b"application/json-rpc",
    ] {
        assert!(is_json(ok), "{ok:?}");
    }
    for bad in [
        &b"text/plain"[..],
        b"text/plain;charset=UTF-8",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=x",
        b"application/jsonp",
        b"",
    ] {
        assert!(!is_json(bad), "{bad:?}");
    }
}

#[test]
fn config_origins() {
    for ok in [
        "https://admin.example.com",
        "http://127.0.0.1:8080",
        "http://[::1]:8080",
        "https://admin.example.com/",
    ] {
        assert!(check_origin(ok).is_ok(), "{ok}");
    }
    for (bad, why) in [
        ("*", "scheme://host"),
        ("null", "scheme://host"),
        ("admin.example.com", "scheme://host"),
        ("https://admin.example.com/ui", "no path"),
        ("https://*.example.com", "scheme://host"),
        ("https://", "scheme://host"),
        ("https://a b", "scheme://host"),
        ("https://a:port", "bad port"),
    ] {
        let e = check_origin(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}
