//! NAT keepalive: pinging registered bindings with OPTIONS, as Kamailio's
//! usrloc does with `ka_mode` (README, Keepalive).
//!
//! Pings are stateless: nothing is stored per ping. What the reply must
//! carry back to be believed is in the ping itself: the Call-ID names the
//! binding (AoR and ruid) and the time it was sent, under a MAC with a
//! secret of this process ([`token`]). A reply whose Call-ID does not
//! verify, is older than `ka_timeout`, or arrives from somewhere else than
//! the binding's flow changes nothing. [`options`] writes the request,
//! [`schedule`] spreads the pings over `ka_interval`, [`engine`] sends
//! them over the binding's flow ([`crate::flow`]) and takes the replies.

pub mod engine;
pub mod options;
pub mod schedule;
pub mod settings;
pub mod token;

pub use engine::{KaStats, Keepalive};
pub use settings::{mode, Method, Settings};
