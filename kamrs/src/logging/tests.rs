use super::*;

#[test]
fn verbose_raises_and_quiet_lowers_the_configured_level() {
    assert_eq!(level_for("info", 0, 0), "info");
    assert_eq!(level_for("info", 1, 0), "info");
    assert_eq!(level_for("info", 2, 0), "debug");
    assert_eq!(level_for("info", 3, 0), "trace");
    assert_eq!(level_for("info", 9, 0), "trace");
    // -v never lowers what the file asked for.
    assert_eq!(level_for("debug", 1, 0), "debug");
    assert_eq!(level_for("warn", 1, 0), "info");
    assert_eq!(level_for("info", 0, 1), "warn");
    assert_eq!(level_for("info", 0, 2), "error");
    // -q keeps errors, and does not turn an `off` on.
    assert_eq!(level_for("info", 0, 9), "error");
    assert_eq!(level_for("off", 0, 1), "off");
    assert_eq!(level_for("off", 0, 0), "off");
    // -v wins over -q (clap lets both through).
    assert_eq!(level_for("info", 2, 1), "debug");
}
