use super::*;

#[test]
fn masks() {
    assert_eq!(mask(b"INVITE, ACK,BYE"), 1 | 4 | 8);
    assert_eq!(mask(b"invite,FOO"), 1 | OTHER);
    assert_eq!(mask(b""), 0);
}
