//! Reconciling one `SimulationSeries`: the pass's drive loop, with the cluster as its driver.
//!
//! Each reconcile reads the object and runs [`drive`]: decide the next step, write the new
//! status (server-side apply on the status subresource) *before* acting, publish what changed
//! as events, act through the actor, and repeat until the pass waits (requeue at that time) or
//! is done (no requeue, no AWS call). A spec edit (new `metadata.generation`) or a changed
//! `simseries.io/rerun` annotation starts the next pass. A finalizer terminates the series'
//! jobs and deregisters its job definitions when the object is deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{self, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::controller::cloud::Cloud;
use crate::controller::metrics::Metrics;
use crate::controller::tenancy::Tenancy;
use crate::executor::Executor;
use crate::executor::batch::{BatchExecutor, BatchReaper, BatchSettings};
use crate::executor::kubernetes::{JobSettings, JobsApi, KubernetesExecutor};
use crate::model::outcome::Failure;
use crate::model::spec::{RERUN_ANNOTATION, SimulationSeries, SimulationSeriesSpec};
use crate::model::status::SimulationSeriesStatus;
use crate::model::validate::validate;
use crate::pass::act::Actor;
use crate::pass::backoff::Backoff;
use crate::pass::conditions::set_condition;
use crate::pass::decide::{Observation, Outcome, Step};
use crate::pass::drive::{Driver, Next, Stopped, drive};
use crate::pass::transitions::Transition;
use crate::planning::prepare::Locations;

/// Set on every series; removed once the series' AWS resources are cleaned up.
pub const FINALIZER: &str = "simseries.io/cleanup";
/// `keep-jobs`: deleting the series leaves its running jobs alone.
pub const ON_DELETE_ANNOTATION: &str = "simseries.io/on-delete";
/// Field manager of the status the controller applies.
pub const FIELD_MANAGER: &str = "simseries";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("cleanup of AWS resources failed (retried): {0}")]
    Cleanup(String),
}

impl Error {
    /// A bounded label for metrics and the reason of events and conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
            Error::Finalizer(_) => "FinalizerError",
            Error::Cleanup(_) => "CleanupFailed",
        }
    }
}

/// What every reconcile shares: the clients, the metrics, the tenancy rules and the backoff
/// state of each series.
pub struct Reconciler {
    pub client: kube::Client,
    pub reporter: Reporter,
    pub metrics: Arc<Metrics>,
    pub cloud: Arc<dyn Cloud>,
    /// Which locations and queues each namespace's series may use.
    pub tenancy: Tenancy,
    /// Consecutive failed reconciles per series, for the backoff.
    pub failures: Mutex<HashMap<String, u32>>,
    /// Steps (actions) per reconcile before yielding to other series.
    pub max_steps: usize,
}

impl Reconciler {
    pub fn new(
        client: kube::Client,
        reporter: Reporter,
        metrics: Arc<Metrics>,
        cloud: Arc<dyn Cloud>,
        tenancy: Tenancy,
    ) -> Self {
        Reconciler {
            client,
            reporter,
            metrics,
            cloud,
            tenancy,
            failures: Mutex::new(HashMap::new()),
            max_steps: 64,
        }
    }
}

fn key(series: &SimulationSeries) -> String {
    format!(
        "{}/{}",
        series.namespace().unwrap_or_default(),
        series.name_any()
    )
}

/// Reconciles one series (the controller's reconcile function).
#[tracing::instrument(skip_all, fields(series = %key(&series)))]
pub async fn reconcile(
    series: Arc<SimulationSeries>,
    ctx: Arc<Reconciler>,
) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let api: Api<SimulationSeries> =
        Api::namespaced(ctx.client.clone(), &series.namespace().unwrap_or_default());
    let result = finalizer(&api, FINALIZER, series.clone(), |event| async {
        match event {
            finalizer::Event::Apply(series) => apply(series, &ctx).await,
            finalizer::Event::Cleanup(series) => cleanup(series, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    });
    ctx.metrics.observe_duration(started.elapsed());
    match &result {
        Ok(_) => {
            ctx.failures
                .lock()
                .expect("failures lock")
                .remove(&key(&series));
        }
        Err(error) => report_error(&series, error, &ctx).await,
    }
    result
}

/// Exponential backoff per series after a failed reconcile.
pub fn error_policy(series: Arc<SimulationSeries>, error: &Error, ctx: Arc<Reconciler>) -> Action {
    ctx.metrics.error(error.reason());
    let mut failures = ctx.failures.lock().expect("failures lock");
    let count = failures.entry(key(&series)).or_insert(0);
    *count += 1;
    let wait = Backoff::CALLS.after(*count);
    tracing::warn!(series = %key(&series), %error, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

/// The checks a series must pass to run in the cluster; their failure is the pass's failure.
/// Where a series' children run, checked.
enum Runner {
    Batch(BatchSettings),
    Kubernetes(JobSettings),
}

fn precheck(
    spec: &SimulationSeriesSpec,
    namespace: &str,
    owner: Option<OwnerReference>,
    tenancy: &Tenancy,
) -> Result<(Locations, Runner), Failure> {
    let invalid = |message: String| Failure::permanent("InvalidSpec", message);
    validate(spec).map_err(|e| invalid(e.to_string()))?;
    let locations = Locations::resolve(spec, None).map_err(|e| invalid(e.to_string()))?;
    for (field, location) in [
        ("workingLocation", &locations.working),
        ("manifestLocation", &locations.manifest),
        ("templateLocation", &locations.template),
    ] {
        if !location.is_s3() {
            return Err(invalid(format!(
                "spec.context.{field}: {location} is not an s3:// location; in the cluster every location is on S3"
            )));
        }
    }
    if spec.on_kubernetes() {
        let asked = spec
            .context
            .kubernetes
            .as_ref()
            .and_then(|k| k.namespace.as_deref());
        if let Some(asked) = asked.filter(|asked| *asked != namespace) {
            return Err(invalid(format!(
                "spec.context.kubernetes.namespace: {asked} is not the series' namespace {namespace}; in the cluster a series' Jobs run in its own namespace, so remove the field"
            )));
        }
        let settings =
            JobSettings::from_spec(spec, namespace, owner).map_err(|e| invalid(e.to_string()))?;
        // Kueue's LocalQueues are namespaced and admit by their own quotas: only the
        // locations are granted here.
        tenancy.check(namespace, &locations, None)?;
        return Ok((locations, Runner::Kubernetes(settings)));
    }
    let settings = BatchSettings::from_spec(spec).map_err(|e| invalid(e.to_string()))?;
    tenancy.check(namespace, &locations, spec.context.queue.as_deref())?;
    Ok((locations, Runner::Batch(settings)))
}

async fn apply(series: Arc<SimulationSeries>, ctx: &Reconciler) -> Result<Action, Error> {
    let namespace = series.namespace().unwrap_or_default();
    let spec = series.spec.clone();
    let mut status = series.status.clone().unwrap_or_default();
    let mut driver = ClusterDriver {
        ctx,
        api: Api::namespaced(ctx.client.clone(), &namespace),
        recorder: Recorder::new(ctx.client.clone(), ctx.reporter.clone()),
        reference: series.object_ref(&()),
        owner: series.controller_owner_ref(&()),
        name: series.name_any(),
        key: key(&series),
        namespace,
        spec: Arc::new(spec.clone()),
        generation: series.metadata.generation.unwrap_or(0),
        rerun: series.annotations().get(RERUN_ANNOTATION).cloned(),
        actor: None,
        steps: 0,
    };
    let drove = drive(&spec, &mut status, &mut driver).await;
    ctx.metrics.set_series(&driver.key, Some(&status));
    Ok(match drove?.stopped {
        Stopped::Done => Action::await_change(),
        Stopped::Waiting(until) => {
            let wait = until.duration_since(Timestamp::now());
            // Capped: the scheduler's timer wheel has a horizon, and deciding again after an
            // hour only finds the same wait.
            let wait = Duration::try_from(wait)
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_secs(1), Duration::from_secs(3600));
            Action::requeue(wait)
        }
        // Many steps in a row (a large series submitting): let other series have a turn.
        Stopped::Yielded | Stopped::Interrupted => Action::requeue(Duration::from_millis(100)),
    })
}

/// The cluster as the driver of a pass: the status subresource keeps the status, events show
/// the transitions, a wait becomes a requeue.
struct ClusterDriver<'a> {
    ctx: &'a Reconciler,
    api: Api<SimulationSeries>,
    recorder: Recorder,
    reference: ObjectReference,
    /// The series as the owner of its Kubernetes Jobs.
    owner: Option<OwnerReference>,
    name: String,
    /// `{namespace}/{name}`.
    key: String,
    namespace: String,
    spec: Arc<SimulationSeriesSpec>,
    generation: i64,
    rerun: Option<String>,
    /// Made at the first step that needs it, once the spec passed its checks.
    actor: Option<Actor>,
    steps: usize,
}

impl ClusterDriver<'_> {
    /// The actor of the series, or why the series cannot be acted for.
    fn actor(&mut self) -> Result<&mut Actor, Failure> {
        if self.actor.is_none() {
            let (locations, runner) = precheck(
                &self.spec,
                &self.namespace,
                self.owner.clone(),
                &self.ctx.tenancy,
            )?;
            let stores = self.ctx.cloud.stores(&locations);
            let executor: Arc<dyn Executor> = match runner {
                Runner::Batch(settings) => {
                    let api = self.ctx.cloud.batch(self.spec.context.region.as_deref());
                    Arc::new(BatchExecutor::new(api, settings))
                }
                Runner::Kubernetes(settings) => {
                    Arc::new(KubernetesExecutor::new(self.ctx.client.clone(), settings))
                }
            };
            let actor = Actor::new(
                self.spec.clone(),
                locations,
                stores,
                executor,
                self.key.clone(),
            );
            self.actor = Some(actor);
        }
        Ok(self.actor.as_mut().expect("the actor was just made"))
    }
}

impl Driver for ClusterDriver<'_> {
    type Error = Error;

    fn observe(&mut self, outcome: Outcome) -> Observation {
        Observation {
            now: Timestamp::now(),
            generation: self.generation,
            rerun: self.rerun.clone(),
            // Reading S3 on every reconcile to tell a fixed template is costly: a pass that
            // failed to start is retried on a backoff instead.
            inputs: None,
            outcome,
        }
    }

    async fn persist(
        &mut self,
        status: &SimulationSeriesStatus,
        transitions: &[Transition],
    ) -> Result<(), Error> {
        patch_status(&self.api, &self.name, status).await?;
        for transition in transitions {
            if let Transition::UsageMeasured { usage, .. } = transition {
                self.ctx.metrics.add_usage(usage);
            }
            // The phases at a pass's end show in the status; events are for news.
            if matches!(
                transition,
                Transition::CollectingLogs { .. } | Transition::Cleaning { .. }
            ) {
                continue;
            }
            let note = Event {
                type_: if transition.is_warning() {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: transition.reason().to_string(),
                note: Some(transition.message()),
                action: transition.step().to_string(),
                secondary: None,
            };
            publish(
                &self.recorder,
                &note,
                &self.reference,
                &self.key,
                &self.ctx.metrics,
            )
            .await;
        }
        self.ctx.metrics.set_series(&self.key, Some(status));
        Ok(())
    }

    /// The informer's object may lag behind this controller's own status writes, and a status
    /// apply has no precondition to catch that: read the status subresource itself.
    async fn persisted(&mut self) -> Result<Option<SimulationSeriesStatus>, Error> {
        let object = self.api.get_status(&self.name).await?;
        Ok(Some(object.status.unwrap_or_default()))
    }

    async fn perform(&mut self, status: &SimulationSeriesStatus, step: Step) -> Next {
        if let Step::Wait { until } = step {
            return Next::Stop(Stopped::Waiting(until));
        }
        if self.steps >= self.ctx.max_steps {
            return Next::Stop(Stopped::Yielded);
        }
        self.steps += 1;
        match self.actor() {
            Ok(actor) => Next::Continue(actor.act(status, &step).await),
            Err(failure) => Next::Continue(step.failed(failure)),
        }
    }
}

/// Server-side apply of the whole status under the controller's field manager.
pub async fn patch_status(
    api: &Api<SimulationSeries>,
    name: &str,
    status: &SimulationSeriesStatus,
) -> Result<(), kube::Error> {
    let patch = json!({
        "apiVersion": "simseries.io/v1alpha1",
        "kind": "SimulationSeries",
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Publishes an event about a series. A failure (say a role without `events create`) is logged
/// and counted but never fails the reconcile: the status and its conditions still tell what
/// happened, and the pass goes on.
async fn publish(
    recorder: &Recorder,
    note: &Event,
    reference: &ObjectReference,
    series: &str,
    metrics: &Metrics,
) {
    let Err(error) = recorder.publish(note, reference).await else {
        return;
    };
    let reason = match &error {
        kube::Error::Api(status) if !status.reason.is_empty() => status.reason.clone(),
        _ => "Unreachable".to_string(),
    };
    metrics.event_error(&reason);
    if reason == "Forbidden" {
        tracing::warn!(
            series,
            %error,
            "cannot publish an event: the controller's role lacks `create` on events.k8s.io/events (deploy/rbac.yaml grants it)"
        );
    } else {
        tracing::warn!(series, %error, "cannot publish an event");
    }
}

/// A failed reconcile is recorded as an Event and on the `Reconciling` condition.
async fn report_error(series: &SimulationSeries, error: &Error, ctx: &Reconciler) {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let note = Event {
        type_: EventType::Warning,
        reason: error.reason().to_string(),
        note: Some(error.to_string()),
        action: "Reconcile".into(),
        secondary: None,
    };
    publish(
        &recorder,
        &note,
        &series.object_ref(&()),
        &key(series),
        &ctx.metrics,
    )
    .await;
    let mut status = series.status.clone().unwrap_or_default();
    set_condition(
        &mut status.conditions,
        "Reconciling",
        "True",
        error.reason(),
        &format!("retrying after: {error}"),
        series.metadata.generation,
        Timestamp::now(),
    );
    let api: Api<SimulationSeries> =
        Api::namespaced(ctx.client.clone(), &series.namespace().unwrap_or_default());
    if let Err(e) = patch_status(&api, &series.name_any(), &status).await {
        tracing::warn!(series = %key(series), error = %e, "cannot record the error in the status");
    }
}

/// On delete, for Kubernetes Jobs: stop the unfinished ones (unless told to keep them). The
/// garbage collector deletes them with the series, through their owner reference; kept Jobs
/// lose that reference so they outlive it.
async fn cleanup_jobs(
    series: &SimulationSeries,
    pass: &crate::model::status::Pass,
    keep: bool,
    ctx: &Reconciler,
) -> Result<String, Error> {
    let namespace = series.namespace().unwrap_or_default();
    let unfinished = pass.jobs_that_may_run();
    if unfinished.is_empty() {
        return Ok("nothing left to clean up".to_string());
    }
    let jobs = JobsApi::new(ctx.client.clone(), &namespace);
    if keep {
        jobs.disown(&unfinished)
            .await
            .map_err(|f| Error::Cleanup(format!("keeping Jobs: {}", f.error())))?;
        return Ok(format!(
            "{} running Job(s) kept ({ON_DELETE_ANNOTATION}: keep-jobs)",
            unfinished.len()
        ));
    }
    let stopped = jobs
        .terminate(&unfinished)
        .await
        .map_err(|f| Error::Cleanup(format!("terminating Jobs: {}", f.error())))?;
    Ok(format!("{} Job(s) terminated", stopped.len()))
}

/// On delete: terminate the series' unfinished jobs (unless told to keep them) and deregister
/// the job definitions it registered. A failure keeps the finalizer and is retried.
async fn cleanup(series: Arc<SimulationSeries>, ctx: &Reconciler) -> Result<Action, Error> {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let reference = series.object_ref(&());
    let status = series.status.clone().unwrap_or_default();
    let keep = series
        .annotations()
        .get(ON_DELETE_ANNOTATION)
        .map(String::as_str)
        == Some("keep-jobs");
    let mut summary = "nothing was submitted".to_string();
    if let Some(pass) = &status.pass
        && series.spec.on_kubernetes()
    {
        summary = cleanup_jobs(&series, pass, keep, ctx).await?;
    } else if let Some(pass) = &status.pass {
        // Terminating and deregistering need only the Batch API: a broken spec still cleans up.
        let reaper = BatchReaper::new(ctx.cloud.batch(series.spec.context.region.as_deref()));
        let unfinished = pass.jobs_that_may_run();
        let mut parts = Vec::new();
        if unfinished.is_empty() {
        } else if keep {
            parts.push(format!(
                "{} running job(s) kept ({ON_DELETE_ANNOTATION}: keep-jobs)",
                unfinished.len()
            ));
        } else {
            let reason = format!(
                "terminated by simseries: series {} was deleted",
                key(&series)
            );
            let terminated = reaper
                .terminate(&unfinished, &reason)
                .await
                .map_err(|f| Error::Cleanup(format!("terminating jobs: {}", f.error())))?;
            parts.push(format!("{} job(s) terminated", terminated.len()));
        }
        // A finished pass with cleanJobs deregistered its definitions already.
        if !(pass.phase.is_finished() && series.spec.parameters.clean_jobs) {
            reaper.release(pass).await.map_err(|f| {
                Error::Cleanup(format!("deregistering job definitions: {}", f.error()))
            })?;
            let owned = pass.groups.iter().filter(|g| g.definition_owned).count();
            parts.push(format!("{owned} job definition(s) deregistered"));
        }
        summary = if parts.is_empty() {
            "nothing left to clean up".to_string()
        } else {
            parts.join(", ")
        };
    }
    let note = Event {
        type_: EventType::Normal,
        reason: "CleanedUp".into(),
        note: Some(summary),
        action: "Delete".into(),
        secondary: None,
    };
    publish(&recorder, &note, &reference, &key(&series), &ctx.metrics).await;
    ctx.metrics.set_series(&key(&series), None);
    Ok(Action::await_change())
}
