//! The Kubernetes executor: one Indexed Job per job of the pass, in a namespace of a cluster,
//! whose pods keep the AWS Batch container contract (see [`manifest`]).
//!
//! - Job names are deterministic and the Jobs carry the pass's identity, so a create that may
//!   have happened before a crash is answered by the existing Job (409), never a second one.
//! - A poll is one list call for all the Jobs of the pass (by the pass label), read from the
//!   Jobs' counts and conditions; pods are listed (one call per Job) only at the end of a pass,
//!   for the logs and the pass record.
//! - Terminating a Job that runs sets its `activeDeadlineSeconds` to 1: the Job controller
//!   stops its pods and fails it, and its status stays for the record; a Job that never
//!   started (waiting for Kueue) is deleted.
//! - Cleaning deletes the pass's Jobs (their pods go with them), having first saved what they
//!   say of their children beside the pass record: the record is written after cleaning, and
//!   must say the same whether it is read before or after a restart.

pub mod manifest;
pub mod observe;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

pub use self::manifest::JobSettings;
use self::manifest::{CONTAINER, JOB_NAME_LABEL, PASS_LABEL};
use super::spool::{self, Spool, save_group_logs};
use super::{Executor, PassContext, storage_failure};
use crate::model::logfilter::LogFilter;
use crate::model::outcome::{ChildOutcome, Definition, Failure, GroupLogs, JobObservation};
use crate::model::spec::SimulationSeriesSpec;
use crate::model::status::{JobRecord, Pass};
use crate::model::validate::{SpecError, SpecErrors};
use crate::storage::StorageErrorKind;

/// The saved log of a child with no pod to read from.
const NO_POD_LEFT: &str = "[simseries: no pod of this child is left to read a log from: it never started, or it was stopped with its Job]\n";
/// Objects per list call.
const PAGE: u32 = 500;
/// Log reads (one per pod) in flight at once.
const LOG_CONCURRENCY: usize = 10;
/// Jobs whose pods are kept at once between the logs and the pass record.
const LISTED_JOBS_KEPT: usize = 64;

impl JobSettings {
    /// The settings of `spec`'s Jobs in `namespace` (the series' own in the cluster), naming
    /// each missing or conflicting field.
    pub fn from_spec(
        spec: &SimulationSeriesSpec,
        namespace: &str,
        owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
    ) -> Result<JobSettings, SpecErrors> {
        let kubernetes = spec.context.kubernetes.clone().unwrap_or_default();
        let mut errors = Vec::new();
        let image = match &spec.parameters.image {
            Some(image) if !image.trim().is_empty() => image.clone(),
            _ => {
                errors.push(SpecError {
                    field: "spec.parameters.image".into(),
                    message: "required to run on Kubernetes: the image the pods run, as Kubernetes pulls it (e.g. ghcr.io/lab/arcade:3)".into(),
                });
                String::new()
            }
        };
        if errors.is_empty() {
            Ok(JobSettings {
                namespace: namespace.to_string(),
                image,
                service_account: kubernetes.service_account,
                parallelism: kubernetes.parallelism,
                queue_name: kubernetes.queue_name,
                owner,
            })
        } else {
            Err(SpecErrors::from(errors))
        }
    }
}

/// A Kubernetes API failure as the decision function sees it.
pub fn failure(what: &str, error: kube::Error) -> Failure {
    match &error {
        kube::Error::Api(status) => {
            let code = status.code;
            let (reason, hint) = match code {
                429 => ("Throttled", ""),
                403 => (
                    "Forbidden",
                    "; the identity needs create, get, list, patch and delete on jobs and list on pods and get on pods/log in the namespace (see deploy/rbac.yaml)",
                ),
                404 => ("NotFound", ""),
                422 => ("Invalid", ""),
                _ => ("KubernetesApiError", ""),
            };
            Failure {
                reason: reason.to_string(),
                message: format!("{what}: {} ({code}){hint}", status.message),
                transient: code == 429 || code >= 500,
            }
        }
        _ => Failure::transient("KubernetesUnreachable", format!("{what}: {error}")),
    }
}

/// Terminates and finds a series' Jobs in one namespace: what the executor and the deletion
/// of a series (whose spec may no longer be valid) share.
#[derive(Clone)]
pub struct JobsApi {
    jobs: Api<Job>,
    pods: Api<Pod>,
}

impl JobsApi {
    pub fn new(client: Client, namespace: &str) -> Self {
        JobsApi {
            jobs: Api::namespaced(client.clone(), namespace),
            pods: Api::namespaced(client, namespace),
        }
    }

    /// Every object matching `selector`, page by page.
    async fn list<K>(api: &Api<K>, selector: &str, what: &str) -> Result<Vec<K>, Failure>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let mut all = Vec::new();
        let mut params = ListParams::default().labels(selector).limit(PAGE);
        loop {
            let page = api.list(&params).await.map_err(|e| failure(what, e))?;
            let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
            all.extend(page.items);
            match next {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(all),
            }
        }
    }

    /// Stops `jobs`; returns the names it stopped (or found ended or gone).
    pub async fn terminate(&self, jobs: &[JobRecord]) -> Result<Vec<String>, Failure> {
        let names: Vec<String> = jobs.iter().filter_map(|j| j.id.clone()).collect();
        // Collected first: a stream of closures' futures is not `Send` for every lifetime.
        let calls: Vec<_> = names.iter().map(|name| self.stop(name)).collect();
        let outcomes = futures::stream::iter(calls)
            .buffered(LOG_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut stopped = Vec::new();
        let mut errors = Vec::new();
        for (name, outcome) in names.iter().zip(outcomes) {
            match outcome {
                Ok(()) => stopped.push(name.clone()),
                Err(e) => errors.push(e),
            }
        }
        if let Some(first) = errors.first() {
            let mut failure = first.clone();
            failure.transient = errors.iter().any(|e| e.transient);
            failure.message = format!(
                "{} of {} terminations failed: {}",
                errors.len(),
                names.len(),
                failure.message
            );
            return Err(failure);
        }
        Ok(stopped)
    }

    async fn stop(&self, name: &str) -> Result<(), Failure> {
        let job = match self.jobs.get_opt(name).await {
            Ok(Some(job)) => job,
            Ok(None) => return Ok(()),
            Err(e) => return Err(failure(&format!("reading Job {name}"), e)),
        };
        if observe::finished_state(&job).is_some() {
            return Ok(());
        }
        let started = job.status.as_ref().is_some_and(|s| s.start_time.is_some());
        let suspended = job.spec.as_ref().and_then(|s| s.suspend) == Some(true);
        if started && !suspended {
            // The deadline counts from the Job's start, long past: the Job controller stops
            // the pods and fails the Job with DeadlineExceeded.
            let patch = serde_json::json!({"spec": {"activeDeadlineSeconds": 1}});
            self.jobs
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| failure(&format!("terminating Job {name}"), e))?;
        } else {
            self.delete(name).await?;
        }
        Ok(())
    }

    /// Removes the owner reference of `jobs`, so they outlive their series.
    pub async fn disown(&self, jobs: &[JobRecord]) -> Result<(), Failure> {
        let patch = serde_json::json!({"metadata": {"ownerReferences": null}});
        for name in jobs.iter().filter_map(|j| j.id.as_deref()) {
            match self
                .jobs
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(failure(&format!("keeping Job {name}"), e)),
            }
        }
        Ok(())
    }

    /// Deletes a Job and, through the garbage collector, its pods.
    async fn delete(&self, name: &str) -> Result<(), Failure> {
        match self.jobs.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(failure(&format!("deleting Job {name}"), e)),
        }
    }
}

/// Runs a pass's jobs as Indexed Jobs.
pub struct KubernetesExecutor {
    api: JobsApi,
    settings: JobSettings,
    /// Pods listed at the end of a pass, by Job name: the logs and the record read one list.
    listed: Mutex<HashMap<String, Arc<Vec<Pod>>>>,
}

impl KubernetesExecutor {
    pub fn new(client: Client, settings: JobSettings) -> Self {
        KubernetesExecutor {
            api: JobsApi::new(client, &settings.namespace),
            settings,
            listed: Mutex::new(HashMap::new()),
        }
    }

    /// The Jobs of this pass, by name (one list call, paged).
    async fn pass_jobs(&self, context: &PassContext) -> Result<HashMap<String, Job>, Failure> {
        let selector = format!("{PASS_LABEL}={}", manifest::pass_id(context));
        let jobs = JobsApi::list(&self.api.jobs, &selector, "listing the pass's Jobs").await?;
        Ok(jobs
            .into_iter()
            .filter_map(|job| Some((job.metadata.name.clone()?, job)))
            .collect())
    }

    /// The pods of a Job, listed once per pass end.
    async fn pods(&self, name: &str) -> Result<Arc<Vec<Pod>>, Failure> {
        if let Some(found) = self.listed.lock().expect("listed lock").get(name) {
            return Ok(found.clone());
        }
        let selector = format!("{JOB_NAME_LABEL}={name}");
        let pods = Arc::new(
            JobsApi::list(
                &self.api.pods,
                &selector,
                &format!("listing the pods of Job {name}"),
            )
            .await?,
        );
        let mut listed = self.listed.lock().expect("listed lock");
        if listed.len() >= LISTED_JOBS_KEPT {
            listed.clear();
        }
        listed.insert(name.to_string(), pods.clone());
        Ok(pods)
    }

    /// The children of a Job from the Job's status and its pods.
    async fn read_children(
        &self,
        job: &JobRecord,
        name: &str,
    ) -> Result<Vec<ChildOutcome>, Failure> {
        let found = self
            .api
            .jobs
            .get_opt(name)
            .await
            .map_err(|e| failure(&format!("reading Job {name}"), e))?;
        let pods = observe::kept_pods(&self.pods(name).await?, job.terminated);
        Ok(observe::children(found.as_ref(), job.array_size, &pods))
    }

    /// Writes a child's log to `path`: each attempt's pod log, filtered, with a separator
    /// per attempt when there were several.
    async fn write_child_log(
        &self,
        path: &Path,
        attempts: &[&Pod],
        filter: &LogFilter,
        spool: &Spool,
    ) -> Result<(), Failure> {
        let failed = |e| spool::io_failure(path, e);
        let mut out = BufWriter::new(File::create(path).map_err(failed)?);
        if attempts.is_empty() {
            out.write_all(NO_POD_LEFT.as_bytes()).map_err(failed)?;
        }
        for (n, pod) in attempts.iter().enumerate() {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            if attempts.len() > 1 {
                writeln!(out, "--- attempt {} ({pod_name}) ---", n + 1).map_err(failed)?;
            }
            let raw = spool.file();
            let read = self.download_pod_log(&pod_name, &raw).await;
            if raw.exists() {
                let file = File::open(&raw).map_err(|e| spool::io_failure(&raw, e))?;
                filter
                    .copy(&mut BufReader::new(file), &mut out)
                    .map_err(|e| spool::io_failure(&raw, e))?;
                let _ = std::fs::remove_file(&raw);
            }
            if let Err(e) = read {
                writeln!(
                    out,
                    "[simseries: the log of pod {pod_name} could not be read: {e}]"
                )
                .map_err(failed)?;
            }
        }
        out.flush().map_err(failed)
    }

    /// Streams a pod's log into the file `path` (what arrived before a failure stays there).
    async fn download_pod_log(&self, name: &str, path: &Path) -> Result<(), String> {
        use futures::AsyncReadExt;
        let params = LogParams {
            container: Some(CONTAINER.to_string()),
            ..LogParams::default()
        };
        let stream = self
            .api
            .pods
            .log_stream(name, &params)
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = Box::pin(stream);
        let mut file = File::create(path).map_err(|e| e.to_string())?;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut buffer).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(());
            }
            file.write_all(&buffer[..n]).map_err(|e| e.to_string())?;
        }
    }
}

impl Executor for KubernetesExecutor {
    fn register<'a>(
        &'a self,
        _context: &'a PassContext,
        _group: &'a crate::model::status::GroupJobs,
    ) -> BoxFuture<'a, Result<Definition, Failure>> {
        // A Job carries its own pod template: there is no definition to register or clean.
        let id = format!("kubernetes:{}", self.settings.namespace);
        async move { Ok(Definition { id, owned: false }) }.boxed()
    }

    fn submit<'a>(
        &'a self,
        context: &'a PassContext,
        _group: &'a crate::model::status::GroupJobs,
        job: &'a JobRecord,
        _may_exist: bool,
    ) -> BoxFuture<'a, Result<String, Failure>> {
        async move {
            let manifest = manifest::job(context, &self.settings, job);
            let name = manifest.metadata.name.clone().unwrap_or_default();
            // A create is its own check: a Job made before a crash answers 409 under its name.
            match self.api.jobs.create(&PostParams::default(), &manifest).await {
                Ok(_) => Ok(name),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    let existing = self
                        .api
                        .jobs
                        .get(&name)
                        .await
                        .map_err(|e| failure(&format!("reading Job {name}"), e))?;
                    let annotations = existing.metadata.annotations.unwrap_or_default();
                    let same = manifest::identity(context, job)
                        .iter()
                        .all(|(key, value)| annotations.get(*key) == Some(value));
                    if same {
                        tracing::info!(job = %name, "adopted a Job created before a restart");
                        Ok(name)
                    } else {
                        Err(Failure::permanent(
                            "JobNameTaken",
                            format!(
                                "Job {name} in namespace {} exists and is not this pass's; delete it or rename the series",
                                self.settings.namespace
                            ),
                        ))
                    }
                }
                Err(e) => Err(failure(&format!("creating Job {name}"), e)),
            }
        }
        .boxed()
    }

    fn poll<'a>(
        &'a self,
        context: &'a PassContext,
        jobs: &'a [JobRecord],
    ) -> BoxFuture<'a, Result<Vec<JobObservation>, Failure>> {
        async move {
            let found = self.pass_jobs(context).await?;
            let queue = self.settings.queue_name.as_deref();
            Ok(jobs
                .iter()
                .filter_map(|j| j.id.as_ref())
                .map(|name| match found.get(name) {
                    Some(job) => observe::observe(name, job, queue),
                    // Deleted by someone.
                    None => JobObservation::gone(name),
                })
                .collect())
        }
        .boxed()
    }

    fn terminate<'a>(
        &'a self,
        _context: &'a PassContext,
        jobs: &'a [JobRecord],
    ) -> BoxFuture<'a, Result<Vec<String>, Failure>> {
        async move { self.api.terminate(jobs).await }.boxed()
    }

    fn collect_logs<'a>(
        &'a self,
        context: &'a PassContext,
        pass: &'a Pass,
    ) -> BoxFuture<'a, Result<Vec<GroupLogs>, Failure>> {
        async move {
            let filter = LogFilter::parse(&context.spec.parameters.log_filter)
                .map_err(|e| Failure::permanent("InvalidLogFilter", e.to_string()))?;
            let mut saved = Vec::new();
            for group in &pass.groups {
                let spool = Spool::new()?;
                let mut files = Vec::new();
                for job in &group.jobs {
                    let Some(name) = job.submitted_id() else {
                        continue;
                    };
                    let pods = observe::kept_pods(&self.pods(name).await?, job.terminated);
                    let by_index = observe::attempts_by_index(&pods);
                    // One log per child, as on AWS Batch, even where no pod is left.
                    let writes: Vec<_> = (0..job.array_size.max(1))
                        .map(|index| {
                            let attempts = by_index.get(&index).cloned().unwrap_or_default();
                            let key = context.folder.log(
                                context.pass,
                                &job.file_set_name,
                                index as usize,
                            );
                            let (filter, spool) = (&filter, &spool);
                            async move {
                                let path = spool.file();
                                self.write_child_log(&path, &attempts, filter, spool)
                                    .await?;
                                Ok::<_, Failure>((key, path))
                            }
                        })
                        .collect();
                    let written: Vec<(String, PathBuf)> = futures::stream::iter(writes)
                        .buffered(LOG_CONCURRENCY)
                        .try_collect()
                        .await?;
                    files.extend(written);
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
            let Some(name) = job.submitted_id() else {
                return Ok(ChildOutcome::not_submitted(job.array_size));
            };
            let key = context
                .folder
                .job_children(context.pass, &job.file_set_name);
            match context.working.read(&key).await {
                Ok(saved) => {
                    return serde_json::from_slice(&saved).map_err(|e| {
                        Failure::permanent(
                            "RecordUnreadable",
                            format!("{key}: {e}; remove it to read the Job again"),
                        )
                    });
                }
                Err(e) if e.kind == StorageErrorKind::NotFound => {}
                Err(e) => return Err(storage_failure("RecordUnreadable", &e)),
            }
            let children = self.read_children(job, name).await?;
            // The pass record is the last reader of the pods.
            self.listed.lock().expect("listed lock").remove(name);
            Ok(children)
        }
        .boxed()
    }

    fn clean<'a>(
        &'a self,
        context: &'a PassContext,
        pass: &'a Pass,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        async move {
            let found = self.pass_jobs(context).await?;
            let names: Vec<&String> = pass
                .groups
                .iter()
                .flat_map(|g| &g.jobs)
                .filter_map(|j| j.id.as_ref())
                .filter(|name| found.contains_key(*name))
                .collect();
            // Deleting a Job stops its pods: only once none runs.
            if let Some(busy) = names
                .iter()
                .find(|name| observe::finished_state(&found[**name]).is_none())
            {
                return Err(Failure::transient(
                    "JobsStillRunning",
                    format!("Job {busy} has not finished; the Jobs are deleted once it has"),
                ));
            }
            // What the Jobs say of their children, kept for the pass record before they go.
            for job in pass.groups.iter().flat_map(|g| &g.jobs) {
                let Some(name) = job.id.as_ref().filter(|n| found.contains_key(*n)) else {
                    continue;
                };
                let children = self.read_children(job, name).await?;
                let key = context
                    .folder
                    .job_children(context.pass, &job.file_set_name);
                let body = serde_json::to_vec(&children).expect("children serialize");
                context
                    .working
                    .write(&key, body)
                    .await
                    .map_err(|e| storage_failure("RecordNotSaved", &e))?;
            }
            let deletes: Vec<_> = names.iter().map(|name| self.api.delete(name)).collect();
            futures::stream::iter(deletes)
                .buffered(LOG_CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await?;
            Ok(())
        }
        .boxed()
    }
}
