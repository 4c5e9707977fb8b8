//! What a Job's status and its pods say, in the pass's terms: the Job as one observation (from
//! its counts and conditions, never from its pods), and each completion index as a child with
//! its attempts (one pod each).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::manifest::{CONTAINER, INDEX_ANNOTATION};
use crate::model::outcome::{ChildOutcome, JobObservation};
use crate::model::status::{JobState, StatusSummary};
use crate::model::usage::AttemptRecord;

/// Completion indexes as the Job status writes them (`1,3-5`), as a sorted list of ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexes(Vec<(u32, u32)>);

impl Indexes {
    pub fn parse(text: Option<&str>) -> Indexes {
        let mut ranges = Vec::new();
        for part in text.unwrap_or_default().split(',').map(str::trim) {
            let range = match part.split_once('-') {
                Some((a, b)) => a.parse().ok().zip(b.parse().ok()),
                None => part.parse().ok().map(|i| (i, i)),
            };
            if let Some((a, b)) = range
                && a <= b
            {
                ranges.push((a, b));
            }
        }
        ranges.sort_unstable();
        Indexes(ranges)
    }

    pub fn count(&self) -> u32 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    pub fn contains(&self, index: u32) -> bool {
        self.0.iter().any(|&(a, b)| a <= index && index <= b)
    }
}

/// The first true condition of these types, as (type, reason, message).
fn condition<'a>(job: &'a Job, types: &[&str]) -> Option<(&'a str, &'a str, &'a str)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    types.iter().find_map(|wanted| {
        conditions
            .iter()
            .find(|c| c.type_ == *wanted && c.status == "True")
            .map(|c| {
                (
                    c.type_.as_str(),
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or(""),
                )
            })
    })
}

/// Whether the Job ended: the Job controller sets `SuccessCriteriaMet` or `FailureTarget` as
/// soon as the outcome is known and `Complete` or `Failed` once its pods are gone.
pub fn finished_state(job: &Job) -> Option<JobState> {
    if condition(job, &["Complete", "SuccessCriteriaMet"]).is_some() {
        Some(JobState::Succeeded)
    } else if condition(job, &["Failed", "FailureTarget"]).is_some() {
        Some(JobState::Failed)
    } else {
        None
    }
}

/// Why the Job failed, when it did (`DeadlineExceeded: …`, `FailedIndexes: …`).
pub fn failure_reason(job: &Job) -> Option<String> {
    condition(job, &["Failed", "FailureTarget"]).map(|(_, reason, message)| {
        if message.is_empty() {
            reason.to_string()
        } else {
            format!("{reason}: {message}")
        }
    })
}

/// The Job as one observation: counts per state from its status, never one call per pod.
pub fn observe(name: &str, job: &Job, queue: Option<&str>) -> JobObservation {
    let completions = job
        .spec
        .as_ref()
        .and_then(|s| s.completions)
        .unwrap_or(1)
        .max(0) as u32;
    let status = job.status.clone().unwrap_or_default();
    let count = |n: Option<i32>| n.unwrap_or(0).max(0) as u32;
    let succeeded = Indexes::parse(status.completed_indexes.as_deref())
        .count()
        .max(count(status.succeeded))
        .min(completions);
    let failed = Indexes::parse(status.failed_indexes.as_deref())
        .count()
        .min(completions - succeeded);
    let active = count(status.active).min(completions - succeeded - failed);
    let ready = count(status.ready).min(active);
    let suspended = job.spec.as_ref().and_then(|s| s.suspend) == Some(true);
    let mut summary = StatusSummary::default();
    let finished = finished_state(job);
    let waiting_for = match (finished, suspended, status.start_time.is_some()) {
        (None, true, false) => Some(match queue {
            Some(queue) => format!("admission by Kueue (LocalQueue {queue})"),
            None => "the Job to be resumed (spec.suspend is true)".to_string(),
        }),
        (None, true, true) => Some("the Job to be resumed (it was suspended)".to_string()),
        _ => None,
    };
    let state = match finished {
        Some(JobState::Succeeded) => {
            summary.succeeded = completions;
            JobState::Succeeded
        }
        Some(_) => {
            summary.succeeded = succeeded;
            summary.failed = completions - succeeded;
            JobState::Failed
        }
        None => {
            summary.succeeded = succeeded;
            summary.failed = failed;
            summary.running = ready;
            summary.starting = active - ready;
            summary.runnable = completions - succeeded - failed - active;
            if waiting_for.is_some() {
                JobState::Runnable
            } else if ready > 0 || succeeded + failed > 0 {
                JobState::Running
            } else if active > 0 {
                JobState::Starting
            } else {
                JobState::Submitted
            }
        }
    };
    JobObservation {
        id: name.to_string(),
        state,
        summary,
        waiting_for,
    }
}

/// The completion index of a pod of an Indexed Job.
pub fn pod_index(pod: &Pod) -> Option<u32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(INDEX_ANNOTATION)?
        .parse()
        .ok()
}

/// The pods that tell a child's attempts. Of a Job simseries terminated, only the pods that
/// ended on their own: the Job controller deletes the others, sooner or later, so what the
/// record says of them would depend on when it was read (before or after a restart).
pub fn kept_pods(pods: &[Pod], terminated: bool) -> Vec<Pod> {
    pods.iter()
        .filter(|pod| !terminated || pod_state(pod).is_some_and(JobState::is_finished))
        .cloned()
        .collect()
}

/// The pods of each index, oldest first: one attempt each.
pub fn attempts_by_index(pods: &[Pod]) -> BTreeMap<u32, Vec<&Pod>> {
    let mut by_index: BTreeMap<u32, Vec<&Pod>> = BTreeMap::new();
    for pod in pods {
        if let Some(index) = pod_index(pod) {
            by_index.entry(index).or_default().push(pod);
        }
    }
    for attempts in by_index.values_mut() {
        attempts.sort_by_key(|p| {
            (
                p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                p.metadata.name.clone(),
            )
        });
    }
    by_index
}

fn millis(time: Option<&Time>) -> Option<i64> {
    time.map(|t| t.0.as_millisecond())
}

/// One pod as an attempt: when it ran, how its container ended and why.
pub fn attempt(pod: &Pod) -> AttemptRecord {
    let status = pod.status.as_ref();
    let terminated = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.iter().find(|c| c.name == CONTAINER))
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    let disrupted = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
        })
        .map(|c| {
            format!(
                "DisruptionTarget: {}{}",
                c.reason.as_deref().unwrap_or("disrupted"),
                c.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        });
    let reason = disrupted
        .or_else(|| {
            terminated.and_then(|t| {
                let reason = t.reason.as_deref().filter(|r| *r != "Completed")?;
                Some(match &t.message {
                    Some(message) => format!("{reason}: {message}"),
                    None => reason.to_string(),
                })
            })
        })
        .or_else(|| status.and_then(|s| s.reason.clone()));
    let started = terminated
        .and_then(|t| millis(t.started_at.as_ref()))
        .or_else(|| millis(status.and_then(|s| s.start_time.as_ref())));
    AttemptRecord::from_millis(
        started,
        terminated.and_then(|t| millis(t.finished_at.as_ref())),
        terminated.map(|t| t.exit_code),
        reason,
    )
}

/// A pod's phase as a child's state.
fn pod_state(pod: &Pod) -> Option<JobState> {
    match pod.status.as_ref()?.phase.as_deref()? {
        "Pending" => Some(JobState::Starting),
        "Running" => Some(JobState::Running),
        "Succeeded" => Some(JobState::Succeeded),
        "Failed" => Some(JobState::Failed),
        _ => None,
    }
}

/// Each index of the Job as a child: its state from the Job's status (which outlives the
/// pods), its attempts from the pods that are still there.
pub fn children(job: Option<&Job>, size: u32, pods: &[Pod]) -> Vec<ChildOutcome> {
    let status = job.and_then(|j| j.status.as_ref());
    let completed = Indexes::parse(status.and_then(|s| s.completed_indexes.as_deref()));
    let failed = Indexes::parse(status.and_then(|s| s.failed_indexes.as_deref()));
    let job_failure = job
        .filter(|j| finished_state(j) == Some(JobState::Failed))
        .and_then(failure_reason);
    let by_index = attempts_by_index(pods);
    (0..size.max(1))
        .map(|index| {
            let pods = by_index.get(&index).map_or(&[][..], Vec::as_slice);
            let attempts: Vec<AttemptRecord> = pods.iter().map(|p| attempt(p)).collect();
            let last = attempts.last();
            let (state, reason) = if completed.contains(index) {
                (Some(JobState::Succeeded), None)
            } else if failed.contains(index) {
                (
                    Some(JobState::Failed),
                    last.and_then(|a| a.reason.clone())
                        .or_else(|| Some("the model failed".to_string())),
                )
            } else if let Some(why) = &job_failure {
                // Stopped with its Job (terminated by simseries, a Job deadline).
                (Some(JobState::Failed), Some(why.clone()))
            } else if job.is_none() {
                (
                    Some(JobState::Failed),
                    Some("its Job is gone (deleted before it ran)".to_string()),
                )
            } else {
                (pods.last().and_then(|p| pod_state(p)), None)
            };
            ChildOutcome {
                index,
                state,
                exit_code: last.and_then(|a| a.exit_code),
                reason,
                id: pods.last().and_then(|p| p.metadata.name.clone()),
                attempts,
                usage: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(spec: serde_json::Value, status: serde_json::Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": spec, "status": status}))
            .unwrap()
    }

    #[test]
    fn index_ranges_parse_and_count() {
        let indexes = Indexes::parse(Some("0,3-5,9"));
        assert_eq!(indexes.count(), 5);
        assert!(indexes.contains(4) && indexes.contains(9) && !indexes.contains(2));
        assert_eq!(Indexes::parse(None).count(), 0);
        assert_eq!(Indexes::parse(Some("x,7-2")).count(), 0);
    }

    #[test]
    fn a_running_job_is_counted_from_its_status() {
        let observed = observe(
            "j",
            &job(
                json!({"completions": 10, "template": {}}),
                json!({"active": 4, "ready": 3, "succeeded": 2, "completedIndexes": "0-1",
                       "failedIndexes": "5", "startTime": "2026-12-01T00:00:00Z"}),
            ),
            None,
        );
        assert_eq!(observed.state, JobState::Running);
        let s = observed.summary;
        assert_eq!(
            (s.succeeded, s.failed, s.running, s.starting, s.runnable),
            (2, 1, 3, 1, 3)
        );
        assert_eq!(observed.waiting_for, None);
    }

    #[test]
    fn a_suspended_job_waits_for_kueue_and_ended_jobs_count_every_index() {
        let waiting = observe(
            "j",
            &job(
                json!({"completions": 3, "suspend": true, "template": {}}),
                json!({}),
            ),
            Some("lab"),
        );
        assert_eq!(waiting.state, JobState::Runnable);
        assert_eq!(waiting.summary.runnable, 3);
        assert_eq!(
            waiting.waiting_for.as_deref(),
            Some("admission by Kueue (LocalQueue lab)")
        );
        let failed = observe(
            "j",
            &job(
                json!({"completions": 3, "template": {}}),
                json!({"succeeded": 1, "completedIndexes": "2", "failedIndexes": "0",
                       "conditions": [{"type": "FailureTarget", "status": "True", "reason": "FailedIndexes"}]}),
            ),
            None,
        );
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!((failed.summary.succeeded, failed.summary.failed), (1, 2));
        let complete = observe(
            "j",
            &job(
                json!({"completions": 3, "template": {}}),
                json!({"succeeded": 3, "conditions": [{"type": "Complete", "status": "True"}]}),
            ),
            None,
        );
        assert_eq!(complete.state, JobState::Succeeded);
        assert_eq!(complete.summary.succeeded, 3);
    }

    fn pod(name: &str, index: u32, created: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created,
                         "annotations": {INDEX_ANNOTATION: index.to_string()}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn children_have_one_attempt_per_pod_and_the_state_of_their_index() {
        let job = job(
            json!({"completions": 3, "template": {}}),
            json!({"completedIndexes": "0", "failedIndexes": "1"}),
        );
        let terminated = |code: i32, reason: &str| {
            json!({"phase": if code == 0 {"Succeeded"} else {"Failed"},
                   "containerStatuses": [{"name": CONTAINER, "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": code, "reason": reason,
                       "startedAt": "2026-12-01T00:00:00Z", "finishedAt": "2026-12-01T00:10:00Z"}}}]})
        };
        let mut disrupted = terminated(137, "Error");
        disrupted["conditions"] = json!([{"type": "DisruptionTarget", "status": "True",
            "reason": "PreemptionByScheduler", "message": "node reclaimed"}]);
        let pods = vec![
            pod(
                "j-0-b",
                0,
                "2026-12-01T01:00:00Z",
                terminated(0, "Completed"),
            ),
            pod("j-0-a", 0, "2026-12-01T00:00:00Z", disrupted),
            pod("j-1-a", 1, "2026-12-01T00:00:00Z", terminated(3, "Error")),
        ];
        let children = children(Some(&job), 3, &pods);
        assert_eq!(children[0].state, Some(JobState::Succeeded));
        assert_eq!(children[0].attempts.len(), 2);
        assert_eq!(children[0].id.as_deref(), Some("j-0-b"));
        assert_eq!(
            children[0].attempts[0].reason.as_deref(),
            Some("DisruptionTarget: PreemptionByScheduler: node reclaimed")
        );
        assert_eq!(children[0].attempts[1].millis(), 600_000);
        assert_eq!(children[1].state, Some(JobState::Failed));
        assert_eq!(children[1].exit_code, Some(3));
        assert_eq!(children[2].state, None, "never seen");
        let running = pod(
            "j-2-a",
            2,
            "2026-12-01T00:00:00Z",
            json!({"phase": "Running"}),
        );
        let all = [pods.clone(), vec![running]].concat();
        assert_eq!(kept_pods(&all, false).len(), 4);
        assert_eq!(
            kept_pods(&all, true).len(),
            3,
            "a terminated Job's running pod is on its way out"
        );
        let gone = super::children(None, 2, &[]);
        assert!(gone.iter().all(|c| c.state == Some(JobState::Failed)));
    }
}
