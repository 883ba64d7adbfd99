//! How long things take, as Prometheus histograms: a REGISTER's handling,
//! a store's commit, a keepalive's round trip (`GET /metrics`).
//!
//! Each histogram is a fixed set of buckets of atomics (rust-prometheus's
//! `Histogram`): observing costs a few relaxed atomic adds and no lock, so
//! the REGISTER path can afford it, and a scrape reads it without stopping
//! anyone. The buckets are fixed here, not configured: what they mean
//! must not differ between two kamrs an operator compares. The names and
//! buckets of every histogram are in this one file.

use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts};

/// What one histogram is.
pub struct Spec {
    /// The full metric name (`kamrs_…_seconds`).
    pub name: &'static str,
    pub help: &'static str,
    /// Upper bounds in seconds, increasing.
    pub buckets: &'static [f64],
}

/// A REGISTER from parsed to answered: checks, authentication, the table
/// edit, the reply, and in write-through mode the wait for the store.
/// Memory-only answers take microseconds; a write-through one takes the
/// store's commit time.
pub const REGISTER: Spec = Spec {
    name: "kamrs_registrar_register_duration_seconds",
    help: "Time from a parsed REGISTER to its reply being ready (write-through mode: including the store's commit).",
    buckets: &[
        0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
        0.1, 0.25, 0.5, 1.0, 2.5,
    ],
};

/// One write of a batch of changes to the location store: a SQLite
/// transaction, a Redis pipeline.
pub const STORE_COMMIT: Spec = Spec {
    name: "kamrs_usrloc_store_commit_duration_seconds",
    help: "Time one batch of location-table changes took to be written to the store (SQLite transaction, Redis pipeline), failed writes included.",
    buckets: &[
        0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        2.5, 5.0, 10.0,
    ],
};

/// From a keepalive OPTIONS sent to the answer proving the binding alive:
/// the network's round trip to the phone plus its answering time.
pub const KEEPALIVE_ROUNDTRIP: Spec = Spec {
    name: "kamrs_keepalive_roundtrip_seconds",
    help: "Round trip of keepalive pings that were answered: from the OPTIONS sent to its reply.",
    buckets: &[
        0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        30.0,
    ],
};

/// Every histogram kamrs has, for the docs and their test.
pub const ALL: &[&Spec] = &[&REGISTER, &STORE_COMMIT, &KEEPALIVE_ROUNDTRIP];

/// One histogram, cheap to clone (the buckets are shared).
#[derive(Clone)]
pub struct Latency(Histogram);

impl Latency {
    pub fn new(spec: &Spec) -> Latency {
        let opts = HistogramOpts::new(spec.name, spec.help).buckets(spec.buckets.to_vec());
        // The specs are constants checked by this file's tests: a name
        // that is valid and buckets that increase cannot fail here.
        let histogram = Histogram::with_opts(opts).expect("a valid histogram spec");
        Latency(histogram)
    }

    pub fn observe(&self, took: Duration) {
        self.0.observe(took.as_secs_f64());
    }

    pub fn since(&self, started: Instant) {
        self.observe(started.elapsed());
    }

    pub fn observe_us(&self, micros: u64) {
        // Exact up to 2^53 µs (285 years).
        #[allow(clippy::cast_precision_loss)]
        self.0.observe(micros as f64 / 1e6);
    }

    /// The histogram to register with a scrape's registry.
    pub fn histogram(&self) -> &Histogram {
        &self.0
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.get_sample_count()
    }
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latency")
            .field("count", &self.count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_makes_a_histogram_with_increasing_buckets() {
        for spec in ALL {
            assert!(spec.name.starts_with("kamrs_") && spec.name.ends_with("_seconds"));
            assert!(
                spec.buckets.windows(2).all(|w| w[0] < w[1]),
                "{}",
                spec.name
            );
            let l = Latency::new(spec);
            l.observe(Duration::from_millis(3));
            l.observe_us(1_500);
            assert_eq!(l.count(), 2);
            let sum = l.histogram().get_sample_sum();
            assert!((sum - 0.0045).abs() < 1e-9, "{sum}");
        }
    }
}
