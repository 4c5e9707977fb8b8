//! What changed between two statuses of a series, as data: a pass started, planned, submitted,
//! moved to its next phase, ended, or retries a failed call. The controller renders them as
//! Kubernetes events and the command line as progress lines, so both tell the same story.

use crate::model::layout::Date;
use crate::model::status::{
    OutputsMissing, Pass, PassError, Phase, SimulationSeriesStatus, Submission,
};
use crate::model::usage::PassUsage;
use crate::pass::conditions::outputs_missing_message;

/// One change of a pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Started {
        pass: u32,
        generation: i64,
    },
    /// Inputs are written and init files copied; submitting begins.
    Planned {
        pass: u32,
        inputs: u32,
        jobs: usize,
        date: Option<Date>,
    },
    /// A job's submission was refused for good (its inputs run at the next pass, once the
    /// cause is fixed).
    SubmitRefused {
        pass: u32,
        job: String,
        error: PassError,
    },
    /// Every job is submitted; polling begins.
    Submitted {
        pass: u32,
        inputs: u32,
        jobs: usize,
    },
    /// Jobs still unfinished after the last poll are terminated.
    Terminating {
        pass: u32,
        jobs: usize,
        polls: u32,
    },
    CollectingLogs {
        pass: u32,
    },
    Cleaning {
        pass: u32,
    },
    /// The pass's jobs ended and what their children used is known.
    UsageMeasured {
        pass: u32,
        usage: PassUsage,
    },
    /// Every job of the pass succeeded (or nothing was missing).
    Completed {
        pass: u32,
    },
    /// Some jobs of the pass failed or were terminated.
    RunsFailed {
        pass: u32,
    },
    /// Every job succeeded, but runs are left without their outputs.
    OutputsMissing {
        pass: u32,
        missing: OutputsMissing,
    },
    /// The pass could not start.
    StartFailed {
        pass: u32,
        error: PassError,
    },
    /// A call failed for a passing cause (throttling, network) and is tried again.
    Retrying {
        pass: u32,
        error: PassError,
        attempt: u32,
    },
}

impl Transition {
    /// Whether people should look (a Warning event).
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Transition::Terminating { .. }
                | Transition::RunsFailed { .. }
                | Transition::OutputsMissing { .. }
                | Transition::StartFailed { .. }
                | Transition::SubmitRefused { .. }
                | Transition::Retrying { .. }
        )
    }

    /// The CamelCase reason, as events and conditions name it.
    pub fn reason(&self) -> &str {
        match self {
            Transition::Started { .. } => "PassStarted",
            Transition::Planned { .. } => "Planned",
            Transition::Submitted { .. } => "Submitted",
            Transition::Terminating { .. } => "Terminating",
            Transition::CollectingLogs { .. } => "CollectingLogs",
            Transition::Cleaning { .. } => "Cleaning",
            Transition::UsageMeasured { .. } => "UsageMeasured",
            Transition::Completed { .. } => "PassComplete",
            Transition::RunsFailed { .. } => "RunsFailed",
            Transition::OutputsMissing { .. } => "OutputsMissing",
            Transition::StartFailed { error, .. } => &error.reason,
            Transition::SubmitRefused { error, .. } => &error.reason,
            Transition::Retrying { .. } => "Retrying",
        }
    }

    /// The step of the pass the transition belongs to (an event's `action`).
    pub fn step(&self) -> &'static str {
        match self {
            Transition::Started { .. } | Transition::Planned { .. } => "Plan",
            Transition::StartFailed { .. } => "Plan",
            Transition::Submitted { .. } | Transition::SubmitRefused { .. } => "Submit",
            Transition::Terminating { .. } => "Terminate",
            Transition::CollectingLogs { .. } => "CollectLogs",
            Transition::Cleaning { .. } => "Clean",
            Transition::UsageMeasured { .. }
            | Transition::Completed { .. }
            | Transition::RunsFailed { .. }
            | Transition::OutputsMissing { .. } => "Complete",
            Transition::Retrying { .. } => "Retry",
        }
    }

    /// The pass it concerns.
    pub fn pass(&self) -> u32 {
        match self {
            Transition::Started { pass, .. }
            | Transition::Planned { pass, .. }
            | Transition::Submitted { pass, .. }
            | Transition::Terminating { pass, .. }
            | Transition::CollectingLogs { pass }
            | Transition::Cleaning { pass }
            | Transition::UsageMeasured { pass, .. }
            | Transition::Completed { pass }
            | Transition::RunsFailed { pass }
            | Transition::OutputsMissing { pass, .. }
            | Transition::StartFailed { pass, .. }
            | Transition::SubmitRefused { pass, .. }
            | Transition::Retrying { pass, .. } => *pass,
        }
    }

    /// A sentence for people.
    pub fn message(&self) -> String {
        match self {
            Transition::Started { pass, generation } => {
                format!("pass {pass} started for generation {generation}")
            }
            Transition::Planned {
                inputs, jobs, date, ..
            } => {
                let date = date.map(|d| d.to_string()).unwrap_or_default();
                format!("{inputs} input(s) in {jobs} job(s) written to {date}")
            }
            Transition::Submitted { inputs, jobs, .. } => {
                format!("{jobs} job(s) with {inputs} input(s) submitted")
            }
            Transition::Terminating { jobs, polls, .. } => format!(
                "terminating {jobs} unfinished job(s) after the last poll ({polls} poll(s))"
            ),
            Transition::CollectingLogs { .. } => "saving logs".to_string(),
            Transition::Cleaning { .. } => "cleaning up".to_string(),
            Transition::UsageMeasured { pass, usage } => {
                format!("pass {pass} used {}", usage.describe())
            }
            Transition::Completed { pass } => {
                format!("pass {pass} completed every run it started")
            }
            Transition::OutputsMissing { pass, missing } => {
                format!("pass {pass}: {}", outputs_missing_message(missing))
            }
            Transition::RunsFailed { pass } => {
                format!("pass {pass} ended with failed or terminated runs")
            }
            Transition::StartFailed { error, .. } => error.message.clone(),
            Transition::SubmitRefused { job, error, .. } => {
                format!("job {job} was not submitted: {error}")
            }
            Transition::Retrying { error, attempt, .. } => {
                format!("{error} (attempt {attempt})")
            }
        }
    }
}

/// The transitions from `old` to `new`, in the order they happened.
pub fn transitions(old: &SimulationSeriesStatus, new: &SimulationSeriesStatus) -> Vec<Transition> {
    let Some(pass) = &new.pass else {
        return Vec::new();
    };
    let number = pass.number;
    let before = old.pass.as_ref().filter(|p| p.number == number);
    let mut out = Vec::new();
    if before.is_none() {
        out.push(Transition::Started {
            pass: number,
            generation: pass.generation,
        });
    }
    if let Some(usage) = &pass.usage
        && before.and_then(|p| p.usage.as_ref()) != Some(usage)
    {
        out.push(Transition::UsageMeasured {
            pass: number,
            usage: usage.clone(),
        });
    }
    if before.map(|p| p.phase) != Some(pass.phase)
        && let Some(change) = phase_change(pass)
    {
        out.push(change);
    }
    let refused_before = |name: &str| {
        before.is_some_and(|p| {
            p.groups
                .iter()
                .flat_map(|g| &g.jobs)
                .any(|j| j.name == name && j.submission() == Submission::Refused)
        })
    };
    for job in pass.groups.iter().flat_map(|g| &g.jobs) {
        if job.submission() == Submission::Refused && !refused_before(&job.name) {
            out.push(Transition::SubmitRefused {
                pass: number,
                job: job.name.clone(),
                error: pass
                    .last_error
                    .clone()
                    .unwrap_or_else(|| PassError::new("SubmitRefused", "")),
            });
        }
    }
    let old_errors = before.map_or(0, |p| p.consecutive_errors);
    if pass.consecutive_errors > old_errors
        && let Some(error) = &pass.last_error
    {
        out.push(Transition::Retrying {
            pass: number,
            error: error.clone(),
            attempt: pass.consecutive_errors,
        });
    }
    out
}

/// The transition of a pass that has just entered its phase.
fn phase_change(pass: &Pass) -> Option<Transition> {
    let number = pass.number;
    let jobs = || pass.groups.iter().map(|g| g.jobs.len()).sum::<usize>();
    let inputs = || {
        pass.groups
            .iter()
            .flat_map(|g| &g.jobs)
            .map(|j| j.array_size)
            .sum::<u32>()
    };
    Some(match pass.phase {
        Phase::Planning => return None,
        Phase::Submitting => Transition::Planned {
            pass: number,
            inputs: inputs(),
            jobs: jobs(),
            date: pass.date,
        },
        Phase::Running => Transition::Submitted {
            pass: number,
            inputs: inputs(),
            jobs: jobs(),
        },
        Phase::Terminating => Transition::Terminating {
            pass: number,
            jobs: pass
                .groups
                .iter()
                .flat_map(|g| &g.jobs)
                .filter(|j| j.may_run())
                .count(),
            polls: pass.attempts,
        },
        Phase::CollectingLogs => Transition::CollectingLogs { pass: number },
        Phase::Cleaning => Transition::Cleaning { pass: number },
        Phase::Complete => Transition::Completed { pass: number },
        Phase::Incomplete => match &pass.outputs_missing {
            Some(missing) => Transition::OutputsMissing {
                pass: number,
                missing: missing.clone(),
            },
            None => Transition::RunsFailed { pass: number },
        },
        Phase::Failed => Transition::StartFailed {
            pass: number,
            error: pass
                .last_error
                .clone()
                .unwrap_or_else(|| PassError::new("PassFailed", "")),
        },
    })
}
