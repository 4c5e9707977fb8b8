//! The one loop that drives a pass: decide, persist the new status, then act, and again.
//!
//! Both drivers (the command line and the controller) and the tests run it; they differ only
//! in the [`Driver`] they give it: where the status is written (a status file, the status
//! subresource, memory), how transitions are shown (lines, events), how a wait is spent
//! (sleeping, a requeue, a test clock) and when to stop (Ctrl-C, a step budget).

use k8s_openapi::jiff::Timestamp;

use crate::model::spec::SimulationSeriesSpec;
use crate::model::status::SimulationSeriesStatus;
use crate::pass::decide::{Observation, Outcome, Step, decide};
use crate::pass::transitions::{Transition, transitions};

/// What the loop needs from its driver.
#[allow(async_fn_in_trait)] // drivers are used generically, never as trait objects
pub trait Driver {
    type Error;

    /// What the driver sees now, with the outcome of its last step.
    fn observe(&mut self, outcome: Outcome) -> Observation;

    /// Writes `status` where the driver keeps it, and shows what changed. It is called before
    /// the step the status announces, so a driver that dies resumes from its intent.
    async fn persist(
        &mut self,
        status: &SimulationSeriesStatus,
        transitions: &[Transition],
    ) -> Result<(), Self::Error>;

    /// The status as last persisted, read again, when the one the loop was started from may
    /// be stale (an informer's cache); `None` when it cannot be (the driver read it itself).
    /// The loop calls it once, before it first writes or acts, so a finished pass costs
    /// nothing, and no step is decided from a status older than the driver's own last write:
    /// a step decided from one could redo a submission without looking for it first.
    async fn persisted(&mut self) -> Result<Option<SimulationSeriesStatus>, Self::Error> {
        Ok(None)
    }

    /// Performs `step` (`Wait` included; never `Done`) and says what came of it.
    async fn perform(&mut self, status: &SimulationSeriesStatus, step: Step) -> Next;
}

/// What came of a step.
#[derive(Debug)]
pub enum Next {
    /// Decide again with this outcome.
    Continue(Outcome),
    /// Stop the loop here; the status is persisted, so the next drive resumes from it.
    Stop(Stopped),
}

/// Why the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The pass is done; nothing to do until the spec or the rerun value changes.
    Done,
    /// The pass waits until this time (the driver chose not to spend the wait itself).
    Waiting(Timestamp),
    /// The driver was interrupted (Ctrl-C, SIGTERM).
    Interrupted,
    /// The driver's step budget is spent; other work goes first.
    Yielded,
}

/// How a drive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drive {
    pub stopped: Stopped,
    /// Whether any step was taken (false: the pass for this spec had finished before).
    pub acted: bool,
}

/// Drives the pass in `status` until the driver stops or the pass is done; `status` ends as
/// the last persisted status.
pub async fn drive<D: Driver>(
    spec: &SimulationSeriesSpec,
    status: &mut SimulationSeriesStatus,
    driver: &mut D,
) -> Result<Drive, D::Error> {
    let mut outcome = Outcome::Resumed;
    let mut acted = false;
    let mut confirmed = false;
    loop {
        let decision = decide(spec, status, &driver.observe(outcome));
        let idle = decision.step == Step::Done && decision.status == *status;
        if !idle && !confirmed {
            confirmed = true;
            if let Some(persisted) = driver.persisted().await?
                && persisted != *status
            {
                *status = persisted;
                outcome = Outcome::Resumed;
                continue;
            }
        }
        if decision.status != *status {
            let changes = transitions(status, &decision.status);
            driver.persist(&decision.status, &changes).await?;
            crate::faults::crash_point("after-status-write");
            *status = decision.status;
        }
        if decision.step == Step::Done {
            return Ok(Drive {
                stopped: Stopped::Done,
                acted,
            });
        }
        acted = true;
        outcome = match driver.perform(status, decision.step).await {
            Next::Continue(outcome) => outcome,
            Next::Stop(stopped) => return Ok(Drive { stopped, acted }),
        };
    }
}
