//! `tls.list` and `tls.info` for people.

use std::io::{self, Write};

use common::types::{TlsConnection, TlsInfo};

use super::{plural, Grid, Printer};
use crate::escape::{cell, safe};

/// `tls.list`: one row per connection, oldest first.
pub fn tls_list(list: &[TlsConnection], p: &mut Printer, out: &mut impl Write) -> io::Result<()> {
    if list.is_empty() {
        return writeln!(out, "no TLS connections open");
    }
    let mut g = Grid::new(&[
        "Id",
        "Transport",
        "Source",
        "Local",
        "Since",
        "Version",
        "Cipher",
        "SNI",
        "Client cert",
    ]);
    for c in list {
        g.add(vec![
            c.id.to_string(),
            cell(&c.transport),
            cell(&host_port(&c.src_ip, c.src_port)),
            cell(&host_port(&c.dst_ip, c.dst_port)),
            cell(&c.timestamp),
            cell(&c.version),
            cell(&c.cipher),
            if c.sni.is_empty() || c.sni == "N/A" {
                "-".to_owned()
            } else {
                cell(&c.sni)
            },
            if c.client_certificate { "yes" } else { "no" }.to_owned(),
        ]);
    }
    p.grid(&g, out)?;
    writeln!(out, "{} connection{}", list.len(), plural(list.len()))
}

fn host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `tls.info`: the certificate in force, then the counts.
pub fn tls_info(i: &TlsInfo, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "certificate: {}", safe(&i.certificate))?;
    writeln!(out, "sha256 fingerprint: {}", safe(&i.sha256_fingerprint))?;
    writeln!(
        out,
        "chain: {} certificate{}, loaded {} UTC",
        i.chain_length,
        plural(usize::try_from(i.chain_length).unwrap_or(usize::MAX)),
        safe(&i.loaded_at)
    )?;
    writeln!(
        out,
        "min version: TLS {}, client certificates: {}",
        safe(&i.min_version),
        if i.verify_client {
            "required"
        } else {
            "not asked for"
        }
    )?;
    writeln!(
        out,
        "connections: {} open (at most {} per listener)",
        i.opened_connections, i.max_connections
    )?;
    writeln!(
        out,
        "handshakes: {} done, {} failed",
        i.handshakes, i.handshake_failures
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Borders, Layout, Style};

    fn conn() -> TlsConnection {
        TlsConnection {
            id: 7,
            dom: "TLSs<default>".into(),
            sni: "N/A".into(),
            timestamp: "2026-12-03 11:00:00".into(),
            timeout: 5,
            src_ip: "::1".into(),
            src_port: 40000,
            dst_ip: "127.0.0.1".into(),
            dst_port: 5061,
            cipher: "TLS13_AES_128_GCM_SHA256".into(),
            ct_wq_size: 0,
            enc_rd_buf: 0,
            flags: 0,
            state: "established".into(),
            transport: "tls".into(),
            version: "TLSv1_3".into(),
            client_certificate: false,
        }
    }

    #[test]
    fn the_list_shows_each_connection_and_the_count() {
        let mut out = Vec::new();
        let mut p = Printer::new(Style {
            layout: Layout::Auto,
            width: None,
            borders: Borders::Plain,
        });
        tls_list(&[conn()], &mut p, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("[::1]:40000"), "{text}");
        assert!(text.contains("TLS13_AES_128_GCM_SHA256"), "{text}");
        assert!(text.trim_end().ends_with("1 connection"), "{text}");
        let mut out = Vec::new();
        tls_list(&[], &mut p, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "no TLS connections open\n");
    }
}
