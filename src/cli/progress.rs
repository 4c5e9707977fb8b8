//! Progress of `simseries run`: a bar on a terminal, plain lines elsewhere. Lines come from the
//! pass's transitions and from the steps within a phase (polls, waits); the bar also moves
//! between polls with the executor's live counts.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use k8s_openapi::jiff::Timestamp;

use crate::executor::LiveCounts;
use crate::model::status::{InputCounts, Phase, SimulationSeriesStatus};
use crate::pass::conditions::outputs_missing_message;
use crate::pass::decide::Step;
use crate::pass::transitions::Transition;

/// Progress on a terminal, plain lines elsewhere.
pub struct Reporter {
    bar: Option<ProgressBar>,
    last_line: String,
    retries: u32,
    /// The phase of the pass as last persisted.
    phase: Option<Phase>,
}

impl Reporter {
    pub fn new(progress_bar: bool, retries: u32) -> Self {
        let bar = progress_bar.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} inputs {msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Reporter {
            bar,
            last_line: String::new(),
            retries: retries.max(1),
            phase: None,
        }
    }

    fn line(&mut self, line: String) {
        if line == self.last_line {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(&line),
            None => eprintln!("{line}"),
        }
        self.last_line = line;
    }

    /// Lines for a persisted status: the final counts of the jobs when the pass leaves
    /// `Running` (the last poll may have changed them since the last line), then a line per
    /// transition.
    pub fn persisted(&mut self, status: &SimulationSeriesStatus, transitions: &[Transition]) {
        let Some(pass) = &status.pass else { return };
        if self.phase == Some(Phase::Running) && pass.phase != Phase::Running {
            let counts = pass.input_counts();
            self.line(format!(
                "simseries: pass {}: ran: {}/{} inputs done, {} failed, {} running after {} poll(s)",
                pass.number, counts.done, counts.total, counts.failed, counts.running, pass.attempts
            ));
        }
        self.phase = Some(pass.phase);
        for transition in transitions {
            self.transition(transition);
        }
    }

    /// A line per transition of the pass.
    fn transition(&mut self, transition: &Transition) {
        let what = match transition {
            Transition::Started { .. } => "planning".to_string(),
            Transition::Completed { .. } => "complete".to_string(),
            Transition::RunsFailed { .. } => "incomplete".to_string(),
            Transition::OutputsMissing { missing, .. } => {
                format!("incomplete: {}", outputs_missing_message(missing))
            }
            Transition::StartFailed { error, .. } => format!("could not start: {error}"),
            Transition::Retrying { .. } => format!("retrying after: {}", transition.message()),
            _ => transition.message(),
        };
        self.line(format!("simseries: pass {}: {what}", transition.pass()));
    }

    /// The bar, and a line for the steps within a phase.
    pub fn step(&mut self, status: &SimulationSeriesStatus, step: &Step, live: Option<LiveCounts>) {
        let Some(pass) = &status.pass else { return };
        let mut counts = pass.input_counts();
        if pass.phase == Phase::Running
            && let Some(live) = live
        {
            // Local children report as they change; the status only at polls.
            (counts.done, counts.failed, counts.running) = (live.done, live.failed, live.running);
        }
        let InputCounts {
            done,
            failed,
            running,
            total,
        } = counts;
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position((done + failed) as u64);
            bar.set_message(format!(
                "({done} done, {failed} failed, {running} running) {:?}",
                pass.phase
            ));
            if matches!(step, Step::Poll | Step::Wait { .. }) {
                // The bar shows polls; lines are for phase changes.
                return;
            }
        }
        let what = match step {
            Step::WriteInputs => match pass.date {
                Some(date) => format!("writing inputs to {date}"),
                None => "writing inputs".to_string(),
            },
            Step::CopyInits => "copying init files".into(),
            Step::Register { .. } | Step::Submit { .. } => "submitting".into(),
            Step::Poll => format!("poll {}", pass.attempts + 1),
            Step::Wait { .. } if pass.phase == Phase::Running => format!(
                "running: {done}/{total} inputs done, {failed} failed, {running} running (after poll {} of {})",
                pass.attempts, self.retries
            ),
            Step::Recount => "counting complete runs".into(),
            // Transitions announce the others.
            Step::Plan
            | Step::Wait { .. }
            | Step::Terminate { .. }
            | Step::CollectLogs
            | Step::Clean
            | Step::Done => return,
        };
        self.line(format!("simseries: pass {}: {what}", pass.number));
    }

    /// Live counts between polls.
    pub fn tick(&mut self, live: Option<LiveCounts>, next_poll: Timestamp) {
        if let (Some(bar), Some(live)) = (&self.bar, live) {
            let LiveCounts {
                done,
                failed,
                running,
                ..
            } = live;
            let left = next_poll.duration_since(Timestamp::now()).as_secs().max(0);
            bar.set_position((done + failed) as u64);
            bar.set_message(format!(
                "({done} done, {failed} failed, {running} running) Running, next poll in {left}s"
            ));
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
