//! `ul.subscribe [AOR]`: the location table's events, live, as `ul.event`
//! notifications on the subscriber's WebSocket.
//!
//! Each subscription is one task reading the table's event ring
//! ([`crate::usrloc::events`]). The registrar never waits for it: a
//! subscriber that reads too slowly falls behind in the ring, gets one
//! last notification `{"Event": "lagged", "Lost": N}` and is ended; one
//! that stops reading altogether is ended when a notification cannot be
//! handed to its connection within [`SEND_TIMEOUT`] (bounded: the ring does
//! not grow while it waits).

use std::sync::Arc;
use std::time::Duration;

use common::types::{UlEvent, LAGGED};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::PendingSubscriptionSink;
use serde_json::value::to_raw_value;
use tokio::sync::broadcast::error::RecvError;

use super::api::State;
use super::shape;
use super::ul::fix_aor;
use crate::usrloc::Event;

/// Subscriptions open at once, all connections together; each costs a
/// task and a place in the event ring's bookkeeping.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// How long a notification may wait for room in its connection's queue.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn subscribe(
    state: Arc<State>,
    pending: PendingSubscriptionSink,
    aor: Option<String>,
) -> SubscriptionResult {
    let filter = match aor.as_deref().map(|a| fix_aor(&state, a)).transpose() {
        Ok(f) => f,
        Err(e) => {
            pending.reject(e).await;
            return Ok(());
        }
    };
    let events = state.table().events();
    // Subscribed before the count is checked, so that concurrent calls
    // cannot all pass it, and before accepting, so nothing between is
    // missed.
    let mut rx = events.subscribe();
    if events.listeners() > MAX_SUBSCRIPTIONS {
        drop(rx);
        pending
            .reject(ErrorObjectOwned::owned(
                common::api::error::DISABLED,
                format!(
                    "ul.subscribe: {MAX_SUBSCRIPTIONS} subscriptions are open already; end one (kamrsctl ul.watch) and try again"
                ),
                None::<()>,
            ))
            .await;
        return Ok(());
    }
    let sink = pending.accept().await?;
    let nat_bit = state.settings.nat_bit();
    loop {
        let event = tokio::select! {
            () = sink.closed() => return Ok(()),
            e = rx.recv() => e,
        };
        let message = match event {
            Ok(e) if filter.as_deref().is_some_and(|f| f != &*e.aor) => continue,
            Ok(e) => notification(&e, nat_bit),
            Err(RecvError::Lagged(lost)) => {
                let last = UlEvent {
                    event: LAGGED.to_owned(),
                    seq: None,
                    time: None,
                    aor: None,
                    contact: None,
                    lost: Some(lost),
                };
                let _ = sink.send_timeout(to_raw_value(&last)?, SEND_TIMEOUT).await;
                tracing::info!(
                    lost,
                    "ul.subscribe: a subscriber fell behind by {lost} events and was ended"
                );
                return Ok(());
            }
            Err(RecvError::Closed) => return Ok(()),
        };
        if sink
            .send_timeout(to_raw_value(&message)?, SEND_TIMEOUT)
            .await
            .is_err()
        {
            // Gone, or not reading at all.
            return Ok(());
        }
    }
}

/// An event as `ul.event` notifications and the `[events] webhook` carry it.
pub fn notification(e: &Event, nat_bit: u32) -> UlEvent {
    let now = crate::time::unix_now();
    let mut contact = shape::contact(&e.binding, now, nat_bit);
    if e.gone {
        // Gone: whatever time it had left is no longer its.
        contact.expires = common::types::Expires::Seconds(0);
    }
    UlEvent {
        event: e.cause.as_str().to_owned(),
        seq: Some(e.seq),
        time: Some(e.at_us as f64 / 1e6),
        aor: Some(e.aor.to_string()),
        contact: Some(contact),
        lost: None,
    }
}

#[cfg(test)]
mod tests;
