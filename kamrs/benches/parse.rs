//! Parsing typical REGISTERs with full typed extraction of what a registrar
//! needs, kamrs side by side with the `rsip` 0.4 crate (docs/design.md §2).
//!
//! "Full typed extraction" is the same work for both: parse the message, then
//! read the method, the Request-URI (as a typed URI), the top Via (branch,
//! host, port, rport), From (URI and tag), To (URI), Call-ID, CSeq (number
//! and method), Expires, and for every Contact its URI and its `expires`,
//! `q`, `+sip.instance` and `reg-id` parameters. Every extracted value goes
//! through [`black_box`] so nothing is optimised away.
//!
//! Messages: the Yealink and Snom fixtures and a three-contact REGISTER
//! written here, LF turned into CRLF first. rsip 0.4 rejects every quoted
//! Contact parameter value (`+sip.instance="<urn:uuid:…>"`, even
//! `mobility="fixed"`), which all three carry, so it is benchmarked only on
//! the messages it fully parses; the bench prints which ones it failed on.
//! To still get a ratio, each message also has an `…_rsip_compat` variant
//! in which both parsers get the same bytes: quoted Contact parameter values
//! that are plain tokens are unquoted (`mobility=fixed`) and the ones that
//! cannot be tokens (`+sip.instance`, `description="snom D785"`,
//! `methods="INVITE,…"`) are removed.
//!
//! One criterion group per message, with `kamrs` and `rsip` functions, so
//! `target/criterion/<message>/<parser>/new/estimates.json` holds each
//! figure; `bench/parse-bench.sh` runs this and prints the summary table.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kamrs::sip::{parse_delta_seconds, parse_message, Limits, Message, Uri};

/// A REGISTER from one device with three flows (RFC 5626): three Contact
/// headers, each with `q`, `expires`, `+sip.instance` and `reg-id`.
const THREE_CONTACTS: &str = "\
REGISTER sip:pbx.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.140:5060;branch=z9hG4bK-3c-74bf9a2e;rport
Max-Forwards: 70
From: \"Grace Hopper\" <sip:1012@pbx.example.com>;tag=a73kszlfl
To: \"Grace Hopper\" <sip:1012@pbx.example.com>
Call-ID: 3c-register-1j9FpLxk3uxtm8tn@192.168.1.140
CSeq: 42 REGISTER
Contact: <sip:1012@192.168.1.140:5060;transport=udp>;q=1.0;expires=3600;+sip.instance=\"<urn:uuid:7c1f0e6a-3b2d-4e5f-8a9b-0c1d2e3f4a5b>\";reg-id=1
Contact: <sip:1012@203.0.113.40:41234;transport=udp>;q=0.7;expires=1800;+sip.instance=\"<urn:uuid:7c1f0e6a-3b2d-4e5f-8a9b-0c1d2e3f4a5b>\";reg-id=2
Contact: <sip:1012@198.51.100.7:5060;transport=tcp>;q=0.5;expires=600;+sip.instance=\"<urn:uuid:7c1f0e6a-3b2d-4e5f-8a9b-0c1d2e3f4a5b>\";reg-id=3
Supported: path, outbound, gruu
User-Agent: Acme SoftPhone 4.2.1
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, REFER, MESSAGE
Expires: 3600
Content-Length: 0

";

/// One benchmarked message.
struct Case {
    name: String,
    bytes: Vec<u8>,
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/register/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `.sip` fixtures are LF text: every LF becomes CRLF.
fn crlf(lf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lf.len() + 32);
    for &b in lf {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// The same message with the Contact parameters rsip 0.4 cannot tokenize
/// rewritten: `;name="token"` becomes `;name=token`, any other quoted value
/// drops its parameter. Other headers are untouched.
fn rsip_compatible(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len());
    for line in msg.split_inclusive(|&b| b == b'\n') {
        let is_contact = line.len() > 8 && line[..8].eq_ignore_ascii_case(b"contact:");
        if !is_contact {
            out.extend_from_slice(line);
            continue;
        }
        let mut i = 0;
        while i < line.len() {
            // A parameter whose value is quoted: `;name="…"`.
            if line[i] == b';' {
                let name_end = line[i + 1..]
                    .iter()
                    .position(|&b| !is_token(b))
                    .map_or(line.len(), |p| i + 1 + p);
                if line.get(name_end..name_end + 2) == Some(b"=\"") {
                    let value_start = name_end + 2;
                    if let Some(q) = line[value_start..].iter().position(|&b| b == b'"') {
                        let value = &line[value_start..value_start + q];
                        if !value.is_empty() && value.iter().all(|&b| is_token(b)) {
                            out.extend_from_slice(&line[i..name_end + 1]);
                            out.extend_from_slice(value);
                        }
                        i = value_start + q + 1;
                        continue;
                    }
                }
            }
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

fn cases() -> Vec<Case> {
    let base = [
        ("register_yealink", crlf(&fixture("01_yealink.sip"))),
        ("register_snom", crlf(&fixture("08_snom_params.sip"))),
        ("register_three_contacts", crlf(THREE_CONTACTS.as_bytes())),
    ];
    let mut cases = Vec::new();
    for (name, bytes) in base {
        let compat = rsip_compatible(&bytes);
        cases.push(Case {
            name: name.to_string(),
            bytes,
        });
        cases.push(Case {
            name: format!("{name}_rsip_compat"),
            bytes: compat,
        });
    }
    cases
}

/// kamrs: parse and extract. Returns the number of Contacts.
fn kamrs_extract(buf: &[u8], limits: &Limits) -> Result<usize, String> {
    // Matched by reference, as the daemon does (route.rs): the request
    // (over 1 KiB) stays where `parse_message` built it instead of being
    // moved into a second local.
    let parsed = parse_message(buf, limits);
    let req = match &parsed {
        Ok(Message::Request(req)) => req,
        Ok(Message::Response(_)) => return Err("parsed as a response".into()),
        Err(e) => return Err(format!("parse_message: {e:?}")),
    };
    black_box(req.method);
    let ruri = Uri::parse(req.uri.as_bytes()).ok_or("Request-URI")?;
    black_box((ruri.scheme, ruri.user, ruri.host, ruri.port));

    let via = &req.top_via;
    black_box((via.branch(), via.host, via.port, via.has_rport()));
    let from = &req.from;
    black_box((from.uri.scheme, from.uri.user, from.uri.host, from.uri.port));
    black_box(from.tag());
    let to = &req.to.uri;
    black_box((to.scheme, to.user, to.host, to.port));
    black_box(req.call_id);
    black_box((req.cseq.seq, req.cseq.method));
    black_box(req.expires().map_err(|e| format!("Expires: {e:?}"))?);

    black_box(req.contact_star());
    let mut n = 0;
    for c in req.contacts() {
        let c = c.map_err(|e| format!("Contact: {e:?}"))?;
        // One pass over the parameters, as the registrar reads them.
        let [expires, q, instance, reg_id] =
            c.params.lookup(["expires", "q", "+sip.instance", "reg-id"]);
        let expires = match expires.flatten() {
            Some(v) => Some(parse_delta_seconds(v.as_bytes()).ok_or("Contact expires")?),
            None => None,
        };
        black_box((c.uri.scheme, c.uri.user, c.uri.host, c.uri.port));
        black_box((expires, q.flatten(), instance.flatten(), reg_id.flatten()));
        n += 1;
    }
    Ok(n)
}

/// rsip 0.4: the same work with its typed headers. Returns the number of
/// Contacts.
fn rsip_extract(buf: &[u8]) -> Result<usize, rsip::Error> {
    use rsip::param::Param;
    use rsip::prelude::*;

    fn other<'p>(params: &'p [Param], name: &str) -> Option<&'p Param> {
        params
            .iter()
            .find(|p| matches!(p, Param::Other(n, _) if n.value().eq_ignore_ascii_case(name)))
    }
    fn black_box_uri(u: &rsip::Uri) {
        black_box((&u.scheme, u.user(), u.host(), u.port()));
    }

    let req = match rsip::SipMessage::try_from(buf)? {
        rsip::SipMessage::Request(req) => req,
        rsip::SipMessage::Response(_) => {
            return Err(rsip::Error::Unexpected("parsed as a response".into()))
        }
    };
    black_box(req.method());
    black_box_uri(req.uri());

    let via = req.via_header()?.typed()?;
    black_box((
        via.branch(),
        via.uri.host(),
        via.uri.port(),
        other(&via.params, "rport").is_some(),
    ));
    let from = req.from_header()?.typed()?;
    black_box_uri(&from.uri);
    black_box(from.tag());
    let to = req.to_header()?.typed()?;
    black_box_uri(&to.uri);
    black_box(req.call_id_header()?.value());
    let cseq = req.cseq_header()?.typed()?;
    black_box((cseq.seq, cseq.method));
    let expires = match req.expires_header() {
        Some(e) => Some(e.seconds()?),
        None => None,
    };
    black_box(expires);

    let contacts = req.contact_headers();
    black_box(contacts.iter().any(|c| c.value() == "*"));
    let mut n = 0;
    for c in contacts {
        let c = c.typed()?;
        let expires = match c.expires() {
            Some(e) => Some(e.seconds()?),
            None => None,
        };
        black_box_uri(&c.uri);
        let q = c.params.iter().find_map(|p| match p {
            Param::Q(q) => Some(q),
            _ => None,
        });
        black_box((
            expires,
            q,
            other(&c.params, "+sip.instance"),
            other(&c.params, "reg-id"),
        ));
        n += 1;
    }
    Ok(n)
}

/// `KAMRS_PARSE_LOOP=<message>:<n>`: run the kamrs side `n` times on one
/// message and exit, without criterion. For instruction counts, which stay
/// exact on a busy machine: the difference between two runs under
/// `valgrind --tool=callgrind` (say n=1 and n=10001) divided by the
/// difference in `n` is the cost of one REGISTER.
fn parse_loop(spec: &str) {
    let (name, n) = spec
        .rsplit_once(':')
        .expect("KAMRS_PARSE_LOOP=<message>:<n>");
    let n: usize = n.parse().expect("KAMRS_PARSE_LOOP count");
    let case = cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no message {name}"));
    let limits = Limits::default();
    for _ in 0..n {
        black_box(kamrs_extract(black_box(&case.bytes), &limits).expect("kamrs parses"));
    }
}

fn bench_parse(c: &mut Criterion) {
    if let Ok(spec) = std::env::var("KAMRS_PARSE_LOOP") {
        parse_loop(&spec);
        std::process::exit(0);
    }
    let limits = Limits::default();
    let mut rsip_failed = Vec::new();
    for case in cases() {
        // Both must agree on the number of Contacts before we time them.
        let n = kamrs_extract(&case.bytes, &limits)
            .unwrap_or_else(|e| panic!("kamrs cannot parse {}: {e}", case.name));
        let rsip_ok = match rsip_extract(&case.bytes) {
            Ok(m) if m == n => true,
            Ok(m) => {
                println!(
                    "rsip FAILED on {}: {m} contacts, kamrs found {n}",
                    case.name
                );
                rsip_failed.push(case.name.clone());
                false
            }
            Err(e) => {
                println!("rsip FAILED on {}: {e}", case.name);
                rsip_failed.push(case.name.clone());
                false
            }
        };

        let mut group = c.benchmark_group(&case.name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("kamrs", |b| {
            b.iter(|| kamrs_extract(black_box(&case.bytes), &limits))
        });
        if rsip_ok {
            group.bench_function("rsip", |b| b.iter(|| rsip_extract(black_box(&case.bytes))));
        }
        group.finish();
    }
    if rsip_failed.is_empty() {
        println!("rsip parsed every message");
    } else {
        println!(
            "rsip 0.4 could not parse (kamrs only): {}",
            rsip_failed.join(", ")
        );
    }
}

criterion_group! {
    name = benches;
    // A 2-core noisy machine: modest times, overridable on the command line
    // (`--measurement-time`, `--warm-up-time`).
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_parse
}
criterion_main!(benches);
