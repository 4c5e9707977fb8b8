//! The reconcile decision: plain data in, plain data out.
//!
//! Given the spec, the current status and what was just observed (the outcome of the last
//! action, the clock, the generation), [`decide`] returns the new status and the one next
//! action. The drivers (the local runner, the Kubernetes controller) persist the status *before*
//! acting, run the action through their adapters, and feed its outcome back as the next
//! [`Event`]. Because intent is recorded first, a driver that dies between two steps resumes
//! from the status without repeating finished work.
//!
//! A pass: `Planning` (plan, write inputs, copy inits) → `Submitting` (register definitions,
//! submit jobs) → `Running` (poll up to `retries` times, `retryDelay` apart) → `Terminating`
//! (if `terminateJobs` and jobs still run) → `CollectingLogs` (if `saveLogs`) → `Cleaning` (if
//! `cleanJobs`) → `Complete` or `Incomplete`; `Failed` when the pass could not start.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::executor::Definition;
use crate::spec::SimulationSeriesSpec;
use crate::status::{
    GroupJobs, JobRecord, LogRecord, Pass, Phase, RunCounts, SimulationSeriesStatus, StatusSummary,
};

/// Waits after failed calls: 5 s doubling up to 5 min.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Waits before a pass that failed to start is tried again: 1 min doubling up to 1 h.
const RESTART_BASE: Duration = Duration::from_secs(60);
const RESTART_MAX: Duration = Duration::from_secs(3600);
/// The one failure of a pass start that only a spec change can fix.
const INVALID_SPEC: &str = "InvalidSpec";

/// What the driver saw: the outcome of its last action, and the world around it.
#[derive(Debug, Clone)]
pub struct Observation {
    pub now: Timestamp,
    /// `metadata.generation` (locally: a digest of the spec).
    pub generation: i64,
    /// Value of the `simseries.io/rerun` annotation (locally: the `--rerun` counter).
    pub rerun: Option<String>,
    /// Digest of what planning reads besides the spec (template, manifest, init files), when
    /// the driver computes it (the local runner). Without it a pass that failed to start is
    /// tried again on a backoff.
    pub inputs: Option<String>,
    pub event: Event,
}

/// A failed action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// CamelCase reason, e.g. `TemplateError`, `Throttled`.
    pub reason: String,
    pub message: String,
    /// Worth retrying as is (throttling, network); otherwise the user has to act.
    pub transient: bool,
}

impl Failure {
    pub fn permanent(reason: &str, message: impl Into<String>) -> Self {
        Failure {
            reason: reason.to_string(),
            message: message.into(),
            transient: false,
        }
    }

    pub fn transient(reason: &str, message: impl Into<String>) -> Self {
        Failure {
            reason: reason.to_string(),
            message: message.into(),
            transient: true,
        }
    }
}

/// What planning found: run counts and the jobs to submit per group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOutcome {
    pub date: String,
    pub counts: RunCounts,
    /// Groups that have inputs, in the order of `series.groups`.
    pub groups: Vec<PlannedGroup>,
    /// Key of the pass record in the working location.
    pub record: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedGroup {
    pub group: String,
    pub group_key: String,
    pub jobs: Vec<PlannedJobRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedJobRecord {
    pub name: String,
    pub file_set_name: String,
    pub array_size: u32,
    pub runs: u32,
}

/// A job as last seen by the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobObservation {
    pub id: String,
    /// `SUBMITTED`, `PENDING`, `RUNNABLE`, `STARTING`, `RUNNING`, `SUCCEEDED` or `FAILED`.
    pub state: String,
    pub summary: StatusSummary,
}

/// Logs saved for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLogs {
    pub group: String,
    pub record: LogRecord,
}

/// The outcome of the last action.
#[derive(Debug, Clone)]
pub enum Event {
    /// Nothing new: a start, a restart, a timer, a resync.
    Resumed,
    Planned(Result<PlanOutcome, Failure>),
    InputsWritten(Result<(), Failure>),
    InitsCopied(Result<(), Failure>),
    Registered {
        group: usize,
        result: Result<Definition, Failure>,
    },
    Submitted {
        group: usize,
        job: usize,
        result: Result<String, Failure>,
    },
    Polled(Result<Vec<JobObservation>, Failure>),
    /// IDs of the jobs whose termination was requested.
    Terminated(Result<Vec<String>, Failure>),
    LogsCollected(Result<Vec<GroupLogs>, Failure>),
    Cleaned(Result<(), Failure>),
    Recounted(Result<RunCounts, Failure>),
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Read template and completeness, plan, render and check inputs (writes nothing).
    Plan,
    /// Write the rendered inputs and the pass record into the dated folder.
    WriteInputs,
    /// Copy the init files into the dated folder.
    CopyInits,
    /// Make sure the job definition of `status.pass.groups[group]` exists.
    Register { group: usize },
    /// Make sure job `job` of group `group` is submitted (adopting one submitted earlier).
    Submit { group: usize, job: usize },
    /// Nothing to do before `until` (then act on [`Event::Resumed`]).
    Wait { until: Timestamp },
    /// Observe every submitted job that has not finished.
    Poll,
    /// Terminate these jobs (IDs).
    Terminate { jobs: Vec<String> },
    /// Save the jobs' logs under `{name}/{date}/logs/`.
    CollectLogs,
    /// Remove the scaffolding the pass created.
    Clean,
    /// Count complete runs again, from the outputs the pass produced.
    Recount,
    /// The pass is finished; nothing to do until the spec or the rerun value changes.
    Done,
}

/// The new status and the next action.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub status: SimulationSeriesStatus,
    pub action: Action,
}

/// Decides the next step of the series.
pub fn decide(
    spec: &SimulationSeriesSpec,
    status: &SimulationSeriesStatus,
    observation: &Observation,
) -> Decision {
    let mut status = status.clone();
    let now = observation.now;
    let action = match status.pass.as_ref() {
        Some(pass) if pass.phase.is_finished() => {
            if pass.generation == observation.generation && pass.rerun == observation.rerun {
                match restart_of_failed_start(pass, observation) {
                    Restart::Now => {
                        let failed_starts = pass.failed_starts.saturating_add(1);
                        start_pass(&mut status, observation, failed_starts)
                    }
                    // Waiting leaves the status as it is: no write.
                    Restart::At(until) => {
                        return Decision {
                            status,
                            action: Action::Wait { until },
                        };
                    }
                    // A finished pass is left exactly as it is: no write, no call.
                    Restart::Never => {
                        return Decision {
                            status,
                            action: Action::Done,
                        };
                    }
                }
            } else {
                start_pass(&mut status, observation, 0)
            }
        }
        // An active pass runs to its end even if the spec changed meanwhile: a new pass now
        // would plan the runs still in flight as missing and submit them twice.
        Some(_) => step(spec, &mut status, observation),
        None => start_pass(&mut status, observation, 0),
    };
    refresh_summary(&mut status, now);
    Decision { status, action }
}

enum Restart {
    Now,
    At(Timestamp),
    Never,
}

/// Whether a finished pass of the current generation starts again: only one that failed to
/// start for a cause outside the spec, once that cause may be fixed.
fn restart_of_failed_start(pass: &Pass, observation: &Observation) -> Restart {
    if pass.phase != Phase::Failed || pass.error_reason() == Some(INVALID_SPEC) {
        return Restart::Never;
    }
    match (&observation.inputs, &pass.inputs) {
        // The driver sees the inputs: start again as soon as they change.
        (Some(now), Some(then)) if now != then => Restart::Now,
        (Some(_), _) => Restart::Never,
        // It does not: try again on a backoff.
        (None, _) => match pass.retry_at {
            Some(Time(at)) if observation.now < at => Restart::At(at),
            _ => Restart::Now,
        },
    }
}

/// Whether `decide` may use [`Observation::inputs`] from `status` on: a pass may start (a
/// first one, one for a new generation or rerun value, a failed start tried again) or the
/// pass is still planning (and may yet fail to start). The local runner computes the digest
/// only then, since it reads the template and the whole manifest.
pub fn uses_inputs(status: &SimulationSeriesStatus, generation: i64, rerun: Option<&str>) -> bool {
    match &status.pass {
        None => true,
        Some(pass) if pass.phase == Phase::Planning => true,
        Some(pass) => {
            pass.phase.is_finished()
                && (pass.generation != generation
                    || pass.rerun.as_deref() != rerun
                    || pass.phase == Phase::Failed)
        }
    }
}

/// Starts pass `number + 1`; `failed_starts` counts the failed starts it follows.
fn start_pass(
    status: &mut SimulationSeriesStatus,
    observation: &Observation,
    failed_starts: u32,
) -> Action {
    let number = status.pass.as_ref().map_or(1, |p| p.number + 1);
    status.observed_generation = Some(observation.generation);
    status.pass = Some(Pass {
        number,
        generation: observation.generation,
        rerun: observation.rerun.clone(),
        date: String::new(),
        phase: Phase::Planning,
        started_at: Some(Time(observation.now)),
        finished_at: None,
        attempts: 0,
        next_poll_at: None,
        consecutive_errors: 0,
        last_error: None,
        record: None,
        inputs: observation.inputs.clone(),
        failed_starts,
        retry_at: None,
        groups: Vec::new(),
    });
    Action::Plan
}

/// One step of an active pass.
fn step(
    spec: &SimulationSeriesSpec,
    status: &mut SimulationSeriesStatus,
    observation: &Observation,
) -> Action {
    let now = observation.now;
    let pass = status.pass.as_mut().expect("step runs on an active pass");

    // A failed call: retry transient failures after a backoff; permanent ones are handled by
    // the phase they happen in.
    if let Some(failure) = failure_of(&observation.event) {
        pass.last_error = Some(format!("{}: {}", failure.reason, failure.message));
        if failure.transient {
            pass.consecutive_errors += 1;
            let until = later(now, backoff(pass.consecutive_errors));
            pass.next_poll_at = Some(Time(until));
            return Action::Wait { until };
        }
    } else if !matches!(observation.event, Event::Resumed) {
        pass.consecutive_errors = 0;
    }
    // After a transient failure, wait out the backoff before acting again.
    if matches!(observation.event, Event::Resumed)
        && pass.consecutive_errors > 0
        && let Some(Time(until)) = pass.next_poll_at
        && now < until
    {
        return Action::Wait { until };
    }

    // The last step of every pass that ran jobs: count complete runs again, then finish.
    if let Event::Recounted(result) = &observation.event {
        if let Ok(counts) = result {
            status.runs = Some(counts.clone());
        }
        let pass = status.pass.as_mut().expect("active pass");
        let outcome = outcome(pass);
        finish(pass, outcome, now);
        return Action::Done;
    }

    match pass.phase {
        Phase::Planning => planning(status, &observation.event, now),
        Phase::Submitting => submitting(spec, pass, &observation.event, now),
        Phase::Running => running(spec, pass, &observation.event, now),
        Phase::Terminating => terminating(spec, pass, &observation.event),
        Phase::CollectingLogs => collecting_logs(spec, pass, &observation.event),
        Phase::Cleaning => cleaning(&observation.event),
        Phase::Complete | Phase::Incomplete | Phase::Failed => Action::Done,
    }
}

fn planning(status: &mut SimulationSeriesStatus, event: &Event, now: Timestamp) -> Action {
    let pass = status
        .pass
        .as_mut()
        .expect("planning runs on an active pass");
    match event {
        Event::Planned(Ok(outcome)) => {
            pass.date = outcome.date.clone();
            pass.record = Some(outcome.record.clone());
            pass.groups = outcome
                .groups
                .iter()
                .map(|g| GroupJobs {
                    group: g.group.clone(),
                    group_key: g.group_key.clone(),
                    job_definition: None,
                    definition_owned: false,
                    jobs: g
                        .jobs
                        .iter()
                        .map(|j| JobRecord {
                            name: j.name.clone(),
                            file_set_name: j.file_set_name.clone(),
                            array_size: j.array_size,
                            runs: j.runs,
                            id: None,
                            state: None,
                            summary: None,
                            terminated: false,
                        })
                        .collect(),
                    logs: None,
                })
                .collect();
            status.runs = Some(outcome.counts.clone());
            if pass.groups.iter().all(|g| g.jobs.is_empty()) {
                // Nothing missing: nothing to write, submit or clean.
                pass.record = None;
                finish(pass, Phase::Complete, now);
                Action::Done
            } else {
                Action::WriteInputs
            }
        }
        Event::Planned(Err(failure)) => {
            pass.last_error = Some(format!("{}: {}", failure.reason, failure.message));
            fail_start(pass, failure, now);
            Action::Done
        }
        Event::InputsWritten(Ok(())) => Action::CopyInits,
        Event::InitsCopied(Ok(())) => {
            pass.phase = Phase::Submitting;
            next_submission(pass)
        }
        Event::InputsWritten(Err(failure)) | Event::InitsCopied(Err(failure)) => {
            pass.last_error = Some(format!("{}: {}", failure.reason, failure.message));
            fail_start(pass, failure, now);
            Action::Done
        }
        // A restart in the middle of planning plans again: nothing was submitted yet, and
        // writing the same inputs twice is harmless.
        _ => Action::Plan,
    }
}

fn submitting(
    spec: &SimulationSeriesSpec,
    pass: &mut Pass,
    event: &Event,
    now: Timestamp,
) -> Action {
    match event {
        Event::Registered { group, result } => {
            if let (Some(g), Ok(definition)) = (pass.groups.get_mut(*group), result) {
                g.job_definition = Some(definition.id.clone());
                g.definition_owned = definition.owned;
            } else if let (Some(g), Err(_)) = (pass.groups.get_mut(*group), result) {
                // The group's jobs cannot run; the pass goes on with the others.
                for job in &mut g.jobs {
                    job.state = Some("FAILED".into());
                    job.id
                        .get_or_insert_with(|| format!("unsubmitted:{}", job.name));
                }
            }
        }
        Event::Submitted { group, job, result } => {
            if let Some(record) = pass
                .groups
                .get_mut(*group)
                .and_then(|g| g.jobs.get_mut(*job))
            {
                match result {
                    Ok(id) => {
                        record.id = Some(id.clone());
                        record.state = Some("SUBMITTED".into());
                    }
                    Err(_) => {
                        // Recorded as failed so the pass can end; a rerun resubmits its runs.
                        record.id = Some(format!("unsubmitted:{}", record.name));
                        record.state = Some("FAILED".into());
                    }
                }
            }
        }
        _ => {}
    }
    let next = next_submission(pass);
    if next != Action::Poll {
        return next;
    }
    pass.phase = Phase::Running;
    let until = later(now, delay(spec));
    pass.next_poll_at = Some(Time(until));
    if all_finished(pass) {
        return after_running(spec, pass);
    }
    Action::Wait { until }
}

/// The next definition to register or job to submit, or `Poll` when all are submitted.
fn next_submission(pass: &Pass) -> Action {
    for (g, group) in pass.groups.iter().enumerate() {
        if group.jobs.iter().all(|j| j.id.is_some()) {
            continue;
        }
        if group.job_definition.is_none() {
            return Action::Register { group: g };
        }
        if let Some(j) = group.jobs.iter().position(|j| j.id.is_none()) {
            return Action::Submit { group: g, job: j };
        }
    }
    Action::Poll
}

fn running(spec: &SimulationSeriesSpec, pass: &mut Pass, event: &Event, now: Timestamp) -> Action {
    match event {
        Event::Polled(Ok(observed)) => {
            pass.attempts += 1;
            apply_observations(pass, observed);
            if all_finished(pass) {
                return after_running(spec, pass);
            }
            // `retries` polls; a series with 0 retries still gets one look.
            if pass.attempts >= spec.parameters.retries.max(1) {
                return after_last_poll(spec, pass);
            }
            let until = later(now, delay(spec));
            pass.next_poll_at = Some(Time(until));
            Action::Wait { until }
        }
        Event::Polled(Err(_)) => {
            // A permanent polling failure (the jobs are gone): nothing more can be learnt.
            after_last_poll(spec, pass)
        }
        _ => match pass.next_poll_at {
            Some(Time(until)) if now < until => Action::Wait { until },
            _ => Action::Poll,
        },
    }
}

/// After the last poll: terminate what still runs, or let it be.
fn after_last_poll(spec: &SimulationSeriesSpec, pass: &mut Pass) -> Action {
    let unfinished = unfinished_ids(pass);
    if spec.parameters.terminate_jobs && !unfinished.is_empty() {
        pass.phase = Phase::Terminating;
        return Action::Terminate { jobs: unfinished };
    }
    after_running(spec, pass)
}

fn terminating(spec: &SimulationSeriesSpec, pass: &mut Pass, event: &Event) -> Action {
    match event {
        Event::Terminated(Ok(ids)) => {
            for job in pass.groups.iter_mut().flat_map(|g| &mut g.jobs) {
                if job.id.as_ref().is_some_and(|id| ids.contains(id)) {
                    job.terminated = true;
                }
            }
            after_running(spec, pass)
        }
        Event::Terminated(Err(_)) => after_running(spec, pass),
        _ => {
            let unfinished: Vec<String> = pass
                .groups
                .iter()
                .flat_map(|g| &g.jobs)
                .filter(|j| !j.terminated && !is_finished(j))
                .filter_map(|j| j.id.clone())
                .collect();
            if unfinished.is_empty() {
                after_running(spec, pass)
            } else {
                Action::Terminate { jobs: unfinished }
            }
        }
    }
}

/// The jobs are done (or given up on): logs, then cleaning, then the end.
fn after_running(spec: &SimulationSeriesSpec, pass: &mut Pass) -> Action {
    pass.next_poll_at = None;
    if spec.parameters.save_logs {
        pass.phase = Phase::CollectingLogs;
        Action::CollectLogs
    } else {
        after_logs(spec, pass)
    }
}

fn collecting_logs(spec: &SimulationSeriesSpec, pass: &mut Pass, event: &Event) -> Action {
    match event {
        Event::LogsCollected(Ok(logs)) => {
            for saved in logs {
                if let Some(group) = pass.groups.iter_mut().find(|g| g.group == saved.group) {
                    group.logs = Some(saved.record.clone());
                }
            }
            after_logs(spec, pass)
        }
        // Logs that cannot be saved are reported (last_error) but do not hold the pass.
        Event::LogsCollected(Err(_)) => after_logs(spec, pass),
        _ => Action::CollectLogs,
    }
}

fn after_logs(spec: &SimulationSeriesSpec, pass: &mut Pass) -> Action {
    if spec.parameters.clean_jobs {
        pass.phase = Phase::Cleaning;
        Action::Clean
    } else {
        Action::Recount
    }
}

fn cleaning(event: &Event) -> Action {
    match event {
        // Cleaning failures are reported (last_error) and do not hold the pass.
        Event::Cleaned(_) => Action::Recount,
        _ => Action::Clean,
    }
}

/// `Complete` when every job of the pass succeeded, else `Incomplete`.
fn outcome(pass: &Pass) -> Phase {
    let succeeded = pass
        .groups
        .iter()
        .flat_map(|g| &g.jobs)
        .all(|j| j.state.as_deref() == Some("SUCCEEDED") && !j.terminated);
    if succeeded {
        Phase::Complete
    } else {
        Phase::Incomplete
    }
}

/// Ends a pass that could not start; unless the spec is at fault, it is tried again later.
fn fail_start(pass: &mut Pass, failure: &Failure, now: Timestamp) {
    finish(pass, Phase::Failed, now);
    if failure.reason != INVALID_SPEC {
        let wait = doubling(RESTART_BASE, RESTART_MAX, pass.failed_starts);
        pass.retry_at = Some(Time(later(now, wait)));
    }
}

fn finish(pass: &mut Pass, phase: Phase, now: Timestamp) {
    pass.phase = phase;
    pass.finished_at = Some(Time(now));
    pass.next_poll_at = None;
}

fn apply_observations(pass: &mut Pass, observed: &[JobObservation]) {
    for job in pass.groups.iter_mut().flat_map(|g| &mut g.jobs) {
        if let Some(seen) = observed.iter().find(|o| Some(&o.id) == job.id.as_ref()) {
            job.state = Some(seen.state.clone());
            job.summary = Some(seen.summary.clone());
        }
    }
}

fn is_finished(job: &JobRecord) -> bool {
    matches!(job.state.as_deref(), Some("SUCCEEDED" | "FAILED"))
}

fn all_finished(pass: &Pass) -> bool {
    pass.groups.iter().flat_map(|g| &g.jobs).all(is_finished)
}

fn unfinished_ids(pass: &Pass) -> Vec<String> {
    pass.groups
        .iter()
        .flat_map(|g| &g.jobs)
        .filter(|j| !is_finished(j))
        .filter_map(|j| j.id.clone())
        .collect()
}

fn failure_of(event: &Event) -> Option<&Failure> {
    match event {
        Event::Resumed => None,
        Event::Planned(r) => r.as_ref().err(),
        Event::InputsWritten(r) | Event::InitsCopied(r) | Event::Cleaned(r) => r.as_ref().err(),
        Event::Registered { result, .. } => result.as_ref().err(),
        Event::Submitted { result, .. } => result.as_ref().err(),
        Event::Polled(r) => r.as_ref().err(),
        Event::Terminated(r) => r.as_ref().err(),
        Event::LogsCollected(r) => r.as_ref().err(),
        Event::Recounted(r) => r.as_ref().err(),
    }
}

/// `now + wait`, saturating at the end of time: the spec may come from a cluster whose
/// validation is older than ours, and `decide` never panics.
fn later(now: Timestamp, wait: SignedDuration) -> Timestamp {
    now.checked_add(wait).unwrap_or(Timestamp::MAX)
}

fn delay(spec: &SimulationSeriesSpec) -> SignedDuration {
    SignedDuration::from_secs(spec.parameters.retry_delay.min(i64::MAX as u64) as i64)
}

fn backoff(errors: u32) -> SignedDuration {
    doubling(BACKOFF_BASE, BACKOFF_MAX, errors.saturating_sub(1))
}

/// `base` doubled `times` times, at most `max`.
fn doubling(base: Duration, max: Duration, times: u32) -> SignedDuration {
    let wait = base
        .saturating_mul(2u32.saturating_pow(times.min(16)))
        .min(max);
    SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX)
}

/// Phase, counts and kstatus conditions, derived from the pass.
fn refresh_summary(status: &mut SimulationSeriesStatus, now: Timestamp) {
    let Some(pass) = &status.pass else { return };
    status.phase = Some(pass.phase);
    status.attempts = pass.attempts;
    status.active_jobs = pass
        .groups
        .iter()
        .flat_map(|g| &g.jobs)
        .filter(|j| j.id.is_some() && !is_finished(j) && !j.terminated)
        .count() as u32;
    if let Some(runs) = &status.runs {
        status.progress = Some(format!("{}/{}", runs.complete, runs.total));
    }
    let generation = status.observed_generation;
    let [ready, reconciling, stalled] = conditions_for(pass);
    for (kind, (state, reason, message)) in [
        ("Ready", ready),
        ("Reconciling", reconciling),
        ("Stalled", stalled),
    ] {
        set_condition(
            &mut status.conditions,
            kind,
            state,
            &reason,
            &message,
            generation,
            now,
        );
    }
}

type ConditionValue = (&'static str, String, String);

/// (status, reason, message) of Ready, Reconciling and Stalled for a pass.
fn conditions_for(pass: &Pass) -> [ConditionValue; 3] {
    let number = pass.number;
    match pass.phase {
        Phase::Complete => {
            let message = format!("pass {number} completed every run");
            [
                ("True", "PassComplete".into(), message),
                ("False", "PassComplete".into(), String::new()),
                ("False", "PassComplete".into(), String::new()),
            ]
        }
        Phase::Incomplete => {
            let unfinished: u32 = pass
                .groups
                .iter()
                .flat_map(|g| &g.jobs)
                .filter(|j| j.state.as_deref() != Some("SUCCEEDED") || j.terminated)
                .map(|j| {
                    let succeeded = j.summary.as_ref().map_or(0, |s| s.succeeded);
                    j.array_size.saturating_sub(succeeded)
                })
                .sum();
            let message = format!(
                "pass {number} ended with {unfinished} failed or terminated input(s); change the simseries.io/rerun annotation (or run with --rerun) to run them again"
            );
            [
                ("False", "RunsFailed".into(), message.clone()),
                ("False", "RunsFailed".into(), String::new()),
                ("True", "RunsFailed".into(), message),
            ]
        }
        Phase::Failed => {
            let error = pass.last_error.clone().unwrap_or_default();
            let (reason, mut message) = match error.split_once(": ") {
                Some((reason, message)) => (reason.to_string(), message.to_string()),
                None => ("PassFailed".to_string(), error),
            };
            if pass.retry_at.is_some() {
                message.push_str(" (the pass starts again once this is fixed)");
            }
            [
                ("False", reason.clone(), message.clone()),
                ("False", reason.clone(), String::new()),
                ("True", reason, message),
            ]
        }
        phase => {
            let mut message = format!("pass {number}: {phase:?}");
            if pass.consecutive_errors > 0
                && let Some(error) = &pass.last_error
            {
                message.push_str(&format!(", retrying after: {error}"));
            }
            [
                ("False", "PassInProgress".into(), message.clone()),
                ("True", "PassInProgress".into(), message),
                ("False", "PassInProgress".into(), String::new()),
            ]
        }
    }
}

/// Sets a condition, changing `lastTransitionTime` only when its status changes.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: &str,
    state: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    match conditions.iter_mut().find(|c| c.type_ == kind) {
        Some(existing) => {
            if existing.status != state {
                existing.last_transition_time = Time(now);
            }
            existing.status = state.to_string();
            existing.reason = reason.to_string();
            existing.message = message.to_string();
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: kind.to_string(),
            status: state.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: generation,
            last_transition_time: Time(now),
        }),
    }
}
