//! The AWS Batch and CloudWatch Logs calls the executor makes, behind one small trait, in the
//! executor's own terms. The real implementation ([`super::aws::AwsBatchApi`]) speaks to AWS
//! (or moto); tests put counting layers and scripted fakes behind the same trait.
//!
//! Implementations page through results themselves but do not split requests: the executor
//! sends at most [`MAX_DESCRIBE_IDS`] job IDs and [`MAX_LOG_STREAMS`] log streams per call.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use crate::model::status::{JobState, StatusSummary};

/// AWS accepts at most 100 job IDs per DescribeJobs call.
pub const MAX_DESCRIBE_IDS: usize = 100;
/// AWS accepts at most 100 log stream names per FilterLogEvents call.
pub const MAX_LOG_STREAMS: usize = 100;

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The service's error code (`TooManyRequestsException`, `ClientException`, …) or
    /// `Dispatch`/`Timeout` for calls that did not get an answer.
    pub code: String,
    pub message: String,
    /// Throttling, 5xx, network: worth retrying later.
    pub transient: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The content of a job definition that matters: two definitions with equal content are
/// interchangeable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionContent {
    pub name: String,
    pub image: String,
    pub vcpus: u32,
    /// MiB.
    pub memory: u32,
    pub job_role_arn: String,
    /// Sorted by name.
    pub environment: Vec<(String, String)>,
    /// Attempts per child when Spot reclaims its host (`retryStrategy.attempts`, retrying only
    /// on `Host EC2*` status reasons); `None`: no retry strategy.
    pub attempts: Option<u32>,
    /// `timeout.attemptDurationSeconds`; `None`: no timeout.
    pub timeout_seconds: Option<u64>,
    /// `propagateTags`: the ECS tasks carry the job's tags (for AWS cost allocation).
    pub propagate_tags: bool,
}

/// The status reasons AWS Batch gives a job whose Spot host was reclaimed.
pub const SPOT_RECLAIMED: &str = "Host EC2*";

/// An active revision of a job definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionRevision {
    pub arn: String,
    pub revision: i32,
    /// `None` when it is not a container definition.
    pub content: Option<DefinitionContent>,
    pub tags: BTreeMap<String, String>,
}

/// What SubmitJob gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitRequest {
    pub job_name: String,
    pub queue: String,
    pub definition: String,
    /// `None` for a plain job (one input).
    pub array_size: Option<u32>,
    /// Environment overrides (`FILE_SET_NAME` of the parts past the first).
    pub environment: Vec<(String, String)>,
    pub tags: BTreeMap<String, String>,
    /// For fair-share queues.
    pub share_identifier: Option<String>,
    pub scheduling_priority: Option<u32>,
}

/// A job as ListJobs summarizes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub id: String,
    pub name: String,
    /// `None` for a status this version does not know.
    pub status: Option<JobState>,
    /// Index of an array child.
    pub array_index: Option<u32>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

/// One attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub log_stream: Option<String>,
    pub exit_code: Option<i32>,
    /// The container's reason (`OutOfMemoryError: …`).
    pub reason: Option<String>,
    /// Why the attempt ended (`Host EC2 (instance i-…) terminated.` when Spot reclaimed it).
    pub status_reason: Option<String>,
    /// Milliseconds since the epoch.
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
}

/// A job as DescribeJobs details it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDetail {
    pub id: String,
    pub name: String,
    /// `None` for a status this version does not know.
    pub status: Option<JobState>,
    pub status_reason: Option<String>,
    /// For array parents.
    pub status_summary: Option<StatusSummary>,
    pub array_index: Option<u32>,
    pub tags: BTreeMap<String, String>,
    /// Finished attempts, oldest first.
    pub attempts: Vec<Attempt>,
    /// The current (or last) attempt's container.
    pub log_stream: Option<String>,
    pub exit_code: Option<i32>,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub stream: String,
    pub timestamp: i64,
    pub message: String,
}

/// A page of log events and the token of the next page, if there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPage {
    pub events: Vec<LogEvent>,
    pub next: Option<String>,
}

/// AWS Batch and CloudWatch Logs, as the executor uses them.
pub trait BatchApi: Send + Sync {
    /// ACTIVE revisions of the job definition `name`.
    fn describe_job_definitions<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<DefinitionRevision>>>;

    /// Registers a container job definition; returns its ARN.
    fn register_job_definition<'a>(
        &'a self,
        content: &'a DefinitionContent,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, ApiResult<String>>;

    fn deregister_job_definition<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, ApiResult<()>>;

    /// Submits a job; returns its ID.
    fn submit_job<'a>(&'a self, request: &'a SubmitRequest) -> BoxFuture<'a, ApiResult<String>>;

    /// Jobs of `queue` named `name`, in any status (ListJobs with a JOB_NAME filter).
    fn list_jobs_named<'a>(
        &'a self,
        queue: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<JobSummary>>>;

    /// Details of at most [`MAX_DESCRIBE_IDS`] jobs (never called with none).
    fn describe_jobs<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, ApiResult<Vec<JobDetail>>>;

    fn terminate_job<'a>(&'a self, id: &'a str, reason: &'a str) -> BoxFuture<'a, ApiResult<()>>;

    /// One page of the events of at most [`MAX_LOG_STREAMS`] streams of `group` that match
    /// `pattern`: the first without `token`, else the one it names. A group that does not
    /// exist yet (nothing of the account has logged) has no events.
    fn filter_log_events<'a>(
        &'a self,
        group: &'a str,
        streams: &'a [String],
        pattern: &'a str,
        token: Option<String>,
    ) -> BoxFuture<'a, ApiResult<LogPage>>;
}
