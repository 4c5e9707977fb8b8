//! Prometheus metrics of the controller, with bounded labels: no object names, only reasons,
//! API names and run states. Usage per series is in each series' status (`pass.usage`); the
//! counters here sum it over every series.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::model::status::SimulationSeriesStatus;
use crate::model::usage::PassUsage;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

/// The controller's metrics and the registry that serves them.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub errors: Family<ReasonLabels, Counter>,
    pub aws_calls: Family<ApiLabels, Counter>,
    /// Events that could not be published, by the API's reason (e.g. `Forbidden`).
    pub event_errors: Family<ReasonLabels, Counter>,
    pub active_jobs: Gauge,
    pub runs: Family<StateLabels, Gauge>,
    pub duration: Histogram,
    pub vcpu_hours: Counter<f64, AtomicU64>,
    pub gib_hours: Counter<f64, AtomicU64>,
    pub retried_children: Counter,
    pub estimated_cost: Counter<f64, AtomicU64>,
    /// Last known counts per series (kept to sum; never exported per series).
    series: Mutex<HashMap<String, SeriesCounts>>,
}

#[derive(Clone, Copy, Default)]
struct SeriesCounts {
    active: i64,
    complete: i64,
    missing: i64,
    incomplete: i64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("simseries");
        let reconciles = Counter::default();
        let errors = Family::<ReasonLabels, Counter>::default();
        let aws_calls = Family::<ApiLabels, Counter>::default();
        let event_errors = Family::<ReasonLabels, Counter>::default();
        let active_jobs = Gauge::default();
        let runs = Family::<StateLabels, Gauge>::default();
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        let vcpu_hours = Counter::<f64, AtomicU64>::default();
        let gib_hours = Counter::<f64, AtomicU64>::default();
        let retried_children = Counter::default();
        let estimated_cost = Counter::<f64, AtomicU64>::default();
        registry.register(
            "vcpu_hours",
            "vCPU-hours used by the children of finished passes (AWS Batch)",
            vcpu_hours.clone(),
        );
        registry.register(
            "gib_hours",
            "GiB-hours of memory used by the children of finished passes (AWS Batch)",
            gib_hours.clone(),
        );
        registry.register(
            "retried_children",
            "Children AWS Batch tried again after a Spot reclaim",
            retried_children.clone(),
        );
        registry.register(
            "estimated_cost",
            "Estimated cost of finished passes, from parameters.vcpuHourPrice",
            estimated_cost.clone(),
        );
        registry.register(
            "reconciliations",
            "Reconciliations of SimulationSeries",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciliations by reason",
            errors.clone(),
        );
        registry.register(
            "event_errors",
            "Events the controller could not publish, by the API server's reason (Forbidden: its role lacks events create)",
            event_errors.clone(),
        );
        registry.register(
            "aws_calls",
            "AWS Batch and CloudWatch Logs calls by API",
            aws_calls.clone(),
        );
        registry.register(
            "active_jobs",
            "Jobs of running passes that have not finished",
            active_jobs.clone(),
        );
        registry.register(
            "runs",
            "Runs of all series by state, as last counted",
            runs.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time of one reconciliation",
            duration.clone(),
        );
        Metrics {
            registry,
            reconciles,
            errors,
            aws_calls,
            event_errors,
            active_jobs,
            runs,
            duration,
            vcpu_hours,
            gib_hours,
            retried_children,
            estimated_cost,
            series: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("metrics encode");
        out
    }

    /// Counts one AWS call.
    pub fn aws_call(&self, api: &str) {
        self.aws_calls
            .get_or_create(&ApiLabels { api: api.into() })
            .inc();
    }

    /// Counts one event that could not be published.
    pub fn event_error(&self, reason: &str) {
        self.event_errors
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn error(&self, reason: &str) {
        self.errors
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Adds what a finished pass used.
    pub fn add_usage(&self, usage: &PassUsage) {
        self.vcpu_hours.inc_by(usage.vcpu_hours);
        self.gib_hours.inc_by(usage.gib_hours);
        self.retried_children
            .inc_by(u64::from(usage.retried_children));
        if let Some(cost) = usage.estimated_cost {
            self.estimated_cost.inc_by(cost);
        }
    }

    pub fn observe_duration(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Records the counts of one series (`None`: the series is gone) and updates the sums.
    pub fn set_series(&self, key: &str, status: Option<&SimulationSeriesStatus>) {
        let mut series = self.series.lock().expect("metrics lock");
        match status {
            Some(status) => {
                let runs = status.runs.clone().unwrap_or_default();
                series.insert(
                    key.to_string(),
                    SeriesCounts {
                        active: i64::from(status.active_jobs),
                        complete: runs.complete as i64,
                        missing: runs.missing as i64,
                        incomplete: runs.incomplete as i64,
                    },
                );
            }
            None => {
                series.remove(key);
            }
        }
        let mut sum = SeriesCounts::default();
        for counts in series.values() {
            sum.active += counts.active;
            sum.complete += counts.complete;
            sum.missing += counts.missing;
            sum.incomplete += counts.incomplete;
        }
        self.active_jobs.set(sum.active);
        for (state, value) in [
            ("complete", sum.complete),
            ("missing", sum.missing),
            ("incomplete", sum.incomplete),
        ] {
            self.runs
                .get_or_create(&StateLabels {
                    state: state.into(),
                })
                .set(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::usage::{AttemptRecord, Resources, Usage};

    #[test]
    fn usage_of_finished_passes_adds_up() {
        let metrics = Metrics::default();
        let hour = AttemptRecord::from_millis(Some(0), Some(3_600_000), None, None);
        let resources = Resources {
            vcpus: 2,
            memory: 1024,
        };
        let usage = Usage::of_child(&[hour.clone(), hour], resources);
        let pass = PassUsage::new(&usage, Some(0.5));
        metrics.add_usage(&pass);
        metrics.add_usage(&pass);
        let text = metrics.encode();
        for line in [
            "simseries_vcpu_hours_total 8.0",
            "simseries_gib_hours_total 4.0",
            "simseries_retried_children_total 2",
            "simseries_estimated_cost_total 4.0",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
