use super::*;
use crate::peer::Peer;
use crate::usrloc::Parts;

/// What is open, as the test says.
#[derive(Default)]
struct Open {
    conns: Vec<ConnId>,
    udp: Vec<SocketAddr>,
}

impl Sockets for Open {
    fn conn_open(&self, conn: ConnId) -> bool {
        self.conns.contains(&conn)
    }
    fn has_udp(&self, local: SocketAddr) -> bool {
        self.udp.contains(&local)
    }
    fn udp_for(&self, dest: SocketAddr) -> Option<SocketAddr> {
        self.udp
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == dest.is_ipv4())
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn binding(contact: &str, source: Option<Peer>, path: Option<&str>) -> Binding {
    let b = Binding::for_test(contact, 100);
    Binding::new(Parts {
        source,
        path,
        ..b.parts()
    })
}

fn udp_peer(remote: &str, local: &str) -> Peer {
    Peer {
        proto: Proto::Udp,
        remote: addr(remote),
        local: addr(local),
        conn: None,
    }
}

#[test]
fn an_open_connection_comes_first() {
    let conn = ConnId::next();
    let src = Peer {
        proto: Proto::Tcp,
        remote: addr("192.0.2.9:40000"),
        local: addr("127.0.0.1:5060"),
        conn: Some(conn),
    };
    let b = binding(
        "sip:a@10.0.0.1:5060",
        Some(src),
        Some("<sip:192.0.2.50;lr>"),
    );
    let open = Open {
        conns: vec![conn],
        ..Open::default()
    };
    assert_eq!(
        plan(&b, &open),
        Ok(Target::Conn {
            conn,
            remote: addr("192.0.2.9:40000")
        })
    );
    // Closed: the Path hop, which is UDP here.
    let open = Open {
        udp: vec![addr("0.0.0.0:5060")],
        ..Open::default()
    };
    assert_eq!(
        plan(&b, &open),
        Ok(Target::Datagram {
            local: addr("0.0.0.0:5060"),
            dest: addr("192.0.2.50:5060")
        })
    );
    // Closed, and the Contact wants TCP: no way without a new connection.
    let b = binding("sip:a@10.0.0.1:5060;transport=tcp", Some(src), None);
    assert_eq!(plan(&b, &open), Err(Unreachable::ConnectionClosed));
    // Closed, and the Contact would be UDP: not followed either (a phone
    // that registered over TCP is not listening there, and anyone could
    // aim a TCP registration's Contact at a victim).
    let b = binding("sip:a@192.0.2.77:5060", Some(src), None);
    assert_eq!(plan(&b, &open), Err(Unreachable::ConnectionClosed));
}

#[test]
fn udp_goes_to_the_source_from_the_socket_it_came_to() {
    let b = binding(
        "sip:a@10.0.0.1:5060",
        Some(udp_peer("203.0.113.7:61000", "127.0.0.1:5060")),
        Some("<sip:192.0.2.50;lr>"),
    );
    let open = Open {
        udp: vec![addr("127.0.0.2:5060"), addr("127.0.0.1:5060")],
        ..Open::default()
    };
    assert_eq!(
        plan(&b, &open),
        Ok(Target::Datagram {
            local: addr("127.0.0.1:5060"),
            dest: addr("203.0.113.7:61000")
        })
    );
    // That socket is gone (a store from another configuration): another
    // of the same family.
    let open = Open {
        udp: vec![addr("127.0.0.2:5060")],
        ..Open::default()
    };
    assert_eq!(
        plan(&b, &open).map(|t| t.remote()),
        Ok(addr("203.0.113.7:61000"))
    );
    assert_eq!(
        plan(&b, &Open::default()),
        Err(Unreachable::NoSocket("UDP", addr("203.0.113.7:61000")))
    );
}

#[test]
fn without_a_source_path_then_contact() {
    let open = Open {
        udp: vec![addr("0.0.0.0:5060"), addr("[::]:5060")],
        ..Open::default()
    };
    let via_path = binding(
        "sip:a@10.0.0.1",
        None,
        Some("<sip:198.51.100.1:5070;lr>, <sip:198.51.100.2;lr>"),
    );
    assert_eq!(
        plan(&via_path, &open).map(|t| t.remote()),
        Ok(addr("198.51.100.1:5070"))
    );
    let direct = binding("sip:a@[2001:db8::1]:5080", None, None);
    assert_eq!(
        plan(&direct, &open),
        Ok(Target::Datagram {
            local: addr("[::]:5060"),
            dest: addr("[2001:db8::1]:5080")
        })
    );
    let default_port = binding("<sip:a@192.0.2.1>", None, None);
    assert_eq!(
        plan(&default_port, &open),
        Err(Unreachable::BadUri("Contact"))
    );
    let default_port = binding("sip:a@192.0.2.1;transport=UDP", None, None);
    assert_eq!(
        plan(&default_port, &open).map(|t| t.remote()),
        Ok(addr("192.0.2.1:5060"))
    );
}

#[test]
fn what_cannot_be_reached_says_why() {
    let open = Open {
        udp: vec![addr("0.0.0.0:5060")],
        ..Open::default()
    };
    let cases = [
        (
            binding("sip:a@phone.example.com", None, None),
            Unreachable::HostName("phone.example.com".into()),
        ),
        (
            binding("sips:a@192.0.2.1", None, None),
            Unreachable::Transport("tls".into()),
        ),
        (
            // A WebSocket binding whose connection is gone: nothing can
            // open one towards a browser.
            binding("sip:a@192.0.2.1;transport=ws", None, None),
            Unreachable::ConnectionClosed,
        ),
        (
            binding("sip:a@192.0.2.1;transport=sctp", None, None),
            Unreachable::Transport("sctp".into()),
        ),
        (
            binding("sip:a@192.0.2.1", None, Some("garbage")),
            Unreachable::BadUri("Path"),
        ),
        (
            binding("sip:a@[2001:db8::1]", None, None),
            Unreachable::NoSocket("UDP", addr("[2001:db8::1]:5060")),
        ),
    ];
    for (b, why) in cases {
        assert_eq!(plan(&b, &open), Err(why), "{}", b.contact());
    }
}
