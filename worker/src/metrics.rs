//! Prometheus metrics of a process (`GET /metrics` on the api and the worker): delivery
//! outcomes, attempt durations, lead-to-delivered latency and queue lag.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::{sync::OnceLock, time::Duration};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds buckets from 1 ms to 10 min: attempts take milliseconds, retries minutes.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 600.0,
];

/// The process-wide recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was already installed; /metrics shows only this handle's data"
            );
        }
        handle
    })
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render() -> String {
    handle().render()
}

/// One attempt finished with `outcome` (delivered, failed, retry, failover, error).
pub fn attempt(outcome: &'static str, duration: Duration) {
    handle();
    metrics::counter!("leadrelay_attempts_total", "outcome" => outcome).increment(1);
    metrics::histogram!("leadrelay_attempt_duration_seconds").record(duration.as_secs_f64());
}

/// A delivery reached its final state (delivered, failed, error).
pub fn delivery(outcome: &'static str) {
    handle();
    metrics::counter!("leadrelay_deliveries_total", "outcome" => outcome).increment(1);
}

/// A lead reached a receiver this long after it was received.
pub fn lead_to_delivered(latency: Duration) {
    handle();
    metrics::histogram!("leadrelay_lead_to_delivered_seconds").record(latency.as_secs_f64());
}

/// How long the oldest due, unclaimed delivery has waited.
pub fn queue_lag(lag: Duration) {
    handle();
    metrics::gauge!("leadrelay_queue_lag_seconds").set(lag.as_secs_f64());
}

/// A sweep re-enqueued `expired` rows whose lease ran out and `waiting` rows that no job
/// carried.
pub fn swept(expired: usize, waiting: usize) {
    handle();
    metrics::counter!("leadrelay_sweeps_total").increment(1);
    metrics::counter!("leadrelay_swept_jobs_total", "reason" => "expired")
        .increment(expired as u64);
    metrics::counter!("leadrelay_swept_jobs_total", "reason" => "waiting")
        .increment(waiting as u64);
}

/// A push of fresh jobs woke this worker (a message on the queue's wake channel).
pub fn queue_wakeup() {
    handle();
    metrics::counter!("leadrelay_queue_wakeups_total").increment(1);
}

/// An attempt was recorded this long after its answer arrived: the window in which a
/// crashing worker leaves a lead its receiver has to be sent again.
pub fn record_lag(lag: Duration) {
    handle();
    metrics::histogram!("leadrelay_record_lag_seconds").record(lag.as_secs_f64());
}

/// Intake read a list from the database: `no_copy` when the api had no copy of it to use,
/// `stale` when its copy was out of date, or would have turned the lead away.
pub fn intake_list_read(reason: &'static str) {
    handle();
    metrics::counter!("leadrelay_intake_list_reads_total", "reason" => reason).increment(1);
}

/// Intake stored `n` deliveries whose job it pushed (`pushed`), or left to wait in the
/// ledger without one (`waiting`: their integration was paused, at its `maxInFlight`, or
/// at the live workers' share).
pub fn intake_jobs(outcome: &'static str, n: usize) {
    handle();
    metrics::counter!("leadrelay_intake_jobs_total", "outcome" => outcome).increment(n as u64);
}
