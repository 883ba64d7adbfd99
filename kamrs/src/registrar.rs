//! The registrar entry point (RFC 3261 §10.3). Until the location table
//! exists, REGISTER is answered 501 like every other unimplemented method.

use crate::route::Peer;
use crate::sip::{reply, Request};

/// Handles REGISTER requests.
#[derive(Debug, Default)]
pub struct Registrar {}

impl Registrar {
    pub fn new() -> Self {
        Registrar {}
    }

    /// Writes the reply to `req` into `out`.
    pub fn handle(&self, req: &Request<'_>, peer: &Peer, out: &mut Vec<u8>) {
        reply::write(out, req, peer, 501, "Not Implemented", &[]);
    }
}
