//! The `SimulationSeries` status: the record the reconcile loop resumes from.
//!
//! It stays small at any series size: per group and job it keeps names, IDs, array sizes,
//! status summaries and log counts; per-child detail goes to the pass record file in the working
//! location (`{name}/{date}/simseries/pass-{n}.json`), which `pass.record` names.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a series.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulationSeriesStatus {
    /// Phase of the current (or last) pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling` and `Stalled` (kstatus conventions), each with reason and message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Run counts of the series as last planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<RunCounts>,
    /// `complete/total` runs, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Jobs of the current pass that have not finished.
    #[serde(default)]
    pub active_jobs: u32,
    /// Polls of the current pass so far.
    #[serde(default)]
    pub attempts: u32,
    /// The current (or last) pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<Pass>,
}

/// Where a pass stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Finding missing runs, rendering inputs.
    Planning,
    /// Writing inputs and init copies, registering and submitting jobs.
    Submitting,
    /// Polling the jobs, up to `retries` times.
    Running,
    /// Terminating jobs still unfinished after the last poll.
    Terminating,
    /// Saving job logs.
    CollectingLogs,
    /// Removing the job scaffolding of the pass.
    Cleaning,
    /// The pass ended and every run it started succeeded (or nothing was missing).
    Complete,
    /// The pass ended with failed or terminated runs; a rerun resubmits just those.
    Incomplete,
    /// The pass could not start (bad template, unreadable manifest, invalid spec).
    Failed,
}

impl Phase {
    /// A finished pass is never repeated for the same generation and rerun value.
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Complete | Phase::Incomplete | Phase::Failed)
    }
}

/// Run counts, as planned at the start of the pass.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunCounts {
    /// Conditions x seeds of the groups that are not skipped.
    pub total: u64,
    /// Runs with every output extension.
    pub complete: u64,
    /// Runs with no output at all.
    pub missing: u64,
    /// Runs with some but not all output extensions.
    pub incomplete: u64,
}

/// One pass: plan, submit, poll, terminate, collect logs, clean.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pass {
    /// Pass number, from 1, increasing over the life of the series.
    pub number: u32,
    /// The `metadata.generation` (locally: the spec digest) the pass runs.
    pub generation: i64,
    /// Value of the `simseries.io/rerun` annotation when the pass started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<String>,
    /// UTC date (`YYYY-MM-DD`) of the dated folder of the pass.
    pub date: String,
    /// Phase of the pass.
    pub phase: Phase,
    /// When the pass started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the pass ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Polls so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the next poll (or retry of a failed call) is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_at: Option<Time>,
    /// Failed calls in a row (throttling, network); reset by the next success.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_errors: u32,
    /// The last failure of the pass, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Key of the pass record (per-child detail) in the working location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Digest of the inputs planning read (template, manifest, init files), where the driver
    /// can tell it (the local runner): a pass that failed to start starts again once it
    /// changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
    /// Passes before this one, for this generation, that failed to start for a cause outside
    /// the spec; it doubles the wait before the next try.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_starts: u32,
    /// A pass that failed to start for a cause outside the spec (template, manifest, init
    /// files, storage) is started again at this time (1 min doubling to 1 h), or, locally, as
    /// soon as its inputs change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Time>,
    /// Jobs per group, in the order of `series.groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupJobs>,
}

/// The jobs of one group in a pass.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupJobs {
    /// Group name (`_` for the default group).
    pub group: String,
    /// Group key: the series name for `_`, else `{name}_{group}`.
    pub group_key: String,
    /// Job definition the group's jobs run (ARN on AWS Batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_definition: Option<String>,
    /// Whether the job definition is this series' own (registered by it); `cleanJobs`
    /// deregisters only those.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub definition_owned: bool,
    /// Array jobs of the group (more than one only past 10,000 inputs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobRecord>,
    /// Saved logs of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogRecord>,
}

/// One (array) job.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// Deterministic job name; with the pass tags it finds the job again after a crash.
    pub name: String,
    /// `FILE_SET_NAME` of the job: its children read `inputs/{fileSetName}_{index}.xml`.
    pub file_set_name: String,
    /// Number of array children (1: a plain job).
    pub array_size: u32,
    /// Runs the job covers (more than `arraySize` when ARCADE packs seeds).
    #[serde(default)]
    pub runs: u32,
    /// Job ID once submitted; absent while only the intent to submit is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Last observed job status (`SUBMITTED` … `SUCCEEDED`, `FAILED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Children per status, as last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<StatusSummary>,
    /// Whether simseries terminated the job after the last poll.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminated: bool,
}

/// Children of an array job per status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusSummary {
    /// Children submitted but not yet evaluated by the scheduler.
    pub submitted: u32,
    /// Children waiting on dependencies.
    pub pending: u32,
    /// Children waiting for capacity.
    pub runnable: u32,
    /// Children being placed on a host.
    pub starting: u32,
    /// Children running.
    pub running: u32,
    /// Children that exited 0.
    pub succeeded: u32,
    /// Children that failed or were terminated.
    pub failed: u32,
}

/// Where the saved logs of a group are.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// Folder of the logs in the working location (`{name}/{date}/logs/`).
    pub folder: String,
    /// Number of log files saved.
    pub count: u32,
    /// Keys of the saved logs while they are few; past that, the pass record holds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Pass {
    /// The reason of the last failure (`lastError` is `Reason: message`).
    pub fn error_reason(&self) -> Option<&str> {
        let error = self.last_error.as_deref()?;
        error.split_once(": ").map(|(reason, _)| reason)
    }
}
