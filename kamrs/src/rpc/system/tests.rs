use super::*;

#[test]
fn ctime_format() {
    assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
    assert_eq!(ctime(1_718_863_898), "Thu Jun 20 06:11:38 2024");
    assert_eq!(ctime(951_782_400), "Tue Feb 29 00:00:00 2000");
    assert_eq!(ctime(4_102_444_799), "Thu Dec 31 23:59:59 2099");
}

#[test]
fn version_names_kamrs() {
    let v = version();
    assert!(
        v.starts_with(&format!("kamrs {} (", common::VERSION)),
        "{v}"
    );
}
