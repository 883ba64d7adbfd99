//! Which module of `kamrs/src` may use which (docs/design.md, "Which module
//! may use which"). Reads the sources as text: every `crate::MODULE` path
//! outside a comment is a use of MODULE. A new use that the table does not
//! allow fails here, naming the file and the line; the departures still to
//! be removed are listed in `DEPARTURES`, and one that is gone fails too,
//! so the list only shrinks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules that may use anything: nothing imports them but `main.rs`.
const FREE: &[&str] = &["config", "check"];

/// The top-level modules of `kamrs/src`, as `lib.rs` declares them: read
/// from there so that a new module is seen (and must be given a row) the
/// day it is added.
fn modules() -> Vec<String> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).expect("read src/lib.rs");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').trim().to_owned())
        .collect()
}

/// Leaf helpers any module may use (std only inside).
const LEAVES: &[&str] = &["util", "time"];

/// Who may use whom. Modules not named on the left (`config`, `check`,
/// `main.rs`, `lib.rs`) may use anything.
const ALLOWED: &[(&str, &[&str])] = &[
    ("net", &[]),
    ("util", &[]),
    ("time", &[]),
    ("log_limit", &[]),
    ("stats", &[]),
    ("timing", &[]),
    ("logging", &[]),
    ("datagram", &[]),
    ("peer", &[]),
    ("stun", &[]),
    ("tls", &["peer"]),
    ("flow", &["sip", "usrloc", "peer", "datagram"]),
    (
        "keepalive",
        &["sip", "usrloc", "peer", "flow", "datagram", "timing"],
    ),
    ("sip", &["net", "peer"]),
    ("usrloc", &["sip", "peer", "log_limit", "timing"]),
    ("store", &["usrloc", "peer", "log_limit", "timing"]),
    ("auth", &["sip", "net", "peer", "log_limit"]),
    ("pike", &["net"]),
    ("webhook", &["usrloc", "rpc", "stats", "log_limit"]),
    (
        "proxy",
        &["sip", "registrar", "usrloc", "auth", "flow", "peer"],
    ),
    (
        "state",
        &[
            "registrar",
            "usrloc",
            "auth",
            "pike",
            "stats",
            "flow",
            "keepalive",
            "tls",
            "proxy",
        ],
    ),
    (
        "registrar",
        &[
            "sip",
            "auth",
            "usrloc",
            "peer",
            "log_limit",
            "net",
            "timing",
        ],
    ),
    (
        "route",
        &[
            "sip",
            "registrar",
            "pike",
            "stats",
            "peer",
            "stun",
            "state",
            "proxy",
        ],
    ),
    (
        "transport",
        &[
            "route",
            "sip",
            "net",
            "stats",
            "peer",
            "log_limit",
            "pike",
            "flow",
            "datagram",
            "tls",
        ],
    ),
    (
        "rpc",
        &[
            "state",
            "registrar",
            "usrloc",
            "keepalive",
            "auth",
            "pike",
            "stats",
            "sip",
            "peer",
            "net",
            "log_limit",
            "logging",
            "timing",
            "tls",
            "proxy",
        ],
    ),
];

/// Uses the table does not allow yet, as (user, used), to be removed one
/// by one. Remove an entry here when its last use is gone.
const DEPARTURES: &[(&str, &str)] = &[];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of `kamrs/src` belongs to.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

/// Modules (of `modules`) used by `text` through `crate::NAME`, with the
/// line, outside `//` comments.
fn uses(text: &str, modules: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) {
                found.push((i + 1, name));
            }
        }
    }
    found
}

#[test]
fn every_module_has_a_row() {
    let modules = modules();
    assert!(modules.len() > 10, "no modules read from src/lib.rs");
    let missing: Vec<_> = modules
        .iter()
        .filter(|m| !FREE.contains(&m.as_str()) && !ALLOWED.iter().any(|(a, _)| a == m))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a row in ALLOWED here and in docs/design.md: {missing:?}"
    );
}

#[test]
fn modules_use_only_what_the_layering_allows() {
    let modules = modules();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(
        files.len() > 20,
        "sources not found under {}",
        src.display()
    );
    let mut bad = Vec::new();
    let mut seen_departures = BTreeSet::new();
    for file in &files {
        let Some(user) = module_of(&src, file) else {
            continue;
        };
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == user) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (line, used) in uses(&text, &modules) {
            if used == user || allowed.contains(&used.as_str()) || LEAVES.contains(&used.as_str()) {
                continue;
            }
            if DEPARTURES.contains(&(user.as_str(), used.as_str())) {
                seen_departures.insert((user.clone(), used.clone()));
                continue;
            }
            bad.push(format!(
                "{}:{line}: `{user}` uses `crate::{used}`",
                file.display()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "uses the layering (docs/design.md) does not allow:\n{}",
        bad.join("\n")
    );
    let gone: Vec<_> = DEPARTURES
        .iter()
        .filter(|(u, m)| !seen_departures.contains(&(u.to_string(), m.to_string())))
        .collect();
    assert!(
        gone.is_empty(),
        "departures no longer in the code; remove them from DEPARTURES here and from docs/design.md: {gone:?}"
    );
}

/// Names that must stay inside one module: usrloc alone knows a store
/// exists (docs/design.md §7), so the registrar never names the store's
/// modes or commits and the transports never the registrar's durability
/// handling; a store hands data out and never edits the table itself
/// (tests are exempt: their fixtures stand in for the other side).
#[test]
fn durability_names_stay_in_usrloc() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let forbidden: &[(&str, &[&str])] = &[
        (
            "registrar",
            &["StoreMode", "Commit", "commit_failed", "persist("],
        ),
        ("transport", &["commit_failed", "registrar()", "StoreError"]),
        ("store", &["LocationTable", "apply_remote"]),
    ];
    let mut bad = Vec::new();
    for file in &files {
        let Some(user) = module_of(&src, file) else {
            continue;
        };
        let Some((_, names)) = forbidden.iter().find(|(m, _)| *m == user) else {
            continue;
        };
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let is_test = name == "tests.rs"
            || name == "test_server.rs"
            || file.components().any(|c| c.as_os_str() == "tests");
        // Test fixtures (a store that fails on demand, the real table to
        // read back what was written) may name what they stand in for.
        if is_test {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for n in names.iter().filter(|n| code.contains(*n)) {
                bad.push(format!(
                    "{}:{}: `{user}` names `{n}`",
                    file.display(),
                    i + 1
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "names outside their module:\n{}",
        bad.join("\n")
    );
}
