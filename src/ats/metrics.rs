//! Prometheus exposition with `prometheus-client`: the delivery side's figures, read from the
//! store (durable, so they survive restarts and agree across worker processes), which both
//! `vigil ats listen` and `vigil serve` publish on `/metrics`.
//!
//! The store is the source of truth, so each scrape builds a fresh [`Registry`] from a
//! [`Metrics`] snapshot; in-process figures (the server's counters and latency histogram) are
//! registered by the caller next to these.

use crate::store::Metrics;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What `/metrics` answers with (OpenMetrics text, as `prometheus-client` writes it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Label pairs of one series.
pub type Labels = Vec<(&'static str, String)>;

/// Sums and counts without buckets, one series per label set (attempt latency per connector, as
/// the store keeps it): encoded as histograms whose only bucket is `+Inf`, so `_sum` and `_count`
/// keep their names.
#[derive(Debug, Default)]
pub struct SumCounts(pub Vec<(Labels, f64, u64)>);

impl EncodeMetric for SumCounts {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, sum, count) in &self.0 {
            encoder
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(*sum, *count, &[(f64::INFINITY, *count)], None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// A gauge set to `v`.
pub fn gauge(v: i64) -> Gauge {
    let g = Gauge::default();
    g.set(v);
    g
}

/// Gauges of one label: a series per (value, count).
pub fn by_label<'a>(
    label: &'static str,
    counts: impl IntoIterator<Item = (&'a str, u64)>,
) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    for (value, n) in counts {
        family
            .get_or_create(&vec![(label, value.to_owned())])
            .set(n as i64);
    }
    family
}

/// Registers the store's delivery, review, kill-switch and audit figures.
pub fn register_store(reg: &mut Registry, m: &Metrics) {
    let deliveries = by_label(
        "state",
        [
            ("pending", m.deliveries.pending),
            ("delivered", m.deliveries.delivered),
            ("dead", m.deliveries.dead),
        ],
    );
    reg.register("vigil_deliveries", "Outbox deliveries by state", deliveries);
    let attempts = Family::<Labels, Counter>::default();
    for (outcome, conn, n) in &m.attempts {
        attempts
            .get_or_create(&vec![
                ("outcome", outcome.clone()),
                ("connector", conn.clone()),
            ])
            .inc_by(*n);
    }
    reg.register(
        "vigil_delivery_attempts",
        "Delivery attempts by outcome and connector",
        attempts,
    );
    let latency = SumCounts(
        m.attempt_ms
            .iter()
            .map(|(conn, sum_ms, n)| {
                (
                    vec![("connector", conn.clone())],
                    *sum_ms as f64 / 1000.0,
                    *n,
                )
            })
            .collect(),
    );
    reg.register("vigil_delivery_attempt_seconds", "Attempt latency", latency);
    for (name, help, v) in [
        (
            "vigil_dead_letters",
            "Deliveries dead-lettered (an ATS/Vigil state mismatch until requeued)",
            m.deliveries.dead,
        ),
        (
            "vigil_review_queue_depth",
            "Reports waiting for a person",
            m.review_queue,
        ),
        (
            "vigil_kill_switch",
            "1 while degrade mode is on",
            m.kill_switch as u64,
        ),
        (
            "vigil_audit_entries",
            "Entries in the audit log",
            m.audit_entries,
        ),
    ] {
        reg.register(name, help, gauge(v as i64));
    }
}

/// The registry in OpenMetrics text.
pub fn encode(reg: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, reg)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Counts;

    #[test]
    fn store_figures_keep_their_names_in_openmetrics_text() {
        let m = Metrics {
            deliveries: Counts {
                pending: 2,
                delivered: 5,
                dead: 1,
            },
            attempts: vec![("retry".into(), "lever".into(), 3)],
            attempt_ms: vec![("lever".into(), 1500, 4)],
            review_queue: 7,
            kill_switch: true,
            inbound_rejected: 0,
            audit_entries: 9,
        };
        let mut reg = Registry::default();
        register_store(&mut reg, &m);
        let text = encode(&reg).unwrap();
        for line in [
            "# TYPE vigil_deliveries gauge",
            "vigil_deliveries{state=\"pending\"} 2",
            "vigil_deliveries{state=\"dead\"} 1",
            "# TYPE vigil_delivery_attempts counter",
            "vigil_delivery_attempts_total{outcome=\"retry\",connector=\"lever\"} 3",
            "vigil_delivery_attempt_seconds_sum{connector=\"lever\"} 1.5",
            "vigil_delivery_attempt_seconds_count{connector=\"lever\"} 4",
            "vigil_delivery_attempt_seconds_bucket{le=\"+Inf\",connector=\"lever\"} 4",
            "vigil_dead_letters 1",
            "vigil_review_queue_depth 7",
            "vigil_kill_switch 1",
            "vigil_audit_entries 9",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from:\n{text}"
            );
        }
    }
}
