//! The passes of a series, one line each, from their pass records: what ran, what failed, how
//! many attempts, how many children were retried, and when the first attempt started and the
//! last one stopped.

use serde::Serialize;

use crate::model::record::PassRecord;
use crate::model::status::JobState;

/// One pass, as its record tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassLine {
    pub pass: u32,
    pub date: String,
    pub inputs: u32,
    pub succeeded: u32,
    pub failed: u32,
    /// Attempts over every child (more than the children when AWS Batch retried some); `None`
    /// when the engine recorded none (local processes).
    pub attempts: Option<u32>,
    /// Children tried more than once, when attempts were recorded.
    pub retried: Option<u32>,
    pub first_start: Option<String>,
    pub last_stop: Option<String>,
    /// From the first start to the last stop.
    pub duration: Option<String>,
}

impl PassLine {
    pub fn of(record: &PassRecord) -> PassLine {
        let mut line = PassLine {
            pass: record.pass,
            date: record.date.clone(),
            inputs: 0,
            succeeded: 0,
            failed: 0,
            attempts: None,
            retried: None,
            first_start: None,
            last_stop: None,
            duration: None,
        };
        let (mut first, mut last) = (None, None);
        for child in record.children() {
            line.inputs += 1;
            let Some(outcome) = &child.outcome else {
                continue;
            };
            match outcome.state {
                Some(JobState::Succeeded) => line.succeeded += 1,
                Some(JobState::Failed) => line.failed += 1,
                _ => {}
            }
            if !outcome.attempts.is_empty() {
                *line.attempts.get_or_insert(0) += outcome.attempts.len() as u32;
                *line.retried.get_or_insert(0) += u32::from(outcome.attempts.len() > 1);
            }
            for attempt in &outcome.attempts {
                if let Some(start) = &attempt.started_at {
                    first = Some(
                        first.map_or(start.0, |f: k8s_openapi::jiff::Timestamp| f.min(start.0)),
                    );
                }
                if let Some(stop) = &attempt.stopped_at {
                    last =
                        Some(last.map_or(stop.0, |l: k8s_openapi::jiff::Timestamp| l.max(stop.0)));
                }
            }
        }
        line.first_start = first.map(|t| t.to_string());
        line.last_stop = last.map(|t| t.to_string());
        if let (Some(first), Some(last)) = (first, last) {
            line.duration = Some(describe_duration(last.as_second() - first.as_second()));
        }
        line
    }
}

/// `42 s`, `3 min 5 s`, `2 h 10 min`.
pub fn describe_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Whether `key` is a pass record (`{name}/{date}/simseries/pass-{n}.json`).
pub fn is_pass_record(key: &str) -> bool {
    let Some((folder, file)) = key.rsplit_once('/') else {
        return false;
    };
    folder.ends_with("/simseries")
        && file
            .strip_prefix("pass-")
            .and_then(|f| f.strip_suffix(".json"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::ChildOutcome;
    use crate::model::record::ChildRecord;
    use crate::model::usage::AttemptRecord;

    #[test]
    fn a_pass_line_counts_its_children_attempts_and_span() {
        let child = |index: u32, state: JobState, attempts: &[(i64, i64)]| {
            let mut outcome = ChildOutcome::bare(index, Some(state), None);
            outcome.attempts = attempts
                .iter()
                .map(|(start, stop)| {
                    AttemptRecord::from_millis(Some(*start), Some(*stop), None, None)
                })
                .collect();
            ChildRecord {
                index,
                input: format!("S/2024-06-01/inputs/S_{index}.xml"),
                runs: vec![],
                outcome: Some(outcome),
                log: None,
            }
        };
        let mut record = PassRecord::of_children(
            2,
            vec![
                child(0, JobState::Succeeded, &[(1_000_000, 1_060_000)]),
                child(
                    1,
                    JobState::Failed,
                    &[(1_010_000, 1_020_000), (1_030_000, 1_250_000)],
                ),
            ],
        );
        let line = PassLine::of(&record);
        assert_eq!(
            (
                line.pass,
                line.inputs,
                line.succeeded,
                line.failed,
                line.attempts,
                line.retried
            ),
            (2, 2, 1, 1, Some(3), Some(1))
        );
        assert_eq!(line.duration.as_deref(), Some("4 min 10 s"));
        // No attempt recorded (local processes): not zero attempts, unknown.
        for child in &mut record.groups[0].jobs[0].children {
            child.outcome.as_mut().unwrap().attempts.clear();
        }
        let line = PassLine::of(&record);
        assert_eq!(
            (line.attempts, line.retried, line.duration),
            (None, None, None)
        );
    }

    #[test]
    fn only_pass_records_are_taken_for_records() {
        assert!(is_pass_record("S/2024-06-01/simseries/pass-12.json"));
        for key in [
            "S/2024-06-01/simseries/pass-1/jobs/S.json",
            "S/2024-06-01/simseries/pass-.json",
            "S/2024-06-01/outputs/pass-1.json",
            "S/2024-06-01/simseries/pass-1x.json",
        ] {
            assert!(!is_pass_record(key), "{key}");
        }
    }
}
