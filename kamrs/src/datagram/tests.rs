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

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn a_run_is_one_peer_one_length_and_at_most_one_shorter_last() {
    let a = addr("192.0.2.1:5060");
    let b = addr("192.0.2.2:5060");
    assert_eq!(gso::run_len([]), 0);
    assert_eq!(gso::run_len([(400, a)]), 1);
    assert_eq!(gso::run_len([(400, a), (400, a), (400, a), (400, b)]), 3);
    // A shorter one ends the run, included; a longer one ends it, left out.
    assert_eq!(gso::run_len([(400, a), (400, a), (300, a), (300, a)]), 3);
    assert_eq!(gso::run_len([(400, a), (401, a)]), 1);
    // Too large to be a segment anywhere, empty, or past the limits.
    assert_eq!(
        gso::run_len([(gso::MAX_SEGMENT + 1, a), (gso::MAX_SEGMENT + 1, a)]),
        1
    );
    assert_eq!(gso::run_len([(0, a), (0, a)]), 1);
    assert_eq!(gso::run_len([(400, a), (0, a)]), 1);
    assert_eq!(gso::run_len(vec![(10, a); 100]), gso::MAX_SEGMENTS);
    let big = gso::MAX_SEGMENT;
    assert_eq!(gso::run_len(vec![(big, a); 60]), gso::MAX_BYTES / big);
}

/// Everything `peer` receives until it has `n` datagrams.
fn receive(peer: &UdpSocket, n: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while got.len() < n {
        let (len, from) = peer.recv_from(&mut buf).unwrap();
        got.push((buf[..len].to_vec(), from));
    }
    got
}

#[test]
fn replies_to_one_peer_arrive_as_separate_datagrams_in_order() {
    let server = bound();
    let p = bound();
    let q = bound();
    let (pa, qa) = (p.local_addr().unwrap(), q.local_addr().unwrap());
    // Five of one length to p, a shorter one to p (the run's last), two
    // to q, one longer to p: four messages at most, nine datagrams.
    let mut outs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'a' + i; 300]).collect();
    outs.push(vec![b'f'; 100]);
    outs.push(vec![b'g'; 50]);
    outs.push(vec![b'h'; 50]);
    outs.push(vec![b'i'; 500]);
    let dests = [pa, pa, pa, pa, pa, pa, qa, qa, pa];
    let replies: Vec<(usize, SocketAddr)> = dests.iter().copied().enumerate().collect();
    let mut tx = SendBatch::new(16);
    let never = |d: SocketAddr, _: usize, e: &io::Error| panic!("{d}: {e}");
    tx.send(&server, &outs, &replies, never);
    assert!(tx.gso, "loopback segments");
    assert_eq!(tx.carried, [6, 2, 1], "three messages");
    let to_p = receive(&p, 7);
    let want: Vec<Vec<u8>> = [0, 1, 2, 3, 4, 5, 8]
        .iter()
        .map(|&i| outs[i].clone())
        .collect();
    assert_eq!(
        to_p.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        want
    );
    assert!(to_p
        .iter()
        .all(|(_, from)| *from == server.local_addr().unwrap()));
    let to_q = receive(&q, 2);
    assert_eq!(to_q[0].0, outs[6]);
    assert_eq!(to_q[1].0, outs[7]);
    // Without segmentation the same arrives the same way.
    tx.gso = false;
    tx.send(&server, &outs, &replies, never);
    let again: Vec<Vec<u8>> = receive(&p, 7).into_iter().map(|(d, _)| d).collect();
    assert_eq!(again, want);
    assert_eq!(receive(&q, 2).len(), 2);
}

#[test]
fn a_segmented_message_the_kernel_refuses_is_sent_again_one_by_one() {
    let server = bound();
    // Without UDP checksums (SO_NO_CHECK) Linux refuses segmentation
    // with EINVAL, as it does for a device without checksum offload.
    let one: libc::c_int = 1;
    // SAFETY: a valid socket, option and int-sized value.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&server),
            libc::SOL_SOCKET,
            libc::SO_NO_CHECK,
            std::ptr::addr_of!(one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "{}", io::Error::last_os_error());
    let peer = bound();
    let dest = peer.local_addr().unwrap();
    let outs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'w' + i; 200]).collect();
    let replies: Vec<(usize, SocketAddr)> = (0..4).map(|i| (i, dest)).collect();
    let mut tx = SendBatch::new(16);
    tx.send(&server, &outs, &replies, |d, _, e| panic!("{d}: {e}"));
    assert!(!tx.gso, "segmentation is off after the refusal");
    let got: Vec<Vec<u8>> = receive(&peer, 4).into_iter().map(|(d, _)| d).collect();
    assert_eq!(got, outs);
    assert!(gso::refused(&io::Error::from_raw_os_error(libc::EIO)));
    assert!(!gso::refused(&io::Error::from_raw_os_error(libc::EAGAIN)));
}
