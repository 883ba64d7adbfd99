//! `GET /metrics` end to end: the statistics in the Prometheus text
//! format, accepted by Debian's `promtool check metrics`, scraped by a
//! real Prometheus server that then answers a query with the number of
//! bindings kamrs holds; and the token rules of the control API apply.
//! Every wait is a bounded poll.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kamrs_tests::ctl::{http_ctl_addr, register_many};
use kamrs_tests::{answer_options, have, next_options, udp_client, Kamrs, TempDir};

/// A GET of `path` with optional bearer `token`: (status, body).
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // The body may come chunked; the series lines are whole either way.
    (status, body.to_owned())
}

fn series(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn metrics_are_prometheus_text_that_promtool_accepts() {
    let k = Kamrs::start("[ctl]\nlisten = \"http://127.0.0.1:0\"\n");
    let addr = http_ctl_addr(&k);
    let sock = udp_client(k.udp());
    register_many(&sock, "metric", 0..3, 3, 600, 1);
    let (status, body) = get(addr, "/metrics", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        series(&body, "kamrs_usrloc_location_contacts"),
        Some(3.0),
        "{body}"
    );
    assert!(
        series(&body, "kamrs_core_rcv_requests_total").is_some_and(|n| n >= 3.0),
        "{body}"
    );
    assert!(
        body.contains("# TYPE kamrs_registrar_accepted_regs_total counter"),
        "{body}"
    );
    // Only GET.
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "DELETE /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");

    if !have("promtool") {
        return;
    }
    // The exposition lines (a chunked body has chunk sizes between them).
    let clean: String = body
        .lines()
        .filter(|l| l.starts_with('#') || l.starts_with("kamrs_"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(clean.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics refused the output:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the series `name` with exactly `labels` (`{code="200"}`).
fn labelled(body: &str, name: &str, labels: &str) -> Option<f64> {
    series(body, &format!("{name}{labels}"))
}

#[test]
fn replies_by_code_and_the_histograms_follow_real_traffic() {
    let dir = TempDir::new("metrics-timing");
    let k = Kamrs::start(&format!(
        "ka_mode = 1\nka_interval = 1\n\
         [ctl]\nlisten = \"http://127.0.0.1:0\"\n\
         [store]\nbackend = \"sqlite\"\npath = \"{}\"\nmode = \"write-through\"\n",
        dir.path().join("location.db").display()
    ));
    let addr = http_ctl_addr(&k);
    let phone = udp_client(k.udp());
    register_many(&phone, "timed", 0..3, 3, 600, 1);
    // An INVITE gets the tutorial's 480.
    let port = phone.local_addr().unwrap().port();
    let invite = kamrs_tests::sip_request("INVITE", &kamrs_tests::unique(), 1, port, &[]);
    assert_eq!(kamrs_tests::udp_exchange(&phone, invite).status, 480);
    // The first keepalive ping, answered.
    let options = next_options(&phone, 10).expect("kamrs pings the phone");
    kamrs_tests::send_udp(&phone, answer_options(&options));
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = get(addr, "/metrics", None);
        assert_eq!(status, 200, "{body}");
        if series(&body, "kamrs_keepalive_roundtrip_seconds_count").is_some_and(|n| n >= 1.0) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the answered ping is not in the round-trip histogram: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let code = |c: &str| {
        labelled(
            &body,
            "kamrs_sl_replies_total",
            &format!("{{code=\"{c}\"}}"),
        )
    };
    assert_eq!(code("200"), Some(3.0), "{body}");
    assert_eq!(code("480"), Some(1.0), "{body}");
    assert_eq!(code("500"), None, "{body}");
    // Every REGISTER answered is in the handling histogram, and in
    // write-through mode each waited for a commit.
    assert_eq!(
        series(&body, "kamrs_registrar_register_duration_seconds_count"),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        labelled(
            &body,
            "kamrs_registrar_register_duration_seconds_bucket",
            "{le=\"+Inf\"}"
        ),
        Some(3.0),
        "{body}"
    );
    assert!(
        series(&body, "kamrs_usrloc_store_commit_duration_seconds_count").is_some_and(|n| n >= 1.0),
        "{body}"
    );
    assert!(
        series(&body, "kamrs_registrar_register_duration_seconds_sum").is_some_and(|s| s > 0.0),
        "{body}"
    );
}

#[test]
fn with_a_token_metrics_need_it_too() {
    let dir = TempDir::new("metrics-token");
    let token_path = dir.path().join("token");
    let token = "s3cret-metrics-token-0123456789abcdef";
    std::fs::write(&token_path, format!("{token}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let k = Kamrs::start(&format!(
        "[ctl]\nlisten = \"http://127.0.0.1:0\"\ntoken_file = \"{}\"\n",
        token_path.display()
    ));
    let addr = http_ctl_addr(&k);
    assert_eq!(get(addr, "/metrics", None).0, 401);
    assert_eq!(
        get(addr, "/metrics", Some("wrong-token-wrong-token-wrong")).0,
        401
    );
    let (status, body) = get(addr, "/metrics", Some(token));
    assert_eq!(status, 200, "{body}");
    assert!(
        series(&body, "kamrs_usrloc_location_contacts").is_some(),
        "{body}"
    );
}

/// Stops the Prometheus server when the test ends, however it ends.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_kamrs_and_answers_a_query() {
    if !have("prometheus") {
        return;
    }
    let k = Kamrs::start("[ctl]\nlisten = \"http://127.0.0.1:0\"\n");
    let ctl = http_ctl_addr(&k);
    let sock = udp_client(k.udp());
    register_many(&sock, "scraped", 0..5, 5, 600, 1);

    let dir = TempDir::new("prometheus");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: kamrs\n    static_configs:\n      - targets: ['{ctl}']\n"
        ),
    )
    .unwrap();
    let web = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let query = "/api/v1/query?query=kamrs_usrloc_location_contacts";
    loop {
        if let Ok(s) = TcpStream::connect_timeout(&web, Duration::from_millis(500)) {
            drop(s);
            let (status, body) = get(web, query, None);
            if status == 200 && body.contains("\"kamrs_usrloc_location_contacts\"") {
                assert!(
                    body.contains("\"5\""),
                    "Prometheus has another value: {body}"
                );
                assert!(body.contains(&format!("\"instance\":\"{ctl}\"")), "{body}");
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not get kamrs's metrics within 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
