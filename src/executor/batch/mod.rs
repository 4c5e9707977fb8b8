//! The AWS Batch executor: one array job per group (split past 10,000 inputs), the container
//! contract of the original workflow, and the API's limits kept by the client.
//!
//! - Job definitions `{user}_{groupKey}` are registered only when no ACTIVE revision has the
//!   same content, and tagged as the series' own so `cleanJobs` deregisters only those.
//! - Jobs have deterministic names and tags (series, owner, pass, generation, file set), so a
//!   job submitted before a crash is found again (ListJobs by name) instead of submitted twice.
//! - Polls describe parents only, 100 IDs per call, reading `arrayProperties.statusSummary`.
//! - Children are listed (ListJobs with `arrayJobId`) only to save logs and write the record.
//! - SubmitJob calls are spaced to stay under 50 per second.

pub mod api;
pub mod aws;
pub mod logs;
pub mod observe;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use self::api::{
    ApiError, BatchApi, DefinitionContent, JobDetail, MAX_DESCRIBE_IDS, SubmitRequest,
};
use super::spool::{Spool, save_group_logs};
use super::{Executor, PassContext};
use crate::model::outcome::{ChildOutcome, Definition, Failure, GroupLogs, JobObservation};
use crate::model::spec::SimulationSeriesSpec;
use crate::model::status::{GroupJobs, JobRecord, JobState, Pass, StatusSummary};
use crate::model::usage::AttemptRecord;
use crate::model::validate::{SpecError, SpecErrors};

/// AWS limits job and job definition names to 128 characters.
pub const MAX_NAME: usize = 128;
/// SubmitJob is limited to 50 calls per second per account; stay below.
pub const SUBMITS_PER_SECOND: u32 = 40;
/// TerminateJob calls in flight at once.
const TERMINATE_CONCURRENCY: usize = 10;

/// Tag keys on jobs and job definitions.
pub use super::{TAG_FILE_SET, TAG_GENERATION, TAG_OWNER, TAG_PASS, TAG_SERIES};

/// The AWS settings of a series, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSettings {
    pub account: String,
    pub region: String,
    pub user: String,
    pub queue: String,
    pub image: String,
}

impl BatchSettings {
    /// Takes the settings AWS Batch needs from `spec`, naming each one that is missing.
    pub fn from_spec(spec: &SimulationSeriesSpec) -> Result<Self, SpecErrors> {
        let mut errors = Vec::new();
        let mut need = |field: &str, value: &Option<String>, example: &str| match value {
            Some(v) if !v.trim().is_empty() => v.clone(),
            _ => {
                errors.push(SpecError {
                    field: field.to_string(),
                    message: format!("required to run on AWS Batch; e.g. {example}"),
                });
                String::new()
            }
        };
        let settings = BatchSettings {
            account: need(
                "spec.context.account",
                &spec.context.account,
                "'123456789012'",
            ),
            region: need("spec.context.region", &spec.context.region, "us-west-2"),
            user: need("spec.context.user", &spec.context.user, "alice"),
            queue: need("spec.context.queue", &spec.context.queue, "simulations"),
            image: need(
                "spec.parameters.image",
                &spec.parameters.image,
                "arcade:latest",
            ),
        };
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(SpecErrors::from(errors))
        }
    }

    /// `{account}.dkr.ecr.{region}.amazonaws.com/{user}/{image}`, or the image as given when
    /// it names a registry (a first part with `.` or `:`, or `localhost`).
    pub fn image_uri(&self) -> String {
        let names_registry = self.image.split_once('/').is_some_and(|(first, _)| {
            first.contains('.') || first.contains(':') || first == "localhost"
        });
        if names_registry {
            self.image.clone()
        } else {
            format!(
                "{}.dkr.ecr.{}.amazonaws.com/{}/{}",
                self.account, self.region, self.user, self.image
            )
        }
    }

    pub fn job_role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/BatchJobRole", self.account)
    }
}

/// A name within AWS's 128 characters: long names keep their start and get a digest suffix,
/// so they stay unique and deterministic.
pub fn aws_name(name: &str) -> String {
    if name.len() <= MAX_NAME {
        return name.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{suffix}", &name[..MAX_NAME - 9])
}

/// Spaces calls at a fixed interval (a token bucket of one).
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl RateLimiter {
    pub fn per_second(calls: u32) -> Self {
        RateLimiter {
            interval: Duration::from_secs(1) / calls.max(1),
            next: tokio::sync::Mutex::new(None),
        }
    }

    /// Waits for the next slot.
    pub async fn acquire(&self) {
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        let slot = match *next {
            Some(at) if at > now => at,
            _ => now,
        };
        tokio::time::sleep_until(slot).await;
        *next = Some(slot + self.interval);
    }
}

/// Runs a pass's jobs on AWS Batch.
pub struct BatchExecutor {
    api: Arc<dyn BatchApi>,
    settings: BatchSettings,
    submits: RateLimiter,
    reaper: BatchReaper,
    /// Children described at the end of a pass, by parent ID (see `described_children`).
    described: Mutex<HashMap<String, Arc<Vec<Option<JobDetail>>>>>,
}

/// Jobs whose children descriptions are kept at once.
const DESCRIBED_JOBS_KEPT: usize = 64;

impl BatchExecutor {
    pub fn new(api: Arc<dyn BatchApi>, settings: BatchSettings) -> Self {
        BatchExecutor {
            reaper: BatchReaper::new(api.clone()),
            api,
            settings,
            submits: RateLimiter::per_second(SUBMITS_PER_SECOND),
            described: Mutex::new(HashMap::new()),
        }
    }

    /// The job definition content of a group: the original's container contract.
    pub fn definition_content(&self, context: &PassContext, group_key: &str) -> DefinitionContent {
        let mut environment = vec![
            ("BATCH_WORKING_URL".to_string(), context.working_url()),
            ("FILE_SET_NAME".to_string(), group_key.to_string()),
            ("SIMULATION_TYPE".to_string(), "AWS".to_string()),
        ];
        environment.sort();
        DefinitionContent {
            name: aws_name(&format!("{}_{group_key}", self.settings.user)),
            image: self.settings.image_uri(),
            vcpus: context.spec.context.vcpus,
            memory: context.spec.context.memory,
            job_role_arn: self.settings.job_role_arn(),
            environment,
            attempts: match context.spec.parameters.spot_retries {
                0 => None,
                retries => Some(retries + 1),
            },
            timeout_seconds: context.spec.parameters.timeout_seconds,
            propagate_tags: context.spec.context.propagate_tags,
        }
    }

    /// The tags that identify a job of this pass.
    pub fn job_tags(context: &PassContext, job: &JobRecord) -> BTreeMap<String, String> {
        BTreeMap::from([
            (TAG_SERIES.to_string(), context.spec.series.name.clone()),
            (TAG_OWNER.to_string(), context.owner.clone()),
            (TAG_PASS.to_string(), context.pass.to_string()),
            (TAG_GENERATION.to_string(), context.generation.to_string()),
            (TAG_FILE_SET.to_string(), job.file_set_name.clone()),
        ])
    }

    /// A job of this pass submitted earlier (before a crash), found by name and tags.
    async fn adopt(
        &self,
        context: &PassContext,
        job: &JobRecord,
    ) -> Result<Option<String>, Failure> {
        let name = aws_name(&job.name);
        let candidates = self
            .api
            .list_jobs_named(&self.settings.queue, &name)
            .await
            .map_err(failure)?;
        if candidates.is_empty() {
            return Ok(None);
        }
        let wanted = Self::job_tags(context, job);
        let ids: Vec<String> = candidates.into_iter().map(|c| c.id).collect();
        for chunk in ids.chunks(MAX_DESCRIBE_IDS) {
            let details = self.api.describe_jobs(chunk).await.map_err(failure)?;
            if let Some(found) = details
                .into_iter()
                .find(|d| wanted.iter().all(|(k, v)| d.tags.get(k) == Some(v)))
            {
                return Ok(Some(found.id));
            }
        }
        Ok(None)
    }

    /// Every child of a job (or the plain job itself), described by ID (`{parent}:{index}`,
    /// 100 a call) once per pass: the logs, the outcomes and the pass record read the same
    /// description, and no ListJobs per status is needed. Indexed by array index.
    async fn described_children(
        &self,
        job: &JobRecord,
        id: &str,
    ) -> Result<Arc<Vec<Option<JobDetail>>>, Failure> {
        if let Some(found) = self.described.lock().expect("described lock").get(id) {
            return Ok(found.clone());
        }
        let ids: Vec<String> = if job.array_size <= 1 {
            vec![id.to_string()]
        } else {
            (0..job.array_size).map(|i| format!("{id}:{i}")).collect()
        };
        let mut children: Vec<Option<JobDetail>> = vec![None; job.array_size.max(1) as usize];
        for chunk in ids.chunks(MAX_DESCRIBE_IDS) {
            for detail in self.api.describe_jobs(chunk).await.map_err(failure)? {
                let index = if job.array_size <= 1 {
                    0
                } else {
                    detail.array_index.unwrap_or(u32::MAX)
                };
                if let Some(slot) = children.get_mut(index as usize) {
                    *slot = Some(detail);
                }
            }
        }
        let children = Arc::new(children);
        let mut described = self.described.lock().expect("described lock");
        // Kept for the steps of one pass; bounded in a long-running controller.
        if described.len() >= DESCRIBED_JOBS_KEPT {
            described.clear();
        }
        described.insert(id.to_string(), children.clone());
        Ok(children)
    }
}

/// AWS's status reason of a child, said in the spec's terms where it has them: an attempt
/// stopped by `timeoutSeconds` is reported as such, beside the pass's own straggler bound.
fn explain_reason(reason: &str, context: &PassContext) -> String {
    match context.spec.parameters.timeout_seconds {
        Some(seconds) if reason.contains("duration exceeded timeout") => {
            format!("stopped by its timeout (parameters.timeoutSeconds: {seconds}): {reason}")
        }
        _ => reason.to_string(),
    }
}

/// A refused SubmitJob: a fair-share queue refuses jobs without a share identifier, which only
/// the spec can give.
fn submit_failure(error: ApiError, has_share: bool) -> Failure {
    let message = error.message.to_lowercase();
    if !has_share && !error.transient && message.contains("share") {
        return Failure::permanent(
            "ShareIdentifierRequired",
            format!(
                "the queue is a fair-share queue and needs spec.context.shareIdentifier (and optionally spec.parameters.schedulingPriority): {}",
                error.message
            ),
        );
    }
    failure(error)
}

/// A Batch or Logs failure as the decision function sees it.
fn failure(error: ApiError) -> Failure {
    let reason = if error.code.contains("TooManyRequests") || error.code.contains("Throttl") {
        "Throttled".to_string()
    } else {
        error.code.clone()
    };
    Failure {
        reason,
        message: error.message,
        transient: error.transient,
    }
}

/// Terminates a series' jobs and deregisters its job definitions: what deleting a series
/// needs, with nothing but the Batch API of its region (its spec may no longer be valid).
pub struct BatchReaper {
    api: Arc<dyn BatchApi>,
}

impl BatchReaper {
    pub fn new(api: Arc<dyn BatchApi>) -> Self {
        BatchReaper { api }
    }

    /// Terminates `jobs` (and their children); returns the IDs it terminated.
    pub async fn terminate(
        &self,
        jobs: &[JobRecord],
        reason: &str,
    ) -> Result<Vec<String>, Failure> {
        let ids: Vec<String> = jobs.iter().filter_map(|j| j.id.clone()).collect();
        let mut results = Vec::with_capacity(ids.len());
        for batch in ids.chunks(TERMINATE_CONCURRENCY) {
            let calls = batch.iter().map(|id| self.api.terminate_job(id, reason));
            let outcomes = futures::future::join_all(calls).await;
            results.extend(batch.iter().cloned().zip(outcomes));
        }
        let mut terminated = Vec::new();
        let mut errors = Vec::new();
        for (id, result) in results {
            match result {
                Ok(()) => terminated.push(id),
                Err(e) => errors.push(e),
            }
        }
        if let Some(first) = errors.first() {
            // Terminating twice is harmless: report and let the pass try again.
            let mut failure = failure(first.clone());
            failure.transient = errors.iter().any(|e| e.transient);
            failure.message = format!(
                "{} of {} terminations failed: {}",
                errors.len(),
                jobs.len(),
                failure.message
            );
            return Err(failure);
        }
        Ok(terminated)
    }

    /// Deregisters the job definitions the series registered, whatever still runs on them
    /// (running jobs keep the definition they started with).
    pub async fn release(&self, pass: &Pass) -> Result<(), Failure> {
        let mut owned: Vec<&str> = pass
            .groups
            .iter()
            .filter(|g| g.definition_owned)
            .filter_map(|g| g.job_definition.as_deref())
            .collect();
        owned.sort_unstable();
        owned.dedup();
        for arn in owned {
            self.api
                .deregister_job_definition(arn)
                .await
                .map_err(failure)?;
        }
        Ok(())
    }
}

impl Executor for BatchExecutor {
    fn register<'a>(
        &'a self,
        context: &'a PassContext,
        group: &'a GroupJobs,
    ) -> BoxFuture<'a, Result<Definition, Failure>> {
        async move {
            let content = self.definition_content(context, &group.group_key);
            let revisions = self
                .api
                .describe_job_definitions(&content.name)
                .await
                .map_err(failure)?;
            if let Some(same) = revisions
                .iter()
                .filter(|r| r.content.as_ref() == Some(&content))
                .max_by_key(|r| r.revision)
            {
                let owned = same.tags.get(TAG_SERIES) == Some(&context.spec.series.name)
                    && same.tags.get(TAG_OWNER) == Some(&context.owner);
                return Ok(Definition {
                    id: same.arn.clone(),
                    owned,
                });
            }
            let tags = BTreeMap::from([
                (TAG_SERIES.to_string(), context.spec.series.name.clone()),
                (TAG_OWNER.to_string(), context.owner.clone()),
            ]);
            let arn = self
                .api
                .register_job_definition(&content, &tags)
                .await
                .map_err(failure)?;
            Ok(Definition {
                id: arn,
                owned: true,
            })
        }
        .boxed()
    }

    fn submit<'a>(
        &'a self,
        context: &'a PassContext,
        group: &'a GroupJobs,
        job: &'a JobRecord,
        may_exist: bool,
    ) -> BoxFuture<'a, Result<String, Failure>> {
        async move {
            // ListJobs only when a submission may have been sent: not once per job.
            if may_exist && let Some(id) = self.adopt(context, job).await? {
                tracing::info!(job = %job.name, %id, "adopted a job submitted before a restart");
                return Ok(id);
            }
            let Some(definition) = &group.job_definition else {
                return Err(Failure::permanent(
                    "NoJobDefinition",
                    format!("group {} has no job definition", group.group),
                ));
            };
            let environment = if job.file_set_name != group.group_key {
                vec![("FILE_SET_NAME".to_string(), job.file_set_name.clone())]
            } else {
                Vec::new()
            };
            let request = SubmitRequest {
                job_name: aws_name(&job.name),
                queue: self.settings.queue.clone(),
                definition: definition.clone(),
                array_size: (job.array_size > 1).then_some(job.array_size),
                environment,
                tags: Self::job_tags(context, job),
                share_identifier: context.spec.context.share_identifier.clone(),
                scheduling_priority: context.spec.parameters.scheduling_priority,
            };
            self.submits.acquire().await;
            self.api
                .submit_job(&request)
                .await
                .map_err(|e| submit_failure(e, request.share_identifier.is_some()))
        }
        .boxed()
    }

    fn poll<'a>(
        &'a self,
        _context: &'a PassContext,
        jobs: &'a [JobRecord],
    ) -> BoxFuture<'a, Result<Vec<JobObservation>, Failure>> {
        async move {
            let ids: Vec<String> = jobs.iter().filter_map(|j| j.id.clone()).collect();
            let mut observed = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(MAX_DESCRIBE_IDS) {
                let details = self.api.describe_jobs(chunk).await.map_err(failure)?;
                for id in chunk {
                    match details.iter().find(|d| &d.id == id) {
                        Some(detail) => {
                            // A status this version does not know: the job keeps its last one.
                            let Some(state) = detail.status else { continue };
                            observed.push(JobObservation {
                                id: id.clone(),
                                state,
                                summary: detail
                                    .status_summary
                                    .clone()
                                    .unwrap_or_else(|| StatusSummary::of(state)),
                                waiting_for: None,
                            })
                        }
                        // AWS forgets jobs some days after they end.
                        None => observed.push(JobObservation::gone(id)),
                    }
                }
            }
            Ok(observed)
        }
        .boxed()
    }

    fn terminate<'a>(
        &'a self,
        context: &'a PassContext,
        jobs: &'a [JobRecord],
    ) -> BoxFuture<'a, Result<Vec<String>, Failure>> {
        let reason = format!(
            "terminated by simseries: unfinished after the last poll of pass {}",
            context.pass
        );
        async move { self.reaper.terminate(jobs, &reason).await }.boxed()
    }

    fn collect_logs<'a>(
        &'a self,
        context: &'a PassContext,
        pass: &'a Pass,
    ) -> BoxFuture<'a, Result<Vec<GroupLogs>, Failure>> {
        async move {
            let pattern = context.spec.parameters.log_filter.trim().to_string();
            let mut saved = Vec::new();
            for group in &pass.groups {
                let spool = Spool::new()?;
                let mut files = Vec::new();
                for job in &group.jobs {
                    let Some(id) = job.submitted_id() else {
                        continue;
                    };
                    let children = self.described_children(job, id).await?;
                    let written =
                        logs::write_child_logs(self.api.as_ref(), &children, &pattern, &spool)
                            .await?;
                    files.extend(written.into_iter().enumerate().map(|(index, file)| {
                        let key = context.folder.log(context.pass, &job.file_set_name, index);
                        (key, file)
                    }));
                }
                saved.push(save_group_logs(context, &group.group, files).await?);
            }
            Ok(saved)
        }
        .boxed()
    }

    fn children<'a>(
        &'a self,
        context: &'a PassContext,
        job: &'a JobRecord,
    ) -> BoxFuture<'a, Result<Vec<ChildOutcome>, Failure>> {
        async move {
            let Some(id) = job.submitted_id() else {
                return Ok(ChildOutcome::not_submitted(job.array_size));
            };
            let children = self.described_children(job, id).await?;
            // The pass record is the last reader of the description.
            self.described.lock().expect("described lock").remove(id);
            Ok((0..job.array_size)
                .map(
                    |index| match children.get(index as usize).and_then(Option::as_ref) {
                        Some(child) => ChildOutcome {
                            index,
                            state: child.status,
                            exit_code: child.exit_code,
                            reason: child
                                .status_reason
                                .as_deref()
                                .map(|r| explain_reason(r, context)),
                            id: Some(child.id.clone()),
                            attempts: child
                                .attempts
                                .iter()
                                .map(|a| {
                                    AttemptRecord::from_millis(
                                        a.started_at,
                                        a.stopped_at,
                                        a.exit_code,
                                        // The container's reason is the more precise
                                        // (`OutOfMemoryError`); a Spot reclaim has only
                                        // the attempt's (`Host EC2 … terminated.`).
                                        a.reason
                                            .as_deref()
                                            .or(a.status_reason.as_deref())
                                            .map(|r| explain_reason(r, context)),
                                    )
                                })
                                .collect(),
                            usage: None,
                        },
                        None => ChildOutcome::bare(index, None, None),
                    },
                )
                .collect())
        }
        .boxed()
    }

    fn clean<'a>(
        &'a self,
        _context: &'a PassContext,
        pass: &'a Pass,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        async move {
            // Only once no job of the pass still runs on the definitions. A job last seen
            // finished stays finished, so only the others are asked about (none, when the
            // last poll saw every job end).
            let ids: Vec<String> = pass
                .groups
                .iter()
                .flat_map(|g| &g.jobs)
                .filter(|j| !j.is_finished())
                .filter_map(|j| j.id.clone())
                .collect();
            for chunk in ids.chunks(MAX_DESCRIBE_IDS) {
                let details = self.api.describe_jobs(chunk).await.map_err(failure)?;
                if let Some(busy) = details
                    .iter()
                    .find(|d| !d.status.is_some_and(JobState::is_finished))
                {
                    return Err(Failure::transient(
                        "JobsStillRunning",
                        format!(
                            "job {} is still {}; the job definitions are deregistered once it ends",
                            busy.id,
                            busy.status.map_or("in an unknown state", JobState::as_str)
                        ),
                    ));
                }
            }
            self.reaper.release(pass).await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(image: &str) -> BatchSettings {
        BatchSettings {
            account: "123456789012".into(),
            region: "us-west-2".into(),
            user: "alice".into(),
            queue: "q".into(),
            image: image.into(),
        }
    }

    #[test]
    fn images_are_pulled_from_the_users_ecr_unless_they_name_a_registry() {
        assert_eq!(
            settings("arcade:3.0").image_uri(),
            "123456789012.dkr.ecr.us-west-2.amazonaws.com/alice/arcade:3.0"
        );
        assert_eq!(
            settings("ghcr.io/lab/arcade:3").image_uri(),
            "ghcr.io/lab/arcade:3"
        );
        assert_eq!(
            settings("localhost:5000/arcade").image_uri(),
            "localhost:5000/arcade"
        );
        assert_eq!(settings("localhost/arcade").image_uri(), "localhost/arcade");
        assert_eq!(
            settings("lab/arcade").image_uri(),
            "123456789012.dkr.ecr.us-west-2.amazonaws.com/alice/lab/arcade"
        );
        assert_eq!(
            settings("x").job_role_arn(),
            "arn:aws:iam::123456789012:role/BatchJobRole"
        );
    }

    #[test]
    fn long_names_are_cut_to_aws_limits_deterministically() {
        let short = "alice_SERIES_GROUP";
        assert_eq!(aws_name(short), short);
        let long = format!("alice_{}", "X".repeat(200));
        let cut = aws_name(&long);
        assert_eq!(cut.len(), MAX_NAME);
        assert_eq!(cut, aws_name(&long));
        assert_ne!(cut, aws_name(&format!("{long}Y")));
        assert!(
            cut.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limiter_spaces_calls() {
        let limiter = RateLimiter::per_second(40);
        let start = tokio::time::Instant::now();
        let mut times = Vec::new();
        for _ in 0..200 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        // No one-second window holds more than 40 calls (AWS allows 50).
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 40,
                "{in_window} calls within a second from {t:?}"
            );
        }
    }
}
