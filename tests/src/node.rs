//! Node scripts of tests/web (the JsSIP phone, the web view's browser
//! driver): whether they can run here, and starting one with its output
//! read on threads, so it can never block on a full pipe.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};

use crate::have;

/// tests/web/SCRIPT when node and the npm `packages` are installed; None
/// (a test then skips with the reason printed) when not, except under
/// CI=true, where `.ci/run` installs them and their absence fails.
pub fn web_script(script: &str, packages: &[&str]) -> Option<PathBuf> {
    if !have("node") {
        return None;
    }
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let installed = packages
        .iter()
        .all(|p| web.join(format!("node_modules/{p}/package.json")).exists());
    if !installed {
        let what = packages.join("/");
        let fix = format!("npm ci --prefix {}", web.display());
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{what} not installed, and CI=true: .ci/run must run `{fix}`");
        }
        eprintln!("SKIPPED: {what} not installed: run `{fix}`");
        return None;
    }
    Some(web.join(script))
}

/// A running node script: its stdin, its stdout a line at a time, and all
/// it wrote to stderr so far (for failure messages).
pub struct NodeScript {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub lines: mpsc::Receiver<String>,
    pub stderr: Arc<Mutex<String>>,
}

impl NodeScript {
    /// Spawns `command` with its three streams piped.
    pub fn spawn(mut command: Command) -> NodeScript {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let keep = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            keep.lock().unwrap_or_else(|e| e.into_inner()).push_str(&s);
        });
        NodeScript {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }
}
