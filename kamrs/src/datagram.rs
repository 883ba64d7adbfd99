//! Batched datagram syscalls: `recvmmsg` and `sendmmsg` over a std UDP
//! socket, with a one-datagram fallback where the kernel (or a seccomp
//! filter) refuses them. The SIP UDP workers receive and reply with them
//! (transport/udp.rs); requests kamrs sends on its own, keepalive pings
//! among them, leave in batches through the same code (flow/sender.rs).
//! One syscall per batch instead of per datagram is most of what a
//! datagram costs on the way out; replies to one peer in a batch go
//! further and share one message, which the kernel cuts into datagrams
//! ([`gso`]: under a refresh load from one peer, the send side's share of
//! kamrs's CPU fell from 49 % to 26 %, bench/profile-refresh.txt).

use std::io;
use std::net::{SocketAddr, UdpSocket};

pub mod gso;

/// Whether a batch syscall failure means "this kernel (or a seccomp
/// filter) does not offer it", after which the worker uses the one-datagram
/// calls for good.
pub fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM))
}

/// The per-datagram bookkeeping `recvmmsg` and `sendmmsg` share: an
/// address, its length, one iovec and the header pointing at both, per
/// slot. Kept between calls only to reuse the allocations.
struct Slots {
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` are only meaningful during
// one syscall: both are rebuilt (`iovs` cleared and refilled, `headers`)
// before every call from buffers borrowed for that call, and never read
// otherwise. Moving the bookkeeping to another thread between calls (a
// task the runtime moves) therefore shares nothing.
unsafe impl Send for Slots {}

impl Slots {
    fn new(slots: usize) -> Self {
        Slots {
            // SAFETY: sockaddr_storage is plain old data (integers and byte
            // arrays); all zeros is a valid value.
            addrs: vec![unsafe { std::mem::zeroed() }; slots],
            addr_lens: vec![0; slots],
            iovs: Vec::with_capacity(slots),
            hdrs: Vec::with_capacity(slots),
        }
    }

    /// Rebuilds `hdrs`, one per iovec pushed since `iovs` was cleared,
    /// each naming the address of its slot with `addr_lens` as its length.
    /// Call it after the last push: the headers point into `iovs` and
    /// `addrs`, which must not move until the syscall returns.
    fn headers(&mut self) {
        self.hdrs.clear();
        for k in 0..self.iovs.len().min(self.addrs.len()) {
            let h = self.header(k, k, 1);
            self.hdrs.push(h);
        }
    }

    /// A header naming address slot `addr` (with `addr_lens[addr]` as its
    /// length) and the `iovlen` iovecs of `iovs` from `iov` on. The
    /// pointers are valid only while neither vector moves.
    fn header(&mut self, addr: usize, iov: usize, iovlen: usize) -> libc::mmsghdr {
        // SAFETY: mmsghdr is plain old data (integers and raw pointers);
        // all zeros (null pointers, zero lengths) is valid.
        let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
        h.msg_hdr.msg_name = std::ptr::addr_of_mut!(self.addrs[addr]).cast();
        h.msg_hdr.msg_namelen = self.addr_lens[addr];
        h.msg_hdr.msg_iov = std::ptr::addr_of_mut!(self.iovs[iov]);
        h.msg_hdr.msg_iovlen = iovlen as _;
        h
    }
}

/// Receive buffers of one worker and the `recvmmsg` bookkeeping.
pub struct RecvBatch {
    /// `slots` buffers of `stride` bytes, back to back.
    bufs: Vec<u8>,
    stride: usize,
    slots: usize,
    /// Per slot: datagram length, valid for the last `recv`; the sender is
    /// in `msgs`.
    lens: Vec<usize>,
    msgs: Slots,
    /// Cleared once `recvmmsg` is refused: single `recv_from` from then on.
    pub(crate) mmsg: bool,
}

impl RecvBatch {
    pub fn new(slots: usize, stride: usize) -> Self {
        let slots = slots.max(1);
        RecvBatch {
            // Pages only become resident as datagrams are written into them.
            bufs: vec![0; slots.saturating_mul(stride)],
            stride,
            slots,
            lens: vec![0; slots],
            msgs: Slots::new(slots),
            mmsg: true,
        }
    }

    /// Waits for at least one datagram and takes up to `slots` of those
    /// queued; returns how many.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        if self.mmsg {
            // Block for the first datagram only, then take what is queued.
            match self.recv_many(socket, libc::MSG_WAITFORONE) {
                Err(e) if unsupported(&e) => {
                    tracing::info!("recvmmsg unavailable ({e}); receiving one datagram per call");
                    self.mmsg = false;
                }
                r => return r,
            }
        }
        let (n, remote) = socket.recv_from(&mut self.bufs[..self.stride])?;
        self.lens[0] = n;
        write_sockaddr(remote, &mut self.msgs.addrs[0], &mut self.msgs.addr_lens[0]);
        Ok(1)
    }

    /// Takes up to `slots` queued datagrams without waiting; `WouldBlock`
    /// when there are none (or when only one-datagram calls are available:
    /// then the leader alone serves the socket).
    pub fn recv_nowait(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        if !self.mmsg {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.recv_many(socket, libc::MSG_DONTWAIT) {
            Err(e) if unsupported(&e) => {
                self.mmsg = false;
                Err(io::ErrorKind::WouldBlock.into())
            }
            r => r,
        }
    }

    fn recv_many(&mut self, socket: &UdpSocket, flags: libc::c_int) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let m = &mut self.msgs;
        m.iovs.clear();
        for (chunk, len) in self
            .bufs
            .chunks_exact_mut(self.stride)
            .zip(m.addr_lens.iter_mut())
            .take(self.slots)
        {
            m.iovs.push(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            });
            // The kernel may fill the whole sockaddr_storage.
            *len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        m.headers();
        // SAFETY: `hdrs` holds `hdrs.len()` initialised headers; each
        // points at one iovec of `iovs`, whose buffer is a disjoint
        // `stride`-byte chunk of `bufs`, and at one sockaddr_storage of
        // `addrs` with its true size as msg_namelen. None of these vectors
        // is touched (so none reallocates) until the call returns, and the
        // kernel writes at most iov_len / msg_namelen bytes.
        let r = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                m.hdrs.as_mut_ptr(),
                m.hdrs.len() as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (r as usize).min(m.hdrs.len());
        for (i, h) in m.hdrs.iter().enumerate().take(n) {
            // A truncated datagram reports the bytes stored, at most the
            // slot (max + 1), which the caller counts as too large.
            self.lens[i] = (h.msg_len as usize).min(self.stride);
            m.addr_lens[i] = h.msg_hdr.msg_namelen;
        }
        Ok(n)
    }

    /// Datagram `i` of the last `recv` and its sender; `None` when the
    /// kernel gave an address we cannot reply to.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.slots {
            return None;
        }
        let start = i * self.stride;
        let data = self.bufs.get(start..start + self.lens[i])?;
        let remote = read_sockaddr(&self.msgs.addrs[i], self.msgs.addr_lens[i])?;
        Some((data, remote))
    }
}

/// `sockaddr_storage` (as filled by the kernel) → `SocketAddr`.
pub fn read_sockaddr(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(s.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: sockaddr_storage is larger than and aligned for every
            // sockaddr type, and the kernel stored an AF_INET address of
            // full length in it.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for an AF_INET6 address.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// `SocketAddr` → `sockaddr_storage`, for the single-datagram fallback and
/// for `sendmmsg`.
pub fn write_sockaddr(addr: SocketAddr, s: &mut libc::sockaddr_storage, len: &mut libc::socklen_t) {
    let sa = socket2::SockAddr::from(addr);
    let n = (sa.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: both pointers are valid for `n` bytes (n is capped at the
    // size of sockaddr_storage, which SockAddr's storage also is at least)
    // and they cannot overlap: `sa` is a local.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr().cast::<u8>(),
            (s as *mut libc::sockaddr_storage).cast::<u8>(),
            n,
        );
    }
    *len = n as libc::socklen_t;
}

/// The `sendmmsg` bookkeeping of one sender.
pub struct SendBatch {
    msgs: Slots,
    /// Per message of the last `sendmmsg`: its segmentation request.
    cmsgs: Vec<gso::SegmentCmsg>,
    /// Per message of the last `sendmmsg`: how many replies it carries.
    carried: Vec<usize>,
    pub(crate) mmsg: bool,
    /// Whether runs of replies to one peer leave as one segmented message
    /// ([`gso`]); cleared for good when the kernel refuses one.
    pub(crate) gso: bool,
    /// `MSG_DONTWAIT` for senders on the async runtime, which must never
    /// block on a full socket buffer (the datagram is refused instead).
    flags: libc::c_int,
}

impl SendBatch {
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        SendBatch {
            msgs: Slots::new(slots),
            cmsgs: vec![gso::SegmentCmsg::new(); slots],
            carried: Vec::with_capacity(slots),
            mmsg: true,
            gso: true,
            flags: 0,
        }
    }

    /// This batch, sending without ever waiting: a datagram that does not
    /// fit the socket's send buffer is refused (`WouldBlock`) and reported.
    pub fn nonblocking(mut self) -> Self {
        self.flags = libc::MSG_DONTWAIT;
        self
    }

    /// Sends `outs[i]` to `dest` for each `(i, dest)` of `replies` (at most
    /// the batch's size; the rest are not sent). A datagram the kernel
    /// refuses is passed to `failed` and skipped; the others still go.
    pub fn send(
        &mut self,
        socket: &UdpSocket,
        outs: &[Vec<u8>],
        replies: &[(usize, SocketAddr)],
        mut failed: impl FnMut(SocketAddr, usize, &io::Error),
    ) {
        let replies = &replies[..replies.len().min(self.msgs.addrs.len())];
        let mut done = 0;
        while done < replies.len() && self.mmsg {
            match self.send_many(socket, outs, &replies[done..]) {
                Ok(n) => done += n.max(1).min(replies.len() - done),
                Err(e) if unsupported(&e) => {
                    tracing::info!("sendmmsg unavailable ({e}); sending one datagram per call");
                    self.mmsg = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.carried.first().is_some_and(|&n| n > 1) && gso::refused(&e) => {
                    // The first message was segmented and the kernel (or
                    // the route: no checksum offload, IPsec) will not cut
                    // it: the same replies go again, one datagram each.
                    tracing::info!(
                        "UDP segmentation refused ({e}); sending one datagram per reply from now on"
                    );
                    self.gso = false;
                }
                Err(e) => {
                    // The first message of the rest failed: skip the
                    // replies it carried.
                    let n = self.carried.first().copied().unwrap_or(1).max(1);
                    for &(i, dest) in replies[done..].iter().take(n) {
                        failed(dest, outs.get(i).map_or(0, Vec::len), &e);
                    }
                    done += n.min(replies.len() - done);
                }
            }
        }
        for &(i, dest) in &replies[done..] {
            if let Some(out) = outs.get(i) {
                let sent = socket2::SockRef::from(socket).send_to_with_flags(
                    out,
                    &dest.into(),
                    self.flags,
                );
                if let Err(e) = sent {
                    failed(dest, out.len(), &e);
                }
            }
        }
    }

    /// Datagrams one [`send`](Self::send) takes at most.
    pub fn capacity(&self) -> usize {
        self.msgs.addrs.len()
    }

    /// One `sendmmsg` for `replies` (not empty); how many replies went out.
    /// With segmentation on, each run of replies to one peer that
    /// [`gso::run_len`] accepts is one message; `carried` says how many
    /// replies each message holds.
    fn send_many(
        &mut self,
        socket: &UdpSocket,
        outs: &[Vec<u8>],
        replies: &[(usize, SocketAddr)],
    ) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let m = &mut self.msgs;
        let take = replies.len().min(m.addrs.len());
        let replies = &replies[..take];
        let len_of = |i: usize| outs.get(i).map_or(0, Vec::len);
        // Every iovec first: the headers point into `iovs`, which must not
        // grow once they do.
        m.iovs.clear();
        for &(i, _) in replies {
            let out = outs.get(i).map_or(&[][..], Vec::as_slice);
            // The kernel only reads through iov_base (sendmmsg), so the
            // cast from a shared slice to *mut is sound.
            m.iovs.push(libc::iovec {
                iov_base: out.as_ptr().cast_mut().cast(),
                iov_len: out.len(),
            });
        }
        m.hdrs.clear();
        self.carried.clear();
        let mut k = 0;
        while k < take {
            let h = m.hdrs.len();
            let (i, dest) = replies[k];
            let mut n = if self.gso {
                gso::run_len(replies[k..].iter().map(|&(i, d)| (len_of(i), d)))
            } else {
                1
            }
            .clamp(1, take - k);
            // Without its control message a multi-iovec header would be
            // ONE datagram holding every reply: no segment size, no run.
            let control = match u16::try_from(len_of(i)) {
                Ok(segment) if n > 1 => {
                    let c = &mut self.cmsgs[h];
                    let len = c.set(segment);
                    (len > 0).then(|| (c.as_mut_ptr(), len))
                }
                _ => None,
            };
            if control.is_none() {
                n = 1;
            }
            write_sockaddr(dest, &mut m.addrs[h], &mut m.addr_lens[h]);
            let mut hdr = m.header(h, k, n);
            if let Some((ptr, len)) = control {
                hdr.msg_hdr.msg_control = ptr;
                hdr.msg_hdr.msg_controllen = len as _;
            }
            m.hdrs.push(hdr);
            self.carried.push(n);
            k += n;
        }
        if m.hdrs.is_empty() {
            return Ok(0);
        }
        // SAFETY: `hdrs` holds `hdrs.len()` initialised headers; header h
        // points at `carried[h]` consecutive iovecs of `iovs` (each over a
        // reply buffer of `outs`, borrowed for the whole call), at address
        // h of `addrs` with its length, and, when it carries more than one
        // reply, at control buffer h of `cmsgs` with the length `set`
        // returned. Nothing is reallocated until the call returns;
        // sendmmsg only reads those and writes `msg_len`.
        let r = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                m.hdrs.as_mut_ptr(),
                m.hdrs.len() as libc::c_uint,
                self.flags,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(self.carried.iter().take(r as usize).sum())
    }
}

#[cfg(test)]
mod tests;
