//! The control API end to end: the real daemon, registered over
//! real SIP, read and changed with the real `kamrsctl` and with a raw
//! JSON-RPC client; the security rules of the socket and the HTTP
//! endpoint; and a 100,000-AoR table.
//!
//! Every test starts its own daemon with its own control socket in a temp
//! dir, so they run in parallel.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kamrs_tests::ctl::*;
use kamrs_tests::*;
use serde_json::{json, Value};

const UA_YEALINK: &str = "Yealink SIP-T46S 66.86.0.15";
const UA_LINPHONE: &str = "Linphone/5.2.0 (belle-sip/5.2.0)";

/// The 22 fields of Kamailio's `rpc_dump_contact`.
const CONTACT_FIELDS: [&str; 22] = [
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

fn port(sock: &UdpSocket) -> u16 {
    sock.local_addr().unwrap().port()
}

/// REGISTERs `contact` for `aor` and asserts the 200.
fn sip_register(sock: &UdpSocket, aor: &str, contact: &str, call_id: &str, ua: &str) {
    let r = udp_exchange(
        sock,
        register(aor, Some(contact), Some(3600), call_id, 1, port(sock), ua),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
}

/// A REGISTER without Contact: the registrar lists the AoR's bindings.
fn sip_query(sock: &UdpSocket, aor: &str) -> Response {
    let r = udp_exchange(
        sock,
        register(aor, None, None, &unique(), 1, port(sock), "query"),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    r
}

/// The Contact URIs of a 200, without `<>` and params.
fn contact_uris(r: &Response) -> Vec<String> {
    r.values("Contact")
        .iter()
        .map(|v| {
            v.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn aor_entries(dump: &Value) -> &Vec<Value> {
    dump["Domains"][0]["Domain"]["AoRs"]
        .as_array()
        .unwrap_or_else(|| panic!("no AoRs in {dump}"))
}

fn contacts_of<'a>(dump: &'a Value, aor: &str) -> &'a Vec<Value> {
    aor_entries(dump)
        .iter()
        .find(|e| e["Info"]["AoR"] == aor)
        .and_then(|e| e["Info"]["Contacts"].as_array())
        .unwrap_or_else(|| panic!("{aor} not in {dump}"))
}

// ------------------------------------------------------ what admins see

#[test]
fn sip_registrations_show_in_ul_dump_and_ul_lookup() {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    let p = port(&sock);
    let (a1, a2) = (
        format!("sip:alice@127.0.0.1:{p};ob"),
        format!("sip:alice@127.0.0.1:{}", p + 1),
    );
    let b1 = format!("sip:bob@127.0.0.1:{p}");
    sip_register(&sock, "alice", &a1, "cid-a1", UA_YEALINK);
    sip_register(&sock, "alice", &a2, "cid-a2", UA_YEALINK);
    sip_register(&sock, "bob", &b1, "cid-b1", UA_LINPHONE);
    let received = format!("sip:127.0.0.1:{p}");

    // The table a person reads.
    let table = k.ctl_ok(&["ul.dump"]);
    for want in [
        "AoR",
        "Contact",
        "Expires",
        "Received",
        "User-Agent",
        "Last-Modified",
        "alice",
        "bob",
        &a1,
        &a2,
        &b1,
        UA_YEALINK,
        UA_LINPHONE,
        &received,
        "2 AoRs, 3 contacts",
    ] {
        assert!(table.contains(want), "{want:?} missing from\n{table}");
    }
    assert!(
        table.contains("1h 0m") || table.contains("59m 5"),
        "expiry as a duration:\n{table}"
    );

    // The same as JSON, with Kamailio's names and values.
    let dump = k.ctl_json(&["ul.dump"]);
    let domain = &dump["Domains"][0]["Domain"];
    assert_eq!(domain["Domain"], "location");
    assert_eq!(domain["Size"], 1024);
    assert_eq!(domain["Stats"]["Records"], 2);
    let aors: Vec<&Value> = aor_entries(&dump)
        .iter()
        .map(|e| &e["Info"]["AoR"])
        .collect();
    assert_eq!(aors, ["alice", "bob"]);
    let alice = contacts_of(&dump, "alice");
    assert_eq!(alice.len(), 2);
    let c = alice
        .iter()
        .map(|c| &c["Contact"])
        .find(|c| c["Address"] == a1.as_str())
        .unwrap_or_else(|| panic!("{a1} not in {alice:?}"));
    let expires = c["Expires"].as_u64().unwrap_or_else(|| panic!("{c}"));
    assert!((3590..=3600).contains(&expires), "{c}");
    assert_eq!(c["Q"], -1);
    assert_eq!(c["Call-ID"], "cid-a1");
    assert_eq!(c["CSeq"], 1);
    assert_eq!(c["User-Agent"], UA_YEALINK);
    assert_eq!(c["Received"], received.as_str());
    assert_eq!(c["Socket"], format!("udp:{}", k.udp()).as_str());
    assert_eq!(c["Path"], "[not set]");
    assert_eq!(c["Instance"], "[not set]");
    assert_eq!(c["State"], "CS_NEW");
    assert_eq!(c["Tcpconn-Id"], -1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let modified = c["Last-Modified"].as_i64().unwrap_or_default();
    assert!((now - 60..=now + 1).contains(&modified), "{c}");

    // Brief: AoR names only.
    let brief = k.ctl_ok(&["ul.dump", "--brief"]);
    assert_eq!(brief.lines().collect::<Vec<_>>(), ["alice", "bob"]);
    let brief = k.ctl_json(&["ul.dump", "--brief"]);
    assert_eq!(
        aor_entries(&brief),
        &vec![json!({"AoR": "alice"}), json!({"AoR": "bob"})]
    );
    // kamrsctl assembles it from `ul.dump_page`s: the text is the one
    // Kamailio's `ul.dump` result pretty-prints to, key order included.
    let max_slots =
        &k.rpc("ul.dump", json!(["brief"]))["result"]["Domains"][0]["Domain"]["Stats"]["Max-Slots"];
    let want = format!(
        "{{\n  \"Domains\": [\n    {{\n      \"Domain\": {{\n        \"Domain\": \"location\",\n        \"Size\": 1024,\n        \"AoRs\": [\n          {{\n            \"AoR\": \"alice\"\n          }},\n          {{\n            \"AoR\": \"bob\"\n          }}\n        ],\n        \"Stats\": {{\n          \"Records\": 2,\n          \"Max-Slots\": {max_slots}\n        }}\n      }}\n    }}\n  ]\n}}\n"
    );
    assert_eq!(k.ctl_ok(&["--json", "ul.dump", "--brief"]), want);

    // One AoR.
    let table = k.ctl_ok(&["ul.lookup", "alice"]);
    assert!(table.starts_with("AoR alice\n"), "{table}");
    for want in [a1.as_str(), a2.as_str(), UA_YEALINK] {
        assert!(table.contains(want), "{want} missing from\n{table}");
    }
    assert!(!table.contains(&b1), "{table}");
    let l = k.ctl_json(&["ul.lookup", "alice"]);
    assert_eq!(l["AoR"], "alice");
    let addrs: BTreeSet<&str> = l["Contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Contact"]["Address"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, BTreeSet::from([a1.as_str(), a2.as_str()]));
}

#[test]
fn ul_rm_removes_the_aor_and_sip_queries_no_longer_return_it() {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    let contact = format!("sip:alice@127.0.0.1:{}", port(&sock));
    sip_register(&sock, "alice", &contact, "cid-1", UA_YEALINK);
    sip_register(&sock, "bob", "sip:bob@192.0.2.1", "cid-2", UA_YEALINK);
    assert_eq!(contact_uris(&sip_query(&sock, "alice")), [contact.as_str()]);

    let out = k.ctl_ok(&["ul.rm", "alice"]);
    assert_eq!(out.trim(), "removed AoR alice");

    // Gone for the control API…
    let run = k.ctl(&["ul.lookup", "alice"]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(
        run.stderr.starts_with("kamrsctl: AOR not found: alice"),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    // …and for SIP: a query gets 200 with no Contact.
    let r = sip_query(&sock, "alice");
    assert!(r.headers("Contact").is_empty(), "{}", r.raw);
    // bob is untouched.
    assert_eq!(
        contact_uris(&sip_query(&sock, "bob")),
        ["sip:bob@192.0.2.1"]
    );
    let brief = k.ctl_ok(&["ul.dump", "--brief"]);
    assert_eq!(brief.trim(), "bob");
    // Removing it again: not found.
    let run = k.ctl(&["ul.rm", "alice"]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    // --json prints the raw (empty) result.
    assert_eq!(k.ctl_json(&["ul.rm", "bob"]), Value::Null);
    assert_eq!(k.ctl_ok(&["ul.dump"]).trim(), "no registered AoRs");
}

#[test]
fn ul_rm_contact_removes_one_binding() {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    let p = port(&sock);
    let (c1, c2) = (
        format!("sip:alice@127.0.0.1:{p}"),
        format!("sip:alice@127.0.0.1:{}", p + 1),
    );
    sip_register(&sock, "alice", &c1, "cid-1", UA_YEALINK);
    sip_register(&sock, "alice", &c2, "cid-2", UA_YEALINK);

    let out = k.ctl_ok(&["ul.rm_contact", "alice", &c1]);
    assert_eq!(out.trim(), format!("removed {c1} from alice"));
    let l = k.ctl_json(&["ul.lookup", "alice"]);
    assert_eq!(l["Contacts"].as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l["Contacts"][0]["Contact"]["Address"], c2.as_str());
    assert_eq!(contact_uris(&sip_query(&sock, "alice")), [c2.as_str()]);

    let run = k.ctl(&["ul.rm_contact", "alice", "sip:nobody@192.0.2.9"]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("Contact not found"), "{run:?}");
    let run = k.ctl(&["ul.rm_contact", "zed", "sip:zed@192.0.2.9"]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("AOR not found: zed"), "{run:?}");

    // The last binding: the AoR goes with it.
    k.ctl_ok(&["ul.rm_contact", "alice", &c2]);
    assert_eq!(k.ctl(&["ul.lookup", "alice"]).code(), Some(1));
    assert!(sip_query(&sock, "alice").headers("Contact").is_empty());
}

/// ul.dump's `Methods` (Kamailio's bitmask): a Contact's `methods`
/// parameter wins; without one, every Allow header counts, whatever the
/// case of its name; with neither, all methods.
#[test]
fn methods_come_from_the_contact_param_else_every_allow_header() {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    let p = port(&sock);
    let (allow, param, none) = (
        format!("sip:dave@127.0.0.1:{p}"),
        format!("sip:dave@127.0.0.1:{}", p + 1),
        format!("sip:dave@127.0.0.1:{}", p + 2),
    );
    let two_allows = "Allow: INVITE, ACK\r\nallow: BYE,MESSAGE\r\nUser-Agent:";
    let with_allow = register("dave", Some(&allow), Some(3600), "cid-d1", 1, p, "t")
        .replace("User-Agent:", two_allows);
    assert_eq!(udp_exchange(&sock, with_allow).status, 200);
    let with_param = register("dave", Some(&param), Some(3600), "cid-d2", 1, p, "t")
        .replace(
            &format!("<{param}>"),
            &format!("<{param}>;methods=\"INVITE,OPTIONS\""),
        )
        .replace("User-Agent:", two_allows);
    assert_eq!(udp_exchange(&sock, with_param).status, 200);
    sip_register(&sock, "dave", &none, "cid-d3", "t");

    let l = k.ctl_json(&["ul.lookup", "dave"]);
    let methods_of = |address: &str| {
        l["Contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["Contact"])
            .find(|c| c["Address"] == address)
            .unwrap_or_else(|| panic!("{address} not in {l}"))["Methods"]
            .clone()
    };
    // INVITE 1, ACK 4, BYE 8, MESSAGE 256; OPTIONS 512.
    assert_eq!(methods_of(&allow), json!(1 | 4 | 8 | 256));
    assert_eq!(methods_of(&param), json!(1 | 512));
    assert_eq!(methods_of(&none), json!(u32::MAX));
}

#[test]
fn ul_add_makes_bindings_that_sip_queries_return() {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    let out = k.ctl_ok(&["ul.add", "carol", "sip:carol@192.0.2.7:5060"]);
    assert_eq!(
        out.trim(),
        "added sip:carol@192.0.2.7:5060 to carol (permanent)"
    );
    let out = k.ctl_ok(&[
        "ul.add",
        "carol",
        "sip:carol@192.0.2.8",
        "--expires",
        "600",
        "--q",
        "0.5",
        "--path",
        "<sip:edge.example.com;lr>",
        "--flags",
        "2",
        "--cflags",
        "64",
        "--methods",
        "1",
    ]);
    assert_eq!(
        out.trim(),
        "added sip:carol@192.0.2.8 to carol (expires in 10m 0s)"
    );

    let l = k.ctl_json(&["ul.lookup", "carol"]);
    let contacts = l["Contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 2, "{l}");
    let perm = &contacts[0]["Contact"];
    assert_eq!(perm["Address"], "sip:carol@192.0.2.7:5060");
    assert_eq!(perm["Expires"], "permanent");
    assert_eq!(perm["Q"], -1);
    assert_eq!(perm["User-Agent"], "kamrs - RPC Server");
    assert_eq!(perm["Received"], "[not set]");
    assert_eq!(perm["Socket"], "[not set]");
    assert_eq!(perm["Methods"], 4294967295u32);
    let timed = &contacts[1]["Contact"];
    let left = timed["Expires"]
        .as_u64()
        .unwrap_or_else(|| panic!("{timed}"));
    assert!((590..=600).contains(&left), "{timed}");
    assert_eq!(timed["Q"], 0.5);
    assert_eq!(timed["Path"], "<sip:edge.example.com;lr>");
    assert_eq!(
        (&timed["Flags"], &timed["CFlags"], &timed["Methods"]),
        (&json!(2), &json!(64), &json!(1))
    );
    let table = k.ctl_ok(&["ul.lookup", "carol"]);
    for want in [
        "permanent",
        "0.5",
        "kamrs - RPC Server",
        "sip:carol@192.0.2.8",
    ] {
        assert!(table.contains(want), "{want:?} missing from\n{table}");
    }

    // The registrar answers with what ul.add stored.
    let mut uris = contact_uris(&sip_query(&sock, "carol"));
    uris.sort();
    assert_eq!(uris, ["sip:carol@192.0.2.7:5060", "sip:carol@192.0.2.8"]);

    // Adding the same contact again replaces it.
    k.ctl_ok(&[
        "ul.add",
        "carol",
        "sip:carol@192.0.2.7:5060",
        "--expires",
        "60",
    ]);
    let l = k.ctl_json(&["ul.lookup", "carol"]);
    assert_eq!(l["Contacts"].as_array().unwrap().len(), 2, "{l}");

    // `--json stats` is an object of numbers.
    let stats = k.ctl_json(&["stats", "usrloc:"]);
    assert_eq!(stats["usrloc:registered_users"], 1, "{stats}");
    assert_eq!(stats["usrloc:location_contacts"], 2, "{stats}");
    let table = k.ctl_ok(&["stats", "usrloc:location_contacts"]);
    assert!(
        table.contains("usrloc:location_contacts") && table.contains('2'),
        "{table}"
    );
}

#[test]
fn core_and_stats_commands() {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    sip_register(&sock, "alice", "sip:alice@192.0.2.1", "cid-1", UA_YEALINK);
    let v = k.ctl_ok(&["core.version"]);
    assert!(
        v.starts_with(&format!("kamrs {} (", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let up = k.ctl_ok(&["core.uptime"]);
    assert!(up.starts_with("up ") && up.contains("since"), "{up}");
    let up = k.ctl_json(&["core.uptime"]);
    assert_eq!(keys(&up), BTreeSet::from(["now", "up_since", "uptime"]));
    let all = k.ctl_ok(&["stats"]);
    for want in [
        "registrar:accepted_regs",
        "usrloc:registered_users",
        "core:rcv_requests",
    ] {
        assert!(all.contains(want), "{want} missing from\n{all}");
    }
    let lines = k.ctl_json(&["stats", "registrar:accepted_regs"]);
    assert_eq!(lines, json!({"registrar:accepted_regs": 1}));
    let lines = k.ctl_json(&["call", "stats.get_statistics", "registrar:accepted_regs"]);
    assert_eq!(lines, json!(["registrar:accepted_regs = 1"]));
    k.ctl_ok(&["stats.reset", "registrar:"]);
    let lines = k.ctl_json(&[
        "stats",
        "registrar:accepted_regs",
        "usrloc:registered_users",
    ]);
    assert_eq!(
        lines,
        json!({"registrar:accepted_regs": 0, "usrloc:registered_users": 1})
    );
    let run = k.ctl(&["stats", "nosuch:"]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(k.ctl_ok(&["ul.flush"]).starts_with("nothing to flush"));
    let methods = k.ctl_ok(&["system.listMethods"]);
    assert!(methods.lines().any(|l| l == "ul.dump"), "{methods}");
}

// ------------------------------------------------- raw JSON-RPC clients

#[test]
fn a_raw_json_rpc_client_sees_kamailios_names_and_errors() {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    let contact = format!("sip:alice@127.0.0.1:{}", port(&sock));
    sip_register(&sock, "alice", &contact, "cid-1", UA_YEALINK);

    let mut conn = HttpConn::unix(&k.socket);
    let dump = conn.call("ul.dump", json!([]));
    let dump = &dump["result"];
    assert_eq!(keys(dump), BTreeSet::from(["Domains"]));
    let domain = &dump["Domains"][0];
    assert_eq!(keys(domain), BTreeSet::from(["Domain"]));
    assert_eq!(
        keys(&domain["Domain"]),
        BTreeSet::from(["Domain", "Size", "AoRs", "Stats"])
    );
    assert_eq!(
        keys(&domain["Domain"]["Stats"]),
        BTreeSet::from(["Records", "Max-Slots"])
    );
    let info = &domain["Domain"]["AoRs"][0]["Info"];
    assert_eq!(keys(info), BTreeSet::from(["AoR", "HashID", "Contacts"]));
    let c = &info["Contacts"][0]["Contact"];
    assert_eq!(keys(c), BTreeSet::from(CONTACT_FIELDS));

    // Same connection, more calls (keep-alive), Kamailio argument order.
    let l = conn.call("ul.lookup", json!(["location", "alice"]));
    assert_eq!(l["result"]["AoR"], "alice");
    assert_eq!(
        keys(&l["result"]["Contacts"][0]["Contact"]),
        BTreeSet::from(CONTACT_FIELDS)
    );
    let e = conn.call("ul.lookup", json!(["location", "nobody"]));
    assert_eq!(e["error"]["code"], 404, "{e}");
    assert_eq!(e["error"]["message"], "AOR not found", "{e}");
    // Bad arguments: which one, and why.
    let e = conn.call("ul.lookup", json!(["location"]));
    assert_eq!(e["error"]["code"], -32602, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`aor` is missing"),
        "{e}"
    );
    let e = conn.call(
        "ul.add",
        json!([
            "location",
            "dave",
            "sip:dave@192.0.2.4",
            "soon",
            1,
            "0",
            0,
            0,
            0
        ]),
    );
    assert_eq!(e["error"]["code"], -32602, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`expires`"),
        "{e}"
    );
    let e = conn.call("ul.lookup", json!(["loc", "alice"]));
    assert!(
        e["error"]["message"].as_str().unwrap().contains("`table`"),
        "{e}"
    );
    let e = conn.call("ul.nope", json!([]));
    assert_eq!(e["error"]["code"], -32601, "{e}");

    // What Kamailio clients send: numbers as strings, variadic names.
    let ok = conn.call(
        "ul.add",
        json!([
            "location",
            "dave",
            "sip:dave@192.0.2.4",
            "0",
            "1",
            ".",
            "0",
            "0",
            "4294967295"
        ]),
    );
    assert_eq!(ok["result"], Value::Null, "{ok}");
    let s = conn.call(
        "stats.get_statistics",
        json!(["usrloc:registered_users", "registrar:accepted_regs"]),
    );
    assert_eq!(
        s["result"],
        json!(["registrar:accepted_regs = 1", "usrloc:registered_users = 2"])
    );
    let m = conn.call("system.listMethods", json!([]));
    let m: BTreeSet<&str> = m["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for name in [
        "ul.dump",
        "ul.dump_page",
        "ul.lookup",
        "ul.rm",
        "ul.rm_contact",
        "ul.add",
        "ul.flush",
        "stats.get_statistics",
        "stats.reset_statistics",
        "core.version",
        "core.uptime",
        "system.listMethods",
    ] {
        assert!(m.contains(name), "{name} not in {m:?}");
    }
    let brief = conn.call("ul.dump", json!(["brief"]));
    assert_eq!(
        aor_entries(&brief["result"]),
        &vec![json!({"AoR": "alice"}), json!({"AoR": "dave"})]
    );
    // `ul.dump_page` (kamrs extension) walks the same AoRs, one per page
    // here, each the same object as in `ul.dump`.
    let full = conn.call("ul.dump", json!([]));
    let mut paged = Vec::new();
    let mut cursor = json!("");
    for _ in 0..10 {
        let p = conn.call("ul.dump_page", json!([cursor, 1]));
        let p = &p["result"];
        assert_eq!(keys(p), BTreeSet::from(["Next", "AoRs"]), "{p}");
        paged.extend(p["AoRs"].as_array().unwrap().iter().cloned());
        if p["Next"].is_null() {
            break;
        }
        cursor = p["Next"].clone();
    }
    assert_eq!(&paged, aor_entries(&full["result"]));
    let p = conn.call("ul.dump_page", json!(["", 10000, "brief"]));
    assert_eq!(
        p["result"],
        json!({"Next": null, "AoRs": [{"AoR": "alice"}, {"AoR": "dave"}]})
    );
    let p = conn.call("ul.dump_page", json!(["alice", 1]));
    assert_eq!(p["result"]["Next"], "dave");
    assert_eq!(p["result"]["AoRs"][0]["Info"]["AoR"], "dave");
    let e = conn.call("ul.dump_page", json!(["", 0]));
    assert_eq!(e["error"]["code"], -32602, "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("argument 2 `limit`"), "{msg}");
    // A batch.
    let resp = conn.post(
        br#"[{"jsonrpc":"2.0","method":"core.version","id":1},{"jsonrpc":"2.0","method":"ul.rm","params":["location","dave"],"id":2}]"#,
    );
    let batch = resp.json();
    assert_eq!(batch.as_array().map(Vec::len), Some(2), "{batch}");
    assert_eq!(
        conn.call("ul.lookup", json!(["location", "dave"]))["error"]["code"],
        404
    );
}

#[test]
fn malformed_json_gets_a_parse_error_and_the_next_request_is_served() {
    let k = CtlKamrs::start("", "");
    let mut conn = HttpConn::unix(&k.socket);
    for garbage in [
        &b"{\"jsonrpc\":\"2.0\",\"method\":"[..],
        b"\xff\xfe",
        b"[1,2",
        b"ul.dump",
    ] {
        let resp = conn.post(garbage);
        let v = resp.json();
        assert_eq!(v["error"]["code"], -32700, "{v}");
        assert_eq!(v["id"], Value::Null, "{v}");
        // The same connection goes on.
        let ok = conn.call("core.version", json!([]));
        assert!(ok["result"].as_str().unwrap().starts_with("kamrs "), "{ok}");
    }
    // Not a request object at all.
    let v = conn.post(br#"{"foo": 1}"#).json();
    assert!(v["error"]["code"].is_i64(), "{v}");
    assert!(conn.call("core.uptime", json!([]))["result"]["uptime"].is_u64());
}

// ----------------------------------------------------------- security

#[test]
fn the_control_socket_is_0600_and_removed_on_stop() {
    let mut k = CtlKamrs::start("", "");
    let mode = std::fs::metadata(&k.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    k.kamrs.signal(libc::SIGTERM);
    let status = k
        .kamrs
        .wait_exit(Duration::from_secs(5))
        .expect("kamrs stops");
    assert!(status.success(), "{status:?}");
    assert!(!k.socket.exists(), "socket left behind");
}

/// Root only: runs kamrsctl as `nobody` against the socket.
#[test]
fn other_users_cannot_use_the_control_socket() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run a client as another user");
        return;
    }
    const NOBODY: u32 = 65534;
    let k = CtlKamrs::start("", "");
    std::fs::set_permissions(k.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Mode 0600: the kernel refuses the connect.
    let run = kamrsctl_as(&["--ctl", &k.ctl, "core.version"], &[], Some(NOBODY));
    assert_eq!(run.code(), Some(3), "{run:?}");
    assert!(run.stderr.contains("permission denied"), "{run:?}");
    // Even with the file opened up, the peer credential check refuses.
    std::fs::set_permissions(&k.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let run = kamrsctl_as(&["--ctl", &k.ctl, "core.version"], &[], Some(NOBODY));
    assert_eq!(run.code(), Some(3), "{run:?}");
    assert!(run.stderr.contains("closed the connection"), "{run:?}");
    assert!(
        k.kamrs
            .log_when(|l| l.contains("uid 65534 refused"))
            .contains("uid 65534 refused"),
        "{}",
        k.kamrs.stderr()
    );
    // Root still gets in.
    assert!(k.ctl_ok(&["core.version"]).starts_with("kamrs "));
}

#[test]
fn http_beyond_loopback_without_a_token_refuses_to_start() {
    let dir = TempDir::new("ctl-open");
    let cfg = dir.path().join("kamrs.toml");
    std::fs::write(
        &cfg,
        "listen = [\"udp:127.0.0.1:0\"]\n[ctl]\nlisten = \"http://0.0.0.0:5065\"\n",
    )
    .unwrap();
    let out = run_kamrs(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("ctl.listen"), "{}", out.stderr);
    assert!(out.stderr.contains("token_file"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    // The same through the flag.
    let out = run_kamrs(&["--listen", "udp:127.0.0.1:0", "--ctl", "http://[::]:5065"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("token_file"), "{}", out.stderr);
}

fn token_file(dir: &TempDir, token: &str) -> String {
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

#[test]
fn http_with_a_token_refuses_wrong_or_missing_tokens_with_401() {
    const TOKEN: &str = "s3cr3t-0123456789abcdef";
    let dir = TempDir::new("ctl-token");
    let token_path = token_file(&dir, TOKEN);
    // Any address, given a token: 0.0.0.0, reached here through loopback.
    let k = Kamrs::start(&format!(
        "[ctl]\nlisten = \"http://0.0.0.0:0\"\ntoken_file = \"{token_path}\"\n"
    ));
    let addr = http_ctl_addr(&k);
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let body = br#"{"jsonrpc":"2.0","method":"core.version","id":1}"#;

    let mut conn = HttpConn::tcp(local);
    let resp = conn.post(body);
    assert_eq!(resp.status, 401, "{resp:?}");
    assert!(
        resp.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")),
        "{resp:?}"
    );
    for wrong in [
        "Bearer nope",
        &format!("Bearer {TOKEN}x"),
        &format!("Basic {TOKEN}"),
    ] {
        let mut conn = HttpConn::tcp(local);
        conn.auth = Some(wrong.to_owned());
        assert_eq!(conn.post(body).status, 401, "{wrong}");
    }
    let mut conn = HttpConn::tcp(local);
    conn.auth = Some(format!("Bearer {TOKEN}"));
    let v = conn.call("core.version", json!([]));
    assert!(v["result"].as_str().unwrap().starts_with("kamrs "), "{v}");

    // kamrsctl: wrong token → exit 3 with what to do; right one works.
    let endpoint = format!("http://{local}");
    let run = kamrsctl(
        &["--ctl", &endpoint, "--token", "wrong-token", "core.version"],
        &[],
    );
    assert_eq!(run.code(), Some(3), "{run:?}");
    assert!(
        run.stderr.contains("401") && run.stderr.contains("KAMRSCTL_TOKEN"),
        "{run:?}"
    );
    let run = kamrsctl(&["--ctl", &endpoint, "core.version"], &[]);
    assert_eq!(run.code(), Some(3), "{run:?}");
    let run = kamrsctl(
        &["core.version"],
        &[("KAMRSCTL_CTL", &endpoint), ("KAMRSCTL_TOKEN", TOKEN)],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with("kamrs "), "{run:?}");
}

#[test]
fn loopback_http_without_a_token_works_for_local_names_only() {
    let k = Kamrs::start("[ctl]\nlisten = \"http://127.0.0.1:0\"\n");
    let addr = http_ctl_addr(&k);
    let mut conn = HttpConn::tcp(addr);
    assert!(conn.call("core.version", json!([]))["result"].is_string());
    // A page the admin's browser loads cannot reach it through a name it
    // points at 127.0.0.1 (DNS rebinding).
    let mut conn = HttpConn::tcp(addr);
    conn.host = format!("evil.example.com:{}", addr.port());
    let resp = conn.post(br#"{"jsonrpc":"2.0","method":"ul.dump","id":1}"#);
    assert_eq!(resp.status, 403, "{resp:?}");
    let run = kamrsctl(&["--ctl", &format!("http://{addr}"), "ul.dump"], &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
}

#[test]
fn oversize_requests_are_refused_and_the_daemon_goes_on() {
    let k = CtlKamrs::start("", "max_request_size = 2048");
    let mut conn = HttpConn::unix(&k.socket);
    let big = "x".repeat(4000);
    let body =
        json!({"jsonrpc": "2.0", "method": "ul.lookup", "params": ["location", big], "id": 1});
    let resp = conn.post(body.to_string().as_bytes());
    assert_eq!(resp.status, 413, "{resp:?}");
    assert_eq!(resp.json()["error"]["code"], -32007, "{resp:?}");
    // The daemon serves the next request (a new connection: after a 413
    // the server may close this one).
    let v = k.rpc("core.version", json!([]));
    assert!(v["result"].is_string(), "{v}");
    // kamrsctl's WebSocket is limited the same way.
    let long_contact = format!("sip:{}@192.0.2.1", "a".repeat(4000));
    let run = k.ctl(&["ul.add", "alice", &long_contact]);
    assert_eq!(run.code(), Some(4), "{run:?}");
    assert!(run.stderr.contains("max_request_size"), "{run:?}");
    assert!(k.ctl_ok(&["core.version"]).starts_with("kamrs "));
}

#[test]
fn batches_and_connections_are_limited() {
    let k = CtlKamrs::start("", "max_batch = 2\nmax_connections = 2");
    let call = r#"{"jsonrpc":"2.0","method":"core.version","id":1}"#;
    let mut conn = HttpConn::unix(&k.socket);
    let two = conn.post(format!("[{call},{call}]").as_bytes()).json();
    assert_eq!(two.as_array().map(Vec::len), Some(2), "{two}");
    let three = conn
        .post(format!("[{call},{call},{call}]").as_bytes())
        .json();
    assert!(three["error"]["code"].is_i64(), "{three}");
    assert!(
        three["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("batch"),
        "{three}"
    );
    drop(conn);

    // Two idle connections take both slots; the third is closed at once.
    let wait_slots_free = || {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let mut c = HttpConn::unix(&k.socket);
            if c.try_post(call.as_bytes(), "application/json").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("control connections never freed");
    };
    wait_slots_free();
    // Each held connection finishes one exchange (and stays open, HTTP
    // keep-alive): then the daemon has surely accepted both. A slot may
    // still be held a moment by the probe that just closed: retry.
    let hold = || {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut c = HttpConn::unix(&k.socket);
            if c.try_post(call.as_bytes(), "application/json")
                .is_ok_and(|r| r.status == 200)
            {
                return c;
            }
            assert!(Instant::now() < deadline, "no control slot came free");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let held: Vec<HttpConn> = (0..2).map(|_| hold()).collect();
    let mut third = UnixStream::connect(&k.socket).unwrap();
    third.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    let mut buf = [0u8; 16];
    let n = third.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the third connection should be closed");
    assert!(
        k.kamrs
            .log_when(|l| l.contains("max_connections reached"))
            .contains("max_connections reached"),
        "{}",
        k.kamrs.stderr()
    );
    drop(held);
    // The slots come back.
    wait_slots_free();
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
    let dir = TempDir::new("ctl-stale");
    let socket = dir.path().join("ctl.sock");
    let extra = format!("[ctl]\nlisten = \"unix:{}\"\n", socket.display());
    let mut first = Kamrs::start(&extra);
    let ctl = format!("unix:{}", socket.display());

    // A second daemon must not steal a live socket.
    let cfg = dir.path().join("second.toml");
    std::fs::write(&cfg, format!("listen = [\"udp:127.0.0.1:0\"]\n{extra}")).unwrap();
    let out = run_kamrs(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("belongs to another running kamrs"),
        "{}",
        out.stderr
    );
    let run = kamrsctl(&["--ctl", &ctl, "core.version"], &[]);
    assert_eq!(run.code(), Some(0), "the first still answers: {run:?}");

    // A crash leaves the file behind…
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(5)).expect("killed");
    assert!(socket.exists());
    let run = kamrsctl(&["--ctl", &ctl, "core.version"], &[]);
    assert_eq!(run.code(), Some(3), "{run:?}");
    assert!(run.stderr.contains("nothing listens on it"), "{run:?}");
    // …which the next start replaces.
    let _second = Kamrs::start(&extra);
    let run = kamrsctl(&["--ctl", &ctl, "core.version"], &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");

    // Not a socket: never deleted.
    let other = dir.path().join("file.sock");
    std::fs::write(&other, "precious").unwrap();
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"udp:127.0.0.1:0\"]\n[ctl]\nlisten = \"unix:{}\"\n",
            other.display()
        ),
    )
    .unwrap();
    let out = run_kamrs(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("not a socket"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "precious");
}

// --------------------------------------------------------- exit codes

#[test]
fn kamrsctl_exit_codes_and_one_line_messages() {
    let k = CtlKamrs::start("", "");
    // 1: not found.
    let run = k.ctl(&["ul.lookup", "ghost"]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    // 2: usage, from clap or from the daemon's argument check.
    for args in [
        vec!["ul.lookup"],
        vec!["ul.frob"],
        vec!["ul.add", "alice", "sip:a@192.0.2.1", "--q", "3"],
        vec!["ul.add", "alice", "not-a-uri"],
    ] {
        let run = k.ctl(&args);
        assert_eq!(run.code(), Some(2), "{args:?}: {run:?}");
    }
    let run = k.ctl(&["ul.add", "alice", "sip:a@192.0.2.1", "--q", "3"]);
    assert!(run.stderr.starts_with("kamrsctl: --q \"3\": "), "{run:?}");
    let run = kamrsctl(&["--ctl", "/run/x.sock", "ul.dump"], &[]);
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("unix:/run/x.sock"), "{run:?}");
    // 3: nobody there.
    let missing = k.dir.path().join("missing.sock");
    let run = kamrsctl(
        &["--ctl", &format!("unix:{}", missing.display()), "ul.dump"],
        &[],
    );
    assert_eq!(run.code(), Some(3), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.starts_with(&format!(
            "kamrsctl: cannot reach kamrs control socket {}: ",
            missing.display()
        )),
        "{run:?}"
    );
    assert!(run.stderr.contains("is kamrs running?"), "{run:?}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let run = kamrsctl(&["--ctl", &format!("http://{addr}"), "ul.dump"], &[]);
    assert_eq!(run.code(), Some(3), "{run:?}");
}

// ---------------------------------------------------------- big tables

/// 100,000 AoRs registered over UDP; `kamrsctl ul.dump --json` returns all
/// of them, and `ul.lookup` answers in under 50 ms while REGISTERs keep
/// coming. Timings are printed as `bench:` lines (`--nocapture`);
/// `bench/ctl-dump.sh` runs this test on release builds
/// (`KAMRS_BENCH_AORS` changes the count).
#[test]
fn ul_dump_of_100k_aors_and_fast_lookups_under_sip_load() {
    let aors: usize = std::env::var("KAMRS_BENCH_AORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let k = CtlKamrs::start("", "");
    let udp = k.udp();
    let sock = udp_client(udp);
    let t = Instant::now();
    let sent = register_many(&sock, "u", 0..aors, 256, 3600, 1);
    eprintln!(
        "bench: registered {aors} AoRs over UDP ({sent} REGISTERs) in {:?}",
        t.elapsed()
    );

    // The daemon's side: one raw call, the answer read whole.
    let mut conn = HttpConn::unix(&k.socket);
    let t = Instant::now();
    let resp = conn.post(br#"{"jsonrpc":"2.0","method":"ul.dump","id":1}"#);
    let raw_took = t.elapsed();
    assert_eq!(resp.status, 200);
    eprintln!(
        "bench: ul.dump raw JSON-RPC call: {raw_took:?} for {:.1} MB",
        resp.body.len() as f64 / 1e6
    );
    let text = String::from_utf8(resp.body).expect("utf-8");
    assert_eq!(text.matches("{\"Info\":{\"AoR\":\"u").count(), aors);
    drop(text);

    // The same table over `ul.dump_page`, as kamrsctl reads it.
    let t = Instant::now();
    let (mut paged, mut pages, mut cursor) = (0, 0, json!(""));
    loop {
        let p = conn.call("ul.dump_page", json!([cursor, 5000]));
        let p = &p["result"];
        paged += p["AoRs"].as_array().map_or(0, Vec::len);
        pages += 1;
        if p["Next"].is_null() {
            break;
        }
        cursor = p["Next"].clone();
    }
    assert_eq!(paged, aors);
    eprintln!(
        "bench: ul.dump_page raw JSON-RPC calls: {:?} for {pages} pages of 5000",
        t.elapsed()
    );

    // What an admin runs.
    let run = k.ctl(&["--json", "ul.dump"]);
    assert_eq!(run.code(), Some(0), "stderr: {}", run.stderr);
    eprintln!(
        "bench: kamrsctl --json ul.dump: {:?} for {:.1} MB of output",
        run.took,
        run.stdout.len() as f64 / 1e6
    );
    assert_eq!(run.stdout.matches("\"AoR\": \"u").count(), aors);
    assert!(run.stdout.contains(&format!("\"Records\": {aors}")));
    drop(run);

    // Lookups while a REGISTER loop (bounded: at most 30 s) refreshes AoRs.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        let refresh = aors.min(2_000);
        std::thread::spawn(move || {
            let sock = udp_client(udp);
            let until = Instant::now() + Duration::from_secs(30);
            let mut cseq = 2;
            'passes: loop {
                // One pass refreshes every AoR once (a higher CSeq each time).
                for start in (0..refresh).step_by(64) {
                    if stop.load(Ordering::Relaxed) || Instant::now() >= until {
                        break 'passes;
                    }
                    let end = (start + 64).min(refresh);
                    let n = register_many(&sock, "u", start..end, 64, 3600, cseq);
                    sent.fetch_add(n, Ordering::Relaxed);
                }
                cseq += 1;
            }
        })
    };
    let started = Instant::now();
    while sent.load(Ordering::Relaxed) == 0 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = sent.load(Ordering::Relaxed);
    let mut raw = Vec::new();
    let mut cli = Vec::new();
    for i in 0..10 {
        let aor = format!("u{}", (i * 9_973) % aors);
        let t = Instant::now();
        let v = conn.call("ul.lookup", json!(["location", aor]));
        raw.push(t.elapsed());
        assert_eq!(v["result"]["AoR"], aor.as_str(), "{v}");
        let run = k.ctl(&["ul.lookup", &aor]);
        assert_eq!(run.code(), Some(0), "{run:?}");
        cli.push(run.took);
    }
    let during = sent.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");
    raw.sort();
    cli.sort();
    eprintln!(
        "bench: ul.lookup while {during} REGISTERs were sent: raw call max {:?} (median {:?}), kamrsctl max {:?} (median {:?})",
        raw[raw.len() - 1],
        raw[raw.len() / 2],
        cli[cli.len() - 1],
        cli[cli.len() / 2]
    );
    assert!(
        during > 0,
        "the REGISTER loop did not run during the lookups"
    );
    let slowest = raw[raw.len() - 1];
    assert!(
        slowest < Duration::from_millis(50),
        "raw ul.lookup took {slowest:?}: {raw:?}"
    );
    // A whole kamrsctl process (start, connect, call): the median, since
    // one process start can hit a scheduling hiccup on a loaded machine.
    let median = cli[cli.len() / 2];
    assert!(
        median < Duration::from_millis(50),
        "kamrsctl ul.lookup median {median:?}: {cli:?}"
    );
}
