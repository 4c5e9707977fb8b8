//! The decision function as plain data: every phase transition of a pass.

mod common;

use common::{SERIES, series};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use simseries::model::outcome::{
    Definition, Failure, GroupLogs, JobObservation, PlanOutcome, PlannedGroup, PlannedJobRecord,
    Recount,
};
use simseries::model::spec::SimulationSeriesSpec;
use simseries::model::status::{
    JobState, LogRecord, Phase, RunCounts, SimulationSeriesStatus, StatusSummary,
};
use simseries::pass::decide::{Decision, Observation, Outcome, Step, decide};

fn spec(edit: &[(&str, &str)]) -> SimulationSeriesSpec {
    let mut yaml = SERIES.replace("retries: 1, retryDelay: 5", "retries: 3, retryDelay: 60");
    for (from, to) in edit {
        assert!(yaml.contains(from), "{from}");
        yaml = yaml.replace(from, to);
    }
    series(&yaml).spec
}

fn t0() -> Timestamp {
    "2024-06-01T12:00:00Z".parse().unwrap()
}

fn at(seconds: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(seconds)
}

/// Drives `decide` and keeps the status, as a driver does.
struct Driver {
    spec: SimulationSeriesSpec,
    status: SimulationSeriesStatus,
    generation: i64,
    rerun: Option<String>,
    inputs: Option<String>,
}

impl Driver {
    fn new(spec: SimulationSeriesSpec) -> Self {
        Driver {
            spec,
            status: SimulationSeriesStatus::default(),
            generation: 1,
            rerun: None,
            inputs: None,
        }
    }

    fn step(&mut self, now: Timestamp, event: Outcome) -> Step {
        let Decision { status, step } = decide(
            &self.spec,
            &self.status,
            &Observation {
                now,
                generation: self.generation,
                rerun: self.rerun.clone(),
                inputs: self.inputs.clone(),
                outcome: event,
            },
        );
        self.status = status;
        step
    }

    fn phase(&self) -> Phase {
        self.status.pass.as_ref().unwrap().phase
    }

    fn condition(&self, kind: &str) -> (String, String) {
        let c = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap();
        (c.status.clone(), c.reason.clone())
    }

    /// Plans two groups (two jobs in the first), writes, copies, registers and submits.
    fn submit_all(&mut self) {
        assert_eq!(self.submit_all_then(), Step::Wait { until: at(60) });
        assert_eq!(self.phase(), Phase::Running);
        assert_eq!(self.status.active_jobs, 3);
    }

    /// The steps of [`Driver::submit_all`]; the action after the last submission.
    fn submit_all_then(&mut self) -> Step {
        assert_eq!(self.step(t0(), Outcome::Resumed), Step::Plan);
        assert_eq!(
            self.step(t0(), Outcome::Planned(Ok(outcome()))),
            Step::WriteInputs
        );
        assert_eq!(
            self.step(t0(), Outcome::InputsWritten(Ok(()))),
            Step::CopyInits
        );
        assert_eq!(
            self.step(t0(), Outcome::InitsCopied(Ok(()))),
            Step::Register { group: 0 }
        );
        assert_eq!(self.phase(), Phase::Submitting);
        assert_eq!(
            self.step(
                t0(),
                Outcome::Registered {
                    group: 0,
                    result: Ok(definition("def-g"))
                }
            ),
            Step::Submit {
                group: 0,
                job: 0,
                may_exist: false
            }
        );
        assert_eq!(
            self.step(
                t0(),
                Outcome::Submitted {
                    group: 0,
                    job: 0,
                    result: Ok("id-1".into())
                }
            ),
            Step::Submit {
                group: 0,
                job: 1,
                may_exist: false
            }
        );
        assert_eq!(
            self.step(
                t0(),
                Outcome::Submitted {
                    group: 0,
                    job: 1,
                    result: Ok("id-2".into())
                }
            ),
            Step::Register { group: 1 }
        );
        assert_eq!(
            self.step(
                t0(),
                Outcome::Registered {
                    group: 1,
                    result: Ok(definition("def-h"))
                }
            ),
            Step::Submit {
                group: 1,
                job: 0,
                may_exist: false
            }
        );
        self.step(
            t0(),
            Outcome::Submitted {
                group: 1,
                job: 0,
                result: Ok("id-3".into()),
            },
        )
    }
}

fn definition(id: &str) -> Definition {
    Definition {
        id: id.into(),
        owned: true,
    }
}

fn job(name: &str, size: u32) -> PlannedJobRecord {
    PlannedJobRecord {
        name: name.into(),
        file_set_name: name.into(),
        array_size: size,
        runs: size * 2,
    }
}

fn outcome() -> PlanOutcome {
    PlanOutcome {
        date: "2024-06-01".parse().unwrap(),
        counts: RunCounts {
            total: 12,
            complete: 4,
            missing: 6,
            incomplete: 2,
        },
        groups: vec![
            PlannedGroup {
                group: "G".into(),
                group_key: "S_G".into(),
                jobs: vec![job("S_G", 3), job("S_G-part1", 1)],
            },
            PlannedGroup {
                group: "H".into(),
                group_key: "S_H".into(),
                jobs: vec![job("S_H", 2)],
            },
        ],
        record: "S/2024-06-01/simseries/pass-1.json".into(),
    }
}

fn observed(id: &str, state: &str, succeeded: u32, failed: u32, running: u32) -> JobObservation {
    JobObservation {
        id: id.into(),
        state: state.parse().unwrap(),
        summary: StatusSummary {
            succeeded,
            failed,
            running,
            ..Default::default()
        },
        waiting_for: None,
    }
}

fn all_running() -> Outcome {
    Outcome::Polled(Ok(vec![
        observed("id-1", "RUNNING", 1, 0, 2),
        observed("id-2", "RUNNING", 0, 0, 1),
        observed("id-3", "RUNNABLE", 0, 0, 0),
    ]))
}

fn logs() -> Outcome {
    Outcome::LogsCollected(Ok(vec![GroupLogs {
        group: "G".into(),
        record: LogRecord {
            folder: "S/2024-06-01/logs/".into(),
            count: 4,
            keys: vec!["S/2024-06-01/logs/S_G_0.log".into()],
        },
    }]))
}

fn recounted(complete: u64) -> Outcome {
    Outcome::Recounted(Ok(Recount {
        counts: RunCounts {
            total: 12,
            complete,
            missing: 12 - complete,
            incomplete: 0,
        },
        example_missing: (complete < 12).then(|| "S_A_0003".to_string()),
        outputs: "s3://bucket/work/S/2024-06-01/outputs/".into(),
        usage: None,
    }))
}

#[test]
fn a_new_series_starts_a_pass_by_planning() {
    let mut d = Driver::new(spec(&[]));
    assert_eq!(d.step(t0(), Outcome::Resumed), Step::Plan);
    let pass = d.status.pass.as_ref().unwrap();
    assert_eq!(
        (pass.number, pass.generation, pass.phase),
        (1, 1, Phase::Planning)
    );
    assert_eq!(d.status.observed_generation, Some(1));
    assert_eq!(d.status.phase, Some(Phase::Planning));
    assert_eq!(d.condition("Reconciling").0, "True");
    assert_eq!(d.condition("Ready").0, "False");
}

#[test]
fn nothing_missing_completes_without_submitting() {
    let mut d = Driver::new(spec(&[]));
    d.step(t0(), Outcome::Resumed);
    let nothing = PlanOutcome {
        groups: vec![PlannedGroup {
            group: "G".into(),
            group_key: "S_G".into(),
            jobs: vec![],
        }],
        counts: RunCounts {
            total: 12,
            complete: 12,
            missing: 0,
            incomplete: 0,
        },
        ..outcome()
    };
    assert_eq!(d.step(t0(), Outcome::Planned(Ok(nothing))), Step::Done);
    assert_eq!(d.phase(), Phase::Complete);
    assert_eq!(d.status.progress.as_deref(), Some("12/12"));
    assert_eq!(d.condition("Ready"), ("True".into(), "PassComplete".into()));
    assert_eq!(d.condition("Reconciling").0, "False");
    // And a finished pass is never repeated: no action, status unchanged.
    let before = d.status.clone();
    assert_eq!(d.step(at(3600), Outcome::Resumed), Step::Done);
    assert_eq!(d.status, before);
}

#[test]
fn the_full_lifecycle_with_stragglers_terminated() {
    let mut d = Driver::new(spec(&[]));
    d.submit_all();
    // Not yet time to poll.
    assert_eq!(
        d.step(at(30), Outcome::Resumed),
        Step::Wait { until: at(60) }
    );
    assert_eq!(d.step(at(60), Outcome::Resumed), Step::Poll);
    assert_eq!(d.step(at(60), all_running()), Step::Wait { until: at(120) });
    assert_eq!(d.status.attempts, 1);
    assert_eq!(d.step(at(120), Outcome::Resumed), Step::Poll);
    assert_eq!(
        d.step(at(120), all_running()),
        Step::Wait { until: at(180) }
    );
    assert_eq!(d.step(at(180), Outcome::Resumed), Step::Poll);
    // Third and last poll (retries: 3): id-2 finished, the others still run.
    let last = Outcome::Polled(Ok(vec![
        observed("id-1", "RUNNING", 2, 0, 1),
        observed("id-2", "SUCCEEDED", 1, 0, 0),
        observed("id-3", "RUNNING", 0, 0, 2),
    ]));
    assert_eq!(
        d.step(at(180), last),
        Step::Terminate {
            jobs: vec!["id-1".into(), "id-3".into()]
        }
    );
    assert_eq!(d.phase(), Phase::Terminating);
    assert_eq!(d.status.attempts, 3);
    assert_eq!(
        d.step(
            at(181),
            Outcome::Terminated(Ok(vec!["id-1".into(), "id-3".into()]))
        ),
        Step::CollectLogs
    );
    assert_eq!(d.phase(), Phase::CollectingLogs);
    assert_eq!(d.status.active_jobs, 0);
    assert_eq!(d.step(at(182), logs()), Step::Clean);
    assert_eq!(d.phase(), Phase::Cleaning);
    let g = &d.status.pass.as_ref().unwrap().groups[0];
    assert_eq!(g.logs.as_ref().unwrap().count, 4);
    assert_eq!(d.step(at(183), Outcome::Cleaned(Ok(()))), Step::Recount);
    assert_eq!(d.step(at(184), recounted(7)), Step::Done);
    assert_eq!(d.phase(), Phase::Incomplete);
    assert_eq!(d.status.progress.as_deref(), Some("7/12"));
    let (stalled, reason) = d.condition("Stalled");
    assert_eq!((stalled.as_str(), reason.as_str()), ("True", "RunsFailed"));
    assert_eq!(d.condition("Ready").0, "False");
    let pass = d.status.pass.as_ref().unwrap();
    assert!(pass.groups[0].jobs[0].terminated && !pass.groups[0].jobs[1].terminated);
    assert_eq!(pass.finished_at.as_ref().unwrap().0, at(184));
}

#[test]
fn without_terminate_jobs_stragglers_are_left_running() {
    let mut d = Driver::new(spec(&[
        ("retries: 3", "retries: 1"),
        ("seedsPerJob: 2", "seedsPerJob: 2, terminateJobs: false"),
    ]));
    d.submit_all();
    d.step(at(60), Outcome::Resumed);
    assert_eq!(d.step(at(60), all_running()), Step::CollectLogs);
    let pass = d.status.pass.as_ref().unwrap();
    assert!(
        pass.groups
            .iter()
            .flat_map(|g| &g.jobs)
            .all(|j| !j.terminated)
    );
    assert_eq!(d.step(at(61), logs()), Step::Clean);
    d.step(at(62), Outcome::Cleaned(Ok(())));
    d.step(at(63), recounted(4));
    assert_eq!(d.phase(), Phase::Incomplete);
}

#[test]
fn logs_and_cleaning_can_be_switched_off() {
    let mut d = Driver::new(spec(&[(
        "seedsPerJob: 2",
        "seedsPerJob: 2, saveLogs: false, cleanJobs: false",
    )]));
    d.submit_all();
    d.step(at(60), Outcome::Resumed);
    let done = Outcome::Polled(Ok(vec![
        observed("id-1", "SUCCEEDED", 3, 0, 0),
        observed("id-2", "SUCCEEDED", 1, 0, 0),
        observed("id-3", "SUCCEEDED", 2, 0, 0),
    ]));
    assert_eq!(d.step(at(60), done), Step::Recount);
    assert_eq!(d.step(at(61), recounted(12)), Step::Done);
    assert_eq!(d.phase(), Phase::Complete);
    assert!(
        d.status
            .pass
            .as_ref()
            .unwrap()
            .groups
            .iter()
            .all(|g| g.logs.is_none())
    );
    assert_eq!(d.condition("Ready").0, "True");

    // Logs on, cleaning off: logs are collected, then straight to the recount.
    let mut d = Driver::new(spec(&[(
        "seedsPerJob: 2",
        "seedsPerJob: 2, cleanJobs: false",
    )]));
    d.submit_all();
    d.step(at(60), Outcome::Resumed);
    let done = Outcome::Polled(Ok(vec![
        observed("id-1", "SUCCEEDED", 3, 0, 0),
        observed("id-2", "FAILED", 0, 1, 0),
        observed("id-3", "SUCCEEDED", 2, 0, 0),
    ]));
    assert_eq!(d.step(at(60), done), Step::CollectLogs);
    assert_eq!(d.step(at(61), logs()), Step::Recount);
    d.step(at(62), recounted(10));
    assert_eq!(
        d.phase(),
        Phase::Incomplete,
        "a failed job makes the pass incomplete"
    );
}

#[test]
fn jobs_that_succeed_without_outputs_leave_the_pass_incomplete_until_a_rerun() {
    let mut d = Driver::new(spec(&[(
        "seedsPerJob: 2",
        "seedsPerJob: 2, saveLogs: false, cleanJobs: false",
    )]));
    d.submit_all();
    d.step(at(60), Outcome::Resumed);
    let inputs = d.status.inputs.clone().unwrap();
    assert_eq!(
        (inputs.total, inputs.done),
        (6, 0),
        "counted before the first poll"
    );
    let done = Outcome::Polled(Ok(vec![
        observed("id-1", "SUCCEEDED", 3, 0, 0),
        observed("id-2", "SUCCEEDED", 1, 0, 0),
        observed("id-3", "SUCCEEDED", 2, 0, 0),
    ]));
    assert_eq!(d.step(at(60), done), Step::Recount);
    assert_eq!(d.status.pass_progress.as_deref(), Some("6/6"));
    // Every job succeeded, yet 9 of the 12 runs have no outputs.
    assert_eq!(d.step(at(61), recounted(3)), Step::Done);
    assert_eq!(d.phase(), Phase::Incomplete);
    assert_eq!(d.status.progress.as_deref(), Some("3/12"));
    for kind in ["Ready", "Stalled"] {
        let condition = d
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap();
        assert_eq!(condition.reason, "OutputsMissing");
        for part in [
            "9 run(s)",
            "S_A_0003",
            "s3://bucket/work/S/2024-06-01/outputs/",
            "rerun",
        ] {
            assert!(
                condition.message.contains(part),
                "{part}: {}",
                condition.message
            );
        }
    }
    assert_eq!(d.condition("Ready").0, "False");
    // A rerun runs them again.
    d.rerun = Some("1".into());
    assert_eq!(d.step(at(62), Outcome::Resumed), Step::Plan);
    assert_eq!(d.status.pass.as_ref().unwrap().number, 2);
}

#[test]
fn a_pass_ends_as_soon_as_every_job_finished() {
    let mut d = Driver::new(spec(&[("retries: 3", "retries: 50")]));
    d.submit_all();
    d.step(at(60), Outcome::Resumed);
    let done = Outcome::Polled(Ok(vec![
        observed("id-1", "SUCCEEDED", 3, 0, 0),
        observed("id-2", "SUCCEEDED", 1, 0, 0),
        observed("id-3", "SUCCEEDED", 2, 0, 0),
    ]));
    assert_eq!(d.step(at(60), done), Step::CollectLogs);
    assert_eq!(d.status.attempts, 1, "49 retries left unused");
}

#[test]
fn zero_retries_still_poll_once() {
    let mut d = Driver::new(spec(&[("retries: 3", "retries: 0")]));
    d.submit_all();
    assert_eq!(d.step(at(60), Outcome::Resumed), Step::Poll);
    assert!(matches!(
        d.step(at(60), all_running()),
        Step::Terminate { .. }
    ));
}

#[test]
fn a_new_generation_starts_a_new_pass_only_after_the_active_one() {
    let mut d = Driver::new(spec(&[]));
    d.submit_all();
    d.generation = 2;
    // The active pass goes on.
    assert_eq!(d.step(at(60), Outcome::Resumed), Step::Poll);
    assert_eq!(d.status.pass.as_ref().unwrap().number, 1);
    let done = Outcome::Polled(Ok(vec![
        observed("id-1", "SUCCEEDED", 3, 0, 0),
        observed("id-2", "SUCCEEDED", 1, 0, 0),
        observed("id-3", "SUCCEEDED", 2, 0, 0),
    ]));
    d.step(at(60), done);
    d.step(at(61), logs());
    d.step(at(62), Outcome::Cleaned(Ok(())));
    assert_eq!(d.step(at(63), recounted(12)), Step::Done);
    assert_eq!(d.status.observed_generation, Some(1));
    // Then the next step starts pass 2 for generation 2.
    assert_eq!(d.step(at(64), Outcome::Resumed), Step::Plan);
    let pass = d.status.pass.as_ref().unwrap();
    assert_eq!((pass.number, pass.generation), (2, 2));
    assert_eq!(d.status.observed_generation, Some(2));
}

#[test]
fn a_changed_rerun_value_starts_a_new_pass() {
    let mut d = Driver::new(spec(&[]));
    d.step(t0(), Outcome::Resumed);
    // A spec problem: only a spec change or a rerun starts a new pass.
    d.step(
        t0(),
        Outcome::Planned(Err(Failure::permanent(
            "InvalidSpec",
            "spec.series.seeds: no seeds",
        ))),
    );
    assert_eq!(d.step(at(10), Outcome::Resumed), Step::Done);
    d.rerun = Some("1".into());
    assert_eq!(d.step(at(20), Outcome::Resumed), Step::Plan);
    let pass = d.status.pass.as_ref().unwrap();
    assert_eq!((pass.number, pass.rerun.as_deref()), (2, Some("1")));
}

#[test]
fn a_pass_that_cannot_start_fails_with_the_reason() {
    let mut d = Driver::new(spec(&[]));
    d.step(t0(), Outcome::Resumed);
    let action = d.step(
        t0(),
        Outcome::Planned(Err(Failure::permanent(
            "TemplateError",
            "template t.xml line 3: undefined value",
        ))),
    );
    assert_eq!(action, Step::Done);
    assert_eq!(d.phase(), Phase::Failed);
    let stalled = d
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "TemplateError")
    );
    assert_eq!(
        stalled.message,
        "template t.xml line 3: undefined value (the pass starts again once this is fixed)"
    );
    assert_eq!(d.condition("Reconciling").0, "False");
}

fn fail_planning(d: &mut Driver, now: Timestamp, reason: &str) {
    assert_eq!(d.step(now, Outcome::Resumed), Step::Plan);
    let action = d.step(
        now,
        Outcome::Planned(Err(Failure::permanent(reason, "what went wrong"))),
    );
    assert_eq!(action, Step::Done);
    assert_eq!(d.phase(), Phase::Failed);
}

#[test]
fn a_failed_start_starts_again_locally_once_its_inputs_change() {
    let mut d = Driver::new(spec(&[]));
    d.inputs = Some("template-v1".into());
    fail_planning(&mut d, t0(), "TemplateError");
    // Unchanged inputs: nothing to do, and nothing written.
    let before = d.status.clone();
    assert_eq!(d.step(at(3600 * 24), Outcome::Resumed), Step::Done);
    assert_eq!(d.status, before);
    // The template was fixed: a new pass of the same generation, without a rerun.
    d.inputs = Some("template-v2".into());
    assert_eq!(d.step(at(10), Outcome::Resumed), Step::Plan);
    let pass = d.status.pass.as_ref().unwrap();
    assert_eq!((pass.number, pass.failed_starts), (2, 1));
    assert_eq!(pass.inputs.as_deref(), Some("template-v2"));
    assert_eq!(d.phase(), Phase::Planning);
}

#[test]
fn a_failed_start_is_retried_on_a_doubling_backoff_in_the_cluster() {
    let mut d = Driver::new(spec(&[]));
    fail_planning(&mut d, t0(), "ManifestNotFound");
    // 1 min, then 2, 4, … up to an hour, with no write while waiting.
    let mut now = t0();
    for wait in [60, 120, 240, 480, 960, 1920, 3600, 3600] {
        let before = d.status.clone();
        let until = now + SignedDuration::from_secs(wait);
        assert_eq!(
            d.step(now + SignedDuration::from_secs(1), Outcome::Resumed),
            Step::Wait { until }
        );
        assert_eq!(d.status, before, "no write while waiting");
        now = until;
        fail_planning(&mut d, now, "ManifestNotFound");
    }
    assert_eq!(d.status.pass.as_ref().unwrap().failed_starts, 8);
    // Once the cause is gone, the pass runs.
    assert_eq!(
        d.step(now + SignedDuration::from_secs(3600), Outcome::Resumed),
        Step::Plan
    );
    assert_eq!(
        d.step(now, Outcome::Planned(Ok(outcome()))),
        Step::WriteInputs
    );
}

#[test]
fn an_invalid_spec_waits_for_a_spec_change() {
    let mut d = Driver::new(spec(&[]));
    fail_planning(&mut d, t0(), "InvalidSpec");
    assert_eq!(d.step(at(100_000), Outcome::Resumed), Step::Done);
    d.inputs = Some("changed".into());
    assert_eq!(d.step(at(100_001), Outcome::Resumed), Step::Done);
    d.generation = 2;
    assert_eq!(d.step(at(100_002), Outcome::Resumed), Step::Plan);
}

#[test]
fn transient_failures_back_off_and_recover() {
    let mut d = Driver::new(spec(&[]));
    d.submit_all();
    d.step(at(60), Outcome::Resumed);
    let throttled = || {
        Outcome::Polled(Err(Failure::transient(
            "Throttled",
            "TooManyRequestsException",
        )))
    };
    assert_eq!(d.step(at(60), throttled()), Step::Wait { until: at(65) });
    assert_eq!(
        d.step(at(62), Outcome::Resumed),
        Step::Wait { until: at(65) }
    );
    assert_eq!(d.step(at(65), Outcome::Resumed), Step::Poll);
    assert_eq!(d.step(at(65), throttled()), Step::Wait { until: at(75) });
    let pass = d.status.pass.as_ref().unwrap();
    assert_eq!(
        (pass.consecutive_errors, pass.attempts),
        (2, 0),
        "failed polls are not attempts"
    );
    let reconciling = d
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Reconciling")
        .unwrap();
    assert!(
        reconciling.message.contains("TooManyRequestsException"),
        "{}",
        reconciling.message
    );
    assert_eq!(d.step(at(75), Outcome::Resumed), Step::Poll);
    assert_eq!(d.step(at(75), all_running()), Step::Wait { until: at(135) });
    assert_eq!(d.status.pass.as_ref().unwrap().consecutive_errors, 0);
}

#[test]
fn a_restart_resubmits_only_what_was_not_recorded() {
    let mut d = Driver::new(spec(&[]));
    d.step(t0(), Outcome::Resumed);
    d.step(t0(), Outcome::Planned(Ok(outcome())));
    // A restart in the middle of planning plans again.
    assert_eq!(d.step(t0(), Outcome::Resumed), Step::Plan);
    d.step(t0(), Outcome::Planned(Ok(outcome())));
    d.step(t0(), Outcome::InputsWritten(Ok(())));
    d.step(t0(), Outcome::InitsCopied(Ok(())));
    d.step(
        t0(),
        Outcome::Registered {
            group: 0,
            result: Ok(definition("def")),
        },
    );
    d.step(
        t0(),
        Outcome::Submitted {
            group: 0,
            job: 0,
            result: Ok("id-1".into()),
        },
    );
    // The driver died before recording job 1: on restart only job 1 is submitted, and since
    // its SubmitJob may have been sent, the executor looks for it first.
    assert_eq!(
        d.step(at(5), Outcome::Resumed),
        Step::Submit {
            group: 0,
            job: 1,
            may_exist: true
        }
    );
    assert_eq!(
        d.status.pass.as_ref().unwrap().groups[0].jobs[0]
            .id
            .as_deref(),
        Some("id-1")
    );
}

#[test]
fn a_job_that_cannot_be_submitted_fails_alone() {
    let mut d = Driver::new(spec(&[]));
    d.step(t0(), Outcome::Resumed);
    d.step(t0(), Outcome::Planned(Ok(outcome())));
    d.step(t0(), Outcome::InputsWritten(Ok(())));
    d.step(t0(), Outcome::InitsCopied(Ok(())));
    d.step(
        t0(),
        Outcome::Registered {
            group: 0,
            result: Err(Failure::permanent("ClientException", "bad image")),
        },
    );
    // Group G is given up; group H still runs.
    assert_eq!(
        d.status.pass.as_ref().unwrap().groups[0].jobs[0]
            .state
            .map(JobState::as_str),
        Some("FAILED")
    );
    let action = d.step(t0(), Outcome::Resumed);
    assert_eq!(action, Step::Register { group: 1 });
}

#[test]
fn condition_transition_times_change_only_with_their_status() {
    let mut d = Driver::new(spec(&[]));
    d.step(t0(), Outcome::Resumed);
    let reconciling = |d: &Driver| {
        d.status
            .conditions
            .iter()
            .find(|c| c.type_ == "Reconciling")
            .unwrap()
            .last_transition_time
            .0
    };
    assert_eq!(reconciling(&d), t0());
    d.step(at(10), Outcome::Planned(Ok(outcome())));
    d.step(at(20), Outcome::InputsWritten(Ok(())));
    assert_eq!(reconciling(&d), t0(), "still True: unchanged");
    d.step(
        at(30),
        Outcome::InitsCopied(Err(Failure::permanent("AccessDenied", "cannot write"))),
    );
    assert_eq!(reconciling(&d), at(30), "now False");
    assert_eq!(d.phase(), Phase::Failed);
}

#[test]
fn a_retry_delay_past_the_end_of_time_never_panics() {
    // Validation refuses such a delay, but a status written under an older version, or a
    // cluster without our validation, can still hand one to `decide`: it waits "forever".
    let mut spec = spec(&[]);
    spec.parameters.retry_delay = 400_000_000_000;
    let mut d = Driver::new(spec);
    let action = d.submit_all_then();
    assert_eq!(
        action,
        Step::Wait {
            until: Timestamp::MAX
        }
    );
    assert_eq!(
        d.step(at(1), Outcome::Resumed),
        Step::Wait {
            until: Timestamp::MAX
        }
    );
}

#[test]
fn the_inputs_digest_is_wanted_only_where_a_pass_may_start_or_fail_to() {
    use simseries::pass::decide::uses_inputs;
    let mut d = Driver::new(spec(&[]));
    assert!(uses_inputs(&d.status, 1, None), "no pass yet");
    d.step(t0(), Outcome::Resumed);
    assert!(uses_inputs(&d.status, 1, None), "planning may still fail");
    d.submit_all();
    assert!(
        !uses_inputs(&d.status, 1, None),
        "a running pass needs none"
    );
    let mut failed = Driver::new(spec(&[]));
    fail_planning(&mut failed, t0(), "TemplateError");
    assert!(
        uses_inputs(&failed.status, 1, None),
        "a failed start may restart"
    );
    assert!(
        uses_inputs(&failed.status, 2, None),
        "a new generation starts a pass"
    );
}
