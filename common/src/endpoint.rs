//! Where the control API listens: `unix:/path` or `http://host:port`.
//!
//! Parsed in one place so the daemon's `[ctl] listen` / `--ctl` and
//! kamrsctl's `--ctl` accept exactly the same strings.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A control endpoint. In TOML it is the string form (`"unix:/path"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Endpoint {
    /// A Unix stream socket (the default; mode 0600, peer credentials
    /// checked).
    Unix(PathBuf),
    /// HTTP (and WebSocket) on a TCP address. The host must be an IP
    /// address: a name could resolve to something other than what the admin
    /// checked, and loopback-ness is decided on the address.
    Http(SocketAddr),
}

impl Endpoint {
    /// The default endpoint, `unix:/run/kamrs/kamrs.sock`.
    pub fn default_unix() -> Endpoint {
        Endpoint::Unix(PathBuf::from(crate::DEFAULT_CTL_SOCKET))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Http(a) => write!(f, "http://{a}"),
        }
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;

    fn try_from(s: String) -> Result<Endpoint, String> {
        s.parse()
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.to_string()
    }
}

/// Compares with the string form, so `config.ctl.listen == "unix:/x"` reads
/// naturally in tests.
impl PartialEq<&str> for Endpoint {
    fn eq(&self, other: &&str) -> bool {
        other.parse::<Endpoint>().is_ok_and(|o| o == *self)
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Endpoint, String> {
        let usage = "expected `unix:/path/to/socket` or `http://IP:PORT`";
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!(
                    "bad control endpoint `{s}`: the socket path is missing; {usage}"
                ));
            }
            if !path.starts_with('/') {
                return Err(format!(
                    "bad control endpoint `{s}`: the socket path must be absolute (`unix:/run/kamrs/kamrs.sock`)"
                ));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("http://") {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            return match rest.parse::<SocketAddr>() {
                Ok(addr) => Ok(Endpoint::Http(addr)),
                Err(_) if !rest.contains(':') || rest.ends_with(']') => Err(format!(
                    "bad control endpoint `{s}`: the port is missing (`http://127.0.0.1:5065`)"
                )),
                Err(_) if rest.starts_with(|c: char| c.is_ascii_alphabetic()) => Err(format!(
                    "bad control endpoint `{s}`: the host must be an IP address, not a name (`http://127.0.0.1:5065`)"
                )),
                Err(_) => Err(format!("bad control endpoint `{s}`: {usage} (IPv6 as `http://[::1]:5065`)")),
            };
        }
        if s.starts_with("https://") {
            return Err(format!(
                "bad control endpoint `{s}`: https is not supported; use a Unix socket, or HTTP on loopback (put a TLS proxy in front for remote access)"
            ));
        }
        if s.starts_with('/') {
            return Err(format!(
                "bad control endpoint `{s}`: write it as `unix:{s}`"
            ));
        }
        Err(format!("bad control endpoint `{s}`: {usage}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds() {
        assert_eq!(
            "unix:/run/kamrs/kamrs.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix("/run/kamrs/kamrs.sock".into())
        );
        assert_eq!(
            "http://127.0.0.1:5065".parse::<Endpoint>().unwrap(),
            Endpoint::Http("127.0.0.1:5065".parse().unwrap())
        );
        assert_eq!(
            "http://[::1]:5065/".parse::<Endpoint>().unwrap(),
            Endpoint::Http("[::1]:5065".parse().unwrap())
        );
        assert_eq!(
            Endpoint::default_unix().to_string(),
            "unix:/run/kamrs/kamrs.sock"
        );
        for s in ["unix:/a/b", "http://10.0.0.1:80"] {
            assert_eq!(s.parse::<Endpoint>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn errors_say_what_to_write() {
        for (s, hint) in [
            ("unix:", "missing"),
            ("unix:run/k.sock", "absolute"),
            ("http://127.0.0.1", "port is missing"),
            ("http://localhost:5065", "IP address"),
            ("https://127.0.0.1:5065", "https is not supported"),
            ("/run/kamrs/kamrs.sock", "unix:/run/kamrs/kamrs.sock"),
            ("tcp:1.2.3.4:5", "expected"),
        ] {
            let e = s.parse::<Endpoint>().unwrap_err();
            assert!(e.contains(hint), "{s}: {e}");
        }
    }
}
