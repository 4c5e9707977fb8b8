//! Reconciling one `SimulationSeries`: the decision function drives, this layer acts.
//!
//! Each reconcile reads the object, asks [`decide`] for the next step, writes the new status
//! (server-side apply on the status subresource) *before* acting, acts through the actor, and
//! repeats until the decision is to wait (requeue at that time) or that the pass is done (no
//! requeue, no AWS call). A spec edit (new `metadata.generation`) or a changed
//! `simseries.io/rerun` annotation starts the next pass. A finalizer terminates the series'
//! jobs and deregisters its job definitions when the object is deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::act::Actor;
use crate::controller::cloud::Cloud;
use crate::controller::metrics::Metrics;
use crate::controller::tenancy::Tenancy;
use crate::executor::batch::BatchSettings;
use crate::location::Location;
use crate::prepare::Locations;
use crate::reconcile::{Action, Event, Failure, Observation, decide, set_condition};
use crate::spec::{SimulationSeries, SimulationSeriesSpec};
use crate::status::{Phase, SimulationSeriesStatus};
use crate::validate::validate;

/// Set on every series; removed once the series' AWS resources are cleaned up.
pub const FINALIZER: &str = "simseries.io/cleanup";
/// Changing its value starts a new pass of an unchanged spec.
pub const RERUN_ANNOTATION: &str = "simseries.io/rerun";
/// `keep-jobs`: deleting the series leaves its running jobs alone.
pub const ON_DELETE_ANNOTATION: &str = "simseries.io/on-delete";
/// Field manager of the status the controller applies.
pub const FIELD_MANAGER: &str = "simseries";
/// Errors back off from 5 s, doubling, up to 5 min.
const ERROR_BACKOFF: Duration = Duration::from_secs(5);
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(300);

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

/// What every reconcile shares.
pub struct Context {
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

impl Context {
    pub fn new(
        client: kube::Client,
        reporter: Reporter,
        metrics: Arc<Metrics>,
        cloud: Arc<dyn Cloud>,
        tenancy: Tenancy,
    ) -> Self {
        Context {
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
pub async fn reconcile(series: Arc<SimulationSeries>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let api: Api<SimulationSeries> =
        Api::namespaced(ctx.client.clone(), &series.namespace().unwrap_or_default());
    let result = finalizer(&api, FINALIZER, series.clone(), |event| async {
        match event {
            Finalizer::Apply(series) => apply(series, &ctx).await,
            Finalizer::Cleanup(series) => cleanup(series, &ctx).await,
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
pub fn error_policy(series: Arc<SimulationSeries>, error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics.error(error.reason());
    let mut failures = ctx.failures.lock().expect("failures lock");
    let count = failures.entry(key(&series)).or_insert(0);
    *count += 1;
    let wait = ERROR_BACKOFF
        .saturating_mul(2u32.saturating_pow((*count - 1).min(16)))
        .min(ERROR_BACKOFF_MAX);
    tracing::warn!(series = %key(&series), %error, retry_in = ?wait, "reconcile failed");
    Requeue::requeue(wait)
}

/// The checks a series must pass to run in the cluster; their failure is the pass's failure.
fn precheck(
    spec: &SimulationSeriesSpec,
    namespace: &str,
    tenancy: &Tenancy,
) -> Result<Locations, Failure> {
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
    BatchSettings::from_spec(spec).map_err(|e| invalid(e.to_string()))?;
    tenancy.check(namespace, &locations, spec.context.queue.as_deref())?;
    Ok(locations)
}

/// The outcome of `action` when the series cannot be acted for at all.
fn failed(action: &Action, failure: Failure) -> Event {
    match action {
        Action::Plan => Event::Planned(Err(failure)),
        Action::WriteInputs => Event::InputsWritten(Err(failure)),
        Action::CopyInits => Event::InitsCopied(Err(failure)),
        Action::Register { group } => Event::Registered {
            group: *group,
            result: Err(failure),
        },
        Action::Submit { group, job } => Event::Submitted {
            group: *group,
            job: *job,
            result: Err(failure),
        },
        Action::Poll => Event::Polled(Err(failure)),
        Action::Terminate { .. } => Event::Terminated(Err(failure)),
        Action::CollectLogs => Event::LogsCollected(Err(failure)),
        Action::Clean => Event::Cleaned(Err(failure)),
        Action::Recount => Event::Recounted(Err(failure)),
        Action::Wait { .. } | Action::Done => Event::Resumed,
    }
}

async fn apply(series: Arc<SimulationSeries>, ctx: &Context) -> Result<Requeue, Error> {
    let name = series.name_any();
    let namespace = series.namespace().unwrap_or_default();
    let api: Api<SimulationSeries> = Api::namespaced(ctx.client.clone(), &namespace);
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let reference = series.object_ref(&());
    let spec = Arc::new(series.spec.clone());
    let generation = series.metadata.generation.unwrap_or(0);
    let rerun = series.annotations().get(RERUN_ANNOTATION).cloned();
    let mut status = series.status.clone().unwrap_or_default();
    let mut actor: Option<Actor> = None;
    let mut event = Event::Resumed;

    for _ in 0..ctx.max_steps {
        let now = Timestamp::now();
        let decision = decide(
            &spec,
            &status,
            &Observation {
                now,
                generation,
                rerun: rerun.clone(),
                // Reading S3 on every reconcile to tell a fixed template is costly: a pass
                // that failed to start is retried on a backoff instead.
                inputs: None,
                event,
            },
        );
        if decision.status != status {
            // Intent first: the status is written before the action it announces.
            patch_status(&api, &name, &decision.status).await?;
            crate::faults::crash_point("after-status-write");
            for note in transition_events(&status, &decision.status) {
                if let Err(e) = recorder.publish(&note, &reference).await {
                    tracing::warn!(series = %key(&series), error = %e, "cannot publish an event");
                }
            }
            status = decision.status;
        }
        ctx.metrics.set_series(&key(&series), Some(&status));
        event = match decision.action {
            Action::Done => return Ok(Requeue::await_change()),
            Action::Wait { until } => {
                let wait = until.duration_since(Timestamp::now());
                // Capped: the scheduler's timer wheel has a horizon, and deciding again after
                // an hour only finds the same wait.
                let wait = Duration::try_from(wait)
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_secs(1), Duration::from_secs(3600));
                return Ok(Requeue::requeue(wait));
            }
            action => {
                if actor.is_none() {
                    match precheck(&spec, &namespace, &ctx.tenancy) {
                        Ok(locations) => {
                            let stores = ctx.cloud.stores(&locations);
                            let executor = ctx.cloud.executor(&spec);
                            let mut new = Actor::new(spec.clone(), locations, stores, executor);
                            new.owner = key(&series);
                            actor = Some(new);
                        }
                        Err(failure) => {
                            event = failed(&action, failure);
                            continue;
                        }
                    }
                }
                let actor = actor.as_mut().expect("the actor was just made");
                actor.act(&status, &action).await
            }
        };
    }
    // Many steps in a row (a large series submitting): let other series have a turn.
    Ok(Requeue::requeue(Duration::from_millis(100)))
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

/// Events for what changed between two statuses.
pub fn transition_events(
    old: &SimulationSeriesStatus,
    new: &SimulationSeriesStatus,
) -> Vec<KubeEvent> {
    let event = |type_: EventType, reason: &str, action: &str, note: String| KubeEvent {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    };
    let Some(pass) = &new.pass else {
        return Vec::new();
    };
    let before = old.pass.as_ref().filter(|p| p.number == pass.number);
    let mut events = Vec::new();
    if before.is_none() {
        events.push(event(
            EventType::Normal,
            "PassStarted",
            "Plan",
            format!(
                "pass {} started for generation {}",
                pass.number, pass.generation
            ),
        ));
    }
    let old_phase = before.map(|p| p.phase);
    if old_phase != Some(pass.phase) {
        let jobs: usize = pass.groups.iter().map(|g| g.jobs.len()).sum();
        let inputs: u32 = pass
            .groups
            .iter()
            .flat_map(|g| &g.jobs)
            .map(|j| j.array_size)
            .sum();
        match pass.phase {
            Phase::Submitting => events.push(event(
                EventType::Normal,
                "Planned",
                "Plan",
                format!(
                    "{inputs} input(s) in {jobs} job(s) written to {}",
                    pass.date
                ),
            )),
            Phase::Running => events.push(event(
                EventType::Normal,
                "Submitted",
                "Submit",
                format!("{jobs} job(s) with {inputs} input(s) submitted"),
            )),
            Phase::Terminating => events.push(event(
                EventType::Warning,
                "Terminating",
                "Terminate",
                format!(
                    "jobs still unfinished after {} poll(s) are terminated",
                    pass.attempts
                ),
            )),
            Phase::Complete => events.push(event(
                EventType::Normal,
                "PassComplete",
                "Complete",
                format!("pass {} completed every run it started", pass.number),
            )),
            Phase::Incomplete => events.push(event(
                EventType::Warning,
                "RunsFailed",
                "Complete",
                format!("pass {} ended with failed or terminated runs", pass.number),
            )),
            Phase::Failed => {
                let error = pass.last_error.clone().unwrap_or_default();
                let (reason, message) = error
                    .split_once(": ")
                    .unwrap_or(("PassFailed", error.as_str()));
                events.push(event(
                    EventType::Warning,
                    reason,
                    "Plan",
                    message.to_string(),
                ));
            }
            Phase::Planning | Phase::CollectingLogs | Phase::Cleaning => {}
        }
    }
    let old_errors = before.map_or(0, |p| p.consecutive_errors);
    if pass.consecutive_errors > old_errors
        && let Some(error) = &pass.last_error
    {
        events.push(event(
            EventType::Warning,
            "Retrying",
            "Retry",
            format!("{error} (attempt {})", pass.consecutive_errors),
        ));
    }
    events
}

/// A failed reconcile is recorded as an Event and on the `Reconciling` condition.
async fn report_error(series: &SimulationSeries, error: &Error, ctx: &Context) {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let note = KubeEvent {
        type_: EventType::Warning,
        reason: error.reason().to_string(),
        note: Some(error.to_string()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&note, &series.object_ref(&())).await {
        tracing::warn!(series = %key(series), error = %e, "cannot publish an event");
    }
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

/// On delete: terminate the series' unfinished jobs (unless told to keep them) and deregister
/// the job definitions it registered. A failure keeps the finalizer and is retried.
async fn cleanup(series: Arc<SimulationSeries>, ctx: &Context) -> Result<Requeue, Error> {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let reference = series.object_ref(&());
    let status = series.status.clone().unwrap_or_default();
    let keep = series
        .annotations()
        .get(ON_DELETE_ANNOTATION)
        .map(String::as_str)
        == Some("keep-jobs");
    let mut summary = "nothing was submitted".to_string();
    if let Some(pass) = &status.pass {
        let spec = Arc::new(series.spec.clone());
        // Terminating and deregistering need no location; a broken spec still cleans up.
        let locations = Locations::resolve(&spec, None)
            .ok()
            .filter(|l| l.working.is_s3() && l.manifest.is_s3() && l.template.is_s3())
            .unwrap_or_else(|| {
                let unused =
                    Location::parse("s3://simseries-unused", None).expect("a valid location");
                Locations {
                    working: unused.clone(),
                    manifest: unused.clone(),
                    template: unused,
                }
            });
        let executor = ctx.cloud.executor(&spec);
        let mut actor = Actor::new(
            spec,
            locations.clone(),
            ctx.cloud.stores(&locations),
            executor.clone(),
        );
        actor.owner = key(&series);
        let context = actor.context(pass);
        let unfinished: Vec<_> = pass
            .groups
            .iter()
            .flat_map(|g| &g.jobs)
            .filter(|j| {
                j.id.as_ref()
                    .is_some_and(|id| !id.starts_with("unsubmitted:"))
                    && !j.terminated
                    && !matches!(j.state.as_deref(), Some("SUCCEEDED" | "FAILED"))
            })
            .cloned()
            .collect();
        let mut parts = Vec::new();
        if unfinished.is_empty() {
        } else if keep {
            parts.push(format!(
                "{} running job(s) kept ({ON_DELETE_ANNOTATION}: keep-jobs)",
                unfinished.len()
            ));
        } else {
            let terminated = executor
                .terminate(&context, &unfinished)
                .await
                .map_err(|f| {
                    Error::Cleanup(format!("terminating jobs: {}: {}", f.reason, f.message))
                })?;
            parts.push(format!("{} job(s) terminated", terminated.len()));
        }
        // A finished pass with cleanJobs deregistered its definitions already.
        if !(pass.phase.is_finished() && series.spec.parameters.clean_jobs) {
            executor.release(&context, pass).await.map_err(|f| {
                Error::Cleanup(format!(
                    "deregistering job definitions: {}: {}",
                    f.reason, f.message
                ))
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
    let note = KubeEvent {
        type_: EventType::Normal,
        reason: "CleanedUp".into(),
        note: Some(summary),
        action: "Delete".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&note, &reference).await {
        tracing::warn!(series = %key(&series), error = %e, "cannot publish an event");
    }
    ctx.metrics.set_series(&key(&series), None);
    Ok(Requeue::await_change())
}
