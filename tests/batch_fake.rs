//! Long-running AWS Batch behaviour that moto cannot show (its jobs end inside SubmitJob),
//! against the scripted fake of tests/common/fake_batch.rs: several polls, stragglers
//! terminated, a crash between SubmitJob and the status write, throttling, split arrays, and
//! logs of several attempts. The decision function, the actor and the executor are the real
//! ones; only the clock is driven by the test (no sleeping).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::fake_batch::FakeBatch;
use common::fixtures::Fixture;
use common::temp_dir;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use simseries::executor::batch::{BatchExecutor, BatchSettings};
use simseries::model::spec::{SimulationSeries, SimulationSeriesSpec};
use simseries::model::status::{Phase, SimulationSeriesStatus};
use simseries::pass::act::Actor;
use simseries::pass::decide::{Observation, Outcome, Step, decide};
use simseries::pass::drive::{Drive, Driver, Next, Stopped, drive};
use simseries::pass::transitions::Transition;
use simseries::planning::prepare::{Locations, Stores};
use simseries::storage::S3Options;

struct Harness {
    spec: Arc<SimulationSeriesSpec>,
    dir: common::TestDir,
    fake: Arc<FakeBatch>,
    actor: Actor,
    status: SimulationSeriesStatus,
    now: Timestamp,
    actions: Vec<Step>,
}

const TEMPLATE: &str =
    "<?xml version=\"1.0\"?>\n<run key=\"{{ key }}\" seed=\"{{ seed }}\" rate=\"{{ rate }}\" />\n";

impl Harness {
    /// The base series on AWS (the fake), three polls a minute apart, completeness from a
    /// listing, no init files (none exist here), and `edit`.
    async fn new(name: &str, edit: impl FnOnce(&mut SimulationSeries)) -> Harness {
        let dir = temp_dir(name);
        std::fs::write(dir.join("template.xml"), TEMPLATE).unwrap();
        let spec = Fixture::base()
            .on_aws("tester", "q")
            .image("toy", "toy:1")
            .listing()
            .polls(3, 60)
            .without_inits()
            .edit(edit)
            .spec();
        let spec = Arc::new(spec);
        let fake = Arc::new(FakeBatch::default());
        let actor = Self::actor_for(&spec, &dir, &fake).await;
        Harness {
            spec,
            dir,
            fake,
            actor,
            status: SimulationSeriesStatus::default(),
            now: "2024-06-01T00:00:00Z".parse().unwrap(),
            actions: Vec::new(),
        }
    }

    /// A fresh actor and executor (a restarted driver) over the same fake AWS.
    async fn actor_for(
        spec: &Arc<SimulationSeriesSpec>,
        dir: &std::path::Path,
        fake: &Arc<FakeBatch>,
    ) -> Actor {
        let locations = Locations::resolve(spec, Some(dir)).unwrap();
        let stores = Stores::open(&locations, &S3Options::default()).await;
        let executor = BatchExecutor::new(fake.clone(), BatchSettings::from_spec(spec).unwrap());
        Actor::new(
            spec.clone(),
            locations,
            stores,
            Arc::new(executor),
            "test:fake".into(),
        )
        .with_date(Some("2024-06-01".parse().unwrap()))
    }

    fn decide(&mut self, event: Outcome) -> Step {
        let decision = decide(
            &self.spec,
            &self.status,
            &Observation {
                now: self.now,
                generation: 1,
                rerun: None,
                inputs: None,
                outcome: event,
            },
        );
        self.status = decision.status;
        self.actions.push(decision.step.clone());
        decision.step
    }

    /// Runs until the pass is done; `on_wait(fake, n)` scripts AWS at the n-th wait.
    async fn run(&mut self, on_wait: impl FnMut(&FakeBatch, usize)) {
        let spec = self.spec.clone();
        let mut status = std::mem::take(&mut self.status);
        let mut driver = TestDriver {
            harness: self,
            on_wait,
            waits: 0,
        };
        let drove = drive(&spec, &mut status, &mut driver).await;
        self.status = status;
        assert_eq!(
            drove,
            Ok(Drive {
                stopped: Stopped::Done,
                acted: true
            }),
            "the pass did not end: {:?}",
            self.actions.last()
        );
    }

    fn pass(&self) -> &simseries::model::status::Pass {
        self.status.pass.as_ref().unwrap()
    }

    fn count(&self, pred: impl Fn(&Step) -> bool) -> usize {
        self.actions.iter().filter(|a| pred(a)).count()
    }
}

/// The model the fake's jobs stand for: when its children succeed, every run of the series
/// has written its outputs (a job that succeeds without them leaves the pass incomplete).
struct Model {
    outputs: PathBuf,
    files: Vec<String>,
}

impl Model {
    fn of(h: &Harness) -> Model {
        let series = &h.spec.series;
        let files = series
            .conditions
            .iter()
            .flat_map(|c| series.seeds.iter().map(move |seed| (c, seed)))
            .flat_map(|(c, seed)| {
                series
                    .extensions
                    .iter()
                    .map(move |e| format!("{}_{}_{seed:04}.{e}", series.name, c.key))
            })
            .collect();
        Model {
            outputs: h.dir.join("working/S/2024-06-01/outputs"),
            files,
        }
    }

    /// Every child succeeds, having written its outputs.
    fn succeed(&self, fake: &FakeBatch) {
        std::fs::create_dir_all(&self.outputs).unwrap();
        for file in &self.files {
            std::fs::write(self.outputs.join(file), "output").unwrap();
        }
        fake.set_all("SUCCEEDED");
    }
}

/// The pass's drive loop with the test's clock: a wait moves the clock to its end at once.
struct TestDriver<'a, F> {
    harness: &'a mut Harness,
    on_wait: F,
    waits: usize,
}

impl<F: FnMut(&FakeBatch, usize)> Driver for TestDriver<'_, F> {
    type Error = ();

    fn observe(&mut self, outcome: Outcome) -> Observation {
        Observation {
            now: self.harness.now,
            generation: 1,
            rerun: None,
            inputs: None,
            outcome,
        }
    }

    async fn persist(
        &mut self,
        _status: &SimulationSeriesStatus,
        _transitions: &[Transition],
    ) -> Result<(), ()> {
        Ok(())
    }

    async fn perform(&mut self, status: &SimulationSeriesStatus, step: Step) -> Next {
        let harness = &mut *self.harness;
        harness.actions.push(step.clone());
        if harness.actions.len() > 1000 {
            return Next::Stop(Stopped::Yielded);
        }
        match step {
            Step::Wait { until } => {
                assert!(until > harness.now, "waits move forward");
                harness.now = until;
                self.waits += 1;
                (self.on_wait)(&harness.fake, self.waits);
                Next::Continue(Outcome::Resumed)
            }
            step => Next::Continue(harness.actor.act(status, &step).await),
        }
    }
}

#[tokio::test]
async fn several_polls_then_the_stragglers_are_terminated() {
    let mut h = Harness::new("fake-terminate", |_| {}).await;
    let start = h.now;
    let mut seen = Vec::new();
    h.run(|fake, wait| {
        seen.push((fake.calls("DescribeJobs"), fake.calls("ListJobs")));
        // Group H finishes after the first wait; group G's children keep running.
        if wait == 1 {
            fake.set_file_set("S_H", "SUCCEEDED");
            fake.set_file_set("S_G", "RUNNING");
        }
    })
    .await;
    // While polling: one DescribeJobs per poll (two parents), no ListJobs at all (nothing
    // was restarted, so nothing needs adopting); children are described only at the end.
    assert_eq!(seen, [(0, 0), (1, 0), (2, 0)]);
    assert_eq!(h.count(|a| *a == Step::Poll), 3, "{:?}", h.actions);
    let terminate: Vec<&Step> = h
        .actions
        .iter()
        .filter(|a| matches!(a, Step::Terminate { .. }))
        .collect();
    let g_id = h.pass().groups[0].jobs[0].id.clone().unwrap();
    assert_eq!(
        terminate,
        [&Step::Terminate {
            jobs: vec![g_id.clone()]
        }],
        "only the straggler"
    );
    assert_eq!(h.fake.calls("TerminateJob"), 1);
    // Three polls 60 s apart and no time spent between termination and the end.
    assert_eq!(h.now.duration_since(start), SignedDuration::from_secs(180));
    assert_eq!(h.pass().phase, Phase::Incomplete);
    assert!(h.pass().groups[0].jobs[0].terminated);
    assert!(!h.pass().groups[1].jobs[0].terminated);
    let record: Value = serde_json::from_slice(
        &std::fs::read(h.dir.join("working/S/2024-06-01/simseries/pass-1.json")).unwrap(),
    )
    .unwrap();
    let child = &record["groups"][0]["jobs"][0]["children"][0];
    assert_eq!(child["outcome"]["state"], "FAILED");
    assert!(
        child["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("terminated by simseries")
    );
}

#[tokio::test]
async fn a_crash_between_submit_and_the_status_write_does_not_submit_twice() {
    let mut h = Harness::new("fake-crash", |_| {}).await;
    let mut event = Outcome::Resumed;
    loop {
        match h.decide(event) {
            Step::Submit {
                group: 0, job: 0, ..
            } => break,
            Step::Wait { .. } | Step::Done => panic!("no submission"),
            action => event = h.actor.act(&h.status, &action).await,
        }
    }
    // The job reaches AWS, then the driver dies before it can record the ID.
    let _lost = h
        .actor
        .act(
            &h.status,
            &Step::Submit {
                group: 0,
                job: 0,
                may_exist: false,
            },
        )
        .await;
    assert_eq!(h.fake.calls("SubmitJob"), 1);
    assert!(
        h.pass().groups[0].jobs[0].id.is_none(),
        "the status only has the intent"
    );

    // A new driver resumes from the status.
    h.actor = Harness::actor_for(&h.spec, &h.dir, &h.fake).await;
    let model = Model::of(&h);
    h.run(|fake, _| model.succeed(fake)).await;
    assert_eq!(
        h.fake.calls("SubmitJob"),
        2,
        "one per group: the first was adopted, not resubmitted"
    );
    assert_eq!(h.fake.state.lock().unwrap().jobs.len(), 2);
    assert_eq!(
        h.fake.calls("ListJobs"),
        1,
        "only the job that may have been sent is looked for"
    );
    assert_eq!(h.pass().groups[0].jobs[0].id.as_deref(), Some("job-1"));
    assert_eq!(h.pass().phase, Phase::Complete);
}

#[tokio::test]
async fn throttling_backs_off_is_reported_and_loses_nothing() {
    let mut h = Harness::new("fake-throttle", |_| {}).await;
    h.fake.state.lock().unwrap().throttle_submits = 1;
    let mut seen_error = None;
    let mut waits = Vec::new();
    let mut event = Outcome::Resumed;
    for _ in 0..200 {
        match h.decide(event) {
            Step::Done => break,
            Step::Wait { until } => {
                waits.push(until.duration_since(h.now));
                if let Some(error) = &h.pass().last_error {
                    seen_error.get_or_insert(error.clone());
                }
                if h.pass().phase == Phase::Running
                    && h.pass().attempts == 0
                    && h.fake.calls("DescribeJobs") == 0
                {
                    // Throttle the first three polls.
                    h.fake.state.lock().unwrap().throttle_describes = 3;
                }
                if h.pass().attempts == 0 && h.fake.calls("DescribeJobs") == 3 {
                    Model::of(&h).succeed(&h.fake);
                }
                h.now = until;
                event = Outcome::Resumed;
            }
            action => event = h.actor.act(&h.status, &action).await,
        }
    }
    assert_eq!(h.pass().phase, Phase::Complete, "{:?}", h.actions.last());
    assert!(seen_error.unwrap().to_string().starts_with("Throttled: "));
    let secs: Vec<i64> = waits.iter().map(|w| w.as_secs()).collect();
    // A throttled submit waits 5 s; three throttled polls wait 5, 10, 20 s; polls are 60 s apart.
    assert_eq!(secs, [5, 60, 5, 10, 20], "{secs:?}");
    assert_eq!(
        h.fake.state.lock().unwrap().jobs.len(),
        2,
        "no job lost or doubled"
    );
    assert_eq!(h.pass().attempts, 1, "throttled polls are not attempts");
    assert_eq!(h.pass().consecutive_errors, 0);
}

#[tokio::test]
async fn more_than_ten_thousand_inputs_split_into_array_jobs() {
    // Two conditions x 5,001 seeds, one input per run: 10,002 inputs in group G.
    let mut h = Harness::new("fake-split", |s| {
        s.spec.series.seeds = (0..5001).collect();
        s.spec.series.groups.as_mut().unwrap()["H"] = None;
    })
    .await;
    h.run(|fake, _| fake.set_all("SUCCEEDED")).await;

    let jobs = &h.pass().groups[0].jobs;
    let sizes: Vec<(String, u32)> = jobs
        .iter()
        .map(|j| (j.file_set_name.clone(), j.array_size))
        .collect();
    assert_eq!(
        sizes,
        [("S_G".to_string(), 10_000), ("S_G-part1".to_string(), 2)]
    );
    let state = h.fake.state.lock().unwrap();
    let part = &state.jobs[1].request;
    assert_eq!(part.job_name, "tester_S_G-part1");
    assert_eq!(
        part.environment,
        [("FILE_SET_NAME".to_string(), "S_G-part1".to_string())]
    );
    let inputs = h.dir.join("working/S/2024-06-01/inputs");
    assert!(inputs.join("S_G_9999.xml").is_file());
    assert!(!inputs.join("S_G_10000.xml").exists());
    assert!(inputs.join("S_G-part1_1.xml").is_file());
    // The last run: condition B (index 1), seed 5000.
    assert_eq!(
        std::fs::read_to_string(inputs.join("S_G-part1_1.xml")).unwrap(),
        "<?xml version=\"1.0\"?>\n<run key=\"B\" seed=\"5000\" rate=\"0.5\" />"
    );
    // The status stays small: two job records, no per-child detail.
    let size = serde_json::to_vec(&h.status).unwrap().len();
    assert!(size < 8 * 1024, "status of {size} bytes");
}

#[tokio::test]
async fn logs_of_every_attempt_are_saved() {
    let mut h = Harness::new("fake-logs", |s| {
        s.spec.parameters.log_filter = "-DEBUG".into()
    })
    .await;
    let model = Model::of(&h);
    h.run(|fake, wait| {
        if wait == 1 {
            let mut state = fake.state.lock().unwrap();
            // Child 0 of the first job failed once and was retried by AWS on a new stream.
            let child = &mut state.jobs[0].children[0];
            let first = child.attempts.last_mut().unwrap();
            first.started_at = Some(0);
            first.stopped_at = Some(1);
            child.retry("def/default/job-1-0-attempt2");
            drop(state);
            fake.log("def/default/job-1-0-attempt1", 1, "starting");
            fake.log("def/default/job-1-0-attempt1", 2, "ERROR out of memory");
            fake.log("def/default/job-1-0-attempt2", 3, "DEBUG details");
            fake.log("def/default/job-1-0-attempt2", 4, "done");
            model.succeed(fake);
        }
    })
    .await;
    let log =
        std::fs::read_to_string(h.dir.join("working/S/2024-06-01/logs/pass-1/S_G_0.log")).unwrap();
    assert_eq!(
        log,
        "--- attempt 1 (def/default/job-1-0-attempt1) ---\nstarting\nERROR out of memory\n--- attempt 2 (def/default/job-1-0-attempt2) ---\ndone\n"
    );
    assert_eq!(h.pass().groups[0].logs.as_ref().unwrap().count, 8);
    assert_eq!(h.pass().phase, Phase::Complete);
}

#[tokio::test]
async fn a_fair_share_queue_needs_a_share_identifier_and_says_so() {
    let mut h = Harness::new("fake-fair-share", |_| {}).await;
    h.fake.state.lock().unwrap().fair_share = true;
    h.run(|_, _| {}).await;
    let pass = h.pass();
    assert_eq!(
        pass.phase,
        Phase::Incomplete,
        "its jobs could not be submitted"
    );
    let error = pass.last_error.as_ref().unwrap();
    assert_eq!(error.reason, "ShareIdentifierRequired");
    assert!(
        error.message.contains("spec.context.shareIdentifier"),
        "{}",
        error.message
    );
    assert!(h.fake.state.lock().unwrap().jobs.is_empty());

    // With a share identifier and a priority, the jobs go in with both.
    let mut h = Harness::new("fake-fair-share-ok", |s| {
        s.spec.context.share_identifier = Some("lab_a".into());
        s.spec.parameters.scheduling_priority = Some(50);
    })
    .await;
    h.fake.state.lock().unwrap().fair_share = true;
    let model = Model::of(&h);
    h.run(|fake, _| model.succeed(fake)).await;
    assert_eq!(h.pass().phase, Phase::Complete);
    let state = h.fake.state.lock().unwrap();
    assert_eq!(state.jobs.len(), 2);
    for job in &state.jobs {
        assert_eq!(job.request.share_identifier.as_deref(), Some("lab_a"));
        assert_eq!(job.request.scheduling_priority, Some(50));
    }
}

#[tokio::test]
async fn a_child_stopped_by_its_timeout_is_reported_as_such() {
    let mut h = Harness::new("fake-timeout", |s| {
        s.spec.parameters.timeout_seconds = Some(600)
    })
    .await;
    let model = Model::of(&h);
    h.run(|fake, wait| {
        if wait == 1 {
            model.succeed(fake);
            let mut state = fake.state.lock().unwrap();
            let child = &mut state.jobs[0].children[1];
            child.status = "FAILED".into();
            child.exit_code = None;
            child.reason = Some("Job attempt duration exceeded timeout".into());
        }
    })
    .await;
    assert_eq!(h.pass().phase, Phase::Incomplete);
    let record: Value = serde_json::from_slice(
        &std::fs::read(h.dir.join("working/S/2024-06-01/simseries/pass-1.json")).unwrap(),
    )
    .unwrap();
    let child = &record["groups"][0]["jobs"][0]["children"][1];
    assert_eq!(child["outcome"]["state"], "FAILED");
    assert_eq!(
        child["outcome"]["reason"],
        "stopped by its timeout (parameters.timeoutSeconds: 600): Job attempt duration exceeded timeout"
    );
}

/// AWS calls of a pass of 4 array jobs of 10,000 children, by API (printed for the README and
/// the figures), with the targets: ListJobs only to adopt a job submitted before a crash (none
/// in an unbroken pass), DescribeJobs once per poll for the parents and once per pass for the
/// children, 100 IDs a call.
#[tokio::test]
async fn a_pass_of_forty_thousand_children_makes_few_calls() {
    let mut h = Harness::new("fake-calls", |s| {
        // Conditions A, B, D, E of group G x 10,000 seeds: 40,000 inputs, 4 array jobs.
        s.spec.series.seeds = (0..10_000).collect();
        for key in ["D", "E"] {
            let mut condition = s.spec.series.conditions[0].clone();
            condition.key = key.into();
            s.spec.series.conditions.push(condition);
        }
        s.spec.series.groups.as_mut().unwrap()["H"] = None;
    })
    .await;
    h.run(|fake, wait| {
        if wait == 2 {
            fake.set_all("SUCCEEDED");
        }
    })
    .await;
    let jobs = &h.pass().groups[0].jobs;
    assert_eq!(jobs.len(), 4, "{:?}", h.pass().last_error);
    assert!(jobs.iter().all(|j| j.array_size == 10_000));
    let polls = h.pass().attempts as usize;
    let calls = h.fake.state.lock().unwrap().calls.clone();
    eprintln!("calls for 4 x 10,000 children, {polls} polls: {calls:?}");
    let count = |api: &str| calls.get(api).copied().unwrap_or(0);
    assert_eq!(count("ListJobs"), 0, "no restart, nothing to adopt");
    assert_eq!(
        count("DescribeJobs"),
        polls + 40_000 / 100,
        "one per poll (4 parents) and 400 for the children, once; none before cleaning, since \
         the last poll saw every job end"
    );
}

/// Minutes on the fake's clock.
const MINUTE_MS: i64 = 60_000;

#[tokio::test]
async fn a_child_reclaimed_by_spot_is_retried_and_both_attempts_are_kept_and_measured() {
    let mut h = Harness::new("fake-spot", |s| {
        s.spec.parameters.spot_retries = 1;
        s.spec.parameters.vcpu_hour_price = Some(0.04);
        s.spec.context.vcpus = 2;
        s.spec.context.memory = 3072;
    })
    .await;
    let start = 1_717_200_000_000; // 2024-06-01T00:00:00Z
    h.fake.state.lock().unwrap().now_ms = start;
    let model = Model::of(&h);
    h.run(|fake, wait| match wait {
        1 => {
            fake.set_all("RUNNING");
            fake.log("def/default/job-1-0-attempt1", 1, "started on spot");
            fake.advance(30 * MINUTE_MS);
            // AWS takes the host back: attempt 1 ends, attempt 2 waits for a new host.
            fake.reclaim("S_G", 0);
            fake.log("def/default/job-1-0-attempt2", 2, "started again");
            fake.advance(10 * MINUTE_MS);
            fake.set_all("RUNNING");
        }
        2 => {
            fake.advance(60 * MINUTE_MS);
            model.succeed(fake);
        }
        _ => {}
    })
    .await;
    let pass = h.pass();
    assert_eq!(pass.phase, Phase::Complete, "{:?}", pass.last_error);

    // Every child ran 100 minutes, except the reclaimed one: 30 + 60.
    let children: u32 = pass
        .groups
        .iter()
        .flat_map(|g| &g.jobs)
        .map(|j| j.array_size)
        .sum();
    let minutes = f64::from(children - 1) * 100.0 + 90.0;
    let usage = pass.usage.as_ref().expect("usage of the pass");
    assert_eq!(usage.children, children);
    assert_eq!(usage.attempts, children + 1, "one child took two attempts");
    assert_eq!(usage.retried_children, 1);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
    assert!(close(usage.vcpu_hours, minutes / 60.0 * 2.0), "{usage:?}");
    assert!(close(usage.gib_hours, minutes / 60.0 * 3.0), "{usage:?}");
    assert!(
        close(usage.estimated_cost.unwrap(), usage.vcpu_hours * 0.04),
        "{usage:?}"
    );

    // One run, two attempts, in the pass record.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(h.dir.join("working/S/2024-06-01/simseries/pass-1.json")).unwrap(),
    )
    .unwrap();
    let child = &record["groups"][0]["jobs"][0]["children"][0];
    assert_eq!(child["runs"].as_array().unwrap().len(), 1);
    let outcome = &child["outcome"];
    assert_eq!(outcome["state"], "SUCCEEDED");
    let attempts = outcome["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Host EC2"),
        "{attempts:?}"
    );
    assert_eq!(attempts[0]["startedAt"], "2024-06-01T00:00:00Z");
    assert_eq!(attempts[0]["stoppedAt"], "2024-06-01T00:30:00Z");
    assert_eq!(attempts[1]["startedAt"], "2024-06-01T00:40:00Z");
    assert_eq!(attempts[1]["exitCode"], 0);
    assert_eq!(outcome["usage"]["seconds"], 90.0 * 60.0);
    assert_eq!(outcome["usage"]["vcpuHours"], 3.0);
    let other = &record["groups"][0]["jobs"][0]["children"][1]["outcome"];
    assert_eq!(other["attempts"].as_array().unwrap().len(), 1);

    // And the logs of both attempts, in order.
    let log =
        std::fs::read_to_string(h.dir.join("working/S/2024-06-01/logs/pass-1/S_G_0.log")).unwrap();
    assert_eq!(
        log,
        "--- attempt 1 (def/default/job-1-0-attempt1) ---\nstarted on spot\n--- attempt 2 (def/default/job-1-0-attempt2) ---\nstarted again\n"
    );
}

#[tokio::test]
async fn without_spot_retries_a_reclaimed_child_fails() {
    let mut h = Harness::new("fake-spot-off", |_| {}).await;
    h.run(|fake, wait| {
        if wait == 1 {
            fake.set_all("RUNNING");
            fake.reclaim("S_G", 0);
            // The other children succeed; the reclaimed one stays failed.
            fake.set_running("SUCCEEDED");
        }
    })
    .await;
    let pass = h.pass();
    assert_eq!(pass.phase, Phase::Incomplete);
    let usage = pass.usage.as_ref().unwrap();
    assert_eq!(usage.retried_children, 0);
    assert_eq!(usage.estimated_cost, None, "no price given");
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(h.dir.join("working/S/2024-06-01/simseries/pass-1.json")).unwrap(),
    )
    .unwrap();
    let outcome = &record["groups"][0]["jobs"][0]["children"][0]["outcome"];
    assert_eq!(outcome["state"], "FAILED");
    assert!(
        outcome["reason"].as_str().unwrap().starts_with("Host EC2"),
        "{outcome}"
    );
}

#[tokio::test]
async fn definitions_stay_while_unterminated_jobs_run_and_go_once_they_end() {
    let mut h = Harness::new("fake-clean-later", |s| {
        s.spec.parameters.terminate_jobs = false;
    })
    .await;
    let model = Model::of(&h);
    let mut deregistered_while_running = None;
    h.run(|fake, wait| {
        match wait {
            1 => fake.set_all("RUNNING"),
            // Past the last poll (3 of them), the jobs still run: cleaning must wait.
            4 => {
                deregistered_while_running = Some(fake.calls("DeregisterJobDefinition"));
                model.succeed(fake);
            }
            _ => {}
        }
    })
    .await;
    assert_eq!(
        deregistered_while_running,
        Some(0),
        "no definition is deregistered under a running job"
    );
    let pass = h.pass();
    // The pass stopped watching after its last poll, so its jobs count as unfinished; the
    // recount still sees every output, and a rerun would plan nothing.
    assert_eq!(pass.phase, Phase::Incomplete, "{:?}", pass.last_error);
    let runs = h.status.runs.as_ref().unwrap();
    assert_eq!(runs.complete, runs.total);
    assert_eq!(h.fake.calls("TerminateJob"), 0);
    assert_eq!(h.fake.calls("DeregisterJobDefinition"), 2, "one per group");
    assert!(
        pass.last_error
            .as_ref()
            .is_some_and(|e| e.reason == "JobsStillRunning"),
        "{:?}",
        pass.last_error
    );
}
