//! [`BatchApi`] on aws-sdk-batch and aws-sdk-cloudwatchlogs.
//!
//! Credentials, region and endpoint come from aws-config (`AWS_ENDPOINT_URL` points both
//! clients at moto). The SDK retries throttled and failed calls with exponential backoff
//! (adaptive mode: it also slows down after throttling); what still fails is reported as an
//! [`ApiError`], transient or not.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_batch::config::Region;
use aws_sdk_batch::config::retry::RetryConfig;
use aws_sdk_batch::config::timeout::TimeoutConfig;
use aws_sdk_batch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_batch::operation::list_jobs::builders::ListJobsFluentBuilder;
use aws_sdk_batch::types::{
    ArrayProperties, ContainerOverrides, ContainerProperties, EvaluateOnExit, JobDefinitionType,
    JobStatus, JobTimeout, KeyValuePair, KeyValuesPair, ResourceRequirement, ResourceType,
    RetryAction, RetryStrategy,
};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::api::{
    ApiError, ApiResult, Attempt, BatchApi, DefinitionContent, DefinitionRevision, JobDetail,
    JobSummary, LogEvent, LogPage, MAX_DESCRIBE_IDS, MAX_LOG_STREAMS, SPOT_RECLAIMED,
    SubmitRequest,
};
use crate::model::status::{JobState, StatusSummary};

/// Attempts per call, counting the first (the SDK backs off exponentially between them).
const MAX_ATTEMPTS: u32 = 6;

#[derive(Debug, Clone)]
pub struct AwsBatchApi {
    batch: aws_sdk_batch::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
}

impl AwsBatchApi {
    /// Clients from the environment's AWS configuration, in `region` (the series' region,
    /// where its queue is) or else the environment's.
    pub async fn connect(region: Option<&str>) -> Self {
        let shared = crate::aws::load_config().await;
        Self::from_config(&shared, region)
    }

    /// Clients from an AWS configuration loaded once, in `region` or else its own.
    pub fn from_config(shared: &aws_config::SdkConfig, region: Option<&str>) -> Self {
        let region = region
            .map(|r| Region::new(r.to_string()))
            .or_else(|| shared.region().cloned())
            .unwrap_or_else(|| Region::from_static("us-east-1"));
        let retry = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(500));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(crate::aws::attempt_timeout(Duration::from_secs(60)))
            .build();
        let batch = aws_sdk_batch::config::Builder::from(shared)
            .region(region.clone())
            .retry_config(retry.clone())
            .timeout_config(timeouts.clone())
            .build();
        let logs = aws_sdk_cloudwatchlogs::config::Builder::from(shared)
            .region(region)
            .retry_config(retry)
            .timeout_config(timeouts)
            .build();
        AwsBatchApi {
            batch: aws_sdk_batch::Client::from_conf(batch),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs),
        }
    }
}

/// A failed call: throttling, 5xx and network failures are transient.
fn api_error<E, R>(err: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::DispatchFailure(_) => ApiError {
            code: "Dispatch".into(),
            message: format!(
                "cannot reach the AWS endpoint: {}",
                DisplayErrorContext(&err)
            ),
            transient: true,
        },
        SdkError::TimeoutError(_) => ApiError {
            code: "Timeout".into(),
            message: DisplayErrorContext(&err).to_string(),
            transient: true,
        },
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("ServiceError").to_string();
            let transient = code.contains("TooManyRequests")
                || code.contains("Throttl")
                || code.contains("ServerException")
                || code.contains("ServiceUnavailable")
                || code == "InternalFailure";
            ApiError {
                message: service
                    .err()
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| DisplayErrorContext(&err).to_string()),
                code,
                transient,
            }
        }
        _ => ApiError {
            code: "ResponseError".into(),
            message: DisplayErrorContext(&err).to_string(),
            transient: true,
        },
    }
}

fn limit(what: &str, count: usize, max: usize) -> ApiResult<()> {
    if count == 0 || count > max {
        return Err(ApiError {
            code: "ClientLimit".into(),
            message: format!("{what}: {count} items in one call; AWS takes 1 to {max}"),
            transient: false,
        });
    }
    Ok(())
}

fn tags_of(map: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn content_of(name: &str, properties: &ContainerProperties) -> Option<DefinitionContent> {
    let requirement = |kind: ResourceType| {
        properties
            .resource_requirements()
            .iter()
            .find(|r| r.r#type() == Some(&kind))
            .and_then(|r| r.value())
            .and_then(|v| v.parse::<u32>().ok())
    };
    // Definitions registered by other tools may still use the deprecated fields.
    #[allow(deprecated)]
    let (legacy_vcpus, legacy_memory) = (properties.vcpus(), properties.memory());
    let vcpus = requirement(ResourceType::Vcpu).or(legacy_vcpus.map(|v| v as u32))?;
    let memory = requirement(ResourceType::Memory).or(legacy_memory.map(|v| v as u32))?;
    let mut environment: Vec<(String, String)> = properties
        .environment()
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap_or_default().to_string(),
                kv.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    environment.sort();
    Some(DefinitionContent {
        name: name.to_string(),
        image: properties.image()?.to_string(),
        vcpus,
        memory,
        job_role_arn: properties.job_role_arn().unwrap_or_default().to_string(),
        environment,
        attempts: None,
        propagate_tags: false,
        timeout_seconds: None,
    })
}

/// The attempts of a retry strategy as simseries registers it (Spot reclaims retried, the
/// rest not); any other strategy reads as a different content (`Some(0)`), so it is not reused.
fn spot_attempts(strategy: Option<&RetryStrategy>) -> Option<u32> {
    let strategy = strategy?;
    let attempts = strategy.attempts().unwrap_or(1).max(1) as u32;
    // AWS takes actions in any case (and servers may store them lower-cased).
    let is = |action: Option<&RetryAction>, name: &str| {
        action.is_some_and(|a| a.as_str().eq_ignore_ascii_case(name))
    };
    let ours = match strategy.evaluate_on_exit() {
        [retry, exit] => {
            retry.on_status_reason() == Some(SPOT_RECLAIMED)
                && is(retry.action(), "RETRY")
                && exit.on_reason() == Some("*")
                && is(exit.action(), "EXIT")
        }
        _ => false,
    };
    match (ours, attempts) {
        // One attempt and no rules is no strategy at all.
        (_, 1) if strategy.evaluate_on_exit().is_empty() => None,
        (true, attempts) => Some(attempts),
        (false, _) => Some(0),
    }
}

/// The status AWS reports, if this version knows it.
fn job_state(status: &JobStatus) -> Option<JobState> {
    status.as_str().parse().ok()
}

fn status_summary(map: &std::collections::HashMap<String, i32>) -> StatusSummary {
    let mut summary = StatusSummary::default();
    for state in JobState::ALL {
        let n = map.get(state.as_str()).copied().unwrap_or(0).max(0) as u32;
        summary.add(state, n);
    }
    summary
}

/// The index of an array child: its `arrayProperties.index`, or the `:N` its ID ends with
/// (child IDs are `{parentId}:{index}`; some servers leave the index out).
fn child_index(id: &str, index: Option<i32>) -> Option<u32> {
    index
        .map(|i| i as u32)
        .or_else(|| id.rsplit_once(':').and_then(|(_, n)| n.parse().ok()))
}

fn summary_of(job: &aws_sdk_batch::types::JobSummary) -> JobSummary {
    JobSummary {
        id: job.job_id().unwrap_or_default().to_string(),
        name: job.job_name().unwrap_or_default().to_string(),
        status: job.status().and_then(job_state),
        array_index: child_index(
            job.job_id().unwrap_or_default(),
            job.array_properties().and_then(|a| a.index()),
        ),
        exit_code: job.container().and_then(|c| c.exit_code()),
        reason: job
            .container()
            .and_then(|c| c.reason())
            .or(job.status_reason())
            .map(str::to_string),
    }
}

impl AwsBatchApi {
    /// Every page of a ListJobs call that `configure` sets up.
    async fn list_jobs(
        &self,
        configure: impl Fn(ListJobsFluentBuilder) -> ListJobsFluentBuilder,
    ) -> ApiResult<Vec<JobSummary>> {
        let mut jobs = Vec::new();
        let mut token = None;
        loop {
            let page = configure(self.batch.list_jobs())
                .set_next_token(token)
                .send()
                .await
                .map_err(api_error)?;
            jobs.extend(page.job_summary_list().iter().map(summary_of));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(jobs);
            }
        }
    }
}

impl BatchApi for AwsBatchApi {
    fn describe_job_definitions<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<DefinitionRevision>>> {
        async move {
            let mut revisions = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .batch
                    .describe_job_definitions()
                    .job_definition_name(name)
                    .status("ACTIVE")
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(api_error)?;
                for definition in page.job_definitions() {
                    revisions.push(DefinitionRevision {
                        arn: definition
                            .job_definition_arn()
                            .unwrap_or_default()
                            .to_string(),
                        revision: definition.revision().unwrap_or_default(),
                        content: definition.container_properties().and_then(|p| {
                            content_of(definition.job_definition_name().unwrap_or(name), p).map(
                                |content| DefinitionContent {
                                    attempts: spot_attempts(definition.retry_strategy()),
                                    timeout_seconds: definition
                                        .timeout()
                                        .and_then(|t| t.attempt_duration_seconds())
                                        .map(|s| s.max(0) as u64),
                                    propagate_tags: definition.propagate_tags().unwrap_or(false),
                                    ..content
                                },
                            )
                        }),
                        tags: tags_of(definition.tags()),
                    });
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            Ok(revisions)
        }
        .boxed()
    }

    fn register_job_definition<'a>(
        &'a self,
        content: &'a DefinitionContent,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, ApiResult<String>> {
        async move {
            let requirement = |kind: ResourceType, value: u32| {
                ResourceRequirement::builder()
                    .r#type(kind)
                    .value(value.to_string())
                    .build()
            };
            let properties = ContainerProperties::builder()
                .image(&content.image)
                .job_role_arn(&content.job_role_arn)
                .resource_requirements(requirement(ResourceType::Vcpu, content.vcpus))
                .resource_requirements(requirement(ResourceType::Memory, content.memory))
                .set_environment(Some(
                    content
                        .environment
                        .iter()
                        .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                        .collect(),
                ))
                .build();
            let mut call = self
                .batch
                .register_job_definition()
                .job_definition_name(&content.name)
                .r#type(JobDefinitionType::Container)
                .container_properties(properties)
                .set_tags(Some(tags.clone().into_iter().collect()));
            if let Some(attempts) = content.attempts {
                // Retry a child whose Spot host was reclaimed; any other failure (the model's
                // own) ends it.
                call = call.retry_strategy(
                    RetryStrategy::builder()
                        .attempts(attempts as i32)
                        .evaluate_on_exit(
                            EvaluateOnExit::builder()
                                .on_status_reason(SPOT_RECLAIMED)
                                .action(RetryAction::Retry)
                                .build(),
                        )
                        .evaluate_on_exit(
                            EvaluateOnExit::builder()
                                .on_reason("*")
                                .action(RetryAction::Exit)
                                .build(),
                        )
                        .build(),
                );
            }
            if content.propagate_tags {
                call = call.propagate_tags(true);
            }
            if let Some(seconds) = content.timeout_seconds {
                call = call.timeout(
                    JobTimeout::builder()
                        .attempt_duration_seconds(seconds.min(i32::MAX as u64) as i32)
                        .build(),
                );
            }
            let output = call.send().await.map_err(api_error)?;
            Ok(output.job_definition_arn().unwrap_or_default().to_string())
        }
        .boxed()
    }

    fn deregister_job_definition<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, ApiResult<()>> {
        async move {
            self.batch
                .deregister_job_definition()
                .job_definition(arn)
                .send()
                .await
                .map_err(api_error)?;
            Ok(())
        }
        .boxed()
    }

    fn submit_job<'a>(&'a self, request: &'a SubmitRequest) -> BoxFuture<'a, ApiResult<String>> {
        async move {
            let mut call = self
                .batch
                .submit_job()
                .job_name(&request.job_name)
                .job_queue(&request.queue)
                .job_definition(&request.definition)
                .set_tags(Some(request.tags.clone().into_iter().collect()));
            if let Some(size) = request.array_size {
                call = call.array_properties(ArrayProperties::builder().size(size as i32).build());
            }
            if let Some(share) = &request.share_identifier {
                call = call.share_identifier(share);
            }
            if let Some(priority) = request.scheduling_priority {
                call = call.scheduling_priority_override(priority as i32);
            }
            if !request.environment.is_empty() {
                call = call.container_overrides(
                    ContainerOverrides::builder()
                        .set_environment(Some(
                            request
                                .environment
                                .iter()
                                .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                                .collect(),
                        ))
                        .build(),
                );
            }
            let output = call.send().await.map_err(api_error)?;
            Ok(output.job_id().unwrap_or_default().to_string())
        }
        .boxed()
    }

    fn list_jobs_named<'a>(
        &'a self,
        queue: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<JobSummary>>> {
        async move {
            let filter = KeyValuesPair::builder()
                .name("JOB_NAME")
                .values(name)
                .build();
            let jobs = self
                .list_jobs(|call| call.job_queue(queue).filters(filter.clone()))
                .await?;
            Ok(jobs.into_iter().filter(|j| j.name == name).collect())
        }
        .boxed()
    }

    fn describe_jobs<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, ApiResult<Vec<JobDetail>>> {
        async move {
            // Empty would make some servers describe every job; more than 100 is refused.
            limit("DescribeJobs", ids.len(), MAX_DESCRIBE_IDS)?;
            let output = self
                .batch
                .describe_jobs()
                .set_jobs(Some(ids.to_vec()))
                .send()
                .await
                .map_err(api_error)?;
            Ok(output
                .jobs()
                .iter()
                .map(|job| JobDetail {
                    id: job.job_id().unwrap_or_default().to_string(),
                    name: job.job_name().unwrap_or_default().to_string(),
                    status: job.status().and_then(job_state),
                    status_reason: job.status_reason().map(str::to_string),
                    status_summary: job
                        .array_properties()
                        .and_then(|a| a.status_summary())
                        .filter(|s| !s.is_empty())
                        .map(status_summary),
                    array_index: child_index(
                        job.job_id().unwrap_or_default(),
                        job.array_properties().and_then(|a| a.index()),
                    ),
                    tags: tags_of(job.tags()),
                    attempts: job
                        .attempts()
                        .iter()
                        .map(|a| Attempt {
                            log_stream: a
                                .container()
                                .and_then(|c| c.log_stream_name())
                                .map(str::to_string),
                            exit_code: a.container().and_then(|c| c.exit_code()),
                            reason: a.container().and_then(|c| c.reason()).map(str::to_string),
                            status_reason: a.status_reason().map(str::to_string),
                            started_at: a.started_at(),
                            stopped_at: a.stopped_at(),
                        })
                        .collect(),
                    log_stream: job
                        .container()
                        .and_then(|c| c.log_stream_name())
                        .map(str::to_string),
                    exit_code: job.container().and_then(|c| c.exit_code()),
                })
                .collect())
        }
        .boxed()
    }

    fn terminate_job<'a>(&'a self, id: &'a str, reason: &'a str) -> BoxFuture<'a, ApiResult<()>> {
        async move {
            self.batch
                .terminate_job()
                .job_id(id)
                .reason(reason)
                .send()
                .await
                .map_err(api_error)?;
            Ok(())
        }
        .boxed()
    }

    fn filter_log_events<'a>(
        &'a self,
        group: &'a str,
        streams: &'a [String],
        pattern: &'a str,
        token: Option<String>,
    ) -> BoxFuture<'a, ApiResult<LogPage>> {
        async move {
            limit("FilterLogEvents", streams.len(), MAX_LOG_STREAMS)?;
            let mut call = self
                .logs
                .filter_log_events()
                .log_group_name(group)
                .set_log_stream_names(Some(streams.to_vec()))
                .set_next_token(token);
            if !pattern.is_empty() {
                call = call.filter_pattern(pattern);
            }
            let page = match call.send().await {
                Ok(page) => page,
                Err(err) => {
                    let error = api_error(err);
                    // No log group yet: no job of the account has logged anything.
                    if error.code == "ResourceNotFoundException" {
                        return Ok(LogPage::default());
                    }
                    return Err(error);
                }
            };
            Ok(LogPage {
                events: page
                    .events()
                    .iter()
                    .map(|e| LogEvent {
                        stream: e.log_stream_name().unwrap_or_default().to_string(),
                        timestamp: e.timestamp().unwrap_or_default(),
                        message: e.message().unwrap_or_default().to_string(),
                    })
                    .collect(),
                next: page.next_token().map(str::to_string),
            })
        }
        .boxed()
    }
}
