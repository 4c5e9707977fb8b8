//! Prometheus metrics of the controller, with bounded labels: no object names, only reasons,
//! API names and run states.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::model::status::SimulationSeriesStatus;

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
    pub active_jobs: Gauge,
    pub runs: Family<StateLabels, Gauge>,
    pub duration: Histogram,
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
        let active_jobs = Gauge::default();
        let runs = Family::<StateLabels, Gauge>::default();
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
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
            active_jobs,
            runs,
            duration,
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

    pub fn error(&self, reason: &str) {
        self.errors
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
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
