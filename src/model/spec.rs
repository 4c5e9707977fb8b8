//! The `SimulationSeries` resource: what users write (`spec`) as Rust types.
//!
//! Field names, meanings and defaults follow the contract with the original workflow
//! (context / series / parameters). The OpenAPI schema derived from these types rejects what a
//! schema can express; cross-field rules live in [`crate::model::validate`].

use indexmap::IndexMap;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::bounds::{
    MAX_EXTENSIONS, MAX_RUNS, MAX_SCHEDULING_PRIORITY, MAX_SEEDS, MAX_SPOT_RETRIES,
    MAX_VCPU_HOUR_PRICE, MIN_TIMEOUT_SECONDS,
};
use crate::model::status::SimulationSeriesStatus;

/// The largest seed: run keys zero-pad seeds to four digits.
pub const MAX_SEED: u32 = 9999;

/// Changing the value of this annotation starts a new pass of an unchanged spec (the command
/// line's `--rerun` stands for it).
pub const RERUN_ANNOTATION: &str = "simseries.io/rerun";

/// A parameter sweep of a containerized simulation model: conditions x seeds, run as AWS Batch
/// array jobs, Kubernetes Indexed Jobs or local processes until every run has its outputs.
// The lint misreads repeated `printcolumn(type_ = …)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "simseries.io",
    version = "v1alpha1",
    kind = "SimulationSeries",
    plural = "simulationseries",
    singular = "simulationseries",
    namespaced,
    shortname = "simser",
    status = "SimulationSeriesStatus",
    derive = "PartialEq",
    doc = "A parameter sweep of a containerized simulation model (conditions x seeds) run on AWS Batch or as Kubernetes Jobs, with inputs and outputs on S3.",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Phase of the current pass"
    ),
    printcolumn(
        name = "Runs",
        type_ = "string",
        json_path = ".status.progress",
        description = "Runs with all their outputs / runs of the series (counted from the outputs at the start and end of a pass)"
    ),
    printcolumn(
        name = "Pass",
        type_ = "string",
        json_path = ".status.passProgress",
        description = "Inputs done / inputs of the current pass, as of the last poll"
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.inputs.failed",
        description = "Inputs of the current pass that failed or were terminated, as of the last poll"
    ),
    printcolumn(
        name = "Attempts",
        type_ = "integer",
        json_path = ".status.attempts",
        description = "Polls of the current pass so far (at most parameters.retries)"
    ),
    printcolumn(
        name = "Active",
        type_ = "integer",
        json_path = ".status.activeJobs",
        description = "Jobs of the current pass that have not finished",
        priority = "1"
    ),
    printcolumn(
        name = "vCPU-h",
        type_ = "number",
        json_path = ".status.pass.usage.vcpuHours",
        description = "vCPU-hours the children of the last finished pass used (AWS Batch and Kubernetes)",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SimulationSeriesSpec {
    /// Where the working files, manifest and template live, and how jobs are sized and queued.
    pub context: Context,
    /// The sweep itself: conditions, seeds, expected outputs, init files and groups.
    pub series: Series,
    /// The model to run and how its jobs are retried, watched and cleaned up.
    pub parameters: Parameters,
}

/// Locations and AWS settings of a series.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// Root of the working location: a local folder or `s3://bucket[/prefix]`. Inputs, init
    /// copies, outputs and logs go under `{series.name}/{date}/`. A relative local folder in a
    /// spec file is resolved against the file's folder. In the cluster only `s3://` is accepted.
    #[schemars(length(min = 1))]
    pub working_location: String,
    /// Folder or `s3://bucket[/prefix]` holding the manifest (`series.manifestKey`).
    #[schemars(length(min = 1))]
    pub manifest_location: String,
    /// Folder or `s3://bucket[/prefix]` holding the template (`series.templateKey`).
    #[schemars(length(min = 1))]
    pub template_location: String,
    /// AWS account ID (12 digits) that owns the ECR image and the `BatchJobRole` role. Required
    /// to run on AWS Batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9]{12}$"))]
    pub account: Option<String>,
    /// AWS region of the Batch queue and the ECR registry, e.g. `us-west-2`. Required to run on
    /// AWS Batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// User name: prefixes job definition and job names (`{user}_{groupKey}`) and names the ECR
    /// repository of the image (`{user}/{image}`). Required to run on AWS Batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]+$"))]
    pub user: Option<String>,
    /// vCPUs of each job (and the local concurrency bound: host cores / vcpus).
    #[schemars(range(min = 1))]
    pub vcpus: u32,
    /// Memory of each job in MiB.
    #[schemars(range(min = 1))]
    pub memory: u32,
    /// Name or ARN of the AWS Batch job queue. Required to run on AWS Batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Share identifier of the series' jobs on a fair-share queue (AWS Batch refuses jobs
    /// without one there); letters, digits and `_`, at most 255 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_identifier: Option<String>,
    /// AWS Batch: copy the jobs' tags (`simseries.io/series`, `owner`, `pass`, `generation`,
    /// `file-set`) to their ECS tasks, so AWS cost allocation can split the bill per series
    /// (activate the tags as cost allocation tags in the Billing console). Default false: the
    /// job definitions stay as they are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub propagate_tags: bool,
    /// Where the children run: `batch` (AWS Batch array jobs) or `kubernetes` (one Indexed Job
    /// per job, in a cluster; see `kubernetes`). Default: local processes for a local working
    /// folder, AWS Batch for `s3://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorKind>,
    /// Settings of the Kubernetes executor (`executor: kubernetes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesContext>,
}

/// Where a series' children run, when the working location does not decide it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ExecutorKind {
    /// AWS Batch array jobs (the default for an `s3://` working location).
    Batch,
    /// Kubernetes Indexed Jobs, with the AWS Batch container contract.
    Kubernetes,
}

/// Where and how the Kubernetes executor runs the children's pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesContext {
    /// Namespace of the Jobs. `simseries run`: default the kubeconfig context's namespace. In
    /// the cluster the Jobs always go in the series' own namespace; another one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub namespace: Option<String>,
    /// ServiceAccount of the pods (e.g. one with an IRSA role that reaches the working
    /// bucket). Default: the namespace's `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"), length(max = 253))]
    pub service_account: Option<String>,
    /// Pods of one Job running at once. Default: every input of the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub parallelism: Option<u32>,
    /// Kueue LocalQueue of the Jobs: they are created suspended with the
    /// `kueue.x-k8s.io/queue-name` label, and run once Kueue admits them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"), length(max = 63))]
    pub queue_name: Option<String>,
}

/// Where planning learns which runs already have outputs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ManifestSource {
    /// Only the manifest CSV at `context.manifestLocation/series.manifestKey` (the original
    /// behaviour: run the summarize step to refresh it).
    File,
    /// Only a listing of `{series.name}/*/outputs/` in the working location; no manifest needed.
    Listing,
    /// The manifest CSV and the listing together: a run counts as complete if either has it
    /// (the default: what the summarize step would add to the manifest).
    #[default]
    Both,
}

impl ManifestSource {
    pub fn uses_file(self) -> bool {
        matches!(self, ManifestSource::File | ManifestSource::Both)
    }

    pub fn uses_listing(self) -> bool {
        matches!(self, ManifestSource::Listing | ManifestSource::Both)
    }
}

/// The sweep: conditions x seeds, the outputs a complete run has, init files and groups.
// Rules across fields, checked by the API server (CEL) as by `validate`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(format!("self.conditions.size() * self.seeds.size() <= {MAX_RUNS}")).message(Message::Message(format!("conditions x seeds may plan at most {MAX_RUNS} runs; split the series into several series"))))]
#[x_kube(validation = Rule::new("!has(self.groups) || !('_' in self.groups) || size(self.groups) == 1").message("group `_` already holds every condition and cannot be combined with named groups; remove `_` or the other groups").field_path(".groups"))]
pub struct Series {
    /// Series name: prefix of every run key (`{name}_{conditionKey}_{seed:04}`) and the folder
    /// of the series in the working location. Letters, digits, `_` and `-`.
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]+$"))]
    pub name: String,
    /// File name of the manifest CSV (columns `KEY,EXTENSION,LOCATION,FULL_KEY`) under
    /// `context.manifestLocation`. Not read when `manifestSource` is `listing`.
    #[schemars(length(min = 1))]
    pub manifest_key: String,
    /// File name of the Jinja input template under `context.templateLocation`.
    #[schemars(length(min = 1))]
    pub template_key: String,
    /// Random seeds, each from 0 to 9999; every condition runs once per seed.
    #[schemars(length(min = 1, max = MAX_SEEDS), inner(range(min = 0, max = 9999)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub seeds: Vec<u32>,
    /// Conditions of the sweep. Each has a unique `key`, an optional `group`, and any further
    /// fields, which are passed to the template as they are.
    #[schemars(length(min = 1))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    pub conditions: Vec<Condition>,
    /// Output file extensions every complete run has (e.g. `CELLS.tar.xz`): a run with only some
    /// of them is incomplete and runs again. At least one, each listed once.
    #[schemars(length(min = 1, max = MAX_EXTENSIONS))]
    #[schemars(inner(regex(pattern = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$")))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub extensions: Vec<String>,
    /// Init files copied into the dated folder for the seeds that run.
    #[serde(default)]
    pub inits: Vec<Init>,
    /// Groups in processing order: group name -> description, or null to skip the group. Each
    /// named group runs the conditions whose `group` is its name, as its own job(s). Default:
    /// the single group `_`, which runs every condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "groups_schema")]
    pub groups: Option<IndexMap<String, Option<String>>>,
    /// Where planning and every completeness table learn which runs are complete: `both` (the
    /// manifest CSV and the outputs in the working location, default), `file` (the manifest
    /// alone) or `listing` (the outputs alone).
    #[serde(default)]
    pub manifest_source: ManifestSource,
}

/// One condition of the sweep.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct Condition {
    /// Unique key of the condition, part of every run key. Letters, digits, `_` and `-`.
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]+$"))]
    pub key: String,
    /// Group the condition belongs to (a key of `series.groups`); ignored when the only group
    /// is `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]+$"))]
    pub group: Option<String>,
    /// Model parameters passed to the template.
    #[serde(flatten)]
    #[schemars(skip)]
    pub parameters: Map<String, Value>,
}

/// An init file set: files copied into the dated folder before the jobs start.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Init {
    /// Name of the init set: its files are `{name}/inits/inits.{MODEL}/{name}_{key}.{ext}` in
    /// the working location.
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]+$"))]
    pub name: String,
    /// Key of the init file within the set.
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]+$"))]
    pub key: String,
    /// Group the init belongs to; ignored when the only group is `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]+$"))]
    pub group: Option<String>,
    /// Seeds the init serves. If any of them runs, the init is copied for every one of them as
    /// `{groupKey}_{seed:04}.{ext}`.
    #[schemars(inner(range(min = 0, max = 9999)))]
    pub seeds: Vec<u32>,
    /// Extensions of the init files to copy (e.g. `CELLS.json`).
    #[schemars(inner(regex(pattern = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$")))]
    pub extensions: Vec<String>,
}

/// The model and the job lifecycle.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// Model name. `ARCADE` (any case) packs seed ranges of several conditions into one input;
    /// any other model gets one input per run. Upper-cased in init paths (`inits.{MODEL}`), so
    /// letters, digits, `_`, `-` and `.` (not first).
    #[schemars(regex(pattern = "^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"))]
    pub model: String,
    /// Container image, e.g. `arcade:latest`, pulled from
    /// `{account}.dkr.ecr.{region}.amazonaws.com/{user}/{image}`; an image that already names a
    /// registry (`registry.example.com/arcade:1`) is used as given. Required on AWS Batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Local runs only: the model as a command (program and arguments) to run directly for each
    /// input, in the folder of the spec file, when no container engine runs `image`. It gets
    /// the container contract's environment plus the real paths (see the README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// How many times the jobs are polled, `retryDelay` seconds apart, before stragglers are
    /// terminated (at most 100,000).
    #[schemars(range(min = 0, max = 100000))]
    pub retries: u32,
    /// Seconds between polls (at most 604,800: a week).
    #[schemars(range(min = 0, max = 604800))]
    pub retry_delay: u64,
    /// ARCADE only: the most seeds one input (one array child) runs.
    #[serde(default = "default_seeds_per_job")]
    #[schemars(range(min = 1))]
    pub seeds_per_job: u32,
    /// CloudWatch Logs filter pattern applied to saved logs (plain terms and quoted phrases must
    /// all match). Empty keeps every line.
    #[serde(default)]
    pub log_filter: String,
    /// Terminate jobs still unfinished after the last poll.
    #[serde(default = "yes")]
    pub terminate_jobs: bool,
    /// Save each job's log under `{name}/{date}/logs/`.
    #[serde(default = "yes")]
    pub save_logs: bool,
    /// Remove the job scaffolding the pass created (job definitions) when it ends.
    #[serde(default = "yes")]
    pub clean_jobs: bool,
    /// AWS Batch: times a child is tried again when its Spot host is reclaimed (0 to 9; 0, the
    /// default, never). Failures of the model itself are never retried.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[x_kube(validation = Rule::new(format!("self <= {MAX_SPOT_RETRIES}")).message(Message::Message(format!("give 0 to {MAX_SPOT_RETRIES}: AWS Batch tries a job at most 10 times"))))]
    pub spot_retries: u32,
    /// AWS Batch: seconds each attempt of a child may run before AWS stops it (at least 60;
    /// default: no limit). Beside it, `retries` x `retryDelay` bounds the whole pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(format!("self >= {MIN_TIMEOUT_SECONDS}")).message(Message::Message(format!("AWS Batch takes at least {MIN_TIMEOUT_SECONDS} seconds"))))]
    pub timeout_seconds: Option<u64>,
    /// AWS Batch, fair-share queues: the scheduling priority of the series' jobs (0 to 9999;
    /// higher runs first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(format!("self <= {MAX_SCHEDULING_PRIORITY}")).message(Message::Message(format!("give 0 to {MAX_SCHEDULING_PRIORITY}"))))]
    pub scheduling_priority: Option<u32>,
    /// AWS Batch: your price of one vCPU-hour (any currency, e.g. 0.0425). With it the status
    /// and the run summary give an estimated cost of each pass beside its vCPU-hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(format!("self >= 0.0 && self <= {MAX_VCPU_HOUR_PRICE:.1}")).message(Message::Message(format!("give the price of one vCPU-hour, 0 to {MAX_VCPU_HOUR_PRICE}"))))]
    pub vcpu_hour_price: Option<f64>,
}

fn default_seeds_per_job() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// `groups` is an ordered map whose values may be null; schemars would describe an
/// `IndexMap<String, Option<String>>` without `nullable`, which the API server needs to keep
/// the nulls that mean "skip this group".
fn groups_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "Groups in processing order: group name -> description, or null to skip the group. Each named group runs the conditions whose `group` is its name, as its own job(s). Default: the single group `_`, which runs every condition.",
        "additionalProperties": {"type": "string", "nullable": true},
        "minProperties": 1
    })
}

impl SimulationSeriesSpec {
    /// Whether the model packs seed ranges (ARCADE) or takes one input per run.
    pub fn is_arcade(&self) -> bool {
        self.parameters.model.eq_ignore_ascii_case("ARCADE")
    }

    /// Whether the children run as Kubernetes Jobs.
    pub fn on_kubernetes(&self) -> bool {
        self.context.executor == Some(ExecutorKind::Kubernetes)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
