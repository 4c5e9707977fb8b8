//! A scripted in-memory AWS Batch for what moto cannot show: jobs that stay RUNNING over
//! several polls, stragglers, throttling, several attempts, Spot reclaims. It keeps AWS's
//! rules where the executor depends on them (child IDs `parent:index`, parent status from the
//! children, termination failing unfinished children, at most 100 IDs per DescribeJobs, a
//! reclaimed child retried only as far as its definition's `retryStrategy` allows). Its clock
//! (`now_ms`) stamps each attempt's start and stop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use simseries::executor::batch::api::{
    ApiError, ApiResult, Attempt, BatchApi, DefinitionContent, DefinitionRevision, JobDetail,
    JobSummary, LogEvent, LogPage, MAX_DESCRIBE_IDS, SubmitRequest,
};
use simseries::model::logfilter::LogFilter;
use simseries::model::status::StatusSummary;

use super::batch::ready;

#[derive(Debug, Clone)]
pub struct FakeChild {
    pub status: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// Oldest first; the last is the current one.
    pub attempts: Vec<FakeAttempt>,
}

#[derive(Debug, Clone)]
pub struct FakeAttempt {
    pub stream: String,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub exit_code: Option<i32>,
    pub status_reason: Option<String>,
}

impl FakeAttempt {
    fn new(stream: String) -> Self {
        FakeAttempt {
            stream,
            started_at: None,
            stopped_at: None,
            exit_code: None,
            status_reason: None,
        }
    }
}

impl FakeChild {
    /// Starts a new attempt on a new log stream.
    pub fn retry(&mut self, stream: &str) {
        self.attempts.push(FakeAttempt::new(stream.into()));
        self.status = "RUNNABLE".into();
        self.exit_code = None;
    }
}

#[derive(Debug, Clone)]
pub struct FakeJob {
    pub id: String,
    pub request: SubmitRequest,
    pub children: Vec<FakeChild>,
}

impl FakeJob {
    fn is_array(&self) -> bool {
        self.request.array_size.is_some()
    }

    fn status(&self) -> String {
        let done = |c: &FakeChild| c.status == "SUCCEEDED" || c.status == "FAILED";
        if self.children.iter().all(|c| c.status == "SUCCEEDED") {
            "SUCCEEDED".into()
        } else if self.children.iter().all(done) {
            "FAILED".into()
        } else if self.children.iter().any(|c| c.status == "RUNNING") {
            "RUNNING".into()
        } else {
            "RUNNABLE".into()
        }
    }

    fn summary(&self) -> StatusSummary {
        let count = |s: &str| self.children.iter().filter(|c| c.status == s).count() as u32;
        StatusSummary {
            runnable: count("RUNNABLE"),
            running: count("RUNNING"),
            succeeded: count("SUCCEEDED"),
            failed: count("FAILED"),
            ..Default::default()
        }
    }
}

#[derive(Default)]
pub struct FakeState {
    pub definitions: Vec<(DefinitionRevision, bool)>,
    pub jobs: Vec<FakeJob>,
    pub logs: BTreeMap<String, Vec<LogEvent>>,
    /// The next N DescribeJobs calls answer TooManyRequestsException.
    pub throttle_describes: u32,
    /// The next N SubmitJob calls answer TooManyRequestsException.
    pub throttle_submits: u32,
    /// TerminateJob answers ServerException while set.
    pub fail_terminates: bool,
    /// The queue is a fair-share queue: SubmitJob without a share identifier is refused, as
    /// AWS refuses it.
    pub fair_share: bool,
    /// The clock, in milliseconds since the epoch, that stamps attempts.
    pub now_ms: i64,
    pub calls: BTreeMap<&'static str, usize>,
}

#[derive(Default)]
pub struct FakeBatch {
    pub state: Mutex<FakeState>,
}

fn throttled() -> ApiError {
    ApiError {
        code: "TooManyRequestsException".into(),
        message: "Too Many Requests".into(),
        transient: true,
    }
}

impl FakeBatch {
    pub fn calls(&self, op: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(op)
            .copied()
            .unwrap_or(0)
    }

    /// Sets every child of every job to `status` (with exit code 0 for SUCCEEDED).
    pub fn set_all(&self, status: &str) {
        let mut state = self.state.lock().unwrap();
        let now = state.now_ms;
        for job in &mut state.jobs {
            for child in &mut job.children {
                set_child(child, status, now);
            }
        }
    }

    /// Moves every child still running to `status`; children that ended stay as they are.
    pub fn set_running(&self, status: &str) {
        let mut state = self.state.lock().unwrap();
        let now = state.now_ms;
        for job in &mut state.jobs {
            for child in job.children.iter_mut().filter(|c| c.status == "RUNNING") {
                set_child(child, status, now);
            }
        }
    }

    /// Moves the clock on.
    pub fn advance(&self, ms: i64) {
        self.state.lock().unwrap().now_ms += ms;
    }

    /// Spot reclaims the host of child `index` of the job of `file_set`: its attempt ends, and
    /// AWS tries it again if the job definition's retry strategy has attempts left, else the
    /// child fails.
    pub fn reclaim(&self, file_set: &str, index: usize) {
        let mut state = self.state.lock().unwrap();
        let now = state.now_ms;
        let job = state
            .jobs
            .iter()
            .position(|j| {
                j.request
                    .tags
                    .get("simseries.io/file-set")
                    .map(String::as_str)
                    == Some(file_set)
            })
            .expect("a job of that file set");
        let definition = state.jobs[job].request.definition.clone();
        let allowed = state
            .definitions
            .iter()
            .find(|(d, _)| d.arn == definition)
            .and_then(|(d, _)| d.content.as_ref()?.attempts)
            .unwrap_or(1) as usize;
        let id = state.jobs[job].id.clone();
        let child = &mut state.jobs[job].children[index];
        let reason = "Host EC2 (instance i-0123456789abcdef0) terminated.";
        let attempt = child.attempts.last_mut().unwrap();
        attempt.started_at.get_or_insert(now);
        attempt.stopped_at = Some(now);
        attempt.status_reason = Some(reason.into());
        if child.attempts.len() < allowed {
            let next = child.attempts.len() + 1;
            child.retry(&format!("def/default/{id}-{index}-attempt{next}"));
        } else {
            child.status = "FAILED".into();
            child.reason = Some(reason.into());
        }
    }

    /// Sets the children of the job whose file set is `file_set`.
    pub fn set_file_set(&self, file_set: &str, status: &str) {
        let mut state = self.state.lock().unwrap();
        let now = state.now_ms;
        for job in state.jobs.iter_mut().filter(|j| {
            j.request
                .tags
                .get("simseries.io/file-set")
                .map(String::as_str)
                == Some(file_set)
        }) {
            for child in &mut job.children {
                set_child(child, status, now);
            }
        }
    }

    /// Adds a log line to a stream.
    pub fn log(&self, stream: &str, timestamp: i64, message: &str) {
        self.state
            .lock()
            .unwrap()
            .logs
            .entry(stream.into())
            .or_default()
            .push(LogEvent {
                stream: stream.into(),
                timestamp,
                message: message.into(),
            });
    }

    fn detail(job: &FakeJob, index: Option<usize>) -> JobDetail {
        match index {
            None => JobDetail {
                id: job.id.clone(),
                name: job.request.job_name.clone(),
                status: job.status().parse().ok(),
                status_reason: None,
                status_summary: job.is_array().then(|| job.summary()),
                array_index: None,
                tags: job.request.tags.clone(),
                attempts: if job.is_array() {
                    vec![]
                } else {
                    attempts(&job.children[0])
                },
                log_stream: if job.is_array() {
                    None
                } else {
                    job.children[0].attempts.last().map(|a| a.stream.clone())
                },
                exit_code: if job.is_array() {
                    None
                } else {
                    job.children[0].exit_code
                },
            },
            Some(i) => {
                let child = &job.children[i];
                JobDetail {
                    id: format!("{}:{i}", job.id),
                    name: job.request.job_name.clone(),
                    status: child.status.parse().ok(),
                    status_reason: child.reason.clone(),
                    status_summary: None,
                    array_index: Some(i as u32),
                    tags: BTreeMap::new(),
                    attempts: attempts(child),
                    log_stream: child.attempts.last().map(|a| a.stream.clone()),
                    exit_code: child.exit_code,
                }
            }
        }
    }
}

/// Moves a child's current attempt to `status` at `now`: it starts when it runs and stops
/// when it ends.
fn set_child(child: &mut FakeChild, status: &str, now: i64) {
    child.status = status.into();
    child.exit_code = match status {
        "SUCCEEDED" => Some(0),
        "FAILED" => Some(1),
        _ => None,
    };
    let attempt = child.attempts.last_mut().expect("an attempt");
    if matches!(status, "RUNNING" | "SUCCEEDED" | "FAILED") {
        attempt.started_at.get_or_insert(now);
    }
    if matches!(status, "SUCCEEDED" | "FAILED") {
        attempt.stopped_at = Some(now);
        attempt.exit_code = child.exit_code;
    }
}

/// The attempts AWS lists: those that ended (a child's current attempt once it finished).
fn attempts(child: &FakeChild) -> Vec<Attempt> {
    child
        .attempts
        .iter()
        .filter(|a| a.stopped_at.is_some())
        .map(|a| Attempt {
            log_stream: Some(a.stream.clone()),
            exit_code: a.exit_code,
            reason: None,
            status_reason: a.status_reason.clone(),
            started_at: a.started_at,
            stopped_at: a.stopped_at,
        })
        .collect()
}

impl BatchApi for FakeBatch {
    fn describe_job_definitions<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<DefinitionRevision>>> {
        let mut state = self.state.lock().unwrap();
        *state.calls.entry("DescribeJobDefinitions").or_default() += 1;
        let found = state
            .definitions
            .iter()
            .filter(|(d, active)| *active && d.content.as_ref().is_some_and(|c| c.name == name))
            .map(|(d, _)| d.clone())
            .collect();
        ready(Ok(found))
    }

    fn register_job_definition<'a>(
        &'a self,
        content: &'a DefinitionContent,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, ApiResult<String>> {
        let mut state = self.state.lock().unwrap();
        *state.calls.entry("RegisterJobDefinition").or_default() += 1;
        let revision = state
            .definitions
            .iter()
            .filter(|(d, _)| d.content.as_ref().unwrap().name == content.name)
            .count() as i32
            + 1;
        let arn = format!(
            "arn:aws:batch:us-east-1:123456789012:job-definition/{}:{revision}",
            content.name
        );
        state.definitions.push((
            DefinitionRevision {
                arn: arn.clone(),
                revision,
                content: Some(content.clone()),
                tags: tags.clone(),
            },
            true,
        ));
        ready(Ok(arn))
    }

    fn deregister_job_definition<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, ApiResult<()>> {
        let mut state = self.state.lock().unwrap();
        *state.calls.entry("DeregisterJobDefinition").or_default() += 1;
        for (d, active) in &mut state.definitions {
            if d.arn == arn {
                *active = false;
            }
        }
        ready(Ok(()))
    }

    fn submit_job<'a>(&'a self, request: &'a SubmitRequest) -> BoxFuture<'a, ApiResult<String>> {
        let mut state = self.state.lock().unwrap();
        *state.calls.entry("SubmitJob").or_default() += 1;
        if state.throttle_submits > 0 {
            state.throttle_submits -= 1;
            return ready(Err(throttled()));
        }
        if state.fair_share && request.share_identifier.is_none() {
            return ready(Err(ApiError {
                code: "ClientException".into(),
                message: format!(
                    "Job queue {} is a fair share job queue. shareIdentifier must be specified.",
                    request.queue
                ),
                transient: false,
            }));
        }
        let id = format!("job-{}", state.jobs.len() + 1);
        let size = request.array_size.unwrap_or(1) as usize;
        let children = (0..size)
            .map(|i| FakeChild {
                status: "RUNNABLE".into(),
                exit_code: None,
                reason: None,
                attempts: vec![FakeAttempt::new(format!("def/default/{id}-{i}-attempt1"))],
            })
            .collect();
        state.jobs.push(FakeJob {
            id: id.clone(),
            request: request.clone(),
            children,
        });
        ready(Ok(id))
    }

    fn list_jobs_named<'a>(
        &'a self,
        queue: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<JobSummary>>> {
        let mut state = self.state.lock().unwrap();
        *state.calls.entry("ListJobs").or_default() += 1;
        let found = state
            .jobs
            .iter()
            .filter(|j| j.request.queue == queue && j.request.job_name == name)
            .map(|j| JobSummary {
                id: j.id.clone(),
                name: j.request.job_name.clone(),
                status: j.status().parse().ok(),
                array_index: None,
                exit_code: None,
                reason: None,
            })
            .collect();
        ready(Ok(found))
    }

    fn describe_jobs<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, ApiResult<Vec<JobDetail>>> {
        let mut state = self.state.lock().unwrap();
        *state.calls.entry("DescribeJobs").or_default() += 1;
        assert!(
            !ids.is_empty() && ids.len() <= MAX_DESCRIBE_IDS,
            "DescribeJobs with {} IDs",
            ids.len()
        );
        if state.throttle_describes > 0 {
            state.throttle_describes -= 1;
            return ready(Err(throttled()));
        }
        let mut details = Vec::new();
        for id in ids {
            let (parent, index) = match id.split_once(':') {
                Some((p, i)) => (p, Some(i.parse::<usize>().unwrap())),
                None => (id.as_str(), None),
            };
            if let Some(job) = state.jobs.iter().find(|j| j.id == parent) {
                details.push(Self::detail(job, index));
            }
        }
        ready(Ok(details))
    }

    fn terminate_job<'a>(&'a self, id: &'a str, reason: &'a str) -> BoxFuture<'a, ApiResult<()>> {
        let mut state = self.state.lock().unwrap();
        *state.calls.entry("TerminateJob").or_default() += 1;
        let now = state.now_ms;
        if state.fail_terminates {
            return ready(Err(ApiError {
                code: "ServerException".into(),
                message: "internal error".into(),
                transient: true,
            }));
        }
        if let Some(job) = state.jobs.iter_mut().find(|j| j.id == id) {
            for child in &mut job.children {
                if child.status != "SUCCEEDED" && child.status != "FAILED" {
                    let running = child.status == "RUNNING";
                    child.status = "FAILED".into();
                    child.reason = Some(reason.into());
                    // An attempt that ran stops now; one still waiting never started.
                    if running && let Some(attempt) = child.attempts.last_mut() {
                        attempt.stopped_at = Some(now);
                        attempt.status_reason = Some(reason.into());
                    }
                }
            }
        }
        ready(Ok(()))
    }

    fn filter_log_events<'a>(
        &'a self,
        _group: &'a str,
        streams: &'a [String],
        pattern: &'a str,
        _token: Option<String>,
    ) -> BoxFuture<'a, ApiResult<LogPage>> {
        let mut state = self.state.lock().unwrap();
        *state.calls.entry("FilterLogEvents").or_default() += 1;
        let filter = LogFilter::parse(pattern).unwrap();
        let events = streams
            .iter()
            .flat_map(|s| state.logs.get(s).cloned().unwrap_or_default())
            .filter(|e| filter.matches(&e.message))
            .collect();
        ready(Ok(LogPage { events, next: None }))
    }
}
