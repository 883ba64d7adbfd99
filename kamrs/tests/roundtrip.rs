//! Property test: any REGISTER we can write in the many legal spellings
//! real phones use parses back to exactly the values we wrote.

use kamrs::sip::{parse_message, Limits, Message};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Host {
    Name(String),
    V4([u8; 4]),
    V6([u16; 8]),
}

impl Host {
    fn text(&self) -> String {
        match self {
            Host::Name(n) => n.clone(),
            Host::V4(o) => format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
            Host::V6(s) => format!(
                "[{}]",
                s.iter()
                    .map(|x| format!("{x:x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            ),
        }
    }
}

#[derive(Debug, Clone)]
struct Contact {
    display: Option<String>,
    user: String,
    host: Host,
    port: Option<u16>,
    uri_params: Vec<(String, Option<String>)>,
    /// Header params; values are written quoted when `quoted` is set.
    params: Vec<(String, Option<String>, bool)>,
}

#[derive(Debug, Clone)]
struct Register {
    user: String,
    domain: Host,
    call_id: String,
    cseq: u32,
    expires: Option<u32>,
    contacts: Vec<Contact>,
    /// Spell header names compactly.
    compact: bool,
    /// Random upper/lower case in header names.
    shout: bool,
    /// Fold the Contact header after its first `;`.
    fold: bool,
    /// One Contact header per contact instead of a comma list.
    contact_lines: bool,
    lf_only: bool,
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,11}"
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9]{0,6}){0,3}".prop_map(Host::Name),
        any::<[u8; 4]>().prop_map(Host::V4),
        any::<[u16; 8]>().prop_map(Host::V6),
    ]
}

fn quoted_text() -> impl Strategy<Value = String> {
    // Anything printable, including the characters that break naive
    // parsers: , ; < > = and escaped quotes.
    "[a-zA-Z0-9 ,;<>=:@/._\\-]{0,16}|<urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}>"
}

fn contact() -> impl Strategy<Value = Contact> {
    (
        prop_oneof![
            Just(None),
            token().prop_map(Some),
            "[a-zA-Z ,]{1,12}".prop_map(|s| Some(format!("\"{s}\""))),
            "[a-z]{1,5}".prop_map(|s| Some(format!("\"{s} \\\"x\\\"\""))),
            Just(Some("\"Jürgen, Müller\"".to_string())),
        ],
        "[a-zA-Z0-9_.!~*'()-]{1,12}",
        host(),
        proptest::option::of(1u16..),
        proptest::collection::vec((token(), proptest::option::of(token())), 0..3),
        proptest::collection::vec(
            (token(), proptest::option::of(quoted_text()), any::<bool>()),
            0..4,
        ),
    )
        .prop_map(|(display, user, host, port, uri_params, params)| Contact {
            display,
            user,
            host,
            port,
            uri_params,
            // Unquoted values must be tokens.
            params: params
                .into_iter()
                .map(|(n, v, q)| {
                    let q = q
                        || v.as_deref()
                            .is_some_and(|v| !v.bytes().all(is_token_byte) || v.is_empty());
                    (n, v, q)
                })
                .collect(),
        })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn register() -> impl Strategy<Value = Register> {
    (
        "[a-z0-9]{1,10}",
        host(),
        "[a-zA-Z0-9@.:_-]{1,30}",
        0u32..(1 << 31),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(contact(), 1..4),
        any::<[bool; 5]>(),
    )
        .prop_map(
            |(user, domain, call_id, cseq, expires, contacts, f)| Register {
                user,
                domain,
                call_id,
                cseq,
                expires,
                contacts,
                compact: f[0],
                shout: f[1],
                fold: f[2],
                contact_lines: f[3],
                lf_only: f[4],
            },
        )
}

impl Contact {
    fn uri(&self) -> String {
        let mut s = format!("sip:{}@{}", self.user, self.host.text());
        if let Some(p) = self.port {
            s += &format!(":{p}");
        }
        for (n, v) in &self.uri_params {
            s += &format!(";{n}");
            if let Some(v) = v {
                s += &format!("={v}");
            }
        }
        s
    }

    fn text(&self, fold: bool) -> String {
        let mut s = String::new();
        if let Some(d) = &self.display {
            s += d;
            s += " ";
        }
        s += &format!("<{}>", self.uri());
        for (i, (n, v, quoted)) in self.params.iter().enumerate() {
            s += if fold && i == 0 { ";\r\n  " } else { ";" };
            s += n;
            if let Some(v) = v {
                if *quoted {
                    s += &format!("=\"{v}\"");
                } else {
                    s += &format!("={v}");
                }
            }
        }
        s
    }
}

impl Register {
    fn name(&self, full: &str, compact: &str) -> String {
        let n = if self.compact && !compact.is_empty() {
            compact
        } else {
            full
        };
        if self.shout {
            n.to_uppercase()
        } else {
            n.to_string()
        }
    }

    fn text(&self) -> String {
        let aor = format!("sip:{}@{}", self.user, self.domain.text());
        let mut s = format!("REGISTER sip:{} SIP/2.0\r\n", self.domain.text());
        s += &format!(
            "{}: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{};rport\r\n",
            self.name("Via", "v"),
            self.cseq
        );
        s += &format!("{}: <{aor}>;tag=f{}\r\n", self.name("From", "f"), self.cseq);
        s += &format!("{}: <{aor}>\r\n", self.name("To", "t"));
        s += &format!("{}: {}\r\n", self.name("Call-ID", "i"), self.call_id);
        s += &format!("{}: {} REGISTER\r\n", self.name("CSeq", ""), self.cseq);
        if self.contact_lines {
            for c in &self.contacts {
                s += &format!("{}: {}\r\n", self.name("Contact", "m"), c.text(self.fold));
            }
        } else {
            let all: Vec<String> = self.contacts.iter().map(|c| c.text(self.fold)).collect();
            s += &format!("{}: {}\r\n", self.name("Contact", "m"), all.join(", "));
        }
        if let Some(e) = self.expires {
            s += &format!("{}: {e}\r\n", self.name("Expires", ""));
        }
        s += &format!("{}: 0\r\n\r\n", self.name("Content-Length", "l"));
        if self.lf_only {
            s = s.replace("\r\n", "\n");
        }
        s
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn register_round_trips(r in register()) {
        let text = r.text();
        let parsed = parse_message(text.as_bytes(), &Limits::default());
        let req = match parsed {
            Ok(Message::Request(req)) => req,
            other => return Err(TestCaseError::fail(format!("{other:?}\n{text}"))),
        };
        prop_assert_eq!(req.call_id, r.call_id.as_str());
        prop_assert_eq!(req.cseq.seq, r.cseq);
        prop_assert_eq!(req.to.uri.user, Some(r.user.as_str()));
        let domain = r.domain.text();
        prop_assert_eq!(req.to.uri.host, domain.as_str());
        let tag = format!("f{}", r.cseq);
        prop_assert_eq!(req.from.tag(), Some(tag.as_str()));
        prop_assert_eq!(req.expires(), Ok(r.expires));
        let contacts: Vec<_> = req.contacts().collect::<Result<_, _>>().map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(contacts.len(), r.contacts.len());
        for (got, want) in contacts.iter().zip(&r.contacts) {
            let want_uri = want.uri();
            prop_assert_eq!(got.uri.raw, want_uri.as_str());
            prop_assert_eq!(got.uri.user, Some(want.user.as_str()));
            prop_assert_eq!(got.uri.port, want.port);
            let got_display = got.display.map(|d| String::from_utf8_lossy(d).into_owned());
            prop_assert_eq!(got_display, want.display.clone());
            let got_params: Vec<(String, Option<String>)> = got
                .params
                .into_iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect();
            let want_params: Vec<(String, Option<String>)> =
                want.params.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
            prop_assert_eq!(got_params, want_params);
            prop_assert!(got.uri.equivalent(&got.uri));
        }
    }
}
