//! `ul.subscribe [AOR]`: the location table's events, live, as `ul.events`
//! notifications (batches, in order) on the subscriber's WebSocket.
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
use serde_json::value::{to_raw_value, RawValue};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

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
    let mut listener = events.listen(filter.as_deref());
    if events.listeners() > MAX_SUBSCRIPTIONS {
        drop(listener);
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
    let mut batch: Vec<Arc<Event>> = Vec::with_capacity(MAX_BATCH);
    // A full batch means more are waiting: the next goes without a wait.
    let mut was_full = false;
    loop {
        // Asleep until the first event; then a short wait gathers what
        // follows it, so a busy table costs a subscriber a few wake-ups
        // and sends a second, not one per REGISTER.
        let first = tokio::select! {
            () = sink.closed() => return Ok(()),
            e = listener.rx.recv() => e,
        };
        batch.clear();
        let mut bytes = 0usize;
        let mut next = Some(first);
        let mut lingered = was_full;
        loop {
            match next.take() {
                Some(Ok(e)) if listener.wants(&e) => {
                    bytes += rendered(&e, nat_bit).get().len();
                    batch.push(e);
                }
                Some(Err(RecvError::Lagged(lost))) => {
                    return cut_off(&sink, &batch, nat_bit, lost).await;
                }
                Some(Err(RecvError::Closed)) => return Ok(()),
                Some(Ok(_)) | None => {}
            }
            if batch.len() >= MAX_BATCH || bytes >= MAX_BATCH_BYTES {
                break;
            }
            match listener.rx.try_recv() {
                Ok(e) => next = Some(Ok(e)),
                Err(TryRecvError::Lagged(lost)) => next = Some(Err(RecvError::Lagged(lost))),
                Err(TryRecvError::Closed) => next = Some(Err(RecvError::Closed)),
                // Also when the filter kept nothing yet: a subscriber to one
                // AoR must not wake for every REGISTER of the others.
                Err(TryRecvError::Empty) if !lingered => {
                    lingered = true;
                    tokio::time::sleep(LINGER).await;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        was_full = batch.len() >= MAX_BATCH || bytes >= MAX_BATCH_BYTES;
        if batch.is_empty() {
            continue;
        }
        if sink
            .send_timeout(notification_of(&batch, nat_bit, None)?, SEND_TIMEOUT)
            .await
            .is_err()
        {
            // Gone, or not reading at all.
            return Ok(());
        }
    }
}

/// Most events in one `ul.events` notification.
pub const MAX_BATCH: usize = 256;

/// A notification ends once its events' JSON reaches this many bytes:
/// phones choose how long their bindings are (a Path, a long Contact), so
/// a count alone would not bound what a stalled reader holds.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// How long a subscriber gathers events after the first before sending.
pub const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// The event as JSON, rendered once for every subscriber (and the
/// webhook).
pub fn rendered(e: &Event, nat_bit: u32) -> &RawValue {
    e.rendered.get_or_init(|| {
        // Serializing builds the raw value without parsing it back (a
        // parse was a fifth of a busy subscriber's time).
        to_raw_value(&notification(e, nat_bit)).unwrap_or_else(|_| RawValue::NULL.to_owned())
    })
}

/// One `ul.events` result: the events' JSON, then the lag notice if any.
fn notification_of(
    batch: &[Arc<Event>],
    nat_bit: u32,
    lagged: Option<&RawValue>,
) -> Result<Box<RawValue>, serde_json::Error> {
    let items: Vec<&RawValue> = batch
        .iter()
        .map(|e| rendered(e, nat_bit))
        .chain(lagged)
        .collect();
    to_raw_value(&items)
}

/// Ends a subscriber that fell `lost` events behind: what it has
/// gathered, then the notice, in its last notification.
async fn cut_off(
    sink: &jsonrpsee::SubscriptionSink,
    batch: &[Arc<Event>],
    nat_bit: u32,
    lost: u64,
) -> SubscriptionResult {
    let last = to_raw_value(&UlEvent {
        event: LAGGED.to_owned(),
        seq: None,
        time: None,
        aor: None,
        contact: None,
        lost: Some(lost),
    })?;
    let _ = sink
        .send_timeout(notification_of(batch, nat_bit, Some(&last))?, SEND_TIMEOUT)
        .await;
    tracing::info!(
        lost,
        "ul.subscribe: a subscriber fell behind by {lost} events and was ended"
    );
    Ok(())
}

/// An event as `ul.events` notifications and the `[events] webhook` carry it.
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
