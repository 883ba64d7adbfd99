//! Between a binding and a `location` row: the columns, `received` and
//! `socket` in Kamailio's text forms, and reading a row back.

use super::*;

/// One binding as the columns of a `location` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row9 {
    pub ruid: String,
    pub username: String,
    pub domain: Option<String>,
    pub contact: String,
    pub received: Option<String>,
    pub path: Option<String>,
    pub expires: String,
    pub q: f64,
    pub callid: String,
    pub cseq: i64,
    pub last_modified: String,
    pub flags: i64,
    pub cflags: i64,
    pub user_agent: String,
    pub socket: Option<String>,
    pub methods: i64,
    pub instance: Option<String>,
    pub reg_id: i64,
    pub server_id: i64,
}

impl Row9 {
    /// The row for `binding` of `aor`. The AoR is split at its first `@`
    /// into `username` and `domain` (NULL without one, as Kamailio does
    /// with `use_domain = 0`).
    pub fn of(aor: &str, b: &Binding) -> Row9 {
        let (username, domain) = match aor.split_once('@') {
            Some((u, d)) => (u.to_owned(), Some(d.to_owned())),
            None => (aor.to_owned(), None),
        };
        Row9 {
            ruid: b.ruid().to_string(),
            username,
            domain,
            contact: b.contact().to_string(),
            received: b.source().map(|s| received_of(&s)),
            path: b.path().map(str::to_owned),
            expires: if b.is_permanent() {
                PERMANENT_TEXT.to_owned()
            } else {
                format_time(b.expires_at)
            },
            q: crate::usrloc::q_to_number(b.q),
            callid: b.call_id().to_string(),
            cseq: i64::from(b.cseq),
            last_modified: format_time(b.last_modified),
            flags: i64::from(b.flags),
            cflags: i64::from(b.cflags),
            user_agent: b.user_agent.as_deref().unwrap_or("").to_owned(),
            socket: b
                .source()
                .map(|s| format!("{}:{}", s.proto.as_str(), s.local)),
            methods: i64::from(b.methods),
            instance: b.instance().map(str::to_owned),
            reg_id: i64::from(b.reg_id),
            server_id: i64::from(b.server_id),
        }
    }
}

/// Kamailio's `received`: `sip:IP:PORT`, `;transport=tcp` (`tls`, `ws`,
/// `wss`) for the others.
pub(super) fn received_of(s: &Source) -> String {
    match s.proto {
        Proto::Udp => format!("sip:{}", s.remote),
        other => format!("sip:{};transport={}", s.remote, other.as_str()),
    }
}

/// The remote address and transport of a `received` value; `None` when
/// it is not `sip:IP:PORT[;params]` (Kamailio may store a host name).
pub(super) fn parse_received(s: &str) -> Option<(SocketAddr, Proto)> {
    let rest = s.strip_prefix("sip:").or_else(|| s.strip_prefix("sips:"))?;
    let mut parts = rest.split(';');
    let addr: SocketAddr = parts.next()?.parse().ok()?;
    let mut proto = Proto::Udp;
    for p in parts {
        if let Some(t) = p.strip_prefix("transport=") {
            proto = Proto::named(t)?;
        }
    }
    Some((addr, proto))
}

/// `udp:IP:PORT` / `tcp:[IPv6]:PORT`.
pub(super) fn parse_socket(s: &str) -> Option<(Proto, SocketAddr)> {
    let (proto, addr) = s.split_once(':')?;
    Some((Proto::named(proto)?, addr.parse().ok()?))
}

/// A 32-bit unsigned column Kamailio may have written signed (methods,
/// flags: `-1` is `0xffffffff`).
pub(super) fn u32_column(v: i64) -> Option<u32> {
    if v < 0 {
        i32::try_from(v).ok().map(|v| v as u32)
    } else {
        u32::try_from(v).ok()
    }
}

/// Reads one row of [`SELECT_BINDINGS`]: the AoR and its binding, or why
/// the row cannot be used.
pub(super) fn binding_from_row(
    row: &Row<'_>,
    agents: &mut HashMap<String, Arc<str>>,
) -> Result<(String, Binding), String> {
    use rusqlite::types::ValueRef;
    let text = |i: usize| -> Result<Option<String>, String> {
        match row.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| format!("column {i} is not UTF-8")),
            ValueRef::Integer(n) => Ok(Some(n.to_string())),
            ValueRef::Real(x) => Ok(Some(x.to_string())),
            ValueRef::Blob(_) => Err(format!("column {i} is a blob")),
        }
    };
    let int = |i: usize, name: &str| -> Result<Option<i64>, String> {
        match row.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            ValueRef::Real(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Some(x as i64)),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| format!("{name} is not a number")),
            _ => Err(format!("{name} is not a number")),
        }
    };
    let time = |i: usize, name: &str| -> Result<u64, String> {
        match row.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Integer(n) => u64::try_from(n).map_err(|_| format!("{name} is negative")),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(parse_time)
                .ok_or_else(|| format!("{name} is not a 'YYYY-MM-DD HH:MM:SS' time")),
            _ => Err(format!("{name} is not a time")),
        }
    };
    let ruid = text(17)?.filter(|r| !r.is_empty()).ok_or("ruid is empty")?;
    let username = text(0)?.unwrap_or_default();
    let aor = match text(1)? {
        Some(d) => format!("{username}@{d}"),
        None => username,
    };
    if aor.is_empty() {
        return Err("username is empty".into());
    }
    let contact = text(2)?
        .filter(|c| !c.is_empty())
        .ok_or("contact is empty")?;
    let expires = time(5, "expires")?;
    let q = match row.get_ref(6).map_err(|e| e.to_string())? {
        ValueRef::Real(x) => x,
        ValueRef::Integer(n) => n as f64,
        ValueRef::Null => crate::usrloc::Q_UNSPECIFIED,
        _ => return Err("q is not a number".into()),
    };
    let q = crate::usrloc::q_from_number(q).ok_or_else(|| format!("q {q} is above 1"))?;
    let cseq = int(8, "cseq")?.unwrap_or(0);
    let cseq = u32::try_from(cseq).map_err(|_| format!("cseq {cseq} is out of range"))?;
    let flag = |i: usize, name: &str, default: u32| -> Result<u32, String> {
        match int(i, name)? {
            None => Ok(default),
            Some(v) => u32_column(v).ok_or_else(|| format!("{name} {v} is out of range")),
        }
    };
    let source = match (text(3)?, text(13)?) {
        (Some(received), Some(socket)) => {
            match (parse_received(&received), parse_socket(&socket)) {
                (Some((remote, _)), Some((proto, local))) => Some(Source {
                    proto,
                    remote,
                    local,
                    conn: None,
                }),
                _ => None,
            }
        }
        _ => None,
    };
    let user_agent = text(12)?.filter(|u| !u.is_empty()).map(|u| {
        // Thousands of phones share a few User-Agent strings: one Arc each.
        match agents.get(&u) {
            Some(a) => Arc::clone(a),
            None => {
                let a: Arc<str> = Arc::from(u.as_str());
                if agents.len() < 10_000 {
                    agents.insert(u, Arc::clone(&a));
                }
                a
            }
        }
    });
    let call_id = text(7)?.unwrap_or_default();
    let path = text(4)?.filter(|p| !p.is_empty());
    let instance = text(15)?.filter(|i| !i.is_empty());
    let binding = Binding::new(Parts {
        contact: &contact,
        expires_at: if expires == 0 { PERMANENT } else { expires },
        q,
        call_id: &call_id,
        cseq,
        user_agent,
        source,
        path: path.as_deref(),
        instance: instance.as_deref(),
        reg_id: flag(16, "reg_id", 0)?,
        methods: flag(14, "methods", u32::MAX)?,
        flags: flag(10, "flags", 0)?,
        cflags: flag(11, "cflags", 0)?,
        ruid: Ruid::parse(&ruid),
        last_modified: time(9, "last_modified").unwrap_or(0),
        server_id: flag(18, "server_id", 0)?,
    });
    Ok((aor, binding))
}
