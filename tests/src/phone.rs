//! A baresip phone driven over its `ctrl_tcp` module (JSON in netstrings:
//! commands in, events out), for calls between two real softphones.
//! [`crate::Baresip`] only registers; this one dials, answers by itself
//! (`answermode=auto`) and hangs up, with the modules a call needs: a
//! codec (g711) and an audio device that is none (`aubridge`).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

pub struct Phone {
    pub user: String,
    child: Child,
    ctrl: TcpStream,
    /// Bytes read from `ctrl` not yet parsed.
    buf: Vec<u8>,
    /// Every event type seen so far, in order.
    pub events: Vec<String>,
    dir: TempDir,
}

/// A port `p` with `p` (UDP and TCP) and `p + 1` (baresip's TLS) free.
fn free_sip_port() -> u16 {
    loop {
        let p = crate::sipp::free_port();
        if p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

impl Phone {
    /// baresip registering `user` with the registrar at `registrar` (UDP),
    /// answering calls by itself; connected to its control port.
    pub fn start(user: &str, registrar: SocketAddr) -> Phone {
        let dir = TempDir::new("phone");
        let sip_port = free_sip_port();
        let ctrl_port = crate::sipp::free_port();
        std::fs::write(
            dir.path().join("config"),
            format!(
                "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
                 module_path /usr/lib/baresip/modules\n\
                 module g711.so\nmodule aubridge.so\nmodule ctrl_tcp.so\nmodule menu.so\n\
                 module_tmp uuid.so\nmodule_tmp account.so\n\
                 audio_source aubridge,{user}\naudio_player aubridge,{user}\n\
                 ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n"
            ),
        )
        .expect("write the baresip config");
        std::fs::write(
            dir.path().join("accounts"),
            format!("<sip:{user}@{registrar};transport=udp>;regint=600;answermode=auto\n"),
        )
        .expect("write the baresip account");
        let log = std::fs::File::create(dir.path().join("baresip.log")).expect("baresip log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .args(["-t", "90"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("start baresip");
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            match TcpStream::connect(("127.0.0.1", ctrl_port)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!(
                    "baresip's ctrl_tcp on {ctrl_port}: {e}\n{}",
                    std::fs::read_to_string(dir.path().join("baresip.log")).unwrap_or_default()
                ),
            }
        };
        Phone {
            user: user.to_owned(),
            child,
            ctrl,
            buf: Vec::new(),
            events: Vec::new(),
            dir,
        }
    }

    /// Sends a ctrl_tcp command (`dial`, `hangup`, …) with `params`.
    pub fn command(&mut self, command: &str, params: &str) {
        let body =
            serde_json::json!({"command": command, "params": params, "token": command}).to_string();
        let msg = format!("{}:{body},", body.len());
        self.ctrl
            .write_all(msg.as_bytes())
            .unwrap_or_else(|e| panic!("{}: ctrl_tcp write: {e}", self.user));
    }

    /// Waits up to `within` for an event of type `kind` (REGISTER_OK,
    /// CALL_ESTABLISHED, CALL_CLOSED…), seen now or before.
    pub fn wait_event(&mut self, kind: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.events.iter().any(|e| e == kind) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: no {kind} within {within:?}; events {:?}\n{}",
                self.user,
                self.events,
                self.log()
            );
            self.read_some(left.min(Duration::from_millis(200)));
        }
    }

    fn read_some(&mut self, timeout: Duration) {
        self.ctrl
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("set_read_timeout");
        let mut chunk = [0u8; 8192];
        match self.ctrl.read(&mut chunk) {
            Ok(0) => panic!("{}: baresip closed ctrl_tcp\n{}", self.user, self.log()),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{}: ctrl_tcp read: {e}", self.user),
        }
        // Netstrings: LEN ":" JSON ",".
        while let Some(colon) = self.buf.iter().position(|&b| b == b':') {
            let Some(len) = std::str::from_utf8(&self.buf[..colon])
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                panic!(
                    "{}: bad netstring {:?}",
                    self.user,
                    String::from_utf8_lossy(&self.buf)
                );
            };
            if self.buf.len() < colon + 1 + len + 1 {
                break;
            }
            let body = self.buf[colon + 1..colon + 1 + len].to_vec();
            self.buf.drain(..colon + 1 + len + 1);
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                if let Some(t) = v.get("type").and_then(|t| t.as_str()) {
                    self.events.push(t.to_owned());
                }
            }
        }
    }

    /// baresip's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        // Only our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
