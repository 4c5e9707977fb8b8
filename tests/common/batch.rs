//! Test doubles behind the executor's `BatchApi`: a counting layer (around moto or a fake)
//! and helpers to build pass contexts.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use simseries::executor::batch::api::{
    ApiResult, BatchApi, DefinitionContent, DefinitionRevision, JobDetail, JobSummary, LogEvent,
    MAX_DESCRIBE_IDS, MAX_LOG_STREAMS, SubmitRequest,
};

/// Counts calls per operation and checks AWS's per-call limits on every call.
pub struct Counting {
    inner: Arc<dyn BatchApi>,
    pub calls: Mutex<BTreeMap<&'static str, usize>>,
    pub submitted: Mutex<Vec<SubmitRequest>>,
    /// Largest DescribeJobs request seen.
    pub largest_describe: Mutex<usize>,
    pub terminated: Mutex<Vec<String>>,
}

impl Counting {
    pub fn new(inner: Arc<dyn BatchApi>) -> Arc<Self> {
        Arc::new(Counting {
            inner,
            calls: Mutex::new(BTreeMap::new()),
            submitted: Mutex::new(Vec::new()),
            largest_describe: Mutex::new(0),
            terminated: Mutex::new(Vec::new()),
        })
    }

    fn count(&self, op: &'static str) {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
    }

    pub fn calls(&self, op: &str) -> usize {
        self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap().clear();
        *self.largest_describe.lock().unwrap() = 0;
    }
}

impl BatchApi for Counting {
    fn describe_job_definitions<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<DefinitionRevision>>> {
        self.count("DescribeJobDefinitions");
        self.inner.describe_job_definitions(name)
    }

    fn register_job_definition<'a>(
        &'a self,
        content: &'a DefinitionContent,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, ApiResult<String>> {
        self.count("RegisterJobDefinition");
        self.inner.register_job_definition(content, tags)
    }

    fn deregister_job_definition<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, ApiResult<()>> {
        self.count("DeregisterJobDefinition");
        self.inner.deregister_job_definition(arn)
    }

    fn submit_job<'a>(&'a self, request: &'a SubmitRequest) -> BoxFuture<'a, ApiResult<String>> {
        self.count("SubmitJob");
        self.submitted.lock().unwrap().push(request.clone());
        self.inner.submit_job(request)
    }

    fn list_jobs_named<'a>(
        &'a self,
        queue: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<JobSummary>>> {
        self.count("ListJobs");
        self.inner.list_jobs_named(queue, name)
    }

    fn list_children<'a>(
        &'a self,
        parent: &'a str,
        status: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<JobSummary>>> {
        self.count("ListJobs");
        self.inner.list_children(parent, status)
    }

    fn describe_jobs<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, ApiResult<Vec<JobDetail>>> {
        self.count("DescribeJobs");
        assert!(
            !ids.is_empty(),
            "DescribeJobs with no IDs (moto would describe every job)"
        );
        assert!(
            ids.len() <= MAX_DESCRIBE_IDS,
            "DescribeJobs with {} IDs",
            ids.len()
        );
        let mut largest = self.largest_describe.lock().unwrap();
        *largest = (*largest).max(ids.len());
        drop(largest);
        self.inner.describe_jobs(ids)
    }

    fn terminate_job<'a>(&'a self, id: &'a str, reason: &'a str) -> BoxFuture<'a, ApiResult<()>> {
        self.count("TerminateJob");
        self.terminated.lock().unwrap().push(id.to_string());
        self.inner.terminate_job(id, reason)
    }

    fn filter_log_events<'a>(
        &'a self,
        group: &'a str,
        streams: &'a [String],
        pattern: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<LogEvent>>> {
        self.count("FilterLogEvents");
        assert!(
            !streams.is_empty() && streams.len() <= MAX_LOG_STREAMS,
            "{} streams",
            streams.len()
        );
        self.inner.filter_log_events(group, streams, pattern)
    }
}

/// Resolves at once (for fakes).
pub fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    async move { value }.boxed()
}
