//! The 28 real-phone-style REGISTERs of the shared corpus (copied into
//! `tests/fixtures/register/`), parsed as the corpus README says.

use kamrs::sip::framing::{next_stream_frame, StreamFrame};
use kamrs::sip::{parse_message, HeaderName, Limits, Message, Method, ParseError, Request, Scheme};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/register/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    if name.ends_with(".sip") {
        // .sip files are LF text: turn every LF into CRLF.
        let mut out = Vec::with_capacity(bytes.len() + 32);
        for b in bytes {
            if b == b'\n' {
                out.push(b'\r');
            }
            out.push(b);
        }
        out
    } else {
        bytes
    }
}

fn with_request<R>(name: &str, f: impl FnOnce(&Request<'_>) -> R) -> R {
    let bytes = fixture(name);
    let r = match parse_message(&bytes, &Limits::default()) {
        Ok(Message::Request(req)) => f(&req),
        Ok(Message::Response(_)) => panic!("{name}: parsed as a response"),
        Err(e) => panic!("{name}: {e}"),
    };
    r
}

/// Header params as (name, value).
type ParamList = Vec<(String, Option<String>)>;

/// (uri, header params) of every contact.
fn contacts(req: &Request<'_>) -> Vec<(String, ParamList)> {
    req.contacts()
        .map(|c| {
            let c = c.expect("contact parses");
            (
                c.uri.raw.to_string(),
                c.params
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                    .collect(),
            )
        })
        .collect()
}

fn param<'a>(ps: &'a [(String, Option<String>)], name: &str) -> Option<Option<&'a str>> {
    ps.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

#[test]
fn every_fixture_is_present() {
    let dir = format!("{}/tests/fixtures/register", env!("CARGO_MANIFEST_DIR"));
    let n = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            n.ends_with(".sip") || n.ends_with(".raw") || n.ends_with(".lf")
        })
        .count();
    assert_eq!(n, 28);
}

#[test]
fn yealink_quoted_instance_and_reg_id() {
    with_request("01_yealink.sip", |req| {
        assert_eq!(req.method, Method::Register);
        assert_eq!(req.uri, "sip:pbx.example.com");
        assert_eq!(req.call_id, "1820633437@192.168.1.50");
        assert_eq!(req.cseq.seq, 1);
        assert_eq!(req.from.tag(), Some("2410362815"));
        assert_eq!(req.to.uri.user, Some("1001"));
        assert_eq!(req.expires(), Ok(Some(3600)));
        let cs = contacts(req);
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].0, "sip:1001@192.168.1.50:5062");
        assert_eq!(
            param(&cs[0].1, "+sip.instance"),
            Some(Some("<urn:uuid:00000000-0000-1000-8000-805ec0a1b2c3>"))
        );
        assert_eq!(param(&cs[0].1, "reg-id"), Some(Some("1")));
        assert!(req.top_via.has_rport());
        assert_eq!(req.top_via.branch(), Some("z9hG4bK1418738420"));
        assert_eq!(req.top_via.port, Some(5062));
    });
}

#[test]
fn polycom_over_tcp_with_authorization_and_quoted_methods() {
    with_request("02_polycom_auth.sip", |req| {
        assert_eq!(req.top_via.transport, "TCP");
        assert!(req.header(HeaderName::Authorization).is_some());
        let cs = contacts(req);
        assert_eq!(cs[0].0, "sip:1002@10.1.2.30:5060;transport=tcp");
        assert_eq!(
            param(&cs[0].1, "methods"),
            Some(Some(
                "INVITE,ACK,BYE,CANCEL,OPTIONS,INFO,MESSAGE,SUBSCRIBE,NOTIFY,PRACK,UPDATE,REFER"
            ))
        );
        assert_eq!(
            param(&cs[0].1, "+sip.instance"),
            Some(Some("<urn:uuid:4a3b2c1d-0000-1000-8000-0004f2aabbcc>"))
        );
    });
}

#[test]
fn grandstream_request_uri_params_and_reg_id_first() {
    with_request("03_grandstream.sip", |req| {
        assert_eq!(req.uri, "sip:pbx.example.com;transport=udp");
        assert_eq!(req.cseq.seq, 2112);
        let cs = contacts(req);
        assert_eq!(param(&cs[0].1, "reg-id"), Some(Some("1")));
        assert_eq!(
            param(&cs[0].1, "+sip.instance"),
            Some(Some("<urn:uuid:00000000-0000-1000-8000-000B82112233>"))
        );
    });
}

#[test]
fn cisco_token_display_name_and_contact_expires() {
    with_request("04_cisco_spa.sip", |req| {
        let c = req.contacts().next().unwrap().unwrap();
        assert_eq!(c.display, Some(&b"Carol"[..]));
        assert_eq!(c.uri.raw, "sip:1004@192.168.1.70:5060");
        assert_eq!(c.params.get("expires"), Some(Some("3600")));
        assert_eq!(req.expires(), Ok(None));
        assert_eq!(req.from.display, Some(&b"Carol"[..]));
    });
}

#[test]
fn linphone_tls_addr_spec_to_and_quoted_feature_tag() {
    with_request("05_linphone_tls.sip", |req| {
        assert_eq!(req.top_via.transport, "TLS");
        assert!(req.top_via.params.has("alias"));
        assert_eq!(req.to.uri.raw, "sip:dave@sip.example.org");
        let cs = contacts(req);
        assert_eq!(cs[0].0, "sip:dave@10.0.0.23:39677;transport=tls");
        assert_eq!(
            param(&cs[0].1, "+org.linphone.specs"),
            Some(Some("lime,groupchat/1.1,ephemeral/1.1"))
        );
        assert_eq!(req.expires(), Ok(Some(600)));
    });
}

#[test]
fn zoiper_uri_params_in_from_and_to() {
    with_request("06_zoiper.sip", |req| {
        assert_eq!(req.to.uri.params.get("transport"), Some(Some("UDP")));
        assert_eq!(req.from.tag(), Some("a1b2c3d4"));
        let c = req.contacts().next().unwrap().unwrap();
        assert_eq!(
            c.uri.params.get("rinstance"),
            Some(Some("8f1c2e3d4b5a6978"))
        );
        assert!(c.params.is_empty());
        assert_eq!(req.expires(), Ok(Some(60)));
    });
}

#[test]
fn microsip_ob_param_and_double_space_content_length() {
    with_request("07_microsip_ob.sip", |req| {
        let c = req.contacts().next().unwrap().unwrap();
        assert_eq!(c.display, Some(&b"\"Eve\""[..]));
        assert!(c.uri.params.has("ob"));
        assert_eq!(req.cseq.seq, 35912);
        assert!(req.raw.body.is_empty());
    });
}

#[test]
fn snom_many_feature_params() {
    with_request("08_snom_params.sip", |req| {
        let cs = contacts(req);
        let ps = &cs[0].1;
        assert_eq!(cs[0].0, "sip:1007@192.168.1.100:2048;line=kq3v9x7b");
        assert_eq!(param(ps, "q"), Some(Some("1.0")));
        assert_eq!(param(ps, "audio"), Some(None));
        assert_eq!(param(ps, "description"), Some(Some("snom D785")));
        assert_eq!(param(ps, "mobility"), Some(Some("fixed")));
        assert_eq!(ps.len(), 10);
    });
}

#[test]
fn webrtc_wss_invalid_host_and_contact_expires() {
    with_request("09_webrtc_wss.sip", |req| {
        assert_eq!(req.top_via.transport, "WSS");
        assert_eq!(req.top_via.host, "df7jal23ls0d.invalid");
        let cs = contacts(req);
        assert_eq!(cs[0].0, "sip:4bl0pdui@df7jal23ls0d.invalid;transport=ws");
        assert_eq!(param(&cs[0].1, "+sip.ice"), Some(None));
        assert_eq!(param(&cs[0].1, "expires"), Some(Some("600")));
    });
}

#[test]
fn ipv6_references_in_uri_via_and_contact() {
    with_request("10_ipv6.sip", |req| {
        assert_eq!(req.uri, "sip:[2001:db8::1]");
        assert_eq!(req.top_via.host, "[2001:db8::10]");
        assert_eq!(req.top_via.port, Some(5060));
        assert_eq!(req.to.uri.host, "[2001:db8::1]");
        let c = req.contacts().next().unwrap().unwrap();
        assert_eq!(c.uri.host, "[2001:db8::10]");
        assert_eq!(c.uri.port, Some(5060));
        assert_eq!(c.params.get("expires"), Some(Some("1800")));
        assert_eq!(req.call_id, "v6callid@2001:db8::10");
    });
}

#[test]
fn compact_header_names() {
    with_request("11_compact.sip", |req| {
        assert_eq!(req.call_id, "compact-call-id-1@192.168.1.110");
        assert_eq!(req.from.tag(), Some("cpt1"));
        assert_eq!(req.to.uri.user, Some("1009"));
        assert_eq!(req.top_via.branch(), Some("z9hG4bKcompact1"));
        assert_eq!(req.header(HeaderName::Supported), Some(&b"path"[..]));
        let cs = contacts(req);
        assert_eq!(cs[0].0, "sip:1009@192.168.1.110:5060");
    });
}

#[test]
fn several_contacts_in_one_header() {
    with_request("12_multi_contact_one_header.sip", |req| {
        let cs = contacts(req);
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].0, "sip:1010@192.168.1.120:5060");
        assert_eq!(param(&cs[0].1, "q"), Some(Some("0.9")));
        assert_eq!(param(&cs[0].1, "expires"), Some(Some("60")));
        assert_eq!(cs[1].0, "sip:1010@203.0.113.5:40000");
        assert_eq!(param(&cs[1].1, "q"), Some(Some("0.5")));
        assert_eq!(param(&cs[1].1, "expires"), Some(Some("120")));
    });
}

#[test]
fn several_contact_headers() {
    with_request("13_multi_contact_lines.sip", |req| {
        let cs = contacts(req);
        assert_eq!(cs.len(), 2);
        assert_eq!(param(&cs[1].1, "expires"), Some(Some("0")));
    });
}

#[test]
fn contact_star() {
    with_request("14_contact_star.sip", |req| {
        assert!(req.contact_star());
        assert_eq!(req.contacts().count(), 0);
        assert_eq!(req.expires(), Ok(Some(0)));
    });
}

#[test]
fn quoted_display_name_with_comma_and_escaped_quotes() {
    with_request("15_quoted_display_comma.sip", |req| {
        let cs: Vec<_> = req.contacts().collect::<Result<_, _>>().unwrap();
        assert_eq!(cs.len(), 1, "the comma inside the quotes does not split");
        assert_eq!(cs[0].display, Some(&br#""Smith, John \"JJ\"""#[..]));
        assert_eq!(cs[0].uri.raw, "sip:1011@192.168.1.130:5060");
        assert_eq!(req.from.display, Some(&b"\"Smith, John\""[..]));
    });
}

#[test]
fn folded_lines_are_one_value() {
    with_request("16_line_folding.sip", |req| {
        let c = req.contacts().next().unwrap().unwrap();
        assert_eq!(c.params.get("expires"), Some(Some("3600")));
        let allow = req.header(HeaderName::Allow).unwrap();
        assert!(allow.starts_with(b"INVITE, ACK,"));
        assert!(allow.ends_with(b"BYE, CANCEL"));
    });
}

#[test]
fn content_length_beyond_datagram_is_an_error() {
    let bytes = fixture("17_clen_too_big.sip");
    assert_eq!(
        parse_message(&bytes, &Limits::default()).err(),
        Some(ParseError::BodyTruncated)
    );
}

#[test]
fn bytes_after_content_length_are_discarded() {
    with_request("18_clen_zero_with_trailing.raw", |req| {
        assert!(req.raw.body.is_empty());
        assert_eq!(req.cseq.seq, 2);
    });
}

#[test]
fn two_messages_in_one_stream_read() {
    let bytes = fixture("19_tcp_two_msgs_concat.raw");
    let limits = Limits::default();
    let StreamFrame::Message { len } = next_stream_frame(&bytes, &limits) else {
        panic!("first frame");
    };
    let StreamFrame::Message { len: len2 } = next_stream_frame(&bytes[len..], &limits) else {
        panic!("second frame");
    };
    assert_eq!(len + len2, bytes.len());
    let Ok(Message::Request(first)) = parse_message(&bytes[..len], &limits) else {
        panic!("first message")
    };
    let Ok(Message::Request(second)) = parse_message(&bytes[len..], &limits) else {
        panic!("second message")
    };
    assert_eq!(first.call_id, "1820633437@192.168.1.50");
    assert_eq!(second.call_id, "9a8b7c6d-5e4f3a2b@192.168.1.70");
}

#[test]
fn addr_spec_params_belong_to_the_header() {
    with_request("20_addr_spec_no_brackets.sip", |req| {
        let c = req.contacts().next().unwrap().unwrap();
        assert_eq!(c.uri.raw, "sip:1014@192.168.1.160:5060");
        assert!(c.uri.params.is_empty());
        assert_eq!(c.params.get("expires"), Some(Some("120")));
        assert_eq!(req.from.tag(), Some("a1"));
        assert_eq!(req.from.uri.raw, "sip:1014@pbx.example.com");
    });
}

#[test]
fn header_names_case_insensitive_and_space_before_colon() {
    with_request("21_case_and_spacing.sip", |req| {
        assert_eq!(req.call_id, "case-1@192.168.1.170");
        assert_eq!(req.to.uri.user, Some("1015"));
        let c = req.contacts().next().unwrap().unwrap();
        assert_eq!(c.params.get("expires"), Some(Some("90")));
        assert_eq!(req.expires(), Ok(Some(90)));
    });
}

#[test]
fn bare_lf_line_ends_are_accepted() {
    with_request("22_lf_only.lf", |req| {
        assert_eq!(req.call_id, "1820633437@192.168.1.50");
        assert_eq!(req.contacts().count(), 1);
    });
}

#[test]
fn params_without_values_and_escaped_value() {
    with_request("23_novalue_params.sip", |req| {
        let c = req.contacts().next().unwrap().unwrap();
        assert!(c.uri.params.has("lr"));
        assert!(c.uri.params.has("ob"));
        assert_eq!(c.params.get("+sip.ice"), Some(None));
        assert_eq!(c.params.get("+g.3gpp.smsip"), Some(None));
        assert_eq!(
            c.params.get("+g.3gpp.icsi-ref"),
            Some(Some("urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"))
        );
        assert_eq!(c.params.get("expires"), Some(Some("100")));
    });
}

#[test]
fn utf8_display_names() {
    with_request("24_utf8_display.sip", |req| {
        let c = req.contacts().next().unwrap().unwrap();
        assert_eq!(c.display, Some("\"Jürgen Müller\"".as_bytes()));
        assert_eq!(c.uri.user, Some("1017"));
    });
}

#[test]
fn sips_scheme() {
    with_request("25_sips_tls.sip", |req| {
        assert_eq!(req.to.uri.scheme, Scheme::Sips);
        let c = req.contacts().next().unwrap().unwrap();
        assert_eq!(c.uri.scheme, Scheme::Sips);
        assert_eq!(c.uri.port, Some(5061));
    });
}

#[test]
fn two_vias_in_one_header_and_path() {
    with_request("26_via_multi_path.sip", |req| {
        assert_eq!(req.top_via.host, "edge1.example.com");
        assert_eq!(req.top_via.branch(), Some("z9hG4bKedge1"));
        let via = req.header(HeaderName::Via).unwrap();
        let (second, _) = kamrs::sip::Via::parse_at(via, req.top_via.end + 1).unwrap();
        assert_eq!(second.params.get("received"), Some(Some("198.51.100.7")));
        assert_eq!(second.params.get("rport"), Some(Some("40001")));
        assert_eq!(
            req.header(HeaderName::Path),
            Some(&b"<sip:edge1.example.com;lr>"[..])
        );
        assert_eq!(req.max_forwards, Some(69));
    });
}

#[test]
fn tel_uri_in_to() {
    with_request("27_tel_to.sip", |req| {
        assert_eq!(req.to.uri.scheme, Scheme::Tel);
        assert_eq!(req.to.uri.user, Some("+15551234567"));
        assert_eq!(req.from.tag(), Some("tl1"));
    });
}

#[test]
fn single_contact_expires_zero() {
    with_request("28_contact_expires_zero_single.sip", |req| {
        let c = req.contacts().next().unwrap().unwrap();
        assert_eq!(c.params.get("expires"), Some(Some("0")));
        assert_eq!(req.cseq.seq, 5);
    });
}
