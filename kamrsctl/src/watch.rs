//! `kamrsctl ul.watch [AOR]`: the registrar's location table changing,
//! live, one line per event (`ul.subscribe` on the daemon).
//!
//! For people, a line is the time (UTC), what happened, the AoR, the
//! contact and its expiry and source; every value from the network goes
//! through [`escape::safe`]. With `--json`, each event is one compact JSON
//! object per line (NDJSON), as the daemon sent it, for `jq` and scripts.
//! A watcher the daemon cut off for falling behind is told so on stderr
//! and exits 4; `--count N` stops after N events (exit 0).

use std::io::Write;

use common::api::CtlClient;
use common::types::{Expires, UlEvent, LAGGED};
use jsonrpsee_ws_client::WsClient;

use crate::client::{cli_failure, exit, Failure};
use crate::escape::safe;

pub async fn run(
    c: &WsClient,
    aor: Option<String>,
    count: Option<u64>,
    json: bool,
) -> Result<(), Failure> {
    let mut sub = c
        .ul_subscribe(aor.clone())
        .await
        .map_err(|e| cli_failure("ul.subscribe", e))?;
    let mut seen = 0u64;
    let mut out = std::io::stdout().lock();
    while count.is_none_or(|n| seen < n) {
        let events = match sub.next().await {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                return Err(Failure::new(
                    exit::FAILED,
                    format!("ul.watch: kamrs sent an event this kamrsctl cannot read ({e}); is it the same version?"),
                ))
            }
            None => {
                return Err(Failure::new(
                    exit::FAILED,
                    "ul.watch: kamrs ended the watch (it stopped, or the connection was lost)",
                ))
            }
        };
        let mut text = String::new();
        for event in &events {
            if count.is_some_and(|n| seen >= n) {
                break;
            }
            if event.event == LAGGED {
                // What came before the notice is still shown.
                let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
                return Err(Failure::new(
                    exit::FAILED,
                    format!(
                        "ul.watch: this watch fell {} events behind kamrs and was cut off (kamrs never slows registrations for a reader); run it again, watch one AoR, or read --json into a faster consumer",
                        event.lost.unwrap_or(0)
                    ),
                ));
            }
            if json {
                let line = serde_json::to_string(event).map_err(|e| {
                    Failure::new(exit::FAILED, format!("cannot encode the event: {e}"))
                })?;
                text.push_str(&line);
            } else {
                text.push_str(&line(event));
            }
            text.push('\n');
            seen += 1;
        }
        // Flushed per notification: the point of a watch is to see it now,
        // also through a pipe.
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            // The reader went away (`| head`): a normal end.
            return Ok(());
        }
    }
    Ok(())
}

/// One event for people:
/// `06:40:00.123 registered   alice  sip:alice@192.0.2.7:5062  expires=3600  from=sip:192.0.2.7:5062`.
pub fn line(e: &UlEvent) -> String {
    let time = e.time.map_or_else(|| "-".to_owned(), clock);
    let aor = e.aor.as_deref().unwrap_or("-");
    let mut s = format!("{time} {:<17} {}", e.event, safe(aor));
    if let Some(c) = &e.contact {
        s.push_str(&format!("  {}", safe(&c.address)));
        match c.expires {
            Expires::Seconds(n) => s.push_str(&format!("  expires={n}")),
            Expires::Permanent => s.push_str("  expires=permanent"),
            Expires::Expired => s.push_str("  expires=0"),
        }
        if c.received != common::types::NOT_SET {
            s.push_str(&format!("  from={}", safe(&c.received)));
        }
    }
    s
}

/// `HH:MM:SS.mmm` UTC of Unix time `t`.
fn clock(t: f64) -> String {
    let ms = (t.max(0.0) * 1000.0) as u64;
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_what_happened_and_escapes_what_the_phone_sent() {
        let e: UlEvent = serde_json::from_value(serde_json::json!({
            "Event": "registered",
            "Seq": 1,
            "Time": 1_795_713_340.123,
            "AoR": "al\u{1b}[2Jice",
        }))
        .unwrap();
        let l = line(&e);
        assert!(l.starts_with("17:15:40.123 registered "), "{l}");
        assert!(l.contains("al\\u{1b}[2Jice"), "{l}");
        assert!(!l.contains('\u{1b}'), "{l}");
    }

    #[test]
    fn the_clock_is_utc_time_of_day() {
        assert_eq!(clock(0.0), "00:00:00.000");
        assert_eq!(clock(86_399.999), "23:59:59.999");
        assert_eq!(clock(-5.0), "00:00:00.000");
    }
}
