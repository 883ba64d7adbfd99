//! GRUUs (RFC 5627) from the real daemon over UDP: a REGISTER with
//! `Supported: gruu` and `+sip.instance` gets `pub-gruu` and `temp-gruu`
//! on its Contact; a refresh keeps the temp-GRUU, a new Call-ID changes it;
//! nothing without `Supported: gruu` or without an instance; two instances
//! get different GRUUs.

use std::net::UdpSocket;

use kamrs_tests::{udp_exchange, unique, Kamrs, Response};

const INSTANCE: &str = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";
const OTHER: &str = "<urn:uuid:00000000-0000-4000-8000-0000000000aa>";

fn register(sock: &UdpSocket, user: &str, call_id: &str, cseq: u32, extra: &[String]) -> Response {
    let port = sock.local_addr().unwrap().port();
    let mut msg = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@example.com>;tag={tag}\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n",
        b = unique(),
        tag = unique(),
    );
    for h in extra {
        msg.push_str(h);
        msg.push_str("\r\n");
    }
    msg.push_str("Content-Length: 0\r\n\r\n");
    let r = udp_exchange(sock, &msg);
    assert_eq!(r.status, 200, "{}", r.raw);
    r
}

fn contact(port: u16, instance: &str) -> String {
    format!("Contact: <sip:phone@127.0.0.1:{port}>;+sip.instance=\"{instance}\"")
}

/// `name="value"` of a Contact value (the value may hold `;`).
fn quoted(contact: &str, name: &str) -> Option<String> {
    let key = format!(";{name}=\"");
    let start = contact.find(&key)? + key.len();
    let len = contact[start..].find('"')?;
    Some(contact[start..start + len].to_owned())
}

/// (pub-gruu, temp-gruu) of the Contact whose instance is `instance`.
fn gruus(r: &Response, instance: &str) -> (Option<String>, Option<String>) {
    let wanted = format!("+sip.instance=\"{instance}\"");
    let c = r
        .values("Contact")
        .into_iter()
        .find(|c| c.contains(&wanted))
        .unwrap_or_else(|| panic!("no Contact with {instance}:\n{}", r.raw));
    (quoted(&c, "pub-gruu"), quoted(&c, "temp-gruu"))
}

#[test]
fn a_register_with_supported_gruu_and_an_instance_gets_both_gruus() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let user = format!("g{}", unique());
    let call_id = format!("{}@test", unique());
    let with = |inst: &str| vec!["Supported: path, gruu".to_owned(), contact(port, inst)];

    let r = register(&sock, &user, &call_id, 1, &with(INSTANCE));
    let (public, temp) = gruus(&r, INSTANCE);
    assert_eq!(
        public.as_deref(),
        Some(
            format!("sip:{user}@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
                .as_str()
        ),
        "{}",
        r.raw
    );
    let temp = temp.unwrap_or_else(|| panic!("no temp-gruu:\n{}", r.raw));
    assert!(temp.starts_with("sip:tgruu."), "{temp}");
    assert!(temp.ends_with("@example.com;gr"), "{temp}");
    assert!(!temp.contains(&user), "the temp-GRUU shows the AoR: {temp}");
    assert!(r.header("Require").is_none(), "{}", r.raw);

    // A refresh (same Call-ID, higher CSeq): the same temp-GRUU.
    let again = register(&sock, &user, &call_id, 2, &with(INSTANCE));
    assert_eq!(
        gruus(&again, INSTANCE),
        (public.clone(), Some(temp.clone()))
    );

    // A new Call-ID (the phone restarted): a new temp-GRUU, same public.
    let fresh = register(
        &sock,
        &user,
        &format!("{}@test", unique()),
        1,
        &with(INSTANCE),
    );
    let (public2, temp2) = gruus(&fresh, INSTANCE);
    assert_eq!(public2, public);
    assert!(temp2.is_some());
    assert_ne!(temp2.as_deref(), Some(temp.as_str()));

    // A second instance of the same AoR: its own GRUUs.
    let other = register(&sock, &user, &format!("{}@test", unique()), 1, &with(OTHER));
    let (public3, temp3) = gruus(&other, OTHER);
    assert!(public3.is_some() && temp3.is_some(), "{}", other.raw);
    assert_ne!(public3, public);
    assert_ne!(temp3, temp2);
    // The 200 lists both bindings, each with its own GRUUs.
    assert_eq!(gruus(&other, INSTANCE), (public, temp2));
}

#[test]
fn no_gruus_without_supported_gruu_or_without_an_instance() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();

    let user = format!("n{}", unique());
    let r = register(
        &sock,
        &user,
        &format!("{}@test", unique()),
        1,
        &[contact(port, INSTANCE)],
    );
    assert!(!r.raw.contains("gruu"), "{}", r.raw);
    let r = register(
        &sock,
        &user,
        &format!("{}@test", unique()),
        1,
        &["Supported: path".to_owned(), contact(port + 1, OTHER)],
    );
    assert!(!r.raw.contains("gruu"), "{}", r.raw);

    let user = format!("p{}", unique());
    let r = register(
        &sock,
        &user,
        &format!("{}@test", unique()),
        1,
        &[
            "Supported: gruu".to_owned(),
            format!("Contact: <sip:phone@127.0.0.1:{port}>"),
        ],
    );
    assert!(
        !r.raw.contains("pub-gruu") && !r.raw.contains("temp-gruu"),
        "{}",
        r.raw
    );
}

#[test]
fn a_contact_that_is_a_gruu_of_its_own_aor_is_refused() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let user = format!("l{}", unique());
    let r = register(
        &sock,
        &user,
        &format!("{}@test", unique()),
        1,
        &["Supported: gruu".to_owned(), contact(port, INSTANCE)],
    );
    let (public, temp) = gruus(&r, INSTANCE);
    for gruu in [public.unwrap(), temp.unwrap()] {
        let port = sock.local_addr().unwrap().port();
        let msg = format!(
            "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@example.com>;tag=t\r\n\
             To: <sip:{user}@example.com>\r\n\
             Call-ID: {c}@test\r\n\
             CSeq: 1 REGISTER\r\n\
             Contact: <{gruu}>\r\n\
             Content-Length: 0\r\n\r\n",
            b = unique(),
            c = unique(),
        );
        let r = udp_exchange(&sock, &msg);
        assert_eq!(r.status, 403, "{gruu}: {}", r.raw);
    }
}
