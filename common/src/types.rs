//! The results of the control API, with Kamailio's field names and nesting
//! (docs/design.md §6), so a script written against Kamailio's `jsonrpcs` module
//! reads kamrs's answers unchanged.
//!
//! Rust field names are snake_case; every JSON name is given explicitly
//! with `#[serde(rename)]`, because Kamailio's names (`Call-ID`,
//! `Max-Slots`, `AoRs`) follow no single case rule.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// What Kamailio prints for a string field that has no value.
pub const NOT_SET: &str = "[not set]";

/// The only usrloc table (Kamailio "domain") kamrs has.
pub const TABLE: &str = "location";

/// `ul.dump`: `{Domains: [{Domain: {Domain, Size, AoRs, Stats}}]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UlDump {
    #[serde(rename = "Domains")]
    pub domains: Vec<DomainEntry>,
}

/// One element of `Domains`: Kamailio wraps each table in `{Domain: …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEntry {
    #[serde(rename = "Domain")]
    pub domain: Domain,
}

/// A usrloc table ("domain" in Kamailio's words).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    /// The table name, `location`.
    #[serde(rename = "Domain")]
    pub name: String,
    /// Number of hash slots of the table.
    #[serde(rename = "Size")]
    pub size: u32,
    #[serde(rename = "AoRs")]
    pub aors: Vec<AorEntry>,
    #[serde(rename = "Stats")]
    pub stats: DomainStats,
}

/// One element of `AoRs`: `{Info: {…}}` in a full dump, `{AoR: "…"}` in a
/// brief one (Kamailio's `ul.dump brief`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AorEntry {
    Full {
        #[serde(rename = "Info")]
        info: AorInfo,
    },
    Brief {
        #[serde(rename = "AoR")]
        aor: String,
    },
}

impl AorEntry {
    /// The AoR, whichever shape the entry has.
    pub fn aor(&self) -> &str {
        match self {
            AorEntry::Full { info } => &info.aor,
            AorEntry::Brief { aor } => aor,
        }
    }
}

/// An AoR and its bindings in a full dump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AorInfo {
    #[serde(rename = "AoR")]
    pub aor: String,
    /// Kamailio's `core_hash` of the AoR; the slot is `HashID & (Size-1)`.
    #[serde(rename = "HashID")]
    pub hash_id: u32,
    #[serde(rename = "Contacts")]
    pub contacts: Vec<ContactEntry>,
}

/// `ul.dump_page CURSOR LIMIT [brief]` (a kamrs extension, not in
/// Kamailio): up to LIMIT AoRs after CURSOR, in AoR-name order, each the
/// same object as in `ul.dump`'s `AoRs`. `Next` is the cursor of the next
/// page, `null` after the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UlDumpPage {
    #[serde(rename = "Next")]
    pub next: Option<String>,
    #[serde(rename = "AoRs")]
    pub aors: Vec<AorEntry>,
}

/// Number of hash slots `ul.dump` reports (`Size`): Kamailio's default
/// `hash_size` (2^10). kamrs's table is not organised in these slots; the
/// number only gives `HashID & (Size-1)` and `Max-Slots` the meaning a
/// Kamailio admin expects. Shared so kamrsctl, which assembles `ul.dump`
/// from pages, computes the same `Stats` as the daemon.
pub const SLOTS: u32 = 1024;

/// Kamailio's `core_hash(aor, 0, 0)`, the AoR's `HashID`: scripts and admins
/// use `HashID & (hash_size-1)` to find a record's slot, so the number is
/// computed the same way (bytes as C's signed `char`, four at a time).
pub fn core_hash(s: &str) -> u32 {
    // C's `char` is signed on the platforms Kamailio runs on.
    fn c(b: u8) -> u32 {
        b as i8 as i32 as u32
    }
    let mix = |h: u32, v: u32| h.wrapping_add(v ^ (v >> 3));
    let bytes = s.as_bytes();
    let mut h: u32 = 0;
    let mut chunks = bytes.chunks_exact(4);
    for p in &mut chunks {
        let v = (c(p[0]) << 24)
            .wrapping_add(c(p[1]) << 16)
            .wrapping_add(c(p[2]) << 8)
            .wrapping_add(c(p[3]));
        h = mix(h, v);
    }
    let mut v: u32 = 0;
    for &b in chunks.remainder() {
        v = (v << 8).wrapping_add(c(b));
    }
    h = mix(h, v);
    h.wrapping_add(h >> 11)
        .wrapping_add((h >> 13).wrapping_add(h >> 23))
}

/// `{Records, Max-Slots}` at the end of each table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainStats {
    /// AoRs in the table.
    #[serde(rename = "Records")]
    pub records: u64,
    /// The most AoRs sharing one hash slot.
    #[serde(rename = "Max-Slots")]
    pub max_slots: u64,
}

/// `ul.lookup`: `{AoR, Contacts: [{Contact: {…}}]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UlLookup {
    #[serde(rename = "AoR")]
    pub aor: String,
    #[serde(rename = "Contacts")]
    pub contacts: Vec<ContactEntry>,
}

/// One `ul.event` notification of `ul.subscribe`: a binding that changed
/// and why, or (`Event` = [`LAGGED`]) the last one of a subscriber that fell
/// behind, saying how many events it lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UlEvent {
    /// `registered`, `refreshed`, `replaced`, `unregistered`, `expired`,
    /// `removed`, `keepalive-timeout`, `connection-lost`, `remote`,
    /// `rolled-back`, or `lagged`.
    #[serde(rename = "Event")]
    pub event: String,
    /// Counts the daemon's events since it started: a gap is a lost event.
    #[serde(rename = "Seq", default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// When, Unix seconds with microseconds.
    #[serde(rename = "Time", default, skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    #[serde(rename = "AoR", default, skip_serializing_if = "Option::is_none")]
    pub aor: Option<String>,
    /// The binding now, or as it was when it went.
    #[serde(rename = "Contact", default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// With `lagged`: events this subscriber lost.
    #[serde(rename = "Lost", default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
}

/// [`UlEvent::event`] of the notification that ends a lagging subscription.
pub const LAGGED: &str = "lagged";

/// One element of `Contacts`: Kamailio wraps each binding in `{Contact: …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactEntry {
    #[serde(rename = "Contact")]
    pub contact: Contact,
}

/// One binding as Kamailio's `rpc_dump_contact` shows it. Strings without
/// a value are [`NOT_SET`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// The Contact URI as the UA sent it.
    #[serde(rename = "Address")]
    pub address: String,
    /// Seconds left, or `"permanent"`.
    #[serde(rename = "Expires")]
    pub expires: Expires,
    /// q-value as a number (`0.5`, `1`), `-1` when the UA gave none (what
    /// Kamailio prints for an unspecified q).
    #[serde(rename = "Q", serialize_with = "serialize_q")]
    pub q: f64,
    #[serde(rename = "Call-ID")]
    pub call_id: String,
    #[serde(rename = "CSeq")]
    pub cseq: u32,
    #[serde(rename = "User-Agent")]
    pub user_agent: String,
    /// Where the REGISTER came from, as a SIP URI: `sip:198.51.100.7:5060`
    /// (`;transport=tcp` for TCP), Kamailio's format for `received`.
    #[serde(rename = "Received")]
    pub received: String,
    #[serde(rename = "Path")]
    pub path: String,
    /// `CS_NEW` while nothing persists the table (Kamailio's db_mode 0).
    #[serde(rename = "State")]
    pub state: String,
    #[serde(rename = "Flags")]
    pub flags: u32,
    #[serde(rename = "CFlags")]
    pub cflags: u32,
    /// Our socket that received the REGISTER: `udp:127.0.0.1:5060`.
    #[serde(rename = "Socket")]
    pub socket: String,
    /// Kamailio's method bitmask; 4294967295 means all methods.
    #[serde(rename = "Methods")]
    pub methods: u32,
    #[serde(rename = "Ruid")]
    pub ruid: String,
    /// `+sip.instance` (RFC 5626).
    #[serde(rename = "Instance")]
    pub instance: String,
    #[serde(rename = "Reg-Id")]
    pub reg_id: u32,
    #[serde(rename = "Server-Id")]
    pub server_id: i32,
    /// -1 when the binding is not tied to a TCP connection.
    #[serde(rename = "Tcpconn-Id")]
    pub tcpconn_id: i64,
    #[serde(rename = "Keepalive")]
    pub keepalive: u32,
    /// Unix time of the last keepalive (the last REGISTER).
    #[serde(rename = "Last-Keepalive")]
    pub last_keepalive: i64,
    #[serde(rename = "KA-Roundtrip")]
    pub ka_roundtrip: u32,
    /// Unix time of the last change.
    #[serde(rename = "Last-Modified")]
    pub last_modified: i64,
}

/// Kamailio prints integral q-values without a fraction (`1`, `-1`), and
/// a script comparing `Q == 1` in a strictly typed language expects that.
fn serialize_q<S: Serializer>(q: &f64, s: S) -> Result<S::Ok, S::Error> {
    if q.fract() == 0.0 && q.abs() < 1e15 {
        // Integral and small: exact as an i64.
        s.serialize_i64(*q as i64)
    } else {
        s.serialize_f64(*q)
    }
}

/// A binding's `Expires`: remaining seconds, or one of Kamailio's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expires {
    /// Seconds left.
    Seconds(u64),
    /// Never expires (`ul.add` with expires 0).
    Permanent,
    /// Past its deadline but not purged yet.
    Expired,
}

impl Expires {
    pub const PERMANENT: &'static str = "permanent";
    pub const EXPIRED: &'static str = "expired";
}

impl Serialize for Expires {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Expires::Seconds(n) => s.serialize_u64(*n),
            Expires::Permanent => s.serialize_str(Expires::PERMANENT),
            Expires::Expired => s.serialize_str(Expires::EXPIRED),
        }
    }
}

impl<'de> Deserialize<'de> for Expires {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Expires;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("seconds left, \"permanent\" or \"expired\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Expires, E> {
                Ok(Expires::Seconds(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Expires, E> {
                // Kamailio never prints a negative; be lenient and call it expired.
                Ok(u64::try_from(n).map_or(Expires::Expired, Expires::Seconds))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Expires, E> {
                match s {
                    Expires::PERMANENT => Ok(Expires::Permanent),
                    // Kamailio's "deleted" is a binding on its way out.
                    Expires::EXPIRED | "deleted" => Ok(Expires::Expired),
                    _ => Err(E::invalid_value(de::Unexpected::Str(s), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `core.uptime`: `{now, up_since, uptime}` like Kamailio's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uptime {
    /// The current time, `ctime(3)` style, UTC.
    pub now: String,
    /// Start time, same format.
    pub up_since: String,
    /// Seconds since start.
    pub uptime: u64,
}

/// One element of `subscriber.list`: who may register, with the column
/// names of Kamailio's `subscriber` table. Deliberately without `ha1`:
/// hashes never leave the daemon.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubscriberEntry {
    pub username: String,
    pub domain: String,
}

/// Sources `pike.top` lists when no N is given.
pub const PIKE_TOP_DEFAULT: u32 = 20;

/// One element of `pike.top`: a source IP as the flood filter sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PikeSource {
    /// The source address (`192.0.2.7`, `2001:db8::1`).
    pub ip: String,
    /// Requests counted in its current window (0 once the window is over).
    pub requests_in_window: u32,
    /// Whether its requests are being dropped now.
    pub blocked: bool,
    /// Requests dropped from it since it was first tracked.
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contact() -> Contact {
        Contact {
            address: "sip:alice@192.0.2.1:5060".into(),
            expires: Expires::Seconds(3552),
            q: -1.0,
            call_id: "c1".into(),
            cseq: 7,
            user_agent: NOT_SET.into(),
            received: "sip:192.0.2.1:5060".into(),
            path: NOT_SET.into(),
            state: "CS_NEW".into(),
            flags: 0,
            cflags: 0,
            socket: "udp:127.0.0.1:5060".into(),
            methods: u32::MAX,
            ruid: "uloc-1".into(),
            instance: NOT_SET.into(),
            reg_id: 0,
            server_id: 0,
            tcpconn_id: -1,
            keepalive: 0,
            last_keepalive: 1_700_000_000,
            ka_roundtrip: 0,
            last_modified: 1_700_000_000,
        }
    }

    #[test]
    fn contact_has_kamailios_field_names_in_order() {
        let v = serde_json::to_value(ContactEntry { contact: contact() }).unwrap();
        let keys: Vec<&str> = v["Contact"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // serde_json's map is sorted without `preserve_order`; compare sets.
        let mut want = vec![
            "Address",
            "Expires",
            "Q",
            "Call-ID",
            "CSeq",
            "User-Agent",
            "Received",
            "Path",
            "State",
            "Flags",
            "CFlags",
            "Socket",
            "Methods",
            "Ruid",
            "Instance",
            "Reg-Id",
            "Server-Id",
            "Tcpconn-Id",
            "Keepalive",
            "Last-Keepalive",
            "KA-Roundtrip",
            "Last-Modified",
        ];
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        // The text keeps declaration order, which is Kamailio's.
        let text = serde_json::to_string(&contact()).unwrap();
        assert!(text.starts_with(r#"{"Address":"sip:alice@192.0.2.1:5060","Expires":3552,"Q":-1,"Call-ID":"c1","CSeq":7,"User-Agent":"[not set]","#), "{text}");
        assert!(
            text.ends_with(r#""KA-Roundtrip":0,"Last-Modified":1700000000}"#),
            "{text}"
        );
    }

    #[test]
    fn q_is_integral_when_it_can_be() {
        let mut c = contact();
        for (q, text) in [
            (-1.0, "-1"),
            (1.0, "1"),
            (0.0, "0"),
            (0.5, "0.5"),
            (0.123, "0.123"),
        ] {
            c.q = q;
            let v = serde_json::to_string(&c).unwrap();
            assert!(v.contains(&format!(r#""Q":{text},"#)), "{q}: {v}");
        }
    }

    #[test]
    fn expires_is_seconds_or_a_word() {
        assert_eq!(serde_json::to_value(Expires::Seconds(5)).unwrap(), json!(5));
        assert_eq!(
            serde_json::to_value(Expires::Permanent).unwrap(),
            json!("permanent")
        );
        for (v, want) in [
            (json!(12), Expires::Seconds(12)),
            (json!("permanent"), Expires::Permanent),
            (json!("expired"), Expires::Expired),
            (json!("deleted"), Expires::Expired),
        ] {
            assert_eq!(serde_json::from_value::<Expires>(v).unwrap(), want);
        }
        assert!(serde_json::from_value::<Expires>(json!("soon")).is_err());
    }

    #[test]
    fn full_and_brief_dumps_have_kamailios_shape() {
        let full = UlDump {
            domains: vec![DomainEntry {
                domain: Domain {
                    name: TABLE.into(),
                    size: 1024,
                    aors: vec![AorEntry::Full {
                        info: AorInfo {
                            aor: "alice".into(),
                            hash_id: 42,
                            contacts: vec![ContactEntry { contact: contact() }],
                        },
                    }],
                    stats: DomainStats {
                        records: 1,
                        max_slots: 1,
                    },
                },
            }],
        };
        let v = serde_json::to_value(&full).unwrap();
        let d = &v["Domains"][0]["Domain"];
        assert_eq!(d["Domain"], "location");
        assert_eq!(d["Size"], 1024);
        assert_eq!(d["AoRs"][0]["Info"]["AoR"], "alice");
        assert_eq!(d["AoRs"][0]["Info"]["HashID"], 42);
        assert_eq!(
            d["AoRs"][0]["Info"]["Contacts"][0]["Contact"]["Expires"],
            3552
        );
        assert_eq!(d["Stats"], json!({"Records": 1, "Max-Slots": 1}));
        assert_eq!(serde_json::from_value::<UlDump>(v).unwrap(), full);

        let brief = json!({"Domains": [{"Domain": {"Domain": "location", "Size": 1024,
            "AoRs": [{"AoR": "alice"}, {"AoR": "bob"}], "Stats": {"Records": 2, "Max-Slots": 1}}}]});
        let parsed: UlDump = serde_json::from_value(brief.clone()).unwrap();
        let aors: Vec<&str> = parsed.domains[0]
            .domain
            .aors
            .iter()
            .map(AorEntry::aor)
            .collect();
        assert_eq!(aors, ["alice", "bob"]);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), brief);
    }

    #[test]
    fn subscriber_and_pike_shapes() {
        let s = SubscriberEntry {
            username: "alice".into(),
            domain: "example.com".into(),
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"username": "alice", "domain": "example.com"})
        );
        let p = PikeSource {
            ip: "192.0.2.7".into(),
            requests_in_window: 51,
            blocked: true,
            dropped: 9,
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            json!({"ip": "192.0.2.7", "requests_in_window": 51, "blocked": true, "dropped": 9})
        );
        assert_eq!(serde_json::from_value::<PikeSource>(v).unwrap(), p);
    }

    #[test]
    fn lookup_shape() {
        let l = UlLookup {
            aor: "alice".into(),
            contacts: vec![ContactEntry { contact: contact() }],
        };
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["AoR"], "alice");
        assert_eq!(v["Contacts"][0]["Contact"]["Socket"], "udp:127.0.0.1:5060");
        assert_eq!(serde_json::from_value::<UlLookup>(v).unwrap(), l);
    }
}

/// One element of `tls.list`: an open TLS connection (on a `tls:` or
/// `wss:` listener), with Kamailio's field names first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsConnection {
    /// The connection's id: the `Tcpconn-Id` its bindings show in `ul.dump`.
    pub id: u64,
    /// The TLS domain (Kamailio's `TLSs<default>`): kamrs has one.
    pub dom: String,
    /// The server name the client asked for (SNI), `N/A` without one.
    pub sni: String,
    /// When its handshake finished, UTC, `YYYY-MM-DD hh:mm:ss`.
    pub timestamp: String,
    /// Seconds it has been open (Kamailio: seconds to its idle timeout,
    /// which kamrs does not apply to connections carrying bindings).
    pub timeout: u64,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    /// The cipher suite's IANA name (`TLS13_AES_128_GCM_SHA256`).
    pub cipher: String,
    /// Kamailio's clear-text write queue, encrypted read buffer and flags:
    /// 0 (kamrs writes each reply before reading on).
    pub ct_wq_size: u64,
    pub enc_rd_buf: u64,
    pub flags: u64,
    /// `established`: connections are listed once their handshake is done.
    pub state: String,
    /// `tls` or `wss`.
    pub transport: String,
    /// `TLSv1_3` or `TLSv1_2`.
    pub version: String,
    /// Whether the client presented a certificate that was verified.
    pub client_certificate: bool,
}

/// `tls.info`: Kamailio's three fields, then the certificate in force and
/// the handshake counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// `tcp_max_connections`, per listener.
    pub max_connections: u64,
    /// TLS and WSS connections open now (handshake done).
    pub opened_connections: u64,
    /// Always 0: replies are written before the next request is read, so
    /// nothing waits in clear text (kept for Kamailio's monitoring).
    pub clear_text_write_queued_bytes: u64,
    /// The certificate file in force.
    pub certificate: String,
    /// Certificates in that file, the server's own first.
    pub chain_length: u64,
    /// SHA-256 of the server certificate, `AB:CD:…`, as
    /// `openssl x509 -noout -fingerprint -sha256` prints it.
    pub sha256_fingerprint: String,
    /// When it was (re)loaded, UTC, `YYYY-MM-DD hh:mm:ss`.
    pub loaded_at: String,
    /// `[tls] min_version`: `1.2` or `1.3`.
    pub min_version: String,
    /// `[tls] verify_client`.
    pub verify_client: bool,
    /// Handshakes completed since start.
    pub handshakes: u64,
    /// Handshakes failed or timed out since start.
    pub handshake_failures: u64,
}

/// `core.info`: what is running and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreInfo {
    /// `kamrs/<version>`.
    pub version: String,
    /// `none`, `sqlite` or `redis`.
    pub store: String,
    /// `write-through` or `write-back`; `none` without a store.
    pub store_mode: String,
    /// `none` or `digest`.
    pub auth: String,
    /// Whether the flood filter (`[pike]`) runs.
    pub pike: bool,
}
