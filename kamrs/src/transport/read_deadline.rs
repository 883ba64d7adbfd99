//! When a TCP connection must have delivered its next message.
//!
//! The idle timer (`tcp_connection_lifetime`) restarts on every byte, so a
//! peer dripping one byte a second holds its connection forever (before them,
//! 64 such peers kept every slot of `tcp_max_connections = 64`). Two
//! deadlines that bytes do not push back close that hole; both keep
//! Kamailio's names:
//!
//! - `tcp_msg_data_timeout`: from accept until the first whole SIP message
//!   (keep-alive CRLFs do not count), so a connection that never says
//!   anything useful gives its slot back.
//! - `tcp_msg_read_timeout`: from the first byte of a message until its
//!   last, so every message must arrive within it however it is split.
//!
//! Pure bookkeeping over instants; the connection task asks for the
//! earliest deadline before each read.

use tokio::time::{Duration, Instant};

/// Which deadline ran out, for the close reason and its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Late {
    /// No whole message within `tcp_msg_data_timeout` of accept.
    NoMessage,
    /// A started message not complete within `tcp_msg_read_timeout`.
    Message,
}

/// The deadlines of one connection.
#[derive(Debug, Clone)]
pub struct ReadDeadline {
    read_timeout: Duration,
    /// Until the first whole message: accept + `tcp_msg_data_timeout`.
    first_message_by: Option<Instant>,
    /// While part of a message is buffered: its first byte + `tcp_msg_read_timeout`.
    message_by: Option<Instant>,
}

impl ReadDeadline {
    /// A connection accepted at `now`.
    pub fn new(now: Instant, data_timeout: Duration, read_timeout: Duration) -> Self {
        ReadDeadline {
            read_timeout,
            first_message_by: Some(now + data_timeout),
            message_by: None,
        }
    }

    /// Records what framing did with the buffer at `now`: `messages` whole
    /// SIP messages taken, `consumed` whether any bytes at all were taken
    /// (messages or keep-alives), `left` bytes still buffered.
    ///
    /// The bytes left over are the start of the next message. If anything
    /// was consumed, they came with the read that completed the previous
    /// frame, so that message's clock starts now; if nothing was, it is the
    /// same message as before and keeps its deadline.
    pub fn framed(&mut self, now: Instant, messages: usize, consumed: bool, left: usize) {
        if messages > 0 {
            self.first_message_by = None;
        }
        self.message_by = match (left, consumed, self.message_by) {
            (0, _, _) => None,
            (_, false, Some(by)) => Some(by),
            _ => Some(now + self.read_timeout),
        };
    }

    /// The earliest deadline, and which one it is.
    pub fn next(&self) -> Option<(Instant, Late)> {
        let first = self.first_message_by.map(|t| (t, Late::NoMessage));
        let msg = self.message_by.map(|t| (t, Late::Message));
        match (first, msg) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests;
