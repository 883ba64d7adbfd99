use super::*;

#[test]
fn a_reply_sent_from_a_task_that_the_kernel_refuses_is_counted() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stats = CoreStats::default();
    send_nowait(&server, &[b'x'; 70_000], peer.local_addr().unwrap(), &stats);
    assert_eq!(CoreStats::get(&stats.send_failures), 1);
}
