//! The decision of a pass: plain data in, plain data out.
//!
//! Given the spec, the current status and what was just observed (the outcome of the last
//! step, the clock, the generation), [`decide`] returns the new status and the one next
//! [`Step`]. The drivers (the local runner, the Kubernetes controller) persist the status
//! *before* acting, perform the step through their adapters, and feed its [`Outcome`] back
//! (see [`crate::pass::drive`]). Because intent is recorded first, a driver that dies between two steps resumes
//! from the status without repeating finished work.
//!
//! A pass: `Planning` (plan, write inputs, copy inits) → `Submitting` (register definitions,
//! submit jobs) → `Running` (poll up to `retries` times, `retryDelay` apart) → `Terminating`
//! (if `terminateJobs` and jobs still run) → `CollectingLogs` (if `saveLogs`) → `Cleaning` (if
//! `cleanJobs`) → `Complete` or `Incomplete`; `Failed` when the pass could not start.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::model::outcome::{Definition, Failure, GroupLogs, JobObservation, PlanOutcome, Recount};
use crate::model::spec::SimulationSeriesSpec;
use crate::model::status::{
    GroupJobs, JobRecord, JobState, OutputsMissing, Pass, Phase, SimulationSeriesStatus, Submission,
};
use crate::pass::backoff::Backoff;
use crate::pass::conditions::refresh_summary;

/// The one failure of a pass start that only a spec change can fix.
const INVALID_SPEC: &str = "InvalidSpec";

/// What the driver saw: the outcome of its last step, and the world around it.
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
    pub outcome: Outcome,
}

/// The outcome of the last step.
#[derive(Debug, Clone)]
pub enum Outcome {
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
    Recounted(Result<Recount, Failure>),
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read template and completeness, plan, render and check inputs (writes nothing).
    Plan,
    /// Write the rendered inputs and the pass record into the dated folder.
    WriteInputs,
    /// Copy the init files into the dated folder.
    CopyInits,
    /// Make sure the job definition of `status.pass.groups[group]` exists.
    Register { group: usize },
    /// Make sure job `job` of group `group` is submitted. `may_exist`: a SubmitJob for it may
    /// already have been sent (the step follows a restart or a failed call), so the executor
    /// looks for it before submitting; in an unbroken run of steps it cannot have been.
    Submit {
        group: usize,
        job: usize,
        may_exist: bool,
    },
    /// Nothing to do before `until` (then act on [`Outcome::Resumed`]).
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

impl Outcome {
    /// The failure the outcome reports, if any.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Resumed => None,
            Outcome::Planned(r) => r.as_ref().err(),
            Outcome::InputsWritten(r) | Outcome::InitsCopied(r) | Outcome::Cleaned(r) => {
                r.as_ref().err()
            }
            Outcome::Registered { result, .. } => result.as_ref().err(),
            Outcome::Submitted { result, .. } => result.as_ref().err(),
            Outcome::Polled(r) => r.as_ref().err(),
            Outcome::Terminated(r) => r.as_ref().err(),
            Outcome::LogsCollected(r) => r.as_ref().err(),
            Outcome::Recounted(r) => r.as_ref().err(),
        }
    }
}

impl Step {
    /// The outcome of this step when it failed before it could start.
    pub fn failed(&self, failure: Failure) -> Outcome {
        match self {
            Step::Plan => Outcome::Planned(Err(failure)),
            Step::WriteInputs => Outcome::InputsWritten(Err(failure)),
            Step::CopyInits => Outcome::InitsCopied(Err(failure)),
            Step::Register { group } => Outcome::Registered {
                group: *group,
                result: Err(failure),
            },
            Step::Submit { group, job, .. } => Outcome::Submitted {
                group: *group,
                job: *job,
                result: Err(failure),
            },
            Step::Poll => Outcome::Polled(Err(failure)),
            Step::Terminate { .. } => Outcome::Terminated(Err(failure)),
            Step::CollectLogs => Outcome::LogsCollected(Err(failure)),
            Step::Clean => Outcome::Cleaned(Err(failure)),
            Step::Recount => Outcome::Recounted(Err(failure)),
            Step::Wait { .. } | Step::Done => Outcome::Resumed,
        }
    }

    /// A short name (spans, logs, crash points).
    pub fn name(&self) -> &'static str {
        match self {
            Step::Plan => "plan",
            Step::WriteInputs => "write-inputs",
            Step::CopyInits => "copy-inits",
            Step::Register { .. } => "register",
            Step::Submit { .. } => "submit",
            Step::Wait { .. } => "wait",
            Step::Poll => "poll",
            Step::Terminate { .. } => "terminate",
            Step::CollectLogs => "collect-logs",
            Step::Clean => "clean",
            Step::Recount => "recount",
            Step::Done => "done",
        }
    }
}

/// The new status and the next step.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub status: SimulationSeriesStatus,
    pub step: Step,
}

/// Decides the next step of the series.
pub fn decide(
    spec: &SimulationSeriesSpec,
    status: &SimulationSeriesStatus,
    observation: &Observation,
) -> Decision {
    let mut status = status.clone();
    let now = observation.now;
    let step = match status.pass.as_ref() {
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
                            step: Step::Wait { until },
                        };
                    }
                    // A finished pass is left exactly as it is: no write, no call.
                    Restart::Never => {
                        return Decision {
                            status,
                            step: Step::Done,
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
    Decision { status, step }
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
) -> Step {
    let number = status.pass.as_ref().map_or(1, |p| p.number + 1);
    status.observed_generation = Some(observation.generation);
    status.pass = Some(Pass {
        number,
        generation: observation.generation,
        rerun: observation.rerun.clone(),
        date: None,
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
        outputs_missing: None,
        usage: None,
        groups: Vec::new(),
    });
    Step::Plan
}

/// One step of an active pass.
fn step(
    spec: &SimulationSeriesSpec,
    status: &mut SimulationSeriesStatus,
    observation: &Observation,
) -> Step {
    let now = observation.now;
    let pass = status.pass.as_mut().expect("step runs on an active pass");

    // A failed call: retry transient failures after a backoff; permanent ones are handled by
    // the phase they happen in.
    if let Some(failure) = observation.outcome.failure() {
        pass.last_error = Some(failure.error());
        if failure.transient {
            pass.consecutive_errors += 1;
            let until = later(now, signed(Backoff::CALLS.after(pass.consecutive_errors)));
            pass.next_poll_at = Some(Time(until));
            return Step::Wait { until };
        }
    } else if !matches!(observation.outcome, Outcome::Resumed) {
        pass.consecutive_errors = 0;
    }
    // After a transient failure, wait out the backoff before acting again.
    if matches!(observation.outcome, Outcome::Resumed)
        && pass.consecutive_errors > 0
        && let Some(Time(until)) = pass.next_poll_at
        && now < until
    {
        return Step::Wait { until };
    }

    // The last step of every pass that ran jobs: count complete runs again, then finish.
    if let Outcome::Recounted(result) = &observation.outcome {
        let pass = status.pass.as_mut().expect("active pass");
        if let Ok(recount) = result {
            pass.outputs_missing = outputs_missing(pass, recount);
            pass.usage = recount.usage.clone();
            status.runs = Some(recount.counts.clone());
        }
        let pass = status.pass.as_mut().expect("active pass");
        let outcome = outcome(pass);
        finish(pass, outcome, now);
        return Step::Done;
    }

    match pass.phase {
        Phase::Planning => planning(status, &observation.outcome, now),
        Phase::Submitting => submitting(spec, pass, &observation.outcome, now),
        Phase::Running => running(spec, pass, &observation.outcome, now),
        Phase::Terminating => terminating(spec, pass, &observation.outcome),
        Phase::CollectingLogs => collecting_logs(spec, pass, &observation.outcome),
        Phase::Cleaning => cleaning(&observation.outcome),
        Phase::Complete | Phase::Incomplete | Phase::Failed => Step::Done,
    }
}

fn planning(status: &mut SimulationSeriesStatus, outcome: &Outcome, now: Timestamp) -> Step {
    let pass = status
        .pass
        .as_mut()
        .expect("planning runs on an active pass");
    match outcome {
        Outcome::Planned(Ok(outcome)) => {
            pass.date = Some(outcome.date);
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
                        .map(|j| {
                            JobRecord::planned(
                                j.name.clone(),
                                j.file_set_name.clone(),
                                j.array_size,
                                j.runs,
                            )
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
                Step::Done
            } else {
                Step::WriteInputs
            }
        }
        Outcome::Planned(Err(failure)) => {
            pass.last_error = Some(failure.error());
            fail_start(pass, failure, now);
            Step::Done
        }
        Outcome::InputsWritten(Ok(())) => Step::CopyInits,
        Outcome::InitsCopied(Ok(())) => {
            pass.phase = Phase::Submitting;
            next_submission(pass, false)
        }
        Outcome::InputsWritten(Err(failure)) | Outcome::InitsCopied(Err(failure)) => {
            pass.last_error = Some(failure.error());
            fail_start(pass, failure, now);
            Step::Done
        }
        // A restart in the middle of planning plans again: nothing was submitted yet, and
        // writing the same inputs twice is harmless.
        _ => Step::Plan,
    }
}

fn submitting(
    spec: &SimulationSeriesSpec,
    pass: &mut Pass,
    outcome: &Outcome,
    now: Timestamp,
) -> Step {
    match outcome {
        Outcome::Registered { group, result } => {
            if let (Some(g), Ok(definition)) = (pass.groups.get_mut(*group), result) {
                g.job_definition = Some(definition.id.clone());
                g.definition_owned = definition.owned;
            } else if let (Some(g), Err(_)) = (pass.groups.get_mut(*group), result) {
                // The group's jobs cannot run; the pass goes on with the others.
                for job in &mut g.jobs {
                    match job.submission() {
                        Submission::Intended => job.record_refused(),
                        Submission::Submitted(_) | Submission::Refused => {
                            job.state = Some(JobState::Failed)
                        }
                    }
                }
            }
        }
        Outcome::Submitted { group, job, result } => {
            if let Some(record) = pass
                .groups
                .get_mut(*group)
                .and_then(|g| g.jobs.get_mut(*job))
            {
                match result {
                    Ok(id) => record.record_submitted(id.clone()),
                    // Recorded as failed so the pass can end; a rerun resubmits its runs.
                    Err(_) => record.record_refused(),
                }
            }
        }
        _ => {}
    }
    // Right after a definition or a submission of this run of steps, the next job was never
    // sent; after anything else (a restart, a wait after a failed call) it may have been.
    let unbroken = matches!(
        outcome,
        Outcome::Registered { .. } | Outcome::Submitted { .. }
    );
    let next = next_submission(pass, !unbroken);
    if next != Step::Poll {
        return next;
    }
    pass.phase = Phase::Running;
    let until = later(now, delay(spec));
    pass.next_poll_at = Some(Time(until));
    if all_finished(pass) {
        return after_running(spec, pass);
    }
    Step::Wait { until }
}

/// The next definition to register or job to submit, or `Poll` when all are submitted.
fn next_submission(pass: &Pass, may_exist: bool) -> Step {
    for (g, group) in pass.groups.iter().enumerate() {
        let intended = |j: &JobRecord| j.submission() == Submission::Intended;
        if !group.jobs.iter().any(intended) {
            continue;
        }
        if group.job_definition.is_none() {
            return Step::Register { group: g };
        }
        if let Some(j) = group.jobs.iter().position(intended) {
            return Step::Submit {
                group: g,
                job: j,
                may_exist,
            };
        }
    }
    Step::Poll
}

fn running(
    spec: &SimulationSeriesSpec,
    pass: &mut Pass,
    outcome: &Outcome,
    now: Timestamp,
) -> Step {
    match outcome {
        Outcome::Polled(Ok(observed)) => {
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
            Step::Wait { until }
        }
        Outcome::Polled(Err(_)) => {
            // A permanent polling failure (the jobs are gone): nothing more can be learnt.
            after_last_poll(spec, pass)
        }
        _ => match pass.next_poll_at {
            Some(Time(until)) if now < until => Step::Wait { until },
            _ => Step::Poll,
        },
    }
}

/// After the last poll: terminate what still runs, or let it be.
fn after_last_poll(spec: &SimulationSeriesSpec, pass: &mut Pass) -> Step {
    let unfinished = unfinished_ids(pass);
    if spec.parameters.terminate_jobs && !unfinished.is_empty() {
        pass.phase = Phase::Terminating;
        return Step::Terminate { jobs: unfinished };
    }
    after_running(spec, pass)
}

fn terminating(spec: &SimulationSeriesSpec, pass: &mut Pass, outcome: &Outcome) -> Step {
    match outcome {
        Outcome::Terminated(Ok(ids)) => {
            for job in pass.groups.iter_mut().flat_map(|g| &mut g.jobs) {
                if job.id.as_ref().is_some_and(|id| ids.contains(id)) {
                    job.terminated = true;
                }
            }
            after_running(spec, pass)
        }
        Outcome::Terminated(Err(_)) => after_running(spec, pass),
        _ => {
            let unfinished: Vec<String> = pass
                .groups
                .iter()
                .flat_map(|g| &g.jobs)
                .filter(|j| j.may_run())
                .filter_map(|j| j.id.clone())
                .collect();
            if unfinished.is_empty() {
                after_running(spec, pass)
            } else {
                Step::Terminate { jobs: unfinished }
            }
        }
    }
}

/// The jobs are done (or given up on): logs, then cleaning, then the end.
fn after_running(spec: &SimulationSeriesSpec, pass: &mut Pass) -> Step {
    pass.next_poll_at = None;
    if spec.parameters.save_logs {
        pass.phase = Phase::CollectingLogs;
        Step::CollectLogs
    } else {
        after_logs(spec, pass)
    }
}

fn collecting_logs(spec: &SimulationSeriesSpec, pass: &mut Pass, outcome: &Outcome) -> Step {
    match outcome {
        Outcome::LogsCollected(Ok(logs)) => {
            for saved in logs {
                if let Some(group) = pass.groups.iter_mut().find(|g| g.group == saved.group) {
                    group.logs = Some(saved.record.clone());
                }
            }
            after_logs(spec, pass)
        }
        // Logs that cannot be saved are reported (last_error) but do not hold the pass.
        Outcome::LogsCollected(Err(_)) => after_logs(spec, pass),
        _ => Step::CollectLogs,
    }
}

fn after_logs(spec: &SimulationSeriesSpec, pass: &mut Pass) -> Step {
    if spec.parameters.clean_jobs {
        pass.phase = Phase::Cleaning;
        Step::Clean
    } else {
        Step::Recount
    }
}

fn cleaning(outcome: &Outcome) -> Step {
    match outcome {
        // Cleaning failures are reported (last_error) and do not hold the pass.
        Outcome::Cleaned(_) => Step::Recount,
        _ => Step::Clean,
    }
}

/// The runs left without outputs by jobs that all succeeded (job failures explain missing
/// outputs on their own).
fn outputs_missing(pass: &Pass, recount: &Recount) -> Option<OutputsMissing> {
    let counts = &recount.counts;
    let runs = counts.missing.saturating_add(counts.incomplete);
    let succeeded = pass
        .groups
        .iter()
        .flat_map(|g| &g.jobs)
        .all(JobRecord::succeeded);
    (runs > 0 && succeeded).then(|| OutputsMissing {
        runs,
        example: recount.example_missing.clone().unwrap_or_default(),
        folder: recount.outputs.clone(),
    })
}

/// `Complete` when every job of the pass succeeded and every run has its outputs, else
/// `Incomplete`.
fn outcome(pass: &Pass) -> Phase {
    let succeeded = pass
        .groups
        .iter()
        .flat_map(|g| &g.jobs)
        .all(JobRecord::succeeded);
    if succeeded && pass.outputs_missing.is_none() {
        Phase::Complete
    } else {
        Phase::Incomplete
    }
}

/// Ends a pass that could not start; unless the spec is at fault, it is tried again later.
fn fail_start(pass: &mut Pass, failure: &Failure, now: Timestamp) {
    finish(pass, Phase::Failed, now);
    if failure.reason != INVALID_SPEC {
        let wait = Backoff::RESTARTS.after(pass.failed_starts.saturating_add(1));
        pass.retry_at = Some(Time(later(now, signed(wait))));
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
            job.state = Some(seen.state);
            job.summary = Some(seen.summary.clone());
            job.waiting_for = seen.waiting_for.clone();
        }
    }
}

fn all_finished(pass: &Pass) -> bool {
    pass.groups
        .iter()
        .flat_map(|g| &g.jobs)
        .all(JobRecord::is_finished)
}

fn unfinished_ids(pass: &Pass) -> Vec<String> {
    pass.groups
        .iter()
        .flat_map(|g| &g.jobs)
        .filter(|j| !j.is_finished())
        .filter_map(|j| j.id.clone())
        .collect()
}

/// `now + wait`, saturating at the end of time: the spec may come from a cluster whose
/// validation is older than ours, and `decide` never panics.
fn later(now: Timestamp, wait: SignedDuration) -> Timestamp {
    now.checked_add(wait).unwrap_or(Timestamp::MAX)
}

fn delay(spec: &SimulationSeriesSpec) -> SignedDuration {
    SignedDuration::from_secs(spec.parameters.retry_delay.min(i64::MAX as u64) as i64)
}

/// A wait as the clock adds it (saturating: a `Duration` can exceed a `SignedDuration`).
fn signed(wait: Duration) -> SignedDuration {
    SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX)
}
