//! The web view: a read-only page at `GET /ui` on the HTTP control
//! listener (docs/ctl.md, "Web view").
//!
//! The page, its script, style and icon are files in `web/`, built into
//! the binary (`include_str!`): nothing is fetched from anywhere else, at
//! build time or run time, and there is no build step.
//!
//! Security (think of a hostile page in the admin's browser and of
//! attacker-chosen AoRs and Contacts):
//! - The shell holds no data and is the same for everyone, so it is served
//!   without the token: a browser navigation cannot send `Authorization`.
//!   Every number and name on the page comes from the JSON-RPC API, called
//!   by the page with the bearer token (the header for `fetch`, the
//!   `kamrs.bearer.<hex>` subprotocol for the WebSocket: `http.rs`), under
//!   the API's browser rules.
//! - This layer sits outside [`AuthLayer`](super::http::AuthLayer) and
//!   answers only `/ui` paths; anything else goes on to the auth checks.
//! - Every answer carries a Content-Security-Policy that allows scripts,
//!   styles and connections to this origin only (no inline script, so
//!   markup injected into the page could not run), forbids framing
//!   (clickjacking), `nosniff`, `no-referrer` and `no-store`.
//! - The script puts every value in the page with `textContent`, never as
//!   markup.

use jsonrpsee::server::{HttpBody, HttpResponse};

use super::intercept::Answer;

/// Where the page is.
pub const PATH: &str = "/ui";

/// The policy of every `/ui` answer. `connect-src 'self'` covers the
/// WebSocket to the same host and port (CSP level 3), which the page
/// derives from its own address.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: &str = include_str!("web/index.html");

/// The page's files. `/ui` and `/ui/` are the page itself.
const ASSETS: &[Asset] = &[
    Asset {
        path: PATH,
        content_type: "text/html; charset=utf-8",
        body: INDEX,
    },
    Asset {
        path: "/ui/",
        content_type: "text/html; charset=utf-8",
        body: INDEX,
    },
    Asset {
        path: "/ui/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/app.js"),
    },
    Asset {
        path: "/ui/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("web/app.css"),
    },
    Asset {
        path: "/ui/icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("web/icon.svg"),
    },
];

/// Whether `path` is the web view's (`/ui`, `/ui/…`), and so answered
/// here whatever the method.
fn is_ours(path: &str) -> bool {
    path == PATH || path.starts_with("/ui/")
}

/// What to answer, before it is a response (the tests read the body
/// here).
#[derive(Debug)]
struct Reply {
    status: http::StatusCode,
    content_type: &'static str,
    body: &'static str,
    /// For HEAD: the length of the body not sent.
    head_of: Option<usize>,
}

fn reply(method: &http::Method, path: &str) -> Reply {
    let text = |status, body| Reply {
        status,
        content_type: "text/plain; charset=utf-8",
        body,
        head_of: None,
    };
    let head = method == http::Method::HEAD;
    if method != http::Method::GET && !head {
        return text(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "the web view is read-only: GET /ui\n",
        );
    }
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return text(
            http::StatusCode::NOT_FOUND,
            "no such file in the web view; the page is at /ui\n",
        );
    };
    Reply {
        status: http::StatusCode::OK,
        content_type: asset.content_type,
        body: if head { "" } else { asset.body },
        head_of: head.then_some(asset.body.len()),
    }
}

/// The answer to `method path`, for a path of ours.
fn answer(method: &http::Method, path: &str) -> HttpResponse {
    let r = reply(method, path);
    let mut resp = secured(r.status, r.content_type, r.body);
    if r.status == http::StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
    }
    if let Some(len) = r.head_of {
        resp.headers_mut()
            .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    }
    resp
}

/// A response with the headers every `/ui` answer carries.
fn secured(
    status: http::StatusCode,
    content_type: &'static str,
    body: &'static str,
) -> HttpResponse {
    let mut r = HttpResponse::new(HttpBody::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    let set = |h: &mut http::HeaderMap, name: http::HeaderName, value: &'static str| {
        h.insert(name, http::HeaderValue::from_static(value));
    };
    set(h, http::header::CONTENT_TYPE, content_type);
    set(h, http::header::CONTENT_SECURITY_POLICY, CSP);
    // For browsers without frame-ancestors.
    set(h, http::header::X_FRAME_OPTIONS, "DENY");
    set(h, http::header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // The URL may hold the token (`#token=` is never sent, but is cleared
    // by the page only once it runs): never pass it on.
    set(h, http::header::REFERRER_POLICY, "no-referrer");
    set(h, http::header::CACHE_CONTROL, "no-store");
    set(
        h,
        http::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        http::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    r
}

/// Answers the web view's paths before the auth checks; everything else
/// passes. Off on the Unix socket (no browser reaches it).
#[derive(Debug, Clone, Copy)]
pub struct WebLayer {
    pub enabled: bool,
}

impl Answer for WebLayer {
    fn answer(&self, method: &http::Method, path: &str) -> Option<HttpResponse> {
        (self.enabled && is_ours(path)).then(|| answer(method, path))
    }
}

#[cfg(test)]
mod tests;
