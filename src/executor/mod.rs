//! Executors: where array jobs run. The local executor runs each child as a process on this
//! machine; the AWS Batch executor submits array jobs; the Kubernetes executor creates Indexed
//! Jobs. All sit behind [`Executor`], so the reconcile loop and its drivers do not know which
//! one they talk to.

pub mod batch;
pub mod kubernetes;
pub mod local;
pub mod spool;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::model::layout::DatedFolder;
use crate::model::outcome::{ChildOutcome, Definition, Failure, GroupLogs, JobObservation};
use crate::model::spec::SimulationSeriesSpec;
use crate::model::status::{GroupJobs, JobRecord, Pass};
use crate::storage::Storage;

/// Keys of the tags (AWS Batch) and annotations (Kubernetes) that say whose a job is.
pub const TAG_SERIES: &str = "simseries.io/series";
pub const TAG_OWNER: &str = "simseries.io/owner";
pub const TAG_PASS: &str = "simseries.io/pass";
pub const TAG_GENERATION: &str = "simseries.io/generation";
pub const TAG_FILE_SET: &str = "simseries.io/file-set";

/// What an executor needs to know about the pass it works for.
#[derive(Debug, Clone)]
pub struct PassContext {
    pub spec: Arc<SimulationSeriesSpec>,
    pub folder: DatedFolder,
    pub pass: u32,
    pub generation: i64,
    /// Who runs the series: `{namespace}/{name}` in the cluster, the spec file locally.
    pub owner: String,
    /// The working location, where inputs, logs and outputs are.
    pub working: Arc<dyn Storage>,
}

impl PassContext {
    /// `BATCH_WORKING_URL`: the dated folder's address, with the trailing slash the model
    /// images expect.
    pub fn working_url(&self) -> String {
        self.working.location().url_of(&self.folder.root())
    }
}

/// Runs array jobs. Every call is idempotent: a driver that died may repeat it.
pub trait Executor: Send + Sync {
    /// Makes sure the group's job definition exists (reusing an identical active revision).
    fn register<'a>(
        &'a self,
        context: &'a PassContext,
        group: &'a GroupJobs,
    ) -> BoxFuture<'a, Result<Definition, Failure>>;

    /// Makes sure the job is submitted; returns its ID. With `may_exist`, a submission sent
    /// before a crash or a failed call may have reached the executor: adopt it, never submit
    /// twice. Without it the job was never sent, and the executor need not look.
    fn submit<'a>(
        &'a self,
        context: &'a PassContext,
        group: &'a GroupJobs,
        job: &'a JobRecord,
        may_exist: bool,
    ) -> BoxFuture<'a, Result<String, Failure>>;

    /// Observes the given submitted jobs.
    fn poll<'a>(
        &'a self,
        context: &'a PassContext,
        jobs: &'a [JobRecord],
    ) -> BoxFuture<'a, Result<Vec<JobObservation>, Failure>>;

    /// Terminates the given jobs (and their children); returns the IDs it terminated.
    fn terminate<'a>(
        &'a self,
        context: &'a PassContext,
        jobs: &'a [JobRecord],
    ) -> BoxFuture<'a, Result<Vec<String>, Failure>>;

    /// Saves every child's log, filtered by `logFilter`, under `{name}/{date}/logs/`.
    fn collect_logs<'a>(
        &'a self,
        context: &'a PassContext,
        pass: &'a Pass,
    ) -> BoxFuture<'a, Result<Vec<GroupLogs>, Failure>>;

    /// Outcome of each child of a job, for the pass record.
    fn children<'a>(
        &'a self,
        context: &'a PassContext,
        job: &'a JobRecord,
    ) -> BoxFuture<'a, Result<Vec<ChildOutcome>, Failure>>;

    /// Removes the scaffolding the pass created, once none of its jobs still runs.
    fn clean<'a>(
        &'a self,
        context: &'a PassContext,
        pass: &'a Pass,
    ) -> BoxFuture<'a, Result<(), Failure>>;

    /// Children per state right now, where the executor sees them change between polls
    /// (local processes); `None` where only a poll tells (AWS Batch).
    fn live(&self) -> Option<LiveCounts> {
        None
    }

    /// Resolves when a child changes state; never, where only a poll tells.
    fn changed(&self) -> BoxFuture<'_, ()> {
        futures::future::pending().boxed()
    }

    /// Stops what this process started (on Ctrl-C); jobs on AWS Batch go on.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        futures::future::ready(()).boxed()
    }
}

/// Children of the jobs an executor runs, by state, right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveCounts {
    pub done: u32,
    pub failed: u32,
    pub running: u32,
    /// Children not finished (running or waiting for a slot).
    pub unfinished: u32,
}

/// Log keys are listed in the status up to this many per group; past it, the pass record
/// holds them and the status keeps the folder and the count.
pub const STATUS_LOG_KEYS: usize = 20;

/// A storage failure as the decision function sees it: unreachable or throttled storage is
/// worth retrying; anything else needs the user.
pub fn storage_failure(reason: &str, error: &crate::storage::StorageError) -> Failure {
    if error.kind.is_transient() {
        Failure::transient(reason, error.to_string())
    } else {
        Failure::permanent(reason, error.to_string())
    }
}

/// One group's saved log files, as the status describes them.
pub fn group_logs(context: &PassContext, group: &str, keys: Vec<String>) -> GroupLogs {
    GroupLogs {
        group: group.to_string(),
        record: crate::model::status::LogRecord {
            folder: context.folder.pass_logs(context.pass),
            count: keys.len() as u32,
            keys: if keys.len() <= STATUS_LOG_KEYS {
                keys
            } else {
                Vec::new()
            },
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The context of pass `pass` of a small series (2 vCPUs, 4,096 MiB) in a local folder.
    pub fn context(pass: u32) -> PassContext {
        let spec: SimulationSeriesSpec = serde_yaml_ng::from_str(
            "context: {workingLocation: /w, manifestLocation: /m, templateLocation: /t, vcpus: 2, memory: 4096}
series: {name: SERIES, manifestKey: m.csv, templateKey: t.xml, seeds: [0], conditions: [{key: A}], extensions: [CSV]}
parameters: {model: toy, image: toy, retries: 1, retryDelay: 1}
",
        )
        .unwrap();
        PassContext {
            folder: DatedFolder::new(&spec.series.name, crate::model::layout::Date::today_utc()),
            spec: Arc::new(spec),
            pass,
            generation: 7,
            owner: "lab/series".into(),
            working: Arc::new(crate::storage::LocalStorage::new("/w".into())),
        }
    }
}
