use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// A scratch directory removed at drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("kamrs-tls-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Dir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for `name`: (certificate PEM, key PEM, DER).
fn self_signed(name: &str) -> (String, String, Vec<u8>) {
    let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("rcgen");
    (
        cert.cert.pem(),
        cert.signing_key.serialize_pem(),
        cert.cert.der().to_vec(),
    )
}

fn settings(dir: &Dir) -> Settings {
    Settings {
        certificate: dir.path("cert.pem"),
        private_key: dir.path("key.pem"),
        verify_client: false,
        ca_list: None,
        min_version: MinVersion::Tls12,
        handshake_timeout: Duration::from_secs(5),
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

#[test]
fn loads_a_certificate_and_reports_its_fingerprint() {
    let dir = Dir::new("load");
    let (cert, key, der) = self_signed("sip.example.test");
    write(&dir.path("cert.pem"), &cert);
    write(&dir.path("key.pem"), &key);
    let tls = Tls::load(settings(&dir)).expect("loads");
    let summary = tls.summary();
    assert_eq!(summary.chain_length, 1);
    assert_eq!(summary.sha256_fingerprint, certs::fingerprint_of(&der));
    assert_eq!(summary.sha256_fingerprint.len(), 32 * 3 - 1);
}

#[test]
fn a_missing_or_empty_file_says_which_and_why() {
    let dir = Dir::new("missing");
    let err = Tls::load(settings(&dir)).expect_err("fails").to_string();
    assert!(
        err.contains("[tls] certificate") && err.contains("no such file"),
        "{err}"
    );
    write(&dir.path("cert.pem"), "not a certificate\n");
    let err = Tls::load(settings(&dir)).expect_err("fails").to_string();
    assert!(err.contains("holds no certificate"), "{err}");
    let (cert, _, _) = self_signed("a.test");
    write(&dir.path("cert.pem"), &cert);
    write(
        &dir.path("key.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let err = Tls::load(settings(&dir)).expect_err("fails").to_string();
    assert!(
        err.contains("private_key") && err.contains("cannot be used"),
        "{err}"
    );
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let dir = Dir::new("mismatch");
    let (cert, _, _) = self_signed("a.test");
    let (_, other_key, _) = self_signed("b.test");
    write(&dir.path("cert.pem"), &cert);
    write(&dir.path("key.pem"), &other_key);
    let err = Tls::load(settings(&dir)).expect_err("fails").to_string();
    assert!(err.contains("does not belong to the certificate"), "{err}");
}

#[test]
fn a_bad_reload_keeps_the_old_certificate_and_a_good_one_replaces_it() {
    let dir = Dir::new("reload");
    let (cert, key, der) = self_signed("old.test");
    write(&dir.path("cert.pem"), &cert);
    write(&dir.path("key.pem"), &key);
    let tls = Tls::load(settings(&dir)).expect("loads");
    let old = tls.summary().sha256_fingerprint.clone();
    assert_eq!(old, certs::fingerprint_of(&der));

    // Half renewed: a new certificate, the old key.
    let (new_cert, new_key, new_der) = self_signed("new.test");
    write(&dir.path("cert.pem"), &new_cert);
    assert!(tls.reload().is_err());
    assert_eq!(tls.summary().sha256_fingerprint, old);
    assert_eq!(tls.stats.reload_failed.load(Ordering::Relaxed), 1);

    write(&dir.path("key.pem"), &new_key);
    let summary = tls.reload().expect("reloads");
    assert_eq!(summary.sha256_fingerprint, certs::fingerprint_of(&new_der));
    assert_eq!(tls.summary().sha256_fingerprint, summary.sha256_fingerprint);
    assert_eq!(tls.stats.reloads.load(Ordering::Relaxed), 1);
}

#[test]
fn verify_client_needs_a_ca_list() {
    let dir = Dir::new("verify");
    let (cert, key, _) = self_signed("a.test");
    write(&dir.path("cert.pem"), &cert);
    write(&dir.path("key.pem"), &key);
    let mut s = settings(&dir);
    s.verify_client = true;
    let err = Tls::load(s.clone()).expect_err("fails").to_string();
    assert!(err.contains("needs ca_list"), "{err}");
    // A CA file that is the server's own self-signed certificate is a
    // valid trust anchor.
    write(&dir.path("ca.pem"), &cert);
    s.ca_list = Some(dir.path("ca.pem"));
    assert!(Tls::load(s).is_ok());
}

#[test]
fn connections_are_listed_while_registered() {
    let conns = Arc::new(Connections::default());
    let info = || Entry {
        transport: "tls",
        remote: "127.0.0.1:1".parse().unwrap(),
        local: "127.0.0.1:2".parse().unwrap(),
        created: 0,
        sni: None,
        version: "TLSv1_3",
        cipher: "x",
        client_certificate: false,
    };
    let a = crate::peer::ConnId::next();
    let b = crate::peer::ConnId::next();
    let ga = conns.register(a, info());
    let gb = conns.register(b, info());
    assert_eq!(
        conns.list().iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![a.get(), b.get()]
    );
    drop(ga);
    assert_eq!(conns.list().len(), 1);
    drop(gb);
    assert!(conns.is_empty());
    assert_eq!(conns.list().len(), 0);
    let gc = conns.register(a, info());
    let listed = &conns.list()[0];
    assert_eq!(listed.timestamp, "1970-01-01 00:00:00");
    assert_eq!(
        (listed.src_port, listed.dst_port, listed.sni.as_str()),
        (1, 2, "N/A")
    );
    drop(gc);
}
