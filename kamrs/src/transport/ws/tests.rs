use super::*;

fn request(headers: &[(&str, &str)]) -> Request {
    let mut b = http::Request::builder().method("GET").uri("/");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("request")
}

#[allow(clippy::result_large_err)]
fn upgrade(settings: &WsSettings, headers: &[(&str, &str)]) -> Result<Response, ErrorResponse> {
    accept_upgrade(settings, &request(headers), http::Response::new(()))
}

#[test]
fn the_sip_subprotocol_is_required_and_echoed() {
    let s = WsSettings::default();
    let ok = upgrade(&s, &[("Sec-WebSocket-Protocol", "sip")]).expect("accepted");
    assert_eq!(ok.headers()["Sec-WebSocket-Protocol"], "sip");
    let ok = upgrade(&s, &[("Sec-WebSocket-Protocol", "msrp, sip")]).expect("accepted");
    assert_eq!(ok.headers()["Sec-WebSocket-Protocol"], "sip");
    for bad in [
        &[][..],
        &[("Sec-WebSocket-Protocol", "SIP")],
        &[("Sec-WebSocket-Protocol", "sips, msrp")],
    ] {
        let refused = upgrade(&s, bad).expect_err("refused");
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(refused
            .body()
            .as_deref()
            .unwrap_or_default()
            .contains("Sec-WebSocket-Protocol: sip"));
    }
}

#[test]
fn origins_are_checked_only_when_listed() {
    let any = WsSettings::default();
    assert!(upgrade(
        &any,
        &[
            ("Sec-WebSocket-Protocol", "sip"),
            ("Origin", "https://evil.example")
        ]
    )
    .is_ok());
    let listed = WsSettings::new(
        &["https://Phone.Example.com/".to_owned()],
        Duration::from_secs(1),
        Duration::from_secs(1),
        true,
    );
    assert!(upgrade(
        &listed,
        &[
            ("Sec-WebSocket-Protocol", "sip"),
            ("Origin", "https://phone.example.com")
        ]
    )
    .is_ok());
    let refused = upgrade(
        &listed,
        &[
            ("Sec-WebSocket-Protocol", "sip"),
            ("Origin", "https://evil.example"),
        ],
    )
    .expect_err("refused");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // With a list, no Origin at all is not good enough.
    assert!(upgrade(&listed, &[("Sec-WebSocket-Protocol", "sip")]).is_err());
}

#[test]
fn a_reply_goes_as_text_when_it_is_utf8() {
    assert!(matches!(
        sip_message(b"SIP/2.0 200 OK\r\n\r\n".to_vec()),
        Message::Text(_)
    ));
    assert!(matches!(sip_message(vec![0xff, 0xfe]), Message::Binary(_)));
}
