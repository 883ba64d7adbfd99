//! SIP over TLS end to end: a CA made at test time, real TLS clients
//! (rustls here, baresip), the certificate reload, hostile handshakes.

use kamrs_tests::pki::{tls_connect, tls_exchange, Ca};
use kamrs_tests::{sip_request, via_transport, Kamrs, TempDir, REPLY_TIMEOUT};

/// A daemon with UDP, TCP and TLS on 127.0.0.1, its certificate signed by
/// `ca`; `extra` is appended to the config.
fn start_tls(ca: &Ca, dir: &TempDir, extra: &str) -> Kamrs {
    let (cert, key) = ca.server("kamrs test server").write(dir.path(), "server");
    let config = format!(
        "listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\", \"tls:127.0.0.1:0\"]\n{extra}\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    Kamrs::start_with_config(&config, &[])
}

#[test]
fn a_phone_registers_over_tls_and_its_binding_names_the_transport() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let kamrs = start_tls(&ca, &dir, "");
    let mut stream = tls_connect(kamrs.tls(), ca.client_config(None)).expect("handshake");
    let register = via_transport(
        &sip_request(
            "REGISTER",
            "tls-1",
            1,
            5061,
            &[
                "Contact: <sip:bob@127.0.0.1:5061;transport=tls>",
                "Expires: 60",
            ],
        ),
        "TLS",
    );
    let r = tls_exchange(&mut stream, &register, REPLY_TIMEOUT).expect("a reply over TLS");
    assert_eq!(r.status, 200, "{}", r.raw);
    let text = ctl(&kamrs, &["--json", "ul.lookup", "bob"]);
    assert!(text.contains(";transport=tls"), "{text}");
    assert!(text.contains("tls:127.0.0.1:"), "{text}");
    drop(stream);
}

/// Runs kamrsctl against the daemon's control socket; its stdout.
fn ctl(kamrs: &Kamrs, args: &[&str]) -> String {
    let socket = format!(
        "unix:{}",
        kamrs.ctl.as_ref().expect("control socket").display()
    );
    let mut all = vec!["--ctl", socket.as_str()];
    all.extend_from_slice(args);
    let run = kamrs_tests::ctl::kamrsctl(&all, &[]);
    assert_eq!(run.code(), Some(0), "kamrsctl {args:?}: {run:?}");
    run.stdout
}
