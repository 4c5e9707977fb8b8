//! The `SimulationSeries` status: the record the reconcile loop resumes from.
//!
//! It stays small at any series size: per group and job it keeps names, IDs, array sizes,
//! status summaries and log counts; per-child detail goes to the pass record file in the working
//! location (`{name}/{date}/simseries/pass-{n}.json`), which `pass.record` names.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::layout::Date;
use crate::model::usage::PassUsage;

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
    /// Inputs of the current pass by state, as of the last poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<InputCounts>,
    /// `done/total` inputs of the current pass, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_progress: Option<String>,
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
    /// UTC date (`YYYY-MM-DD`) of the dated folder of the pass, once it is planned.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "planned_date"
    )]
    #[schemars(with = "Option<String>")]
    pub date: Option<Date>,
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
    /// The last failure of the pass, if any, as `Reason: message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub last_error: Option<PassError>,
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
    /// Runs still without their outputs once every job of the pass succeeded: the model did
    /// not write where it must. The pass is then `Incomplete` (reason `OutputsMissing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_missing: Option<OutputsMissing>,
    /// What the pass's children used (AWS Batch: from each attempt's start and stop), once its
    /// jobs ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<PassUsage>,
    /// Jobs per group, in the order of `series.groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupJobs>,
}

/// Runs whose jobs succeeded without writing their outputs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputsMissing {
    /// Runs of the series without all their outputs.
    pub runs: u64,
    /// One of them (`{name}_{condition}_{seed:04}`).
    pub example: String,
    /// Where the model must write them: `{BATCH_WORKING_URL}outputs/`.
    pub folder: String,
}

/// Inputs (array children) of the current pass by state, as of the last poll.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InputCounts {
    /// Inputs of the pass.
    pub total: u32,
    /// Inputs whose child exited 0.
    pub done: u32,
    /// Inputs whose child failed or was terminated.
    pub failed: u32,
    /// Inputs whose child is starting or running.
    pub running: u32,
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
    /// Job ID once submitted; absent while only the intent to submit is recorded, and for a
    /// job that could not be submitted (its state is then `FAILED`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "submitted_id"
    )]
    pub id: Option<String>,
    /// Last observed job status (`SUBMITTED` … `SUCCEEDED`, `FAILED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
    /// Children per status, as last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<StatusSummary>,
    /// Whether simseries terminated the job after the last poll.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminated: bool,
    /// What the job waits for before any child can start, where the executor knows it (a
    /// Kubernetes Job suspended until Kueue admits it), as of the last poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

/// The status of a job or array child, as AWS Batch names it (and the local executor
/// reports it).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Submitted,
    Pending,
    Runnable,
    Starting,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    /// Every state, in the order AWS Batch moves a job through them.
    pub const ALL: [JobState; 7] = [
        JobState::Submitted,
        JobState::Pending,
        JobState::Runnable,
        JobState::Starting,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
    ];

    /// A job in a finished state never changes again.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }

    /// The name AWS Batch uses (`SUCCEEDED`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Submitted => "SUBMITTED",
            JobState::Pending => "PENDING",
            JobState::Runnable => "RUNNABLE",
            JobState::Starting => "STARTING",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| format!("unknown job status {text:?}"))
    }
}

/// Where a job stands with its submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submission<'a> {
    /// The intent to submit is recorded; the job may have reached AWS before a crash, so the
    /// executor adopts it by name before submitting.
    Intended,
    /// Submitted, with this ID.
    Submitted(&'a str),
    /// It could not be submitted (its definition or its submission was refused); the pass ends
    /// without it and a rerun runs its inputs again.
    Refused,
}

impl JobRecord {
    /// A job the pass plans to submit.
    pub fn planned(name: String, file_set_name: String, array_size: u32, runs: u32) -> Self {
        JobRecord {
            name,
            file_set_name,
            array_size,
            runs,
            id: None,
            state: None,
            summary: None,
            terminated: false,
            waiting_for: None,
        }
    }

    pub fn submission(&self) -> Submission<'_> {
        match (&self.id, self.state) {
            (Some(id), _) => Submission::Submitted(id),
            (None, Some(JobState::Failed)) => Submission::Refused,
            (None, _) => Submission::Intended,
        }
    }

    /// The job's ID, once submitted.
    pub fn submitted_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn record_submitted(&mut self, id: String) {
        self.id = Some(id);
        self.state = Some(JobState::Submitted);
    }

    /// Records that the job could not be submitted: it counts as failed.
    pub fn record_refused(&mut self) {
        self.id = None;
        self.state = Some(JobState::Failed);
    }

    /// Whether the job reached a final state (a refused job has).
    pub fn is_finished(&self) -> bool {
        self.state.is_some_and(JobState::is_finished)
    }

    /// Submitted, not finished, not terminated by simseries: it may still run.
    pub fn may_run(&self) -> bool {
        self.id.is_some() && !self.is_finished() && !self.terminated
    }

    /// Whether every run of the job succeeded.
    pub fn succeeded(&self) -> bool {
        self.state == Some(JobState::Succeeded) && !self.terminated
    }
}

/// Reads a job ID; the `unsubmitted:{name}` placeholder older versions wrote for a refused job
/// reads as no ID (its state is `FAILED`, so it reads as refused).
fn submitted_id<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let id = Option::<String>::deserialize(deserializer)?;
    Ok(id.filter(|id| !id.starts_with("unsubmitted:")))
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

impl StatusSummary {
    /// One job in `state` (a plain job, or an array whose summary is not reported).
    pub fn of(state: JobState) -> Self {
        let mut summary = StatusSummary::default();
        summary.add(state, 1);
        summary
    }

    /// Counts `n` more children in `state`.
    pub fn add(&mut self, state: JobState, n: u32) {
        let count = match state {
            JobState::Submitted => &mut self.submitted,
            JobState::Pending => &mut self.pending,
            JobState::Runnable => &mut self.runnable,
            JobState::Starting => &mut self.starting,
            JobState::Running => &mut self.running,
            JobState::Succeeded => &mut self.succeeded,
            JobState::Failed => &mut self.failed,
        };
        *count = count.saturating_add(n);
    }
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
    /// The jobs of the pass that may still run (submitted, or maybe submitted, and not seen
    /// finished): what deleting a series stops.
    pub fn jobs_that_may_run(&self) -> Vec<JobRecord> {
        self.groups
            .iter()
            .flat_map(|g| &g.jobs)
            .filter(|j| j.may_run())
            .cloned()
            .collect()
    }

    /// The pass's inputs by state, from the jobs' last observed summaries (a job that could
    /// not be submitted counts all its inputs as failed).
    pub fn input_counts(&self) -> InputCounts {
        let mut counts = InputCounts::default();
        for job in self.groups.iter().flat_map(|g| &g.jobs) {
            counts.total = counts.total.saturating_add(job.array_size);
            match (&job.summary, job.submission()) {
                (Some(s), _) => {
                    counts.done = counts.done.saturating_add(s.succeeded);
                    counts.failed = counts.failed.saturating_add(s.failed);
                    counts.running = counts
                        .running
                        .saturating_add(s.running.saturating_add(s.starting));
                }
                (None, Submission::Refused) => {
                    counts.failed = counts.failed.saturating_add(job.array_size)
                }
                (None, _) => {}
            }
        }
        counts
    }

    /// The reason of the last failure.
    pub fn error_reason(&self) -> Option<&str> {
        self.last_error.as_ref().map(|e| e.reason.as_str())
    }
}

/// Why a step of a pass failed: a CamelCase reason (the reason of the conditions and events
/// it leads to) and a message for people. The status keeps it as `Reason: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassError {
    pub reason: String,
    pub message: String,
}

impl PassError {
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        PassError {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::str::FromStr for PassError {
    type Err = std::convert::Infallible;

    /// `Reason: message`; text without a reason (written by hand) reads as `PassFailed`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let reason_like = |r: &str| !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric());
        Ok(match text.split_once(": ") {
            Some((reason, message)) if reason_like(reason) => PassError::new(reason, message),
            _ => PassError::new("PassFailed", text),
        })
    }
}

impl Serialize for PassError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PassError {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let Ok(error) = text.parse();
        Ok(error)
    }
}

/// Reads the date of a pass; the empty date older versions wrote before planning reads as
/// none.
fn planned_date<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Date>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
    }
}
