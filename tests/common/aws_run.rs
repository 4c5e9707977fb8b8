//! `simseries run` on an S3 working location against moto, as the crash and fault tests drive
//! it: a copy of examples/aws/ per scenario, its status read back from the bucket, and the
//! jobs it submitted counted.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::fixtures::Fixture;
use super::moto::Moto;
use super::temp_dir;

pub const DATE: &str = "2024-06-01";

/// One series of the shape of examples/aws/ (2 conditions x 3 seeds, one array job of 6).
pub struct BatchScenario {
    pub dir: super::TestDir,
    pub bucket: String,
    pub queue: String,
    pub series: String,
}

impl BatchScenario {
    /// A copy of examples/aws/ as series `series`, on `bucket` and `queue` (prepared by
    /// `Moto::setup_batch`, which also puts the template there).
    pub fn new(bucket: &str, queue: &str, series: &str) -> BatchScenario {
        let dir = temp_dir(&format!("aws-run-{series}"));
        let yaml = Fixture::aws_example()
            .on_s3(bucket)
            .on_aws("alice", queue)
            .edit(|s| s.spec.series.name = series.into())
            .yaml();
        std::fs::write(dir.join("series.yaml"), yaml).unwrap();
        BatchScenario {
            dir,
            bucket: bucket.to_string(),
            queue: queue.to_string(),
            series: series.to_string(),
        }
    }

    /// `simseries run` of the scenario, talking to `endpoint` (moto, or a proxy in front of it).
    pub fn command(&self, moto: &Moto, endpoint: &str, env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_simseries"));
        command
            .args(["run", "-f"])
            .arg(self.dir.join("series.yaml"))
            .args(["--date", DATE])
            .env_remove("FAILPOINTS")
            .stdin(Stdio::null());
        for (key, value) in moto.env() {
            command.env(key, value);
        }
        command.env("AWS_ENDPOINT_URL", endpoint);
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }
}

/// Runs the scenario against moto directly, with extra environment.
pub fn run_batch(moto: &Moto, scenario: &BatchScenario, env: &[(&str, &str)]) -> Output {
    scenario
        .command(moto, &moto.endpoint, env)
        .output()
        .unwrap()
}

/// The scenario's status as the runner last wrote it, read from moto directly.
pub async fn batch_status(moto: &Moto, scenario: &BatchScenario) -> Option<Value> {
    let key = format!("work/{}/simseries/status.json", scenario.series);
    Some(moto.json(&scenario.bucket, &key).await?["status"].clone())
}

/// Parent jobs submitted under the scenario's job name, whatever their state.
pub async fn submitted_jobs(moto: &Moto, scenario: &BatchScenario) -> usize {
    let name = format!("alice_{}", scenario.series);
    let listed = moto
        .batch()
        .list_jobs()
        .job_queue(&scenario.queue)
        .filters(
            aws_sdk_batch::types::KeyValuesPair::builder()
                .name("JOB_NAME")
                .values(&name)
                .build(),
        )
        .send()
        .await
        .unwrap();
    listed
        .job_summary_list()
        .iter()
        .filter(|j| j.job_name() == Some(name.as_str()))
        // moto lists array children (`{parentId}:{index}`) under the parent's name.
        .filter(|j| !j.job_id().unwrap_or_default().contains(':'))
        .count()
}

/// The status without what legitimately differs between two runs: times, how many polls (a
/// restarted driver polls on its own clock), job IDs (AWS assigns them), the spec digest
/// (another series name) and the hours the children ran (moto's clock).
pub fn normalized(mut status: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for key in [
                    "startedAt",
                    "finishedAt",
                    "lastTransitionTime",
                    "nextPollAt",
                    "attempts",
                    "id",
                    "generation",
                    "observedGeneration",
                    "vcpuHours",
                    "gibHours",
                ] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut status);
    status
}

/// The baseline status as another series of the same shape would have it.
pub fn rename_series(status: &Value, from: &str, to: &str) -> Value {
    serde_json::from_str(&serde_json::to_string(status).unwrap().replace(from, to)).unwrap()
}

/// Checks that the AWS Batch options of `Fixture::batch_options` went over the wire for jobs
/// and definitions named `{name}…` (from moto's recording): the definition's retry strategy,
/// timeout and tag propagation, and SubmitJob's share identifier and priority, with far fewer
/// tags than the 50 AWS allows a job and its definition together.
pub fn check_batch_options(recording: &[Value], name: &str) {
    use super::fixtures::BATCH_OPTIONS;
    use super::privileges::batch_request_bodies;
    let named = |bodies: Vec<Value>, field: &str| -> Vec<Value> {
        bodies
            .into_iter()
            .filter(|b| b[field].as_str().is_some_and(|n| n.starts_with(name)))
            .collect()
    };
    let definitions = named(
        batch_request_bodies(recording, "registerjobdefinition"),
        "jobDefinitionName",
    );
    assert!(
        !definitions.is_empty(),
        "no RegisterJobDefinition for {name}"
    );
    for definition in &definitions {
        assert_eq!(
            definition["retryStrategy"]["attempts"],
            1 + BATCH_OPTIONS.spot_retries,
            "{definition}"
        );
        let rules = definition["retryStrategy"]["evaluateOnExit"].to_string();
        assert!(
            rules.contains("Host EC2*") && rules.contains("RETRY") && rules.contains("EXIT"),
            "{rules}"
        );
        assert_eq!(
            definition["timeout"]["attemptDurationSeconds"],
            BATCH_OPTIONS.timeout_seconds
        );
        assert_eq!(definition["propagateTags"], true);
    }
    let submitted = named(batch_request_bodies(recording, "submitjob"), "jobName");
    assert!(!submitted.is_empty(), "no SubmitJob for {name}");
    for job in &submitted {
        assert_eq!(job["shareIdentifier"], BATCH_OPTIONS.share_identifier);
        assert_eq!(
            job["schedulingPriorityOverride"],
            BATCH_OPTIONS.scheduling_priority
        );
        let tags = job["tags"].as_object().map_or(0, |t| t.len())
            + definitions[0]["tags"].as_object().map_or(0, |t| t.len());
        assert!(
            tags <= 10,
            "{tags} tags: AWS fails a job past 50 with propagateTags"
        );
    }
}

/// Writes the outputs the AWS example's model would have written for these runs (moto runs
/// no containers), in the dated folder of `date`.
pub async fn write_example_outputs(moto: &Moto, bucket: &str, date: &str, runs: &[String]) {
    for run in runs {
        for extension in ["CELLS.csv", "STATS.json"] {
            moto.s3()
                .put_object()
                .bucket(bucket)
                .key(format!("work/AWS_EXAMPLE/{date}/outputs/{run}.{extension}"))
                .body(b"output".to_vec().into())
                .send()
                .await
                .unwrap();
        }
    }
}

/// The AWS example's runs of these seeds (2 conditions each).
pub fn example_runs(seeds: std::ops::Range<u32>) -> Vec<String> {
    seeds
        .flat_map(|s| ["LOW", "HIGH"].map(|c| format!("AWS_EXAMPLE_{c}_{s:04}")))
        .collect()
}
