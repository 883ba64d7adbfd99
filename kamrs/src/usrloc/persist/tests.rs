use super::StoreMode;

/// Logs and `core.info` name a mode as the config file does, not as
/// Rust's `Debug` (`WriteThrough`) would.
#[test]
fn a_mode_displays_as_its_config_word() {
    for mode in [StoreMode::WriteThrough, StoreMode::WriteBack] {
        let config = serde_json::to_string(&mode).expect("serializes");
        assert_eq!(format!("\"{mode}\""), config);
    }
    assert_eq!(StoreMode::WriteThrough.to_string(), "write-through");
}
