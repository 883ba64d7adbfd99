use super::*;
use std::time::Duration;

fn udp() -> Arc<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    Arc::new(s)
}

#[test]
fn datagrams_leave_from_the_named_socket() {
    let flows = Flows::new();
    let ours = udp();
    let phone = udp();
    flows.add_udp(Arc::clone(&ours));
    let local = ours.local_addr().unwrap();
    let dest = phone.local_addr().unwrap();
    assert!(flows.has_udp(local));
    assert_eq!(flows.udp_for(dest), Some(local));
    // A loopback socket cannot reach another host.
    assert_eq!(flows.udp_for("192.0.2.1:5060".parse().unwrap()), None);
    flows
        .send(&Target::Datagram { local, dest }, b"hello".to_vec())
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = phone.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"hello"[..], local));
    let elsewhere = "127.0.0.1:9".parse().unwrap();
    assert_eq!(
        flows.send(
            &Target::Datagram {
                local: elsewhere,
                dest
            },
            b"x".to_vec()
        ),
        Err(SendError::NoSocket(elsewhere))
    );
    assert_eq!(flows.stats.sent.load(Ordering::Relaxed), 1);
    assert_eq!(flows.stats.failed.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn connections_take_requests_until_full_or_closed() {
    let flows = Flows::new();
    let conn = ConnId::next();
    let target = Target::Conn {
        conn,
        remote: "127.0.0.1:1".parse().unwrap(),
    };
    assert_eq!(flows.send(&target, b"x".to_vec()), Err(SendError::Closed));
    let guard = flows.open_conn(conn);
    assert!(flows.conn_open(conn));
    assert_eq!(flows.conns_open(), 1);
    for i in 0..CONN_QUEUE {
        flows.send(&target, vec![i as u8]).unwrap();
    }
    assert_eq!(
        flows.send(&target, b"x".to_vec()),
        Err(SendError::QueueFull)
    );
    assert_eq!(flows.stats.queue_full.load(Ordering::Relaxed), 1);
    assert_eq!(guard.outbound().await, vec![0]);
    assert_eq!(guard.outbound().await, vec![1]);
    // Room again for one.
    flows.send(&target, b"y".to_vec()).unwrap();
    // Told when its last binding goes.
    flows.released(conn);
    tokio::time::timeout(Duration::from_secs(5), guard.shared.released.notified())
        .await
        .unwrap();
    drop(guard);
    assert!(!flows.conn_open(conn));
    assert_eq!(flows.send(&target, b"x".to_vec()), Err(SendError::Closed));
}

#[tokio::test]
async fn an_outbox_goes_out_in_batches_per_socket_and_connection() {
    let flows = Flows::new();
    let (a, b) = (udp(), udp());
    flows.add_udp(Arc::clone(&a));
    flows.add_udp(Arc::clone(&b));
    let phone = udp();
    let dest = phone.local_addr().unwrap();
    let conn = ConnId::next();
    let guard = flows.open_conn(conn);
    let mut outbox = Outbox::default();
    // 70 datagrams alternating between two sockets (more than one batch
    // of 16 each), one request for the connection, one for a socket we
    // do not have.
    for i in 0..70u8 {
        let local = if i % 2 == 0 { &a } else { &b }.local_addr().unwrap();
        outbox.push(Target::Datagram { local, dest }, vec![i]);
    }
    outbox.push(Target::Conn { conn, remote: dest }, b"tcp".to_vec());
    let nowhere = "127.0.0.1:9".parse().unwrap();
    outbox.push(
        Target::Datagram {
            local: nowhere,
            dest,
        },
        b"x".to_vec(),
    );
    let mut tx = SendBatch::new(16).nonblocking();
    assert_eq!(flows.send_all(&mut outbox, &mut tx), 71);
    assert!(outbox.is_empty());
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    for _ in 0..70 {
        let (n, from) = phone.recv_from(&mut buf).unwrap();
        assert_eq!(n, 1);
        let want = if buf[0] % 2 == 0 { &a } else { &b };
        assert_eq!(from, want.local_addr().unwrap(), "datagram {}", buf[0]);
        got.push(buf[0]);
    }
    got.sort_unstable();
    assert_eq!(got, (0..70).collect::<Vec<u8>>());
    assert_eq!(guard.outbound().await, b"tcp");
    assert_eq!(flows.stats.sent.load(Ordering::Relaxed), 71);
    assert_eq!(flows.stats.failed.load(Ordering::Relaxed), 1);
}

#[test]
fn each_destinations_datagrams_leave_together_longest_first() {
    let flows = Flows::new();
    let ours = udp();
    flows.add_udp(Arc::clone(&ours));
    let local = ours.local_addr().unwrap();
    let (p, q) = (udp(), udp());
    let (to_p, to_q) = (p.local_addr().unwrap(), q.local_addr().unwrap());
    let mut outbox = Outbox::default();
    // Interleaved, as a tick's AoRs come: p short, q, p long, q, p long.
    for (dest, bytes) in [
        (to_p, &b"p1"[..]),
        (to_q, b"q1"),
        (to_p, b"p2-long"),
        (to_q, b"q2"),
        (to_p, b"p3-long"),
    ] {
        outbox.push(Target::Datagram { local, dest }, bytes.to_vec());
    }
    assert_eq!(
        flows.send_all(&mut outbox, &mut SendBatch::new(16).nonblocking()),
        5
    );
    let recv_all = |s: &UdpSocket, n: usize| -> Vec<Vec<u8>> {
        let mut buf = [0u8; 16];
        (0..n)
            .map(|_| {
                let (len, _) = s.recv_from(&mut buf).unwrap();
                buf[..len].to_vec()
            })
            .collect()
    };
    // The long ones first (a run of equal length, then the short one:
    // what one segmented message can carry), each datagram whole.
    assert_eq!(recv_all(&p, 3), [&b"p2-long"[..], b"p3-long", b"p1"]);
    assert_eq!(recv_all(&q, 2), [&b"q1"[..], b"q2"]);
}
