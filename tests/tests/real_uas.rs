//! SIP user agents that nobody here wrote register with kamrs: SIPp (Debian
//! `sip-tester`) with 1,000 users, and baresip. Skipped with a printed
//! reason when the tool is missing, except under CI (`CI=true`), where a
//! missing tool is a failure: `.ci/run` installs them.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kamrs_tests::ctl::kamrsctl;
use kamrs_tests::Baresip;
use kamrs_tests::{free_udp_port, have, udp_client, udp_exchange, unique, Kamrs, TempDir};

/// `kamrsctl --json ARGS` against this daemon's control socket.
fn ctl_json(k: &Kamrs, args: &[&str]) -> serde_json::Value {
    let socket = format!(
        "unix:{}",
        k.ctl.as_ref().expect("harness control socket").display()
    );
    let mut all = vec!["--ctl", &socket, "--json"];
    all.extend_from_slice(args);
    let run = kamrsctl(&all, &[]);
    assert_eq!(run.code(), Some(0), "kamrsctl {args:?}: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// A Kamailio statistic, as `stats.get_statistics` lists it (`kamrsctl
/// call` prints its strings; `--json stats` is an object).
fn statistic(k: &Kamrs, name: &str) -> u64 {
    let v = ctl_json(k, &["call", "stats.get_statistics", name]);
    let text = v.to_string();
    let needle = format!("{name} = ");
    let at = text
        .find(&needle)
        .unwrap_or_else(|| panic!("{name} not in {text}"))
        + needle.len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// Bindings of `user` by a SIP query from our own socket.
fn query(sock: &UdpSocket, user: &str) -> Vec<String> {
    let port = sock.local_addr().unwrap().port();
    let msg = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
         From: <sip:{user}@example.com>;tag={t}\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: {c}@query\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
        b = unique(),
        t = unique(),
        c = unique()
    );
    let r = udp_exchange(sock, msg);
    assert_eq!(r.status, 200, "{}", r.raw);
    r.values("Contact")
}

/// Runs the register scenario for `calls` users `{prefix}1…{prefix}N`;
/// panics unless every REGISTER got its 200.
fn run_sipp(dir: &Path, kamrs: &Kamrs, port: u16, prefix: &str, calls: usize, base_cseq: u32) {
    let out = Command::new("sipp")
        .arg(kamrs.udp().to_string())
        .args([
            "-sf",
            concat!(env!("CARGO_MANIFEST_DIR"), "/sipp/register.xml"),
        ])
        .args(["-key", "user_prefix", prefix])
        .args(["-cid_str", &format!("{prefix}-%u@sipp")])
        .args(["-base_cseq", &base_cseq.to_string()])
        .args(["-m", &calls.to_string(), "-r", "500", "-l", "200"])
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-timeout", "60s", "-timeout_error", "-nostdin"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run sipp");
    assert!(
        out.status.success(),
        "sipp failed ({}): not every REGISTER got its 200\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sipp_registers_and_refreshes_1000_users() {
    if !have("sipp") {
        return;
    }
    const USERS: usize = 1000;
    let k = Kamrs::start("");
    let dir = TempDir::new("sipp");
    let prefix = format!("sipp{}u", unique());
    // The same local port both times, so the Contacts are the same.
    let port = free_udp_port();
    run_sipp(dir.path(), &k, port, &prefix, USERS, 1);
    // Same Call-IDs and Contacts, CSeq 2: refreshes of the same bindings.
    run_sipp(dir.path(), &k, port, &prefix, USERS, 2);

    // Every user holds exactly its one binding: 1,000 AoRs.
    let sock = udp_client(k.udp());
    for i in 1..=USERS {
        let user = format!("{prefix}{i}");
        let contacts = query(&sock, &user);
        assert_eq!(contacts.len(), 1, "{user}: {contacts:?}");
        assert!(
            contacts[0].contains(&format!("<sip:{user}@127.0.0.1:")),
            "{contacts:?}"
        );
    }
    assert!(query(&sock, &format!("{prefix}{}", USERS + 1)).is_empty());
    // And the table holds exactly those: 1,000 AoRs, 1,000 contacts.
    assert_eq!(statistic(&k, "usrloc:registered_users"), USERS as u64);
    assert_eq!(statistic(&k, "usrloc:location_contacts"), USERS as u64);
}

#[test]
fn baresip_registers() {
    if !have("baresip") {
        return;
    }
    let k = Kamrs::start("");
    let user = format!("bs{}", unique());
    let sip_port = free_udp_port();
    let mut phone = Baresip::start(
        sip_port,
        &format!("<sip:{user}@{};transport=udp>;regint=600", k.udp()),
    );
    let sock = udp_client(k.udp());
    let deadline = Instant::now() + Duration::from_secs(15);
    let contacts = loop {
        let c = query(&sock, &user);
        if !c.is_empty() || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    phone.stop();
    assert_eq!(contacts.len(), 1, "baresip's binding: {contacts:?}");
    assert!(
        contacts[0].contains(&format!("127.0.0.1:{sip_port}")),
        "{contacts:?}"
    );
    assert!(contacts[0].contains("+sip.instance="), "{contacts:?}");
    // The binding carries baresip's User-Agent, as ul.lookup shows it.
    let v = ctl_json(&k, &["ul.lookup", &user]);
    let ua = v["Contacts"][0]["Contact"]["User-Agent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(ua.starts_with("baresip"), "User-Agent {ua:?} in {v}");
}
