//! Value and change-feed encoding (MessagePack), versioned so a newer
//! node's data is recognised rather than misread.

use super::*;

/// A binding as stored: MessagePack of this struct as an array (field
/// names are not repeated in every value), after a version byte. Fields
/// may only be appended, with `#[serde(default)]`, within one version.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireBinding<'a> {
    #[serde(borrow)]
    pub(super) contact: Cow<'a, str>,
    /// Unix seconds; None = permanent.
    pub(super) expires_at: Option<u64>,
    pub(super) q: Option<u16>,
    #[serde(borrow)]
    pub(super) call_id: Cow<'a, str>,
    pub(super) cseq: u32,
    #[serde(borrow)]
    pub(super) user_agent: Option<Cow<'a, str>>,
    pub(super) source: Option<WireSource<'a>>,
    #[serde(borrow)]
    pub(super) path: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) instance: Option<Cow<'a, str>>,
    pub(super) reg_id: u32,
    pub(super) methods: u32,
    pub(super) flags: u32,
    pub(super) cflags: u32,
    pub(super) last_modified: u64,
    /// Appended: values written before it read as 0.
    #[serde(default)]
    pub(super) server_id: u32,
}

/// [`Source`]: transport name and both addresses as text (`1.2.3.4:5060`,
/// `[::1]:5060`), which any language can read back.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireSource<'a> {
    #[serde(borrow)]
    pub(super) proto: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) remote: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) local: Cow<'a, str>,
}

/// A stored value and a feed op alike: an upsert carries the binding, a
/// delete none.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireOp<'a> {
    #[serde(borrow)]
    pub(super) aor: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) ruid: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) binding: Option<WireBinding<'a>>,
}

/// A change read back from Redis.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Upsert { aor: String, binding: Binding },
    Delete { aor: String, ruid: String },
}

pub(super) fn proto_named(name: &str) -> Option<Proto> {
    // Exact case: the names are ours, written by `as_str`.
    Proto::ALL.into_iter().find(|p| p.as_str() == name)
}

/// Encodes one op (the value stored under its key for an upsert).
pub fn encode_op(op: &StoreOp) -> Result<Vec<u8>, String> {
    let (aor, ruid, binding) = match op {
        StoreOp::Upsert { aor, binding } => {
            (aor, Cow::Owned(binding.ruid().to_string()), Some(binding))
        }
        StoreOp::Delete { aor, ruid } => (aor, Cow::Borrowed(&**ruid), None),
    };
    let wire = WireOp {
        aor: Cow::Borrowed(aor),
        ruid,
        binding: binding.map(|b| WireBinding {
            contact: Cow::Borrowed(b.contact()),
            expires_at: (b.expires_at != PERMANENT).then_some(b.expires_at),
            q: b.q,
            call_id: Cow::Borrowed(b.call_id()),
            cseq: b.cseq,
            user_agent: b.user_agent.as_deref().map(Cow::Borrowed),
            source: b.source().map(|s| WireSource {
                proto: Cow::Borrowed(s.proto.as_str()),
                remote: Cow::Owned(s.remote.to_string()),
                local: Cow::Owned(s.local.to_string()),
            }),
            path: b.path().map(Cow::Borrowed),
            instance: b.instance().map(Cow::Borrowed),
            reg_id: b.reg_id,
            methods: b.methods,
            flags: b.flags,
            cflags: b.cflags,
            last_modified: b.last_modified,
            server_id: b.server_id,
        }),
    };
    let mut out = Vec::with_capacity(160);
    out.push(VALUE_V1);
    rmp_serde::encode::write(&mut out, &wire)
        .map_err(|e| format!("cannot encode a binding: {e}"))?;
    Ok(out)
}

/// Decodes what [`encode_op`] wrote. Errors say what is wrong, for the
/// warning that skips the value.
pub fn decode_op(bytes: &[u8]) -> Result<Decoded, String> {
    let (&version, body) = bytes.split_first().ok_or("empty value")?;
    if version != VALUE_V1 {
        return Err(format!("unknown format version {version}"));
    }
    let wire: WireOp<'_> =
        rmp_serde::from_slice(body).map_err(|e| format!("bad MessagePack: {e}"))?;
    let Some(b) = wire.binding else {
        return Ok(Decoded::Delete {
            aor: wire.aor.into_owned(),
            ruid: wire.ruid.into_owned(),
        });
    };
    let source = match b.source {
        None => None,
        Some(s) => {
            let proto =
                proto_named(&s.proto).ok_or_else(|| format!("unknown transport {:?}", s.proto))?;
            let remote: SocketAddr = s
                .remote
                .parse()
                .map_err(|_| format!("bad source address {:?}", s.remote))?;
            let local: SocketAddr = s
                .local
                .parse()
                .map_err(|_| format!("bad local address {:?}", s.local))?;
            Some(Source {
                proto,
                remote,
                local,
                conn: None,
            })
        }
    };
    let binding = Binding::new(Parts {
        contact: &b.contact,
        expires_at: match b.expires_at {
            None => PERMANENT,
            // u64::MAX is how permanence is written, never a deadline.
            Some(PERMANENT) => return Err("deadline out of range".into()),
            Some(t) => t,
        },
        q: b.q,
        call_id: &b.call_id,
        cseq: b.cseq,
        user_agent: b.user_agent.map(|u| Arc::from(u.as_ref())),
        source,
        path: b.path.as_deref(),
        instance: b.instance.as_deref(),
        reg_id: b.reg_id,
        methods: b.methods,
        flags: b.flags,
        cflags: b.cflags,
        ruid: Ruid::parse(&wire.ruid),
        last_modified: b.last_modified,
        server_id: b.server_id,
    });
    Ok(Decoded::Upsert {
        aor: wire.aor.into_owned(),
        binding,
    })
}

/// A feed message: version byte, then MessagePack `str` (the sending
/// node's id) and an array of `bin`, each an [`encode_op`] value, in the
/// order the ops were made.
pub(super) fn encode_feed(node: &str, ops: &[&[u8]]) -> Vec<u8> {
    let len: usize = ops.iter().map(|o| o.len() + 5).sum();
    let mut out = Vec::with_capacity(len + node.len() + 16);
    out.push(FEED_V1);
    // Writing into a Vec cannot fail; the lengths fit u32 (bounded batch).
    let _ = rmp::encode::write_str(&mut out, node);
    let _ = rmp::encode::write_array_len(&mut out, u32::try_from(ops.len()).unwrap_or(u32::MAX));
    for op in ops {
        let _ = rmp::encode::write_bin(&mut out, op);
    }
    out
}

/// Splits a feed message into the sender's id and its encoded ops.
pub(super) fn decode_feed(msg: &[u8]) -> Result<(&str, Vec<&[u8]>), String> {
    let (&version, mut rd) = msg.split_first().ok_or("empty message")?;
    if version != FEED_V1 {
        return Err(format!("unknown feed version {version}"));
    }
    fn take<'a>(rd: &mut &'a [u8], n: u32) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| "length overflow")?;
        if rd.len() < n {
            return Err("truncated message".into());
        }
        let (head, tail) = rd.split_at(n);
        *rd = tail;
        Ok(head)
    }
    let n = rmp::decode::read_str_len(&mut rd).map_err(|e| format!("bad node id: {e}"))?;
    let node = std::str::from_utf8(take(&mut rd, n)?).map_err(|_| "node id not UTF-8")?;
    let count = rmp::decode::read_array_len(&mut rd).map_err(|e| format!("bad op list: {e}"))?;
    let mut ops =
        Vec::with_capacity(usize::try_from(count.min(FEED_CHUNK as u32 * 4)).unwrap_or(0));
    for _ in 0..count {
        let n = rmp::decode::read_bin_len(&mut rd).map_err(|e| format!("bad op: {e}"))?;
        ops.push(take(&mut rd, n)?);
    }
    Ok((node, ops))
}
