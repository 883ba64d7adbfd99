//! Connecting to the daemon and turning every failure into one line that
//! says what went wrong and what to do, with the exit code scripts test.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::api::error as rpc_error;
use common::Endpoint;
use jsonrpsee_client_transport::ws::WsHandshakeError;
use jsonrpsee_ws_client::{HeaderMap, HeaderValue, WsClient, WsClientBuilder};

/// Exit codes (docs/ctl.md).
pub mod exit {
    /// The AoR or contact does not exist (JSON-RPC 404).
    pub const NOT_FOUND: u8 = 1;
    /// Bad command line, or arguments the daemon refused (-32602).
    pub const USAGE: u8 = 2;
    /// No daemon at the endpoint, or it refused us (permissions, token).
    pub const UNREACHABLE: u8 = 3;
    /// The daemon answered with another error.
    pub const FAILED: u8 = 4;
}

/// A failure, ready to print: `kamrsctl: {message}`, exit `code`.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// How to reach the daemon.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoint: Endpoint,
    /// A socket to try when `endpoint` cannot be connected to: the
    /// per-user socket, when neither `--ctl` nor `KAMRSCTL_CTL` was given.
    pub fallback: Option<PathBuf>,
    pub token: Option<String>,
    pub timeout: Duration,
}

impl Target {
    /// `--ctl` as given, or (None) the default socket, then the per-user
    /// one (`$XDG_RUNTIME_DIR/kamrs/kamrs.sock`), where kamrs puts its
    /// socket when it cannot create the default.
    pub fn new(ctl: Option<Endpoint>, token: Option<String>, timeout: Duration) -> Target {
        let (endpoint, fallback) = match ctl {
            Some(endpoint) => (endpoint, None),
            None => (Endpoint::default_unix(), common::user_ctl_socket()),
        };
        Target {
            endpoint,
            fallback,
            token,
            timeout,
        }
    }
}

/// What to tell a user whose daemon is not where we looked.
const START_HINT: &str =
    "is kamrs running? It may be running without a control socket, or with another one: its start-up output says which in its `control …` line; point kamrsctl at that socket with --ctl unix:PATH (or KAMRSCTL_CTL), or start kamrs with `kamrs --config /etc/kamrs/kamrs.toml`";

/// Opens a JSON-RPC session (WebSocket over the Unix socket or TCP).
pub async fn connect(target: &Target) -> Result<WsClient, Failure> {
    let mut builder = WsClientBuilder::new()
        // ul.dump of a big table is one large message: allow what the
        // daemon may send (its own limit is `ctl.max_response_size`).
        .max_response_size(u32::MAX)
        .request_timeout(target.timeout)
        .connection_timeout(target.timeout);
    if let Some(token) = &target.token {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Failure::new(
                exit::USAGE,
                "the token contains characters not allowed in an HTTP header",
            )
        })?;
        let mut headers = HeaderMap::new();
        headers.insert("authorization", value);
        builder = builder.set_headers(headers);
    }
    let built = match &target.endpoint {
        Endpoint::Unix(path) => {
            let stream = match tokio::net::UnixStream::connect(path).await {
                Ok(stream) => stream,
                Err(e) => match &target.fallback {
                    None => return Err(unix_connect_failure(path, &e)),
                    Some(other) => match tokio::net::UnixStream::connect(other).await {
                        Ok(stream) => stream,
                        Err(e2) => {
                            let denied = if e.kind() == io::ErrorKind::PermissionDenied {
                                "if kamrs runs as another user, run kamrsctl as root or as that user; "
                            } else {
                                ""
                            };
                            return Err(Failure::new(
                                exit::UNREACHABLE,
                                format!(
                                    "cannot reach kamrs control socket {}: {} (also tried the per-user socket {}: {}); {denied}{START_HINT}",
                                    path.display(),
                                    why_not(&e),
                                    other.display(),
                                    why_not(&e2)
                                ),
                            ));
                        }
                    },
                },
            };
            builder.build_with_stream("ws://localhost/", stream).await
        }
        Endpoint::Http(addr) => {
            let stream = tokio::time::timeout(target.timeout, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| {
                    Failure::new(
                        exit::UNREACHABLE,
                        format!("cannot reach the kamrs control API at http://{addr}: no answer within {:?}; {START_HINT}", target.timeout),
                    )
                })?
                .map_err(|e| {
                    Failure::new(
                        exit::UNREACHABLE,
                        format!("cannot reach the kamrs control API at http://{addr}: {e}; {START_HINT}"),
                    )
                })?;
            let _ = stream.set_nodelay(true);
            builder
                .build_with_stream(format!("ws://{addr}/"), stream)
                .await
        }
    };
    built.map_err(|e| handshake_failure(&target.endpoint, &e))
}

/// Why a Unix socket could not be connected to, in a few words.
fn why_not(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "it does not exist".to_owned(),
        io::ErrorKind::ConnectionRefused => "nothing listens on it".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

fn unix_connect_failure(path: &Path, e: &io::Error) -> Failure {
    let shown = path.display();
    let message = match e.kind() {
        io::ErrorKind::NotFound => {
            format!("cannot reach kamrs control socket {shown}: it does not exist; {START_HINT}")
        }
        io::ErrorKind::ConnectionRefused => format!(
            "cannot reach kamrs control socket {shown}: nothing listens on it (a kamrs that stopped left it behind); {START_HINT}"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "cannot reach kamrs control socket {shown}: permission denied; run kamrsctl as root or as the user kamrs runs as"
        ),
        _ => format!("cannot reach kamrs control socket {shown}: {e}; {START_HINT}"),
    };
    Failure::new(exit::UNREACHABLE, message)
}

fn handshake_failure(endpoint: &Endpoint, e: &common::api::ClientError) -> Failure {
    use common::api::ClientError;
    if let ClientError::Transport(inner) = e {
        if let Some(WsHandshakeError::Rejected { status_code, .. }) =
            inner.downcast_ref::<WsHandshakeError>()
        {
            let message = match status_code {
                401 => format!(
                    "the kamrs control API at {endpoint} refused the token (HTTP 401): pass the one in its ctl.token_file with --token or KAMRSCTL_TOKEN"
                ),
                403 => format!("the kamrs control API at {endpoint} refused the request (HTTP 403): connect with an IP address or localhost"),
                code => format!("the kamrs control API at {endpoint} refused the connection (HTTP {code})"),
            };
            return Failure::new(exit::UNREACHABLE, message);
        }
    }
    let hint = match endpoint {
        Endpoint::Unix(_) => {
            "the daemon closed the connection: run kamrsctl as root or as the user kamrs runs as (or too many control connections are open)"
        }
        Endpoint::Http(_) => START_HINT,
    };
    Failure::new(
        exit::UNREACHABLE,
        format!("cannot talk to kamrs at {endpoint}: {e}; {hint}"),
    )
}

/// Maps an error from a call to the failure to print.
pub fn call_failure(method: &str, e: common::api::ClientError) -> Failure {
    use common::api::ClientError;
    match e {
        ClientError::Call(obj) => {
            let code = match obj.code() {
                rpc_error::NOT_FOUND => exit::NOT_FOUND,
                rpc_error::INVALID_PARAMS => exit::USAGE,
                _ => exit::FAILED,
            };
            let mut message = obj.message().to_owned();
            if let Some(data) = obj.data() {
                // The daemon's usage hint, a JSON string.
                if let Ok(text) = serde_json::from_str::<String>(data.get()) {
                    message = format!("{message} ({text})");
                }
            }
            if obj.code() == -32008 {
                message.push_str(
                    "; raise [ctl] max_response_size in kamrs's config, or use `ul.dump --brief`",
                );
            }
            Failure::new(code, message)
        }
        ClientError::RequestTimeout => Failure::new(
            exit::FAILED,
            format!("{method}: no answer from kamrs in time; try a longer --timeout"),
        ),
        // The daemon answered with an error it could not tie to our call
        // (`"id": null`): what jsonrpsee does with a request over
        // `ctl.max_request_size` on a WebSocket.
        ClientError::RestartNeeded(inner) if inner.to_string().contains("ID=null") => Failure::new(
            exit::FAILED,
            format!("{method}: kamrs refused the request; is it larger than kamrs's [ctl] max_request_size?"),
        ),
        ClientError::RestartNeeded(inner) => Failure::new(
            exit::UNREACHABLE,
            format!("{method}: the connection to kamrs was lost ({inner}); is it still running?"),
        ),
        ClientError::ParseError(err) => Failure::new(
            exit::FAILED,
            format!("{method}: cannot read kamrs's answer: {err}; are kamrs and kamrsctl the same version?"),
        ),
        other => Failure::new(exit::FAILED, format!("{method}: {other}")),
    }
}

/// The kamrsctl names of a method's JSON-RPC arguments, for the command
/// that calls it: `(subcommand, [(argument, flag or positional)])`.
/// Arguments kamrsctl fills in itself (`table`, the HA1 hashes) are not
/// listed and keep the daemon's words.
fn cli_names(method: &str) -> Option<(&'static str, &'static [(&'static str, &'static str)])> {
    const AOR: (&str, &str) = ("aor", "AOR");
    const CONTACT: (&str, &str) = ("contact", "CONTACT");
    const WHO: [(&str, &str); 2] = [("username", "USER@DOMAIN"), ("domain", "USER@DOMAIN")];
    Some(match method {
        "ul.add" => (
            "ul.add",
            &[
                AOR,
                CONTACT,
                ("expires", "--expires"),
                ("q", "--q"),
                ("path", "--path"),
                ("flags", "--flags"),
                ("cflags", "--cflags"),
                ("methods", "--methods"),
            ],
        ),
        "ul.lookup" => ("ul.lookup", &[AOR]),
        "ul.rm" => ("ul.rm", &[AOR]),
        "ul.rm_contact" => ("ul.rm_contact", &[AOR, CONTACT]),
        "stats.get_statistics" => ("stats", &[("names", "NAME")]),
        "stats.reset_statistics" => ("stats.reset", &[("names", "NAME")]),
        "subscriber.add" => ("subscriber add", &WHO),
        "subscriber.rm" => ("subscriber rm", &WHO),
        "auth.realm" => ("subscriber add", &WHO),
        "pike.top" => ("pike.top", &[("n", "N")]),
        _ => return None,
    })
}

/// Rewrites "argument 5 `q`" (the JSON-RPC position and name) as the
/// command line's `--q` in `message`; false when nothing was renamed.
fn rename_arguments(message: &mut String, names: &[(&str, &str)]) -> bool {
    let mut renamed = false;
    for (arg, cli) in names {
        let quoted = format!("`{arg}`");
        let Some(at) = message.find(&quoted) else {
            continue;
        };
        // "argument 5 `q`" or "argument `q`": replace from "argument".
        let before = &message[..at];
        let start = before
            .trim_end()
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end()
            .strip_suffix("argument")
            .map(str::len);
        if let Some(start) = start {
            message.replace_range(start..at + quoted.len(), cli);
            renamed = true;
        }
    }
    renamed
}

/// [`call_failure`] for a call made by one of kamrsctl's own commands: an
/// argument the daemon refused (-32602) is named as the command line names
/// it (`--q`, `CONTACT`), not by its JSON-RPC position, and the hint is
/// the command's `--help` rather than the JSON-RPC usage line.
pub fn cli_failure(method: &str, e: common::api::ClientError) -> Failure {
    use common::api::ClientError;
    if let ClientError::Call(obj) = &e {
        if obj.code() == rpc_error::INVALID_PARAMS {
            if let Some((command, names)) = cli_names(method) {
                let mut message = obj.message().to_owned();
                if rename_arguments(&mut message, names) {
                    let message = message
                        .strip_prefix(&format!("{method}: "))
                        .unwrap_or(&message)
                        .to_owned();
                    return Failure::new(
                        exit::USAGE,
                        format!("{command}: {message} (see `kamrsctl {command} --help`)"),
                    );
                }
            }
        }
    }
    call_failure(method, e)
}

#[cfg(test)]
mod cli_name_tests {
    use super::*;

    fn renamed(method: &str, message: &str) -> String {
        let (_, names) = cli_names(method).expect("known method");
        let mut m = message.to_owned();
        assert!(rename_arguments(&mut m, names), "{message}");
        m
    }

    #[test]
    fn json_rpc_positions_become_the_flags_and_positionals() {
        assert_eq!(
            renamed(
                "ul.add",
                "ul.add: argument 5 `q`: expected a q-value from 0 to 1, or -1 for none, got 2.0"
            ),
            "ul.add: --q: expected a q-value from 0 to 1, or -1 for none, got 2.0"
        );
        assert_eq!(
            renamed("ul.add", "argument 4 `expires` is missing"),
            "--expires is missing"
        );
        assert_eq!(
            renamed(
                "ul.add",
                "argument 3 `contact`: \"x\" is not a SIP URI (sip:user@host[:port], sips:… or tel:…)"
            ),
            "CONTACT: \"x\" is not a SIP URI (sip:user@host[:port], sips:… or tel:…)"
        );
        assert_eq!(
            renamed("ul.rm", "argument 2 `aor` is empty"),
            "AOR is empty"
        );
        assert_eq!(
            renamed("pike.top", "pike.top: argument `n`: too many"),
            "pike.top: N: too many"
        );
        // The table kamrsctl fills in is not the user's to fix: unchanged.
        let (_, names) = cli_names("ul.add").expect("known");
        let mut m = "ul.add: argument 1 `table`: unknown table".to_owned();
        assert!(!rename_arguments(&mut m, names));
        assert!(cli_names("system.listMethods").is_none());
    }
}
