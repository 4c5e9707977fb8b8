//! The AWS Batch executor against a real moto server (Batch without Docker, CloudWatch Logs,
//! S3, IAM): definitions, submission, polling at the API's limits, failures, logs, cleaning,
//! adoption, and `simseries run` on an S3 working location.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::aws_run::check_batch_options;
use common::batch::Counting;
use common::fixtures::Fixture;
use common::moto::{self, Moto};
use common::privileges::{batch_request_bodies, calls_of_recording};
use common::{simseries, temp_dir};
use simseries::executor::batch::api::SubmitRequest;
use simseries::executor::batch::aws::AwsBatchApi;
use simseries::executor::batch::{BatchExecutor, BatchSettings};
use simseries::executor::{Executor, PassContext};
use simseries::model::layout::DatedFolder;
use simseries::model::location::Location;
use simseries::model::spec::{SimulationSeries, SimulationSeriesSpec};
use simseries::model::status::{GroupJobs, JobRecord, JobState, Pass, Phase};
use simseries::storage::LocalStorage;

/// The test series on `queue`; the user (prefix of definition and job names) is the queue's
/// name, so tests sharing a moto server do not see each other's definitions.
fn spec(queue: &str, edit: impl FnOnce(&mut SimulationSeries)) -> SimulationSeriesSpec {
    let user = queue.trim_end_matches("-queue");
    Fixture::base()
        .on_aws(user, queue)
        .image("ARCADE", "arcade:1.0")
        .edit(edit)
        .spec()
}

fn context(spec: SimulationSeriesSpec, root: &Path, pass: u32) -> PassContext {
    let folder = DatedFolder::new(&spec.series.name, "2024-06-01".parse().unwrap());
    PassContext {
        spec: Arc::new(spec),
        folder,
        pass,
        generation: 7,
        owner: "test:batch".into(),
        working: Arc::new(LocalStorage::standing_in_for(
            Location::parse("s3://bucket/work", None).unwrap(),
            root.to_path_buf(),
        )),
    }
}

fn group(key: &str, definition: Option<String>, jobs: Vec<JobRecord>) -> GroupJobs {
    GroupJobs {
        group: "G".into(),
        group_key: key.into(),
        job_definition: definition,
        definition_owned: true,
        jobs,
        logs: None,
    }
}

fn job(name: &str, file_set: &str, size: u32, id: Option<String>) -> JobRecord {
    JobRecord {
        name: name.into(),
        file_set_name: file_set.into(),
        array_size: size,
        runs: size,
        id,
        state: None,
        summary: None,
        terminated: false,
        waiting_for: None,
    }
}

fn pass(groups: Vec<GroupJobs>) -> Pass {
    Pass {
        number: 1,
        generation: 7,
        rerun: None,
        date: Some("2024-06-01".parse().unwrap()),
        phase: Phase::Running,
        started_at: None,
        finished_at: None,
        attempts: 0,
        next_poll_at: None,
        consecutive_errors: 0,
        last_error: None,
        record: None,
        inputs: None,
        failed_starts: 0,
        retry_at: None,
        outputs_missing: None,
        usage: None,
        groups,
    }
}

struct Setup {
    moto: &'static Moto,
    queue: String,
    api: Arc<Counting>,
    executor: BatchExecutor,
    spec: SimulationSeriesSpec,
}

async fn setup(name: &str, moto: &'static Moto) -> Setup {
    let bucket = format!("{name}-{}", std::process::id());
    let queue = format!("{name}-queue");
    moto.setup_batch(&bucket, &queue);
    let api = Counting::new(Arc::new(AwsBatchApi::from_config(&moto.sdk_config(), None)));
    let spec = spec(&queue, |_| {});
    let executor = BatchExecutor::new(api.api.clone(), BatchSettings::from_spec(&spec).unwrap());
    Setup {
        moto,
        queue,
        api,
        executor,
        spec,
    }
}

impl Setup {
    /// A working folder, the context of pass `pass`, and group S_G's job definition.
    async fn registered(&self, name: &str, pass: u32) -> (common::TestDir, PassContext, String) {
        let root = temp_dir(name);
        let ctx = context(self.spec.clone(), &root, pass);
        let definition = self
            .executor
            .register(&ctx, &group("S_G", None, vec![]))
            .await
            .unwrap();
        (root, ctx, definition.id)
    }
}

#[tokio::test]
async fn job_definitions_are_reused_when_identical_and_only_own_ones_deregistered() {
    let s = setup("definitions", moto::shared()).await;
    let root = temp_dir("definitions");
    let ctx = context(s.spec.clone(), &root, 1);
    let g = group("S_G", None, vec![]);

    let first = s.executor.register(&ctx, &g).await.unwrap();
    assert!(first.owned);
    assert!(
        first.id.ends_with("job-definition/definitions_S_G:1"),
        "{}",
        first.id
    );
    let again = s.executor.register(&ctx, &g).await.unwrap();
    assert_eq!(
        again.id, first.id,
        "identical content reuses the active revision"
    );
    assert_eq!(s.api.calls("RegisterJobDefinition"), 1);

    // The content the contract asks for.
    let described = s
        .moto
        .batch()
        .describe_job_definitions()
        .job_definitions(&first.id)
        .send()
        .await
        .unwrap();
    let properties = described.job_definitions()[0]
        .container_properties()
        .unwrap();
    assert_eq!(
        properties.image(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/definitions/arcade:1.0")
    );
    assert_eq!(
        properties.job_role_arn(),
        Some("arn:aws:iam::123456789012:role/BatchJobRole")
    );
    let mut env: Vec<(String, String)> = properties
        .environment()
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap().to_string(),
                kv.value().unwrap().to_string(),
            )
        })
        .collect();
    env.sort();
    assert_eq!(
        env,
        [
            (
                "BATCH_WORKING_URL".to_string(),
                "s3://bucket/work/S/2024-06-01/".to_string()
            ),
            ("FILE_SET_NAME".to_string(), "S_G".to_string()),
            ("SIMULATION_TYPE".to_string(), "AWS".to_string()),
        ]
    );

    // Other content (more memory) is a new revision.
    let bigger = context(spec(&s.queue, |s| s.spec.context.memory = 1024), &root, 1);
    let second = s.executor.register(&bigger, &g).await.unwrap();
    assert!(second.id.ends_with(":2"), "{}", second.id);

    // A definition someone else registered with the same content is used, but not owned.
    let foreign_ctx = context(s.spec.clone(), &root, 1);
    let foreign_group = group("S_H", None, vec![]);
    let content = s.executor.definition_content(&foreign_ctx, "S_H");
    let foreign = s
        .api
        .api
        .register_job_definition(&content, &Default::default())
        .await
        .unwrap();
    let used = s
        .executor
        .register(&foreign_ctx, &foreign_group)
        .await
        .unwrap();
    assert_eq!(used.id, foreign);
    assert!(!used.owned);

    // Cleaning deregisters only the series' own definitions.
    let mut own = group("S_G", Some(first.id.clone()), vec![]);
    own.definition_owned = true;
    let mut theirs = group("S_H", Some(foreign.clone()), vec![]);
    theirs.definition_owned = false;
    s.executor
        .clean(&ctx, &pass(vec![own, theirs]))
        .await
        .unwrap();
    let status = |arn: &str| {
        let arn = arn.to_string();
        async move {
            let out = s
                .moto
                .batch()
                .describe_job_definitions()
                .job_definitions(&arn)
                .send()
                .await
                .unwrap();
            out.job_definitions()[0].status().unwrap().to_string()
        }
    };
    assert_eq!(status(&first.id).await, "INACTIVE");
    assert_eq!(status(&foreign).await, "ACTIVE");
}

#[tokio::test]
async fn spot_retries_and_timeouts_are_part_of_the_definition_and_unset_changes_nothing() {
    let moto = moto::shared();
    let s = setup("spot", moto).await;
    let root = temp_dir("batch-spot");
    let g = group("S_G", None, vec![]);
    // Unset: today's definition, without retry strategy or timeout.
    let plain = s
        .executor
        .register(&context(s.spec.clone(), &root, 1), &g)
        .await
        .unwrap();
    let described = |arn: String| async move {
        moto.batch()
            .describe_job_definitions()
            .job_definitions(arn)
            .send()
            .await
            .unwrap()
            .job_definitions()[0]
            .clone()
    };
    let definition = described(plain.id.clone()).await;
    assert!(definition.retry_strategy().is_none());
    assert!(definition.timeout().is_none());
    assert_ne!(definition.propagate_tags(), Some(true));

    let spot = context(
        spec(&s.queue, |s| {
            s.spec.parameters.spot_retries = 2;
            s.spec.parameters.timeout_seconds = Some(600);
        }),
        &root,
        1,
    );
    let first = s.executor.register(&spot, &g).await.unwrap();
    assert_ne!(first.id, plain.id, "other content, a new revision");
    let definition = described(first.id.clone()).await;
    let strategy = definition.retry_strategy().unwrap();
    assert_eq!(strategy.attempts(), Some(3));
    // AWS takes the actions in any case; moto keeps them lower-cased.
    let rules: Vec<(Option<&str>, Option<&str>, Option<String>)> = strategy
        .evaluate_on_exit()
        .iter()
        .map(|e| {
            let action = e.action().map(|a| a.as_str().to_uppercase());
            (e.on_status_reason(), e.on_reason(), action)
        })
        .collect();
    assert_eq!(
        rules,
        [
            (Some("Host EC2*"), None, Some("RETRY".to_string())),
            (None, Some("*"), Some("EXIT".to_string()))
        ]
    );
    assert_eq!(
        definition
            .timeout()
            .and_then(|t| t.attempt_duration_seconds()),
        Some(600)
    );
    // The same settings again: the revision is reused, not registered anew.
    let again = s.executor.register(&spot, &g).await.unwrap();
    assert_eq!(again.id, first.id);
    // Propagating tags is content too, read back and reused as such. (moto gives a later
    // revision of a name the first revision's propagateTags, so this uses a name of its own.)
    let tagged = context(
        spec(&s.queue, |s| s.spec.context.propagate_tags = true),
        &root,
        1,
    );
    let own = group("S_T", None, vec![]);
    let with_tags = s.executor.register(&tagged, &own).await.unwrap();
    assert_eq!(
        described(with_tags.id.clone()).await.propagate_tags(),
        Some(true)
    );
    assert_eq!(
        s.executor.register(&tagged, &own).await.unwrap().id,
        with_tags.id,
        "the same content: reused"
    );
    let untagged = s
        .executor
        .register(&context(s.spec.clone(), &root, 1), &own)
        .await
        .unwrap();
    assert_ne!(untagged.id, with_tags.id, "other content, a new revision");
    // And back to unset: the first revision again.
    let back = s
        .executor
        .register(&context(s.spec.clone(), &root, 1), &g)
        .await
        .unwrap();
    assert_eq!(back.id, plain.id);
}

#[tokio::test]
async fn array_and_plain_jobs_follow_the_contract() {
    let s = setup("submit", moto::shared()).await;
    let (_root, ctx, definition) = s.registered("submit", 1).await;
    let jobs = vec![
        job("submit_S_G", "S_G", 3, None),
        job("submit_S_G-part1", "S_G-part1", 1, None),
    ];
    let g = group("S_G", Some(definition.clone()), jobs.clone());

    let array = s.executor.submit(&ctx, &g, &jobs[0], false).await.unwrap();
    let plain = s.executor.submit(&ctx, &g, &jobs[1], false).await.unwrap();
    let submitted = s.api.submitted.lock().unwrap().clone();
    assert_eq!(submitted[0].array_size, Some(3));
    assert!(
        submitted[0].environment.is_empty(),
        "the definition's FILE_SET_NAME serves the first job"
    );
    assert_eq!(submitted[1].array_size, None, "one input is a plain job");
    assert_eq!(
        submitted[1].environment,
        [("FILE_SET_NAME".to_string(), "S_G-part1".to_string())]
    );
    assert_eq!(submitted[1].tags["simseries.io/file-set"], "S_G-part1");

    let described = s
        .moto
        .batch()
        .describe_jobs()
        .jobs(&array)
        .jobs(&plain)
        .send()
        .await
        .unwrap();
    let by_id = |id: &str| {
        described
            .jobs()
            .iter()
            .find(|j| j.job_id() == Some(id))
            .unwrap()
            .clone()
    };
    assert_eq!(by_id(&array).job_name(), Some("submit_S_G"));
    assert_eq!(by_id(&array).array_properties().unwrap().size(), Some(3));
    assert!(by_id(&plain).array_properties().is_none());
    assert_eq!(by_id(&array).tags().unwrap()["simseries.io/pass"], "1");
    assert_eq!(
        by_id(&array).job_queue().map(|q| q.ends_with(&s.queue)),
        Some(true)
    );

    // moto finishes jobs inside SubmitJob.
    let mut recorded = jobs.clone();
    recorded[0].id = Some(array.clone());
    recorded[1].id = Some(plain.clone());
    let observed = s.executor.poll(&ctx, &recorded).await.unwrap();
    assert_eq!(observed[0].state, JobState::Succeeded);
    assert_eq!(observed[0].summary.succeeded, 3);
    assert_eq!(observed[1].summary.succeeded, 1);

    let children = s.executor.children(&ctx, &recorded[0]).await.unwrap();
    assert_eq!(children.len(), 3);
    assert_eq!(
        children[2].id.as_deref(),
        Some(format!("{array}:2").as_str())
    );
    assert!(
        children
            .iter()
            .all(|c| c.state == Some(JobState::Succeeded))
    );
}

#[tokio::test]
async fn polls_describe_parents_a_hundred_at_a_time() {
    let s = setup("poll", moto::shared()).await;
    let (_root, ctx, definition) = s.registered("poll", 1).await;
    let mut records = Vec::new();
    for i in 0..250 {
        let size = if i % 50 == 0 { 20 } else { 1 };
        let request = SubmitRequest {
            job_name: format!("poll-{i}"),
            queue: s.queue.clone(),
            definition: definition.clone(),
            array_size: (size > 1).then_some(size),
            environment: vec![],
            tags: Default::default(),
            share_identifier: None,
            scheduling_priority: None,
        };
        let id = s.api.api.submit_job(&request).await.unwrap();
        records.push(job(&format!("poll-{i}"), "S_G", size, Some(id)));
    }
    s.api.reset();
    let observed = s.executor.poll(&ctx, &records).await.unwrap();
    assert_eq!(observed.len(), 250);
    // ceil(250 / 100) calls, whatever the number of array children (5 x 20 here).
    assert_eq!(s.api.calls("DescribeJobs"), 3);
    assert_eq!(*s.api.largest_describe.lock().unwrap(), 100);
    assert_eq!(
        s.api.calls("ListJobs"),
        0,
        "children are not listed to poll"
    );
    assert_eq!(observed[0].summary.succeeded, 20);
    assert_eq!(
        observed.iter().map(|o| o.id.clone()).collect::<Vec<_>>(),
        records
            .iter()
            .map(|r| r.id.clone().unwrap())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn failed_jobs_are_reported_as_failed() {
    // A moto of its own: failing every job is a server-wide setting.
    let failing: &'static Moto = Box::leak(Box::new(moto::start(&[(
        "MOTO_SIMPLE_BATCH_FAIL_AFTER",
        "0",
    )])));
    let s = setup("failing", failing).await;
    let (_root, ctx, definition) = s.registered("failing", 1).await;
    let mut record = job("failing_S_G", "S_G", 2, None);
    let g = group("S_G", Some(definition.clone()), vec![record.clone()]);
    record.id = Some(s.executor.submit(&ctx, &g, &record, false).await.unwrap());
    let observed = s
        .executor
        .poll(&ctx, std::slice::from_ref(&record))
        .await
        .unwrap();
    assert_eq!(observed[0].state, JobState::Failed);
    assert_eq!(observed[0].summary.failed, 2);
    let children = s.executor.children(&ctx, &record).await.unwrap();
    assert!(
        children.iter().all(|c| c.state == Some(JobState::Failed)),
        "{children:?}"
    );
}

#[tokio::test]
async fn logs_are_read_from_the_children_streams_and_filtered() {
    let s = setup("logs", moto::shared()).await;
    let (root, ctx, definition) = s.registered("logs", 1).await;
    let mut record = job("logs_S_G", "S_G", 2, None);
    let g = group("S_G", Some(definition.clone()), vec![record.clone()]);
    let id = s.executor.submit(&ctx, &g, &record, false).await.unwrap();
    record.id = Some(id.clone());

    // moto names the children's streams but writes nothing to them: put events there.
    for index in 0..2 {
        let lines = [
            format!("child {index} starting"),
            format!("ERROR child {index} disk full"),
            "done".into(),
        ];
        s.moto.log_job(&format!("{id}:{index}"), &lines).await;
    }

    let the_pass = pass(vec![group(
        "S_G",
        Some(definition.clone()),
        vec![record.clone()],
    )]);
    let saved = s.executor.collect_logs(&ctx, &the_pass).await.unwrap();
    assert_eq!(saved[0].record.count, 2);
    assert_eq!(saved[0].record.folder, "S/2024-06-01/logs/pass-1/");
    let read = |i: usize| {
        std::fs::read_to_string(root.join(format!("S/2024-06-01/logs/pass-1/S_G_{i}.log"))).unwrap()
    };
    assert_eq!(read(1), "child 1 starting\nERROR child 1 disk full\ndone\n");
    assert!(s.api.calls("FilterLogEvents") >= 1);

    // With a filter pattern, CloudWatch keeps the matching lines.
    let filtered = context(
        spec(&s.queue, |s| {
            s.spec.parameters.log_filter = "\"disk full\"".into()
        }),
        &root,
        2,
    );
    s.executor
        .collect_logs(
            &filtered,
            &Pass {
                number: 2,
                ..the_pass.clone()
            },
        )
        .await
        .unwrap();
    let read = |i: usize| {
        std::fs::read_to_string(root.join(format!("S/2024-06-01/logs/pass-2/S_G_{i}.log"))).unwrap()
    };
    assert_eq!(read(0), "ERROR child 0 disk full\n");
}

/// A log of more than one FilterLogEvents page (moto pages at 10,000 events) is saved whole,
/// in order, through the spool.
#[tokio::test]
async fn a_log_of_several_pages_is_saved_whole_and_in_order() {
    let s = setup("pages", moto::shared()).await;
    let (root, ctx, definition) = s.registered("pages", 1).await;
    let mut record = job("pages_S_G", "S_G", 2, None);
    let g = group("S_G", Some(definition.clone()), vec![record.clone()]);
    let id = s.executor.submit(&ctx, &g, &record, false).await.unwrap();
    record.id = Some(id.clone());
    let lines: Vec<String> = (0..10_050).map(|i| format!("line {i}")).collect();
    s.moto.log_job(&format!("{id}:1"), &lines).await;
    let the_pass = pass(vec![group("S_G", Some(definition), vec![record])]);
    s.executor.collect_logs(&ctx, &the_pass).await.unwrap();
    let read = |i: usize| {
        std::fs::read_to_string(root.join(format!("S/2024-06-01/logs/pass-1/S_G_{i}.log"))).unwrap()
    };
    assert_eq!(read(0), "", "a child that logged nothing");
    let saved = read(1);
    assert_eq!(saved.lines().count(), 10_050);
    assert!(
        saved == lines.join("\n") + "\n",
        "the lines differ or are out of order"
    );
    assert!(
        s.api.calls("FilterLogEvents") >= 2,
        "{}",
        s.api.calls("FilterLogEvents")
    );
}

#[tokio::test]
async fn a_job_submitted_but_not_recorded_is_adopted() {
    let s = setup("adopt", moto::shared()).await;
    let (root, ctx, definition) = s.registered("adopt", 3).await;
    let record = job("adopt_S_G", "S_G", 2, None);
    let g = group("S_G", Some(definition.clone()), vec![record.clone()]);
    let first = s.executor.submit(&ctx, &g, &record, false).await.unwrap();
    assert_eq!(
        s.api.calls("ListJobs"),
        0,
        "a job never sent is not looked for"
    );

    // The driver died before writing the ID: a new executor is asked to submit again.
    let restarted = BatchExecutor::new(
        s.api.api.clone(),
        BatchSettings::from_spec(&s.spec).unwrap(),
    );
    let again = restarted.submit(&ctx, &g, &record, true).await.unwrap();
    assert_eq!(again, first, "found again by name and tags");
    assert_eq!(s.api.calls("SubmitJob"), 1);
    assert_eq!(s.api.calls("ListJobs"), 1);

    // The same name in another pass is another job.
    let next_pass = context(s.spec.clone(), &root, 4);
    let other = restarted
        .submit(&next_pass, &g, &record, true)
        .await
        .unwrap();
    assert_ne!(other, first);
    assert_eq!(s.api.calls("SubmitJob"), 2);
}

#[tokio::test]
async fn simseries_run_on_an_s3_working_location() {
    let moto = moto::shared();
    let bucket = format!("run-{}", std::process::id());
    let queue = "run-queue";
    moto.setup_batch(&bucket, queue);
    let dir = temp_dir("s3-run");
    // With every AWS Batch option beyond the original's, checked on the wire below.
    let yaml = Fixture::aws_example()
        .on_s3(&bucket)
        .on_aws("alice", queue)
        .batch_options()
        .yaml();
    std::fs::write(dir.join("series.yaml"), yaml).unwrap();
    moto.start_recording();
    let out = simseries(
        &[
            "run",
            "-f",
            dir.join("series.yaml").to_str().unwrap(),
            "--date",
            "2024-06-01",
        ],
        &moto.env(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // moto runs no containers: every job succeeds, no output appears, and simseries says so:
    // the pass is incomplete, and the message says where the model must write.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "pass 1 Incomplete: every job succeeded, but 6 run(s) have no outputs (e.g. AWS_EXAMPLE_LOW_0000); the model must write them under s3://{bucket}/work/AWS_EXAMPLE/2024-06-01/outputs/"
        )),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("TOTAL             0/6 (0.0 %)"));
    let recording = moto.recording();
    check_batch_options(&recording, "alice_AWS_EXAMPLE");
    // moto runs each child for a few milliseconds: one attempt each, measured, priced.
    let used = stderr
        .lines()
        .find(|l| l.contains("pass 1 used "))
        .unwrap_or_else(|| panic!("no usage line in {stderr}"));
    assert!(
        used.contains("GiB-hours over 6 attempt(s) of 6 child(ren); estimated cost"),
        "{used}"
    );

    let s3 = moto.s3();
    let keys: Vec<String> = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("work/")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect();
    for key in [
        "work/AWS_EXAMPLE/2024-06-01/inputs/AWS_EXAMPLE_5.xml",
        "work/AWS_EXAMPLE/2024-06-01/logs/pass-1/AWS_EXAMPLE_5.log",
        "work/AWS_EXAMPLE/2024-06-01/simseries/pass-1.json",
        "work/AWS_EXAMPLE/simseries/status.json",
    ] {
        assert!(keys.contains(&key.to_string()), "{key} not in {keys:?}");
    }
    let state = moto
        .json(&bucket, "work/AWS_EXAMPLE/simseries/status.json")
        .await
        .unwrap();
    let group = &state["status"]["pass"]["groups"][0];
    assert_eq!(state["status"]["phase"], "Incomplete");
    assert_eq!(state["status"]["conditions"][0]["reason"], "OutputsMissing");
    assert_eq!(group["jobs"][0]["state"], "SUCCEEDED");
    assert_eq!(group["jobs"][0]["arraySize"], 6);
    assert_eq!(group["definitionOwned"], true);
    assert_eq!(state["status"]["progress"], "0/6");
    // The calls of the pass, on the wire: no ListJobs (nothing to adopt), one DescribeJobs per
    // poll for the parent, one for its 6 children, none before cleaning.
    let id = group["jobs"][0]["id"].as_str().unwrap();
    let listed = batch_request_bodies(&recording, "listjobs")
        .into_iter()
        .filter(|b| b["jobQueue"] == queue)
        .count();
    assert_eq!(listed, 0);
    let described = batch_request_bodies(&recording, "describejobs")
        .into_iter()
        .filter(|b| b["jobs"][0].as_str().is_some_and(|j| j.starts_with(id)))
        .count();
    let polls = state["status"]["pass"]["attempts"].as_u64().unwrap() as usize;
    assert_eq!(described, polls + 1, "{polls} poll(s)");
    let usage = &state["status"]["pass"]["usage"];
    assert_eq!(usage["children"], 6, "{usage}");
    assert_eq!(usage["attempts"], 6);
    assert_eq!(usage["retriedChildren"], 0);
    assert!(usage["estimatedCost"].is_number(), "{usage}");
    let record = moto
        .json(&bucket, "work/AWS_EXAMPLE/2024-06-01/simseries/pass-1.json")
        .await
        .unwrap();
    let attempts = &record["groups"][0]["jobs"][0]["children"][5]["outcome"]["attempts"];
    assert_eq!(attempts.as_array().map(Vec::len), Some(1), "{record}");
    assert!(attempts[0]["startedAt"].is_string() && attempts[0]["stoppedAt"].is_string());
    // cleanJobs deregistered the definition the pass registered.
    let arn = group["jobDefinition"].as_str().unwrap();
    let described = moto
        .batch()
        .describe_job_definitions()
        .job_definitions(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(described.job_definitions()[0].status(), Some("INACTIVE"));
}

/// AWS calls of a whole `simseries run` of several array jobs, counted on the wire by a moto
/// of its own (its recording is this test's alone): the targets of describing children by ID.
#[tokio::test]
async fn a_pass_of_several_array_jobs_makes_the_target_calls() {
    let moto: &'static Moto = Box::leak(Box::new(moto::start(&[])));
    let bucket = "calls";
    let queue = "calls-queue";
    moto.setup_batch(bucket, queue);
    let dir = temp_dir("s3-calls");
    // Three groups of 150 inputs: three array jobs of 150 children.
    let yaml = Fixture::aws_example()
        .on_s3(bucket)
        .on_aws("alice", queue)
        .edit(|s| {
            let series = &mut s.spec.series;
            series.seeds = (0..150).collect();
            let mut mid = series.conditions[0].clone();
            mid.key = "MID".into();
            series.conditions.push(mid);
            for (condition, group) in series.conditions.iter_mut().zip(["A", "B", "C"]) {
                condition.group = Some(group.into());
            }
            series.groups = Some(
                ["A", "B", "C"]
                    .map(|g| (g.to_string(), Some(String::new())))
                    .into(),
            );
        })
        .yaml();
    std::fs::write(dir.join("series.yaml"), yaml).unwrap();
    moto.start_recording();
    let out = simseries(
        &["run", "-f", dir.join("series.yaml").to_str().unwrap()],
        &moto.env(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("3 job(s) with 450 input(s) submitted"),
        "{stderr}"
    );
    let state = moto
        .json(bucket, "work/AWS_EXAMPLE/simseries/status.json")
        .await
        .unwrap();
    let polls = state["status"]["pass"]["attempts"].as_u64().unwrap() as usize;
    let calls = calls_of_recording(&moto.recording());
    eprintln!("calls for 3 x 150 children, {polls} poll(s): {calls:?}");
    let count = |api: &str| calls.get(api).copied().unwrap_or(0);
    assert_eq!(count("batch:ListJobs"), 0, "nothing to adopt");
    assert_eq!(
        count("batch:DescribeJobs"),
        polls + 3 * 2,
        "ceil(3 / 100) per poll, ceil(150 / 100) per job for its children, once"
    );
    assert_eq!(count("batch:SubmitJob"), 3);
    assert_eq!(count("batch:RegisterJobDefinition"), 3);
    assert_eq!(count("batch:DeregisterJobDefinition"), 3);
    assert_eq!(
        count("logs:FilterLogEvents"),
        3 * 2,
        "100 streams a call, per job"
    );

    // Side by side with the original's calls for the same cycle, computed from its code
    // (container-collection 1.1.0): `check_batch_job` describes each child on its own at
    // every poll, `get_batch_logs` describes each child again and filters its one stream,
    // `save_text` writes each input and each log in turn. The least possible: 100 IDs or
    // streams per call, over all jobs.
    let (jobs, children, inputs) = (3, 450, 450);
    let rows = [
        (
            "s3:PutObject (inputs, logs, records, status)",
            count("s3:PutObject"),
            inputs + children,
            inputs + children,
        ),
        (
            "batch:RegisterJobDefinition",
            count("batch:RegisterJobDefinition"),
            jobs,
            0,
        ),
        ("batch:SubmitJob", count("batch:SubmitJob"), jobs, jobs),
        (
            "batch:DescribeJobs",
            count("batch:DescribeJobs"),
            children * polls + children,
            polls + children.div_ceil(100),
        ),
        ("batch:ListJobs", count("batch:ListJobs"), 0, 0),
        (
            "logs:FilterLogEvents",
            count("logs:FilterLogEvents"),
            children,
            children.div_ceil(100),
        ),
    ];
    eprintln!("| call | simseries (counted) | original (its call pattern) | least possible |");
    eprintln!("|---|---|---|---|");
    for (call, simseries, original, least) in rows {
        eprintln!("| {call} | {simseries} | {original} | {least} |");
        assert!(
            simseries >= least,
            "{call}: {simseries} calls, fewer than the least possible {least}?"
        );
    }
    assert!(count("batch:DescribeJobs") * 100 < children * polls + children);
}

/// The S3 upload path pays one request per input: a PutObject, never a HEAD or GET before or
/// after it (on a moto of this test's own, so the recording is this run's alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_input_costs_one_put_object_and_nothing_else() {
    let moto = moto::start(&[]);
    let bucket = format!("puts-{}", std::process::id());
    let queue = "puts-queue";
    moto.setup_batch(&bucket, queue);
    let scenario = common::aws_run::BatchScenario::new(&bucket, queue, "PUTS");
    moto.start_recording();
    let out = common::aws_run::run_batch(&moto, &scenario, &[]);
    // moto runs no model: the pass ends without outputs (exit 1), its inputs written.
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out.stderr));
    let mut per_input: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for entry in moto.recording() {
        let url = entry["url"].as_str().unwrap_or_default();
        let path = url.split('?').next().unwrap_or_default();
        if path.contains("/PUTS/") && path.contains("/inputs/") {
            per_input
                .entry(path.to_string())
                .or_default()
                .push(entry["method"].as_str().unwrap_or_default().to_string());
        }
    }
    assert_eq!(per_input.len(), 6, "the scenario's 6 inputs: {per_input:?}");
    for (input, methods) in &per_input {
        assert_eq!(methods, &["PUT"], "{input}");
    }
}

/// The recount after a pass lists the outputs of that pass's dated folder only, when they
/// settle it; planning lists each dated folder's outputs and nothing else of the series.
#[tokio::test]
async fn the_recount_lists_only_the_outputs_of_its_pass() {
    use common::aws_run::{BatchScenario, DATE, example_runs, run_batch, write_example_outputs};
    let moto: &'static Moto = Box::leak(Box::new(moto::start(&[])));
    let (bucket, queue) = ("recount", "recount-queue");
    moto.setup_batch(bucket, queue);
    let scenario = BatchScenario::new(bucket, queue, "AWS_EXAMPLE");
    // An earlier pass made seed 0; this pass runs seeds 1 and 2, and stops once submitted.
    write_example_outputs(moto, bucket, "2024-05-01", &example_runs(0..1)).await;
    moto.start_recording();
    let first = run_batch(moto, &scenario, &[("FAILPOINTS", "after-submit=return")]);
    assert_eq!(
        first.status.code(),
        Some(simseries::faults::CRASH_EXIT_CODE),
        "{first:?}"
    );
    // The dated folders, then the outputs of each (at once: sorted here).
    let series_listing = [
        "work/AWS_EXAMPLE/",
        "work/AWS_EXAMPLE/2024-05-01/outputs/",
        "work/AWS_EXAMPLE/simseries/outputs/",
    ];
    assert_eq!(
        sorted_tail(listed_prefixes(&moto.recording()), 1),
        series_listing,
        "planning lists the outputs of the dated folders, nothing else of the series"
    );
    // moto runs no containers: the model's outputs appear while the jobs run.
    write_example_outputs(moto, bucket, DATE, &example_runs(1..3)).await;
    moto.start_recording();
    let second = run_batch(moto, &scenario, &[]);
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    let listed = listed_prefixes(&moto.recording());
    let this_pass = format!("work/AWS_EXAMPLE/{DATE}/outputs/");
    assert_eq!(
        listed[0], this_pass,
        "the recount lists this pass's outputs alone: {listed:?}"
    );
    // Then `simseries run` prints the completeness table of the whole series.
    let mut table = series_listing.map(String::from).to_vec();
    table.insert(2, this_pass);
    assert_eq!(sorted_tail(listed[1..].to_vec(), 1), table);
    let status = common::aws_run::batch_status(moto, &scenario)
        .await
        .unwrap();
    assert_eq!(status["phase"], "Complete", "{status}");
    assert_eq!(status["runs"]["complete"], 6, "{status}");
    assert_eq!(status["runs"]["total"], 6, "{status}");
}

/// `items` with those after the first `keep` sorted (requests made at once arrive in any order).
fn sorted_tail(mut items: Vec<String>, keep: usize) -> Vec<String> {
    let from = keep.min(items.len());
    items[from..].sort();
    items
}

/// The prefixes of the ListObjectsV2 requests in a recording, in order (delimiter or not).
fn listed_prefixes(recording: &[serde_json::Value]) -> Vec<String> {
    recording
        .iter()
        .filter_map(|entry| entry["url"].as_str())
        .filter(|url| url.contains("list-type=2"))
        .filter_map(|url| {
            let query = url.split_once('?')?.1;
            let prefix = query.split('&').find_map(|p| p.strip_prefix("prefix="))?;
            Some(common::percent_decode(prefix))
        })
        .collect()
}
