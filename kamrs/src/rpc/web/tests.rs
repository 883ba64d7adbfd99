use super::*;

fn get(method: http::Method, path: &str) -> HttpResponse {
    answer(&method, path)
}

fn body(method: http::Method, path: &str) -> &'static str {
    reply(&method, path).body
}

#[test]
fn the_page_and_its_files_are_served_with_strict_headers() {
    for (path, ty) in [
        ("/ui", "text/html; charset=utf-8"),
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let r = get(http::Method::GET, path);
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h["content-type"], ty, "{path}");
        assert_eq!(h["content-security-policy"], CSP, "{path}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
    }
    let page = body(http::Method::GET, "/ui");
    assert!(page.contains("<script src=\"/ui/app.js\""), "{page}");
    // Nothing inline that the policy would have to allow, nothing from
    // elsewhere.
    assert!(
        !page.contains("<script>") && !page.contains("<style"),
        "{page}"
    );
    assert!(!page.contains("style=\""), "{page}");
    for attr in ["src=\"", "href=\""] {
        for (i, _) in page.match_indices(attr) {
            let url = &page[i + attr.len()..];
            assert!(
                url.starts_with("/ui/"),
                "{attr}{}",
                &url[..url.len().min(40)]
            );
        }
    }
    let asset = |path: &str| ASSETS.iter().find(|a| a.path == path).unwrap().body;
    let css = asset("/ui/app.css");
    assert!(!css.contains("url(") && !css.contains("@import"), "{css}");
    // The script never writes markup.
    let js = asset("/ui/app.js");
    assert!(!js.contains("http://") && !js.contains("https://"));
    for bad in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!js.contains(bad), "app.js uses {bad}");
    }
}

#[test]
fn the_policy_allows_this_origin_only_and_no_framing() {
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(CSP.contains(part), "{part}");
    }
    assert!(!CSP.contains("unsafe"), "{CSP}");
}

#[test]
fn other_paths_and_methods() {
    let r = get(http::Method::GET, "/ui/../metrics");
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-security-policy"], CSP);
    assert_eq!(get(http::Method::GET, "/ui/nope.js").status(), 404);
    for m in [http::Method::POST, http::Method::PUT, http::Method::DELETE] {
        let r = get(m.clone(), "/ui");
        assert_eq!(r.status(), 405, "{m}");
        assert_eq!(r.headers()["allow"], "GET, HEAD");
    }
    let head = get(http::Method::HEAD, "/ui/app.js");
    assert_eq!(head.status(), 200);
    let len: usize = head.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, include_str!("app.js").len());
    assert_eq!(body(http::Method::HEAD, "/ui/app.js"), "");
    assert!(is_ours("/ui") && is_ours("/ui/x"));
    assert!(!is_ours("/") && !is_ours("/uix") && !is_ours("/metrics"));
}
