//! The summary of a status that `kubectl get` and GitOps tools read: phase, counts and the
//! kstatus conditions (`Ready`, `Reconciling`, `Stalled`), derived from the pass alone.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::model::status::{OutputsMissing, Pass, PassError, Phase, SimulationSeriesStatus};

/// Phase, counts and kstatus conditions, derived from the pass.
pub fn refresh_summary(status: &mut SimulationSeriesStatus, now: Timestamp) {
    let Some(pass) = &status.pass else { return };
    status.phase = Some(pass.phase);
    status.attempts = pass.attempts;
    status.active_jobs = pass
        .groups
        .iter()
        .flat_map(|g| &g.jobs)
        .filter(|j| j.may_run())
        .count() as u32;
    if let Some(runs) = &status.runs {
        status.progress = Some(format!("{}/{}", runs.complete, runs.total));
    }
    let inputs = pass.input_counts();
    status.pass_progress = Some(format!("{}/{}", inputs.done, inputs.total));
    status.inputs = Some(inputs);
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
        Phase::Incomplete if pass.outputs_missing.is_some() => {
            let missing = pass.outputs_missing.as_ref().expect("checked above");
            let message = format!(
                "pass {number}: {}; {RERUN_HINT}",
                outputs_missing_message(missing)
            );
            [
                ("False", "OutputsMissing".into(), message.clone()),
                ("False", "OutputsMissing".into(), String::new()),
                ("True", "OutputsMissing".into(), message),
            ]
        }
        Phase::Incomplete => {
            let unfinished: u32 = pass
                .groups
                .iter()
                .flat_map(|g| &g.jobs)
                .filter(|j| !j.succeeded())
                .map(|j| {
                    let succeeded = j.summary.as_ref().map_or(0, |s| s.succeeded);
                    j.array_size.saturating_sub(succeeded)
                })
                .sum();
            let message = format!(
                "pass {number} ended with {unfinished} failed or terminated input(s); {RERUN_HINT}"
            );
            [
                ("False", "RunsFailed".into(), message.clone()),
                ("False", "RunsFailed".into(), String::new()),
                ("True", "RunsFailed".into(), message),
            ]
        }
        Phase::Failed => {
            let PassError {
                reason,
                mut message,
            } = pass
                .last_error
                .clone()
                .unwrap_or_else(|| PassError::new("PassFailed", ""));
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

/// What the conditions, the event and the command line say of runs left without outputs
/// (each adds how to run them again).
pub fn outputs_missing_message(missing: &OutputsMissing) -> String {
    format!(
        "every job succeeded, but {} run(s) have no outputs (e.g. {}); the model must write them under {}",
        missing.runs, missing.example, missing.folder
    )
}

/// How to run again what a pass left undone, in the cluster.
const RERUN_HINT: &str =
    "change the simseries.io/rerun annotation (or run with --rerun) to run them again";

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
