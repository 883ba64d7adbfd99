//! Telling a browser from kamrsctl, and which web pages may call the HTTP
//! API (without this, a page the admin visits could open
//! `ws://127.0.0.1:PORT/` and call `subscriber.add`).
//!
//! Browsers say where a request comes from; command-line clients do not:
//! - `Origin` is sent on every WebSocket handshake and every cross-origin
//!   (and most same-origin) POST, and a page cannot remove or forge it;
//! - `Sec-Fetch-Site` (`cross-site`, `same-site`, `same-origin`, `none`)
//!   and `Sec-Fetch-Mode` are sent by current browsers on every request.
//!
//! kamrsctl, curl and scripts send none of them. So a request carrying any
//! of them is from a browser, and is served only when its origin is the
//! listener's own or in `[ctl] allowed_origins`, it is not `cross-site`
//! or `same-site`, and it carries the bearer token (a page cannot read the
//! token, so a page that has it was given it on purpose).
//!
//! Pure functions over strings; `http.rs` applies them to requests.

use std::net::SocketAddr;

/// The origins whose pages may call the API (with the token).
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Lower-case serialized origins (`http://127.0.0.1:5065`).
    allowed: Vec<String>,
}

impl Origins {
    /// The listener's own origin (`http://IP:PORT`, also without the port
    /// when it is 80, as browsers write it) and `allowed` (checked by
    /// [`check_origin`] at start-up).
    pub fn new(local: SocketAddr, allowed: &[String]) -> Origins {
        let mut list = vec![format!("http://{local}")];
        if local.port() == 80 {
            let host = match local {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            };
            list.push(format!("http://{host}"));
        }
        list.extend(allowed.iter().map(|o| normalise(o)));
        Origins { allowed: list }
    }

    /// Whether a request with `Origin: origin` may be served (the token is
    /// checked apart). `null` (sandboxed frames, `file://` pages) never is.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = normalise(origin);
        self.allowed.contains(&origin)
    }
}

fn normalise(origin: &str) -> String {
    let o = origin.trim();
    o.strip_suffix('/').unwrap_or(o).to_ascii_lowercase()
}

/// What `Sec-Fetch-Site` says about a browser request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchSite {
    /// `cross-site` or `same-site`: started by another site's page.
    Foreign,
    /// `same-origin` or `none` (typed in the address bar), or a value a
    /// future browser may send: still a browser.
    Other,
}

pub fn fetch_site(value: &[u8]) -> FetchSite {
    let v = value.trim_ascii();
    if v.eq_ignore_ascii_case(b"cross-site") || v.eq_ignore_ascii_case(b"same-site") {
        FetchSite::Foreign
    } else {
        FetchSite::Other
    }
}

/// Whether a `Content-Type` declares JSON (`application/json` or
/// `application/json-rpc`, parameters such as `charset` allowed). Every
/// other type, above all the three a browser may POST cross-site without
/// asking first (`text/plain`, `application/x-www-form-urlencoded`,
/// `multipart/form-data`), is refused.
pub fn is_json(content_type: &[u8]) -> bool {
    let media = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    media.eq_ignore_ascii_case(b"application/json")
        || media.eq_ignore_ascii_case(b"application/json-rpc")
}

/// Checks one `[ctl] allowed_origins` entry: `http://` or `https://`, a
/// host, an optional port, nothing else (an origin has no path).
pub fn check_origin(origin: &str) -> Result<(), String> {
    let usage = "write scheme://host[:port], e.g. `https://admin.example.com`";
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("`{origin}` is not an origin: {usage}"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(format!(
            "`{origin}`: an origin has no path; {usage} (no path)"
        ));
    }
    let not_origin = || format!("`{origin}` is not an origin: {usage}");
    let (host, port, bracketed) = match rest.strip_prefix('[') {
        Some(r) => {
            let (ip, after) = r.split_once(']').ok_or_else(not_origin)?;
            let port = match after {
                "" => None,
                a => Some(a.strip_prefix(':').ok_or_else(not_origin)?),
            };
            (ip, port, true)
        }
        None => match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p), false),
            None => (rest, None, false),
        },
    };
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err(format!("`{origin}`: bad port `{p}`; {usage}"));
        }
    }
    let host_char = |c: char| {
        if bracketed {
            c.is_ascii_hexdigit() || c == ':' || c == '.'
        } else {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
        }
    };
    if host.is_empty() || !host.chars().all(host_char) {
        return Err(not_origin());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
