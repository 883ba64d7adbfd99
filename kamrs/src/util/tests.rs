use std::sync::{Arc, Mutex};

use super::*;

#[test]
fn hex_is_lower_case_two_digits_per_byte() {
    assert_eq!(hex(&[]), "");
    assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
}

#[test]
fn push_hex_u64_writes_what_lower_hex_formatting_does() {
    for n in [0u64, 1, 0xf, 0x10, 0xabc, 0x8000_0000_0000_0000, u64::MAX] {
        let mut out = vec![b'>'];
        push_hex_u64(&mut out, n);
        assert_eq!(out, format!(">{n:x}").into_bytes());
    }
}

#[test]
fn lock_ignores_poisoning() {
    let m = Arc::new(Mutex::new(1));
    let m2 = Arc::clone(&m);
    let _ = std::thread::spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("poison it");
    })
    .join();
    assert!(m.is_poisoned());
    *lock(&m) += 1;
    assert_eq!(*lock(&m), 2);
}
