//! The `kamrsctl` binary runs and knows its version. Being an integration
//! test of the kamrsctl package, this also makes `cargo test --workspace`
//! build the binary before the end-to-end tests in `tests/` look for it.

use std::process::Command;

#[test]
fn version_flag_prints_the_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_kamrsctl"))
        .arg("--version")
        .output()
        .expect("run kamrsctl");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("kamrsctl {}", env!("CARGO_PKG_VERSION")),
        "{out:?}"
    );
}
