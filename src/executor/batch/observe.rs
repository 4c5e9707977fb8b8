//! A [`BatchApi`] that shows every call to an observer before making it: the controller counts
//! calls per API in its metrics; tests count them and check AWS's per-call limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::api::{
    ApiResult, BatchApi, DefinitionContent, DefinitionRevision, JobDetail, JobSummary, LogPage,
    SubmitRequest,
};

/// One call, with what matters of its arguments.
#[derive(Debug)]
pub enum Call<'a> {
    DescribeJobDefinitions,
    RegisterJobDefinition(&'a DefinitionContent),
    DeregisterJobDefinition(&'a str),
    SubmitJob(&'a SubmitRequest),
    /// ListJobs by name (adoption) or by parent (children).
    ListJobs,
    DescribeJobs(&'a [String]),
    TerminateJob(&'a str),
    FilterLogEvents(&'a [String]),
}

impl Call<'_> {
    /// The AWS API name.
    pub fn api(&self) -> &'static str {
        match self {
            Call::DescribeJobDefinitions => "DescribeJobDefinitions",
            Call::RegisterJobDefinition(_) => "RegisterJobDefinition",
            Call::DeregisterJobDefinition(_) => "DeregisterJobDefinition",
            Call::SubmitJob(_) => "SubmitJob",
            Call::ListJobs => "ListJobs",
            Call::DescribeJobs(_) => "DescribeJobs",
            Call::TerminateJob(_) => "TerminateJob",
            Call::FilterLogEvents(_) => "FilterLogEvents",
        }
    }
}

type Observer = Box<dyn Fn(&Call<'_>) + Send + Sync>;

pub struct Observed {
    inner: Arc<dyn BatchApi>,
    observer: Observer,
}

impl Observed {
    pub fn new(
        inner: Arc<dyn BatchApi>,
        observer: impl Fn(&Call<'_>) + Send + Sync + 'static,
    ) -> Self {
        Observed {
            inner,
            observer: Box::new(observer),
        }
    }
}

impl BatchApi for Observed {
    fn describe_job_definitions<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<DefinitionRevision>>> {
        (self.observer)(&Call::DescribeJobDefinitions);
        self.inner.describe_job_definitions(name)
    }

    fn register_job_definition<'a>(
        &'a self,
        content: &'a DefinitionContent,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, ApiResult<String>> {
        (self.observer)(&Call::RegisterJobDefinition(content));
        self.inner.register_job_definition(content, tags)
    }

    fn deregister_job_definition<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, ApiResult<()>> {
        (self.observer)(&Call::DeregisterJobDefinition(arn));
        self.inner.deregister_job_definition(arn)
    }

    fn submit_job<'a>(&'a self, request: &'a SubmitRequest) -> BoxFuture<'a, ApiResult<String>> {
        (self.observer)(&Call::SubmitJob(request));
        self.inner.submit_job(request)
    }

    fn list_jobs_named<'a>(
        &'a self,
        queue: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<JobSummary>>> {
        (self.observer)(&Call::ListJobs);
        self.inner.list_jobs_named(queue, name)
    }

    fn describe_jobs<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, ApiResult<Vec<JobDetail>>> {
        (self.observer)(&Call::DescribeJobs(ids));
        self.inner.describe_jobs(ids)
    }

    fn terminate_job<'a>(&'a self, id: &'a str, reason: &'a str) -> BoxFuture<'a, ApiResult<()>> {
        (self.observer)(&Call::TerminateJob(id));
        self.inner.terminate_job(id, reason)
    }

    fn filter_log_events<'a>(
        &'a self,
        group: &'a str,
        streams: &'a [String],
        pattern: &'a str,
        token: Option<String>,
    ) -> BoxFuture<'a, ApiResult<LogPage>> {
        (self.observer)(&Call::FilterLogEvents(streams));
        self.inner.filter_log_events(group, streams, pattern, token)
    }
}
