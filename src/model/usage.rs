//! What a pass's children used: each attempt's run time x the job's vCPUs and memory, as
//! vCPU-hours and GiB-hours per child (the pass record) and per pass (the status), with the
//! number of attempts, the children tried more than once (Spot reclaims) and an estimated cost
//! from the user's price of a vCPU-hour.
//!
//! Sums are kept exact, in vCPU- and MiB-milliseconds, so adding children in any order gives
//! the same figures; hours are derived, rounded, only for display.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const MILLIS_PER_HOUR: f64 = 3_600_000.0;
const MIB_PER_GIB: f64 = 1024.0;

/// One attempt of a child, as the pass record keeps it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why the attempt ended (`Host EC2 (instance …) terminated.` when Spot reclaimed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AttemptRecord {
    /// An attempt from AWS's millisecond timestamps.
    pub fn from_millis(
        started_at: Option<i64>,
        stopped_at: Option<i64>,
        exit_code: Option<i32>,
        reason: Option<String>,
    ) -> Self {
        let time = |ms: i64| Timestamp::from_millisecond(ms).ok().map(Time);
        AttemptRecord {
            started_at: started_at.and_then(time),
            stopped_at: stopped_at.and_then(time),
            exit_code,
            reason,
        }
    }

    /// How long the attempt ran; nothing for one that never started or has no end (it cannot
    /// be measured, and guessing would inflate the bill).
    pub fn millis(&self) -> u64 {
        match (&self.started_at, &self.stopped_at) {
            (Some(Time(start)), Some(Time(stop))) => {
                let span = stop.as_millisecond().saturating_sub(start.as_millisecond());
                u64::try_from(span).unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// What a job's children get: the definition's vCPUs and memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    pub vcpus: u32,
    /// MiB.
    pub memory: u32,
}

/// Usage of some children, exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub children: u32,
    pub attempts: u32,
    /// Children tried more than once (AWS Batch retries only Spot reclaims for simseries).
    pub retried_children: u32,
    pub vcpu_millis: u64,
    pub mib_millis: u64,
}

impl Usage {
    /// The usage of one child from its attempts.
    pub fn of_child(attempts: &[AttemptRecord], resources: Resources) -> Usage {
        let millis: u64 = attempts.iter().map(AttemptRecord::millis).sum();
        Usage {
            children: 1,
            attempts: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
            retried_children: u32::from(attempts.len() > 1),
            vcpu_millis: millis.saturating_mul(u64::from(resources.vcpus)),
            mib_millis: millis.saturating_mul(u64::from(resources.memory)),
        }
    }

    pub fn vcpu_hours(&self) -> f64 {
        rounded(self.vcpu_millis as f64 / MILLIS_PER_HOUR)
    }

    pub fn gib_hours(&self) -> f64 {
        rounded(self.mib_millis as f64 / MIB_PER_GIB / MILLIS_PER_HOUR)
    }

    /// Whether any attempt had a measurable run time (the local executor reports none).
    pub fn is_measured(&self) -> bool {
        self.vcpu_millis > 0 || self.mib_millis > 0
    }
}

impl std::ops::Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage {
            children: self.children.saturating_add(other.children),
            attempts: self.attempts.saturating_add(other.attempts),
            retried_children: self.retried_children.saturating_add(other.retried_children),
            vcpu_millis: self.vcpu_millis.saturating_add(other.vcpu_millis),
            mib_millis: self.mib_millis.saturating_add(other.mib_millis),
        }
    }
}

/// Six decimals: a vCPU-hour to the 3.6 ms, stable across status writes.
fn rounded(hours: f64) -> f64 {
    (hours * 1e6).round() / 1e6
}

/// What one child used, in the pass record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildUsage {
    /// Run time of all its attempts.
    pub seconds: f64,
    pub vcpu_hours: f64,
    pub gib_hours: f64,
}

impl ChildUsage {
    pub fn of(usage: &Usage, resources: Resources) -> Self {
        let vcpus = u64::from(resources.vcpus.max(1));
        ChildUsage {
            seconds: (usage.vcpu_millis / vcpus) as f64 / 1000.0,
            vcpu_hours: usage.vcpu_hours(),
            gib_hours: usage.gib_hours(),
        }
    }
}

/// What a pass's children used, in the status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PassUsage {
    /// Children that made at least one attempt.
    pub children: u32,
    /// Their attempts: more than `children` when AWS Batch retried Spot reclaims.
    pub attempts: u32,
    /// Children tried more than once (`parameters.spotRetries`).
    #[serde(default)]
    pub retried_children: u32,
    /// Sum over attempts of run time x the job's vCPUs, in hours.
    pub vcpu_hours: f64,
    /// Sum over attempts of run time x the job's memory, in GiB-hours.
    pub gib_hours: f64,
    /// `vcpuHours` x `parameters.vcpuHourPrice`, when a price is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost: Option<f64>,
}

impl PassUsage {
    pub fn new(usage: &Usage, vcpu_hour_price: Option<f64>) -> Self {
        let vcpu_hours = usage.vcpu_hours();
        PassUsage {
            children: usage.children,
            attempts: usage.attempts,
            retried_children: usage.retried_children,
            vcpu_hours,
            gib_hours: usage.gib_hours(),
            estimated_cost: vcpu_hour_price.map(|price| rounded(vcpu_hours * price)),
        }
    }

    /// One line for people: `1.5 vCPU-hours, 3 GiB-hours over 12 attempts of 11 children (1
    /// retried); estimated cost 0.06`.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "{} vCPU-hours, {} GiB-hours over {} attempt(s) of {} child(ren)",
            self.vcpu_hours, self.gib_hours, self.attempts, self.children
        );
        if self.retried_children > 0 {
            line.push_str(&format!(
                " ({} retried after a Spot reclaim)",
                self.retried_children
            ));
        }
        if let Some(cost) = self.estimated_cost {
            line.push_str(&format!("; estimated cost {cost}"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(start_ms: i64, stop_ms: i64) -> AttemptRecord {
        AttemptRecord::from_millis(Some(start_ms), Some(stop_ms), None, None)
    }

    const RESOURCES: Resources = Resources {
        vcpus: 2,
        memory: 4096,
    };

    #[test]
    fn a_child_uses_the_run_time_of_every_attempt_times_its_resources() {
        // A reclaimed attempt of 30 min, then a whole hour.
        let attempts = [attempt(0, 1_800_000), attempt(2_000_000, 5_600_000)];
        let usage = Usage::of_child(&attempts, RESOURCES);
        assert_eq!(usage.attempts, 2);
        assert_eq!(usage.retried_children, 1);
        assert_eq!(usage.vcpu_hours(), 3.0, "1.5 h x 2 vCPUs");
        assert_eq!(usage.gib_hours(), 6.0, "1.5 h x 4 GiB");
        let child = ChildUsage::of(&usage, RESOURCES);
        assert_eq!(child.seconds, 5400.0);
    }

    #[test]
    fn attempts_without_both_times_count_nothing() {
        let never_started = AttemptRecord::from_millis(None, Some(1000), None, None);
        let no_end = AttemptRecord::from_millis(Some(1000), None, None, None);
        let backwards = attempt(5000, 1000);
        let usage = Usage::of_child(&[never_started, no_end, backwards], RESOURCES);
        assert_eq!(usage.vcpu_millis, 0);
        assert!(!usage.is_measured());
    }

    #[test]
    fn a_pass_sums_its_children_and_prices_the_vcpu_hours() {
        let one = Usage::of_child(&[attempt(0, 3_600_000)], RESOURCES);
        let other = Usage::of_child(&[attempt(0, 900_000), attempt(0, 900_000)], RESOURCES);
        let pass = PassUsage::new(&(one + other), Some(0.05));
        assert_eq!(pass.children, 2);
        assert_eq!(pass.attempts, 3);
        assert_eq!(pass.retried_children, 1);
        assert_eq!(pass.vcpu_hours, 3.0);
        assert_eq!(pass.gib_hours, 6.0);
        assert_eq!(pass.estimated_cost, Some(0.15));
        assert_eq!(
            pass.describe(),
            "3 vCPU-hours, 6 GiB-hours over 3 attempt(s) of 2 child(ren) (1 retried after a Spot reclaim); estimated cost 0.15"
        );
        assert_eq!(PassUsage::new(&one, None).estimated_cost, None);
    }
}
