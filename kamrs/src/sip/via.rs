//! Via values (RFC 3261 §20.42) and the `received`/`rport` rules of RFC
//! 3261 §18.2.1 and RFC 3581 that decide where a reply goes.

use std::net::{IpAddr, SocketAddr};

use super::params::{self, Params, ParamsIn};
use super::scan::{ascii, class, skip_ws, span};
use super::uri::parse_hostport;

#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    /// `UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP`… as written.
    pub transport: &'a str,
    /// sent-by host as written (IPv6 in brackets).
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: Params<'a>,
    /// `SIP/2.0/UDP host:port` exactly as received, up to the parameters.
    pub head: &'a [u8],
    /// Index in the header value just past this via-parm (at a `,` that
    /// starts the next one, or the end).
    pub end: usize,
    /// `branch`, read once at parse time: every reply and every transaction
    /// key needs it.
    branch: Option<&'a str>,
    /// `rport` present (with or without a value).
    rport: bool,
}

impl<'a> Via<'a> {
    /// Parses the via-parm at `s[i..]`; returns it and the index where it
    /// ends (a top-level `,` separating the next Via, or the end).
    #[inline]
    pub fn parse_at(s: &'a [u8], i: usize) -> Option<(Via<'a>, usize)> {
        let start = skip_ws(s, i);
        // sent-protocol: name SLASH version SLASH transport, LWS allowed
        // around the slashes.
        let mut j = start;
        let mut transport = &s[0..0];
        for part in 0..3 {
            j = skip_ws(s, j);
            let t0 = j;
            j = span(s, j, class::TOKEN);
            if j == t0 {
                return None;
            }
            let tok = &s[t0..j];
            match part {
                0 if !tok.eq_ignore_ascii_case(b"SIP") => return None,
                1 if tok != b"2.0" => return None,
                2 => transport = tok,
                _ => {}
            }
            if part < 2 {
                j = skip_ws(s, j);
                if s.get(j) != Some(&b'/') {
                    return None;
                }
                j += 1;
            }
        }
        // LWS is mandatory between sent-protocol and sent-by.
        let host_start = skip_ws(s, j);
        if host_start == j {
            return None;
        }
        let (host_end, port, after) = parse_hostport(s, host_start)?;
        let (params, params_end) = params::scan(s, after, ParamsIn::Header)?;
        let [branch, rport] = params.lookup(["branch", "rport"]);
        Some((
            Via {
                branch: branch.flatten(),
                rport: rport.is_some(),
                transport: ascii(transport)?,
                host: ascii(&s[host_start..host_end])?,
                port,
                params,
                head: &s[start..after],
                end: params_end,
            },
            params_end,
        ))
    }

    pub fn branch(&self) -> Option<&'a str> {
        self.branch
    }

    /// The sender asked for symmetric response routing (RFC 3581).
    pub fn has_rport(&self) -> bool {
        self.rport
    }

    /// Whether the sent-by host is literally the address the packet came
    /// from; if not, the reply's Via gets `received` (RFC 3261 §18.2.1).
    pub fn host_is(&self, ip: IpAddr) -> bool {
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        h.parse::<IpAddr>().is_ok_and(|a| a == ip)
    }

    /// Where a reply to a request with this top Via goes over UDP: the
    /// source address if `rport` was asked for (or `force_rport`), otherwise
    /// the source IP (our `received`) and the sent-by port (RFC 3261
    /// §18.2.2, as Kamailio does with `reply_to_via = 0`).
    pub fn reply_destination(&self, remote: SocketAddr, force_rport: bool) -> SocketAddr {
        if force_rport || self.has_rport() {
            return remote;
        }
        let default_port = if self.transport.eq_ignore_ascii_case("TLS") {
            5061
        } else {
            5060
        };
        SocketAddr::new(remote.ip(), self.port.unwrap_or(default_port))
    }
}
