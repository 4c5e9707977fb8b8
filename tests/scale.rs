//! The status stays small at any series size: 1,000,000 runs, one input each (the worst case:
//! 100 array jobs of 10,000), fit in well under 64 KiB of status.

mod common;

use common::{SERIES, series};
use k8s_openapi::jiff::Timestamp;
use simseries::model::status::{JobState, SimulationSeriesStatus};
use simseries::model::validate::validate;
use simseries::pass::act::plan_outcome;
use simseries::pass::decide::{Observation, Outcome, decide};
use simseries::planning::manifest::Completeness;
use simseries::planning::plan::plan;

#[test]
fn a_million_runs_keep_the_status_under_64_kib() {
    let conditions: String = (0..1000)
        .map(|i| format!("    - {{key: C{i:04}, rate: 0.5}}\n"))
        .collect();
    let seeds = (0..1000)
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let yaml = SERIES
        .replace("seeds: [0, 1, 2, 3]", &format!("seeds: [{seeds}]"))
        .replace(
            "    - {key: A, group: G, rate: 1.0}\n    - {key: B, group: G, rate: 0.5}\n    - {key: C, group: H, rate: 2.0}\n",
            &conditions,
        )
        .replace("    groups: {G: '', H: ''}\n", "")
        .replace("seedsPerJob: 2", "seedsPerJob: 1");
    let resource = series(&yaml);
    let spec = &resource.spec;
    let valid = validate(spec).unwrap();
    let table = Completeness::new(&valid);
    let planned = plan(&valid, &table, "2024-06-01".parse().unwrap());
    assert_eq!(planned.totals().inputs, 1_000_000);
    let outcome = plan_outcome(spec, &planned, 1);
    let now: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
    let observe = |event| Observation {
        now,
        generation: 1,
        rerun: None,
        inputs: None,
        outcome: event,
    };
    let started = decide(
        spec,
        &SimulationSeriesStatus::default(),
        &observe(Outcome::Resumed),
    );
    let planned = decide(
        spec,
        &started.status,
        &observe(Outcome::Planned(Ok(outcome))),
    );
    let jobs = &planned.status.pass.as_ref().unwrap().groups[0].jobs;
    assert_eq!(jobs.len(), 100);
    assert!(jobs.iter().all(|j| j.array_size == 10_000));
    // Fill every job as a poll would, then measure what the API server would store.
    let mut status = planned.status;
    for (i, job) in status.pass.as_mut().unwrap().groups[0]
        .jobs
        .iter_mut()
        .enumerate()
    {
        job.id = Some(format!("4f1c2d3e-5a6b-7c8d-9e0f-{i:012}"));
        job.state = Some(JobState::Running);
        job.summary = Some(simseries::model::status::StatusSummary {
            running: 5000,
            succeeded: 5000,
            ..Default::default()
        });
    }
    let size = serde_json::to_vec(&status).unwrap().len();
    eprintln!("status of a 1,000,000-run pass: {size} bytes");
    assert!(size < 64 * 1024, "status of {size} bytes");
}
