use std::time::Duration;

use super::*;

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn bound() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

#[test]
fn recv_batch_takes_what_is_queued_with_each_sender() {
    let server = bound();
    let to = server.local_addr().unwrap();
    let a = bound();
    let b = bound();
    for i in 0..20u8 {
        let from = if i.is_multiple_of(2) { &a } else { &b };
        from.send_to(&vec![i; usize::from(i) + 1], to).unwrap();
    }
    // Loopback delivery is synchronous, so all 20 are queued: the
    // first call takes a full batch, the second the rest.
    let mut rx = RecvBatch::new(16, 64);
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let n = rx.recv(&server).unwrap();
        assert!((1..=16).contains(&n));
        for i in 0..n {
            let (data, remote) = rx.get(i).unwrap();
            seen.push((data.to_vec(), remote));
        }
    }
    for (i, (data, remote)) in seen.iter().enumerate() {
        let i = i as u8;
        assert_eq!(data, &vec![i; usize::from(i) + 1]);
        let from = if i.is_multiple_of(2) { &a } else { &b };
        assert_eq!(*remote, from.local_addr().unwrap());
    }
    assert!(rx.get(16).is_none());
}

#[test]
fn recv_nowait_takes_what_is_queued_and_never_waits() {
    let server = bound();
    let mut rx = RecvBatch::new(4, 64);
    let e = rx.recv_nowait(&server).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    let a = bound();
    for i in 0..6u8 {
        a.send_to(&[i], server.local_addr().unwrap()).unwrap();
    }
    assert_eq!(rx.recv_nowait(&server).unwrap(), 4);
    assert_eq!(rx.get(3).unwrap().0, [3]);
    assert_eq!(rx.recv_nowait(&server).unwrap(), 2);
    assert_eq!(rx.get(1).unwrap().0, [5]);
    assert!(is_timeout(&rx.recv_nowait(&server).unwrap_err()));
    // Without the batch call, helpers stay idle: the leader serves.
    rx.mmsg = false;
    a.send_to(&[9], server.local_addr().unwrap()).unwrap();
    assert!(is_timeout(&rx.recv_nowait(&server).unwrap_err()));
    assert_eq!(rx.recv(&server).unwrap(), 1);
}

#[test]
fn recv_batch_marks_oversized_datagrams() {
    let server = bound();
    let a = bound();
    a.send_to(&[7; 100], server.local_addr().unwrap()).unwrap();
    let mut rx = RecvBatch::new(4, 11);
    assert_eq!(rx.recv(&server).unwrap(), 1);
    // Stored truncated to the slot, one more than the limit of 10.
    assert_eq!(rx.get(0).unwrap().0.len(), 11);
}

#[test]
fn send_batch_delivers_each_reply_to_its_peer() {
    let server = bound();
    let peers: Vec<UdpSocket> = (0..3).map(|_| bound()).collect();
    let outs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'a' + i; 3]).collect();
    // Slots 1 and 3 have no reply (absorbed, dropped); order is kept.
    let replies: Vec<(usize, SocketAddr)> = [0usize, 2, 4]
        .iter()
        .zip(&peers)
        .map(|(&i, p)| (i, p.local_addr().unwrap()))
        .collect();
    let mut tx = SendBatch::new(16);
    let never = |d: SocketAddr, _: usize, e: &io::Error| panic!("{d}: {e}");
    tx.send(&server, &outs, &replies, never);
    for (p, want) in peers.iter().zip([b"aaa", b"ccc", b"eee"]) {
        let mut buf = [0u8; 16];
        let (n, from) = p.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], want);
        assert_eq!(from, server.local_addr().unwrap());
    }
    // The single-call fallback delivers the same.
    tx.mmsg = false;
    tx.send(&server, &outs, &replies[..1], never);
    let mut buf = [0u8; 16];
    let (n, _) = peers[0].recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"aaa");
}

#[test]
fn a_datagram_the_kernel_refuses_is_reported_and_the_rest_still_go() {
    let server = bound();
    let peer = bound();
    let dest = peer.local_addr().unwrap();
    // Over the datagram limit: EMSGSIZE, for sendmmsg and send_to alike.
    let outs = vec![vec![b'x'; 70_000], b"ok".to_vec()];
    let replies = [(0, dest), (1, dest)];
    let mut failed = Vec::new();
    let mut tx = SendBatch::new(16);
    tx.send(&server, &outs, &replies, |d, len, _| failed.push((d, len)));
    assert_eq!(failed, [(dest, 70_000)]);
    let mut buf = [0u8; 16];
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ok");
    tx.mmsg = false;
    tx.send(&server, &outs, &replies[..1], |d, len, _| {
        failed.push((d, len))
    });
    assert_eq!(failed.len(), 2);
}

#[test]
fn sockaddr_round_trip_v4_and_v6() {
    for addr in ["192.0.2.7:5060", "[2001:db8::1]:7000"] {
        let addr: SocketAddr = addr.parse().unwrap();
        // SAFETY: plain old data, all zeros is valid.
        let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = 0;
        write_sockaddr(addr, &mut s, &mut len);
        assert_eq!(read_sockaddr(&s, len), Some(addr));
        assert_eq!(read_sockaddr(&s, 2), None);
    }
}
