//! The types the decision and its adapters exchange: what an action produced (a plan, a job
//! definition, job observations, saved logs, child outcomes) or why it failed. They sit below
//! both the decision ([`crate::pass::decide`]) and the executors, so neither imports the other.

use crate::model::layout::Date;
use crate::model::status::{JobState, LogRecord, PassError, RunCounts, StatusSummary};
use crate::model::usage::{AttemptRecord, ChildUsage, PassUsage};

/// A failed action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// CamelCase reason, e.g. `TemplateError`, `Throttled`.
    pub reason: String,
    pub message: String,
    /// Worth retrying as is (throttling, network); otherwise the user has to act.
    pub transient: bool,
}

impl Failure {
    /// What the status records of it.
    pub fn error(&self) -> PassError {
        PassError::new(&self.reason, &self.message)
    }

    pub fn permanent(reason: &str, message: impl Into<String>) -> Self {
        Failure {
            reason: reason.to_string(),
            message: message.into(),
            transient: false,
        }
    }

    pub fn transient(reason: &str, message: impl Into<String>) -> Self {
        Failure {
            reason: reason.to_string(),
            message: message.into(),
            transient: true,
        }
    }
}

/// What planning found: run counts and the jobs to submit per group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOutcome {
    pub date: Date,
    pub counts: RunCounts,
    /// Groups that have inputs, in the order of `series.groups`.
    pub groups: Vec<PlannedGroup>,
    /// Key of the pass record in the working location.
    pub record: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedGroup {
    pub group: String,
    pub group_key: String,
    pub jobs: Vec<PlannedJobRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedJobRecord {
    pub name: String,
    pub file_set_name: String,
    pub array_size: u32,
    pub runs: u32,
}

/// Completeness after a pass's jobs ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Recount {
    pub counts: RunCounts,
    /// A run still without all its outputs (the first in plan order), if any.
    pub example_missing: Option<String>,
    /// Where the model writes the outputs of the pass: `{BATCH_WORKING_URL}outputs/`.
    pub outputs: String,
    /// What the children used, when the executor measures it (AWS Batch).
    pub usage: Option<PassUsage>,
}

/// A job as last seen by the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobObservation {
    pub id: String,
    pub state: JobState,
    pub summary: StatusSummary,
    /// What the job waits for before any child can start (Kueue's admission), if anything.
    pub waiting_for: Option<String>,
}

impl JobObservation {
    /// A job the executor no longer knows (AWS forgets jobs days after they end; someone
    /// deleted a Kubernetes Job): nothing more will come of it.
    pub fn gone(id: &str) -> Self {
        JobObservation {
            id: id.to_string(),
            state: JobState::Failed,
            summary: StatusSummary::of(JobState::Failed),
            waiting_for: None,
        }
    }
}

/// Logs saved for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLogs {
    pub group: String,
    pub record: LogRecord,
}

/// Per-child outcome, for the pass record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildOutcome {
    pub index: u32,
    /// `SUCCEEDED`, `FAILED`, or the last state seen; absent when the child was never seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Child job ID (AWS Batch: `parentId:index`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Every attempt, oldest first (more than one when Spot reclaims were retried).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptRecord>,
    /// What the attempts used, when they were measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ChildUsage>,
}

impl ChildOutcome {
    /// The children of a job that was never submitted (its submission was refused).
    pub fn not_submitted(array_size: u32) -> Vec<ChildOutcome> {
        (0..array_size)
            .map(|index| {
                ChildOutcome::bare(index, Some(JobState::Failed), Some("not submitted".into()))
            })
            .collect()
    }

    /// A child the executor knows nothing more of than its state.
    pub fn bare(index: u32, state: Option<JobState>, reason: Option<String>) -> Self {
        ChildOutcome {
            index,
            state,
            exit_code: None,
            reason,
            id: None,
            attempts: Vec::new(),
            usage: None,
        }
    }
}

/// The job definition a group's jobs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// ARN on AWS Batch.
    pub id: String,
    /// Registered by this series (tagged as its own): `cleanJobs` deregisters it.
    pub owned: bool,
}
