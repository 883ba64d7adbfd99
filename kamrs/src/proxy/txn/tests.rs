use super::*;

#[test]
fn branch_ids_read_back() {
    let b = branch_id(0xdead_beef, 0x1234, 3, 99);
    assert!(b.starts_with("z9hG4bK"));
    assert_eq!(parse_branch(&b), Some((0xdead_beef, 0x1234, 3)));
    assert_eq!(parse_branch("z9hG4bKother"), None);
    assert_eq!(parse_branch("z9hG4bK-krzz-1-0-0"), None);
}
