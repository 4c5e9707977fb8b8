//! `simseries run`: reconciles a series file to the end of a pass on this machine.
//!
//! The pass's drive loop runs with this process as its driver: the status lives in a file in
//! the working location (`{name}/simseries/status.json`), written before every step, so a
//! second `simseries run` after a crash, a kill or Ctrl-C resumes where the first stopped.
//! Without a cluster, the generation is a digest of the spec, and `--rerun` bumps a counter
//! that stands for the `simseries.io/rerun` annotation. A local working folder runs the model
//! here; an S3 one runs it on AWS Batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::cli::CliError;
use crate::cli::completeness::Completeness;
use crate::cli::lock::RunLock;
use crate::cli::progress::Reporter;
use crate::cli::signals::interrupt;
use crate::cli::status_file::{self, LocalState, spec_generation, with_storage_retries};
use crate::executor::Executor;
use crate::executor::batch::aws::AwsBatchApi;
use crate::executor::batch::{BatchExecutor, BatchSettings};
use crate::executor::kubernetes::{JobSettings, KubernetesExecutor};
use crate::executor::local::LocalExecutor;
use crate::executor::local::launcher::Launcher;
use crate::model::layout::{self, Date};
use crate::model::location::Location;
use crate::model::specfile;
use crate::model::status::{Phase, SimulationSeriesStatus};
use crate::model::validate::validate;
use crate::pass::act::Actor;
use crate::pass::decide::{Observation, Outcome, Step, uses_inputs};
use crate::pass::drive::{Driver, Next, Stopped, drive};
use crate::pass::transitions::Transition;
use crate::planning::prepare::{Locations, Stores, inputs_digest};
use crate::storage::S3Options;

/// How `simseries run` was asked to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub file: PathBuf,
    /// Start a new pass even if the spec did not change.
    pub rerun: bool,
    pub s3: S3Options,
    /// Draw a progress bar (a terminal); otherwise print plain lines.
    pub progress_bar: bool,
    /// Pin the date of the dated folder (tests); default: today in UTC.
    pub date: Option<Date>,
    /// The kubeconfig of the cluster that runs the Jobs (`context.executor: kubernetes`);
    /// default `KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Its context; default the current one.
    pub kube_context: Option<String>,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub status: SimulationSeriesStatus,
    /// Completeness per condition and extension, printed at the end.
    pub table: String,
    /// Every run of the planned groups has all its outputs.
    pub all_complete: bool,
    pub interrupted: bool,
    /// Whether this invocation did anything (false: the pass for this spec had finished).
    pub acted: bool,
    /// Folders of the saved logs, as full addresses.
    pub log_folders: Vec<String>,
    /// The jobs ran on this machine (not on AWS Batch).
    pub local: bool,
}

/// Runs the series of `options.file` to the end of a pass.
pub async fn run(options: RunOptions) -> Result<RunOutcome, CliError> {
    let file = specfile::read(&options.file)?;
    let spec = Arc::new(file.resource.spec.clone());
    validate(&spec)?;
    let locations = Locations::resolve(&spec, Some(&file.folder))?;
    let stores = Stores::open_for(&spec, &locations, &options.s3).await;

    let local = matches!(locations.working, Location::Local(_)) && !spec.on_kubernetes();
    let (executor, _lock): (Arc<dyn Executor>, Option<RunLock>) = match &locations.working {
        working if spec.on_kubernetes() => {
            // The spec's own errors before the cluster's.
            let mut settings = JobSettings::from_spec(&spec, "", None)?;
            let (client, default_namespace) = crate::cli::cluster::connect(
                options.kubeconfig.as_deref(),
                options.kube_context.as_deref(),
            )
            .await?;
            settings.namespace = spec
                .context
                .kubernetes
                .as_ref()
                .and_then(|k| k.namespace.clone())
                .unwrap_or(default_namespace);
            let lock = match working {
                Location::Local(root) => Some(RunLock::take(root, &spec.series.name)?),
                Location::S3 { .. } => None,
            };
            (Arc::new(KubernetesExecutor::new(client, settings)), lock)
        }
        Location::Local(root) => {
            let launcher = Launcher::choose(&spec, &file.folder).await?;
            let lock = RunLock::take(root, &spec.series.name)?;
            let executor = LocalExecutor::new(launcher, root.clone(), spec.context.vcpus);
            (Arc::new(executor), Some(lock))
        }
        Location::S3 { .. } => {
            let settings = BatchSettings::from_spec(&spec)?;
            let api = AwsBatchApi::connect(spec.context.region.as_deref()).await;
            (Arc::new(BatchExecutor::new(Arc::new(api), settings)), None)
        }
    };
    with_storage_retries("reach the working location", || stores.working.probe())
        .await
        .map_err(CliError::Unreachable)?;

    let key = layout::status_file(&spec.series.name);
    let mut state = status_file::load(stores.working.as_ref(), &key).await?;
    state.api_version = "simseries.io/v1alpha1".into();
    state.kind = "LocalRunState".into();
    state.series = spec.series.name.clone();
    if options.rerun {
        state.rerun += 1;
    }
    status_file::save(stores.working.as_ref(), &key, &state).await?;

    let generation = spec_generation(&spec);
    let rerun = state.rerun_value();
    // A pass that failed to start (bad template, missing init files) starts again once what
    // it read has changed. Read only when `decide` may use it: resuming a running pass does not.
    let inputs = match uses_inputs(&state.status, generation, rerun.as_deref()) {
        true => Some(inputs_digest(&spec, &stores).await),
        false => None,
    };
    let actor = Actor::new(
        spec.clone(),
        locations.clone(),
        stores.clone(),
        executor.clone(),
        owner_of(&file.path),
    )
    .with_date(options.date);
    let mut status = state.status.clone();
    let mut driver = LocalDriver {
        actor,
        executor: executor.clone(),
        stores: stores.clone(),
        key,
        state,
        generation,
        rerun,
        inputs,
        reporter: Reporter::new(options.progress_bar, spec.parameters.retries),
    };
    let drove = drive(&spec, &mut status, &mut driver).await?;
    driver.reporter.finish();
    if drove.stopped == Stopped::Interrupted {
        executor.shutdown().await;
        return Ok(RunOutcome {
            status,
            table: String::new(),
            all_complete: false,
            interrupted: true,
            acted: drove.acted,
            log_folders: Vec::new(),
            local,
        });
    }
    let completeness = Completeness::read(&spec, &stores).await?;
    let (table, all_complete) = (completeness.render(), completeness.all_complete);
    let mut log_folders: Vec<String> = status
        .pass
        .iter()
        .flat_map(|p| &p.groups)
        .filter_map(|g| g.logs.as_ref())
        .map(|l| locations.working.url_of(&l.folder))
        .collect();
    log_folders.dedup();
    Ok(RunOutcome {
        status,
        table,
        all_complete,
        interrupted: false,
        acted: drove.acted,
        log_folders,
        local,
    })
}

/// This process as the driver of a pass: the status file keeps the status, progress lines
/// show the transitions, waits are slept (ending early when every local child is done), and
/// Ctrl-C or SIGTERM stops.
struct LocalDriver {
    actor: Actor,
    executor: Arc<dyn Executor>,
    stores: Stores,
    key: String,
    state: LocalState,
    generation: i64,
    rerun: Option<String>,
    inputs: Option<String>,
    reporter: Reporter,
}

impl Driver for LocalDriver {
    type Error = CliError;

    fn observe(&mut self, outcome: Outcome) -> Observation {
        Observation {
            now: Timestamp::now(),
            generation: self.generation,
            rerun: self.rerun.clone(),
            inputs: self.inputs.clone(),
            outcome,
        }
    }

    async fn persist(
        &mut self,
        status: &SimulationSeriesStatus,
        transitions: &[Transition],
    ) -> Result<(), CliError> {
        self.state.status = status.clone();
        status_file::save(self.stores.working.as_ref(), &self.key, &self.state).await?;
        self.reporter.persisted(status, transitions);
        Ok(())
    }

    async fn perform(&mut self, status: &SimulationSeriesStatus, step: Step) -> Next {
        self.reporter.step(status, &step, self.executor.live());
        if let Step::Wait { until } = step {
            return match self.wait(until, status).await {
                Waited::Elapsed => Next::Continue(Outcome::Resumed),
                // Every child has finished: look now rather than at the next poll.
                Waited::AllDone => Next::Continue(self.actor.act(status, &Step::Poll).await),
                Waited::Interrupted => Next::Stop(Stopped::Interrupted),
            };
        }
        tokio::select! {
            outcome = self.actor.act(status, &step) => Next::Continue(outcome),
            _ = interrupt() => Next::Stop(Stopped::Interrupted),
        }
    }
}

enum Waited {
    Elapsed,
    AllDone,
    Interrupted,
}

impl LocalDriver {
    /// Sleeps until `until`, waking early when every local child has finished.
    async fn wait(&mut self, until: Timestamp, status: &SimulationSeriesStatus) -> Waited {
        let polling = status
            .pass
            .as_ref()
            .is_some_and(|p| p.phase == Phase::Running && p.consecutive_errors == 0);
        loop {
            if polling && self.executor.live().is_some_and(|l| l.unfinished == 0) {
                return Waited::AllDone;
            }
            let left = until.duration_since(Timestamp::now());
            if left.is_negative() || left.is_zero() {
                return Waited::Elapsed;
            }
            let tick = Duration::try_from(left)
                .unwrap_or(Duration::ZERO)
                .min(Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = self.executor.changed() => {}
                _ = interrupt() => return Waited::Interrupted,
            }
            self.reporter.tick(self.executor.live(), until);
        }
    }
}

/// The owner tag of a local run: the spec file, within AWS's tag value rules.
fn owner_of(file: &Path) -> String {
    let path = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let text: String = format!("file:{}", path.display())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let start = text.len().saturating_sub(256);
    text[start..].to_string()
}
