//! UDP segmentation offload (`UDP_SEGMENT`, Linux 4.18): several replies
//! to one peer leave as one message that the kernel cuts into datagrams.
//!
//! Why: on the way out, most of a datagram's cost is per message, not per
//! byte (route lookup, socket buffer, IP output, and on loopback the
//! delivery up to the receiver's socket). Everything behind an edge proxy
//! or SBC reaches the registrar from one address, and one load generator
//! does too, so a batch of replies is often a run of messages to one peer
//! with the same length (refreshes of similar phones). The kernel cuts a
//! segmented message into datagrams of `segment` bytes, the last one
//! possibly shorter; each is an ordinary UDP datagram on the wire, so the
//! peer sees no difference.
//!
//! Only runs that surely fit any path are grouped: segments of at most
//! [`MAX_SEGMENT`] bytes (an IPv6 link's minimum MTU of 1,280 less the
//! headers), at most [`MAX_SEGMENTS`] of them, [`MAX_BYTES`] in all. A
//! kernel or route that refuses segmentation anyway (no checksum offload,
//! IPsec) is handled by the sender: it turns segmentation off and sends
//! the datagrams one by one.

use std::net::SocketAddr;

/// Largest datagram sent as a segment: 1,280 (the IPv6 minimum MTU) less
/// 40 bytes of IPv6 and 8 of UDP header, rounded down.
pub const MAX_SEGMENT: usize = 1200;

/// Segments per message: the kernel's `UDP_MAX_SEGMENTS` was 64 when
/// segmentation appeared (it is 128 since Linux 5.0).
pub const MAX_SEGMENTS: usize = 64;

/// Bytes per segmented message: one IP packet's payload (65,507 for IPv4)
/// with room to spare.
pub const MAX_BYTES: usize = 65_000;

/// How many of `items` (length, destination), from the first, leave as one
/// segmented message: the first and those after it with the same
/// destination and the same length, then optionally one shorter one to
/// the same destination (the kernel allows only the last segment to be
/// short). Always at least 1 when `items` is not empty; 1 means "send it
/// on its own".
pub fn run_len(items: impl IntoIterator<Item = (usize, SocketAddr)>) -> usize {
    let mut items = items.into_iter();
    let Some((segment, dest)) = items.next() else {
        return 0;
    };
    if segment == 0 || segment > MAX_SEGMENT {
        return 1;
    }
    let mut n = 1;
    let mut bytes = segment;
    for (len, to) in items {
        if to != dest || len == 0 || len > segment || n == MAX_SEGMENTS || bytes + len > MAX_BYTES {
            break;
        }
        n += 1;
        bytes += len;
        if len < segment {
            break;
        }
    }
    n
}

/// The control message that asks for segments of `segment` bytes:
/// `cmsghdr` (SOL_UDP, UDP_SEGMENT) followed by a u16, padded as
/// `CMSG_SPACE` wants. Eight-byte aligned, as `cmsghdr` needs.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct SegmentCmsg([u8; 32]);

impl SegmentCmsg {
    pub const fn new() -> SegmentCmsg {
        SegmentCmsg([0; 32])
    }

    /// Fills the buffer for `segment`-byte segments; returns the length to
    /// give as `msg_controllen`.
    pub fn set(&mut self, segment: u16) -> usize {
        // SAFETY: CMSG_SPACE and CMSG_LEN are pure arithmetic.
        let (space, len) = unsafe {
            (
                libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize,
                libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize,
            )
        };
        if space > self.0.len() {
            // Not on any Linux ABI; the caller then sends one by one.
            return 0;
        }
        self.0 = [0; 32];
        // SAFETY: the buffer is 32 bytes, 8-byte aligned, and
        // CMSG_SPACE(2) (24 on 64-bit Linux, 16 on 32-bit) fits in it: the
        // header and the u16 after it (at CMSG_DATA, inside the space) are
        // written within the buffer. A msghdr naming this buffer with
        // `space` as its length has CMSG_FIRSTHDR == the buffer.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_control = self.0.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            if c.is_null() {
                return 0;
            }
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = len as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), segment);
        }
        space
    }

    pub fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.0.as_mut_ptr().cast()
    }
}

impl Default for SegmentCmsg {
    fn default() -> Self {
        SegmentCmsg::new()
    }
}

/// Whether a failed segmented send means "no segmentation here" (an old
/// kernel, a device without checksum offload, a route through IPsec, a
/// segment over the path's MTU) rather than a failure of these replies.
pub fn refused(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::EIO) | Some(libc::ENOPROTOOPT) | Some(libc::EOPNOTSUPP)
    )
}
