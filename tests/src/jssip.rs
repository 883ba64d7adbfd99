//! A real JsSIP user agent under Node (tests/web/jssip.mjs), driven by
//! the WebSocket end-to-end tests (tests/websocket.rs): one JSON event a
//! line on its stdout, one command a line on its stdin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::node::{web_script, NodeScript};

/// How long JsSIP may take for one step (connect and register, or
/// unregister).
pub const NODE_STEP: Duration = Duration::from_secs(20);

/// Whether node and tests/web/node_modules (jssip, ws) are there; under
/// CI=true their absence fails the test.
pub fn jssip_ready() -> Option<PathBuf> {
    web_script("jssip.mjs", &["jssip", "ws"])
}

/// tests/web/jssip.mjs running; killed when dropped.
pub struct JsSip {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub lines: mpsc::Receiver<String>,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl JsSip {
    pub fn start(script: &Path, url: &str, aor: &str, ca: Option<&Path>) -> JsSip {
        let mut command = Command::new("node");
        command.arg(script).arg(url).arg(aor);
        if let Some(ca) = ca {
            command.arg(ca);
        }
        let NodeScript {
            child,
            stdin,
            lines,
            stderr,
        } = NodeScript::spawn(command);
        JsSip {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// Reads events until `event`, within [`NODE_STEP`]; panics on a
    /// failure event, an exit or the timeout, with what node wrote.
    pub fn wait_for(&mut self, event: &str) -> Value {
        let deadline = Instant::now() + NODE_STEP;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    std::thread::sleep(Duration::from_millis(100));
                    panic!(
                        "no {event:?} from jssip.mjs ({e}); saw {seen:?}; stderr:\n{}",
                        self.stderr.lock().unwrap()
                    );
                }
            };
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("jssip.mjs printed {line:?}: {e}"));
            if v["event"] == event {
                return v;
            }
            if ["registrationFailed", "error", "timeout"]
                .contains(&v["event"].as_str().unwrap_or(""))
            {
                panic!("jssip.mjs, waiting for {event:?}: {v}; before: {seen:?}");
            }
            seen.push(v);
        }
    }

    pub fn command(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{command}").expect("write to jssip.mjs");
        stdin.flush().expect("flush");
    }

    /// SIGKILL: node gets no chance to unregister; the kernel closes its
    /// socket.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for JsSip {
    fn drop(&mut self) {
        self.stdin.take();
        self.kill();
    }
}
