//! `GET /metrics` on the control listener: every statistic of
//! `stats.get_statistics` in the Prometheus text format, as
//! `kamrs_<group>_<name>` (counters with Prometheus's `_total` suffix),
//! for a Prometheus server to scrape.
//!
//! The values are read when scraped, from the same atomics the JSON-RPC
//! statistics read ([`stats::each`]): nothing is counted twice and no
//! REGISTER pays for the endpoint. No series is per AoR or per source, so a scrape's size does
//! not grow with the table.

use std::sync::Arc;

use jsonrpsee::server::{HttpBody, HttpResponse};
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use super::api::State;
use super::intercept::Answer;
use super::stats;
use crate::timing::Latency;

/// The content type of the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The scrape body. A registry is made per scrape from the statistics'
/// current values (some sixty series): the statistics stay the one
/// place anything is counted. The histograms live where they are
/// observed and are only registered here.
pub fn render(state: &State) -> Result<String, prometheus::Error> {
    let registry = Registry::new();
    let mut failed = None;
    stats::each(state, |group, name, help, value, grows| {
        if failed.is_some() || stats::is_reply_code(group, name) {
            return;
        }
        // What the statistic means, and its name in JSON-RPC so the
        // operator can find it there too.
        let help = format!("{help} (stats.get_statistics {group}:{name})");
        let registered = if grows {
            IntCounter::with_opts(Opts::new(format!("kamrs_{group}_{name}_total"), help)).and_then(
                |c| {
                    c.inc_by(value);
                    registry.register(Box::new(c))
                },
            )
        } else {
            IntGauge::with_opts(Opts::new(format!("kamrs_{group}_{name}"), help)).and_then(|g| {
                g.set(i64::try_from(value).unwrap_or(i64::MAX));
                registry.register(Box::new(g))
            })
        };
        if let Err(e) = registered {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    registry.register(Box::new(replies_by_code(state)?))?;
    for latency in latencies(state) {
        registry.register(Box::new(latency.histogram().clone()))?;
    }
    let mut out = Vec::with_capacity(16 * 1024);
    TextEncoder::new().encode(&registry.gather(), &mut out)?;
    String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

/// `kamrs_sl_replies_total{code="…"}`: one series per status code sent
/// at least once (the `sl:NNN_replies` statistics, by label). The codes
/// are kamrs's own replies, so the series stay a handful.
fn replies_by_code(state: &State) -> Result<IntCounterVec, prometheus::Error> {
    let replies = IntCounterVec::new(
        Opts::new(
            "kamrs_sl_replies_total",
            "SIP replies kamrs sent, by status code (sl:NNN_replies in stats.get_statistics).",
        ),
        &["code"],
    )?;
    state.core.stats.replies.each(|code, n| {
        replies
            .with_label_values(&[code.to_string().as_str()])
            .inc_by(n);
    });
    Ok(replies)
}

/// The histograms of what is on: REGISTER handling always, the store's
/// commits with a store, keepalive round trips with `ka_mode`.
fn latencies(state: &State) -> Vec<&Latency> {
    let mut all = vec![&state.core.registrar.stats().handling];
    if let Some(store) = state.table().store() {
        all.extend(store.commit_time());
    }
    if let Some(ka) = &state.core.keepalive {
        all.push(&ka.stats.roundtrip);
    }
    all
}

/// Answers `GET /metrics` before jsonrpsee sees the request; everything
/// else passes. Placed inside the endpoint's auth layer, so the token and
/// browser rules of the API apply to the metrics too.
#[derive(Clone)]
pub struct MetricsLayer(pub Arc<State>);

impl Answer for MetricsLayer {
    fn answer(&self, method: &http::Method, path: &str) -> Option<HttpResponse> {
        if path != "/metrics" {
            return None;
        }
        Some(if method == http::Method::GET {
            match render(&self.0) {
                Ok(body) => response(http::StatusCode::OK, CONTENT_TYPE, body),
                Err(_) => response(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    "the metrics could not be written\n".to_owned(),
                ),
            }
        } else {
            let mut r = response(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "/metrics takes GET\n".to_owned(),
            );
            r.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
            r
        })
    }
}

fn response(status: http::StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut resp = HttpResponse::new(HttpBody::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

#[cfg(test)]
mod tests;
