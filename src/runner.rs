//! `simseries run`: reconciles a series file to completion on this machine.
//!
//! The same decision function as the controller drives the pass; the status lives in a file in
//! the working location (`{name}/simseries/status.json`), written before every action, so a
//! second `simseries run` after a crash, a kill or Ctrl-C resumes where the first stopped.
//! Without a cluster, the generation is a digest of the spec, and `--rerun` bumps a counter
//! that stands for the `simseries.io/rerun` annotation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::act::Actor;
use crate::executor::Executor;
use crate::executor::batch::aws::AwsBatchApi;
use crate::executor::batch::{BatchExecutor, BatchSettings};
use crate::executor::local::{Launcher, LocalExecutor};
use crate::layout::Date;
use crate::location::Location;
use crate::prepare::{Locations, Stores, read_completeness};
use crate::reconcile::{Action, Event, Observation, decide};
use crate::spec::SimulationSeriesSpec;
use crate::specfile;
use crate::status::{Phase, SimulationSeriesStatus};
use crate::storage::{S3Options, Storage, StorageError};
use crate::validate::validate;

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

/// The local record of a series: what the status subresource holds in the cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocalState {
    api_version: String,
    kind: String,
    series: String,
    /// `--rerun` counter: stands for the `simseries.io/rerun` annotation.
    rerun: u64,
    status: SimulationSeriesStatus,
}

/// Key of the status file in the working location.
pub fn status_key(series: &str) -> String {
    format!("{series}/simseries/status.json")
}

/// The generation of a spec without a cluster: a digest of its content.
pub fn spec_generation(spec: &SimulationSeriesSpec) -> i64 {
    let bytes = serde_json::to_vec(spec).expect("a spec serializes");
    let digest = Sha256::digest(&bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 1) as i64
}

/// Runs the series of `options.file` to the end of a pass.
pub async fn run(options: RunOptions) -> Result<RunOutcome, String> {
    let file = specfile::read(&options.file).map_err(|e| e.to_string())?;
    let spec = Arc::new(file.resource.spec.clone());
    validate(&spec).map_err(|e| e.to_string())?;
    let locations = Locations::resolve(&spec, Some(&file.folder)).map_err(|e| e.to_string())?;
    let s3 = S3Options {
        fallback_region: spec.context.region.clone(),
        ..options.s3.clone()
    };
    let stores = Stores::open(&locations, &s3).await;

    // A local working folder runs the model here; an S3 one runs it on AWS Batch.
    let (executor, local, _lock): (
        Arc<dyn Executor>,
        Option<Arc<LocalExecutor>>,
        Option<RunLock>,
    ) = match &locations.working {
        Location::Local(root) => {
            let launcher = Launcher::choose(&spec, &file.folder).await?;
            let local = Arc::new(LocalExecutor::new(
                launcher,
                root.clone(),
                spec.context.vcpus,
            ));
            let lock = RunLock::take(root, &spec.series.name)?;
            (local.clone(), Some(local), Some(lock))
        }
        Location::S3 { .. } => {
            let settings = BatchSettings::from_spec(&spec).map_err(|e| e.to_string())?;
            let api = AwsBatchApi::connect(spec.context.region.as_deref()).await;
            (
                Arc::new(BatchExecutor::new(Arc::new(api), settings)),
                None,
                None,
            )
        }
    };
    with_storage_retries("reach the working location", || stores.working.probe())
        .await
        .map_err(|e| format!("{e}; check spec.context.workingLocation"))?;

    let key = status_key(&spec.series.name);
    let mut state = load_state(stores.working.as_ref(), &key).await?;
    state.api_version = "simseries.io/v1alpha1".into();
    state.kind = "LocalRunState".into();
    state.series = spec.series.name.clone();
    if options.rerun {
        state.rerun += 1;
    }
    save_state(stores.working.as_ref(), &key, &state).await?;

    let mut actor = Actor::new(spec.clone(), locations.clone(), stores.clone(), executor);
    actor.date = options.date;
    actor.owner = owner_of(&file.path);
    let generation = spec_generation(&spec);
    let rerun = (state.rerun > 0).then(|| state.rerun.to_string());
    // A pass that failed to start (bad template, missing init files) starts again once what
    // it read has changed. Read only when `decide` may use it: resuming a running pass does not.
    let inputs = match crate::reconcile::uses_inputs(&state.status, generation, rerun.as_deref()) {
        true => Some(crate::prepare::inputs_digest(&spec, &stores).await),
        false => None,
    };
    let mut reporter = Reporter::new(options.progress_bar, spec.parameters.retries);
    let mut event = Event::Resumed;
    let mut interrupted = false;
    let mut acted = false;

    loop {
        let decision = decide(
            &spec,
            &state.status,
            &Observation {
                now: Timestamp::now(),
                generation,
                rerun: rerun.clone(),
                inputs: inputs.clone(),
                event,
            },
        );
        if decision.status != state.status {
            state.status = decision.status;
            save_state(stores.working.as_ref(), &key, &state).await?;
            crate::faults::crash_point("after-status-write");
        }
        if decision.action == Action::Done && !acted {
            // The pass for this spec and rerun value had finished before: nothing to do.
            break;
        }
        acted = true;
        reporter.show(&state.status, &decision.action, local.as_deref());
        event = match decision.action {
            Action::Done => break,
            Action::Wait { until } => {
                match wait(until, local.as_deref(), &mut reporter, &state.status).await {
                    Waited::Elapsed => Event::Resumed,
                    // Every child has finished: look now rather than at the next poll.
                    Waited::AllDone => actor.act(&state.status, &Action::Poll).await,
                    Waited::Interrupted => {
                        interrupted = true;
                        break;
                    }
                }
            }
            action => {
                let acting = actor.act(&state.status, &action);
                tokio::select! {
                    event = acting => event,
                    _ = interrupt() => {
                        interrupted = true;
                        break;
                    }
                }
            }
        };
    }
    if interrupted {
        reporter.finish();
        if let Some(local) = &local {
            local.shutdown().await;
        }
        save_state(stores.working.as_ref(), &key, &state).await?;
        return Ok(RunOutcome {
            status: state.status,
            table: String::new(),
            all_complete: false,
            interrupted: true,
            acted,
            log_folders: Vec::new(),
            local: local.is_some(),
        });
    }
    reporter.finish();
    let (table, all_complete) = completeness_table(&spec, &stores).await?;
    let mut log_folders: Vec<String> = state
        .status
        .pass
        .iter()
        .flat_map(|p| &p.groups)
        .filter_map(|g| g.logs.as_ref())
        .map(|l| locations.working.url_of(&l.folder))
        .collect();
    log_folders.dedup();
    Ok(RunOutcome {
        status: state.status,
        table,
        all_complete,
        interrupted: false,
        acted,
        log_folders,
        local: local.is_some(),
    })
}

enum Waited {
    Elapsed,
    AllDone,
    Interrupted,
}

/// Sleeps until `until`, waking early when every local child has finished.
async fn wait(
    until: Timestamp,
    local: Option<&LocalExecutor>,
    reporter: &mut Reporter,
    status: &SimulationSeriesStatus,
) -> Waited {
    let polling = status
        .pass
        .as_ref()
        .is_some_and(|p| p.phase == Phase::Running && p.consecutive_errors == 0);
    loop {
        if polling && local.is_some_and(LocalExecutor::all_done) {
            return Waited::AllDone;
        }
        let left = until.duration_since(Timestamp::now());
        if left.is_negative() || left.is_zero() {
            return Waited::Elapsed;
        }
        let tick = Duration::try_from(left)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(1));
        let changed = async {
            match local {
                Some(local) => local.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = changed => {}
            _ = interrupt() => return Waited::Interrupted,
        }
        reporter.tick(local, until);
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

/// Ctrl-C or SIGTERM.
async fn interrupt() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Retries `call` while storage is throttled or out of reach (2 s doubling to 5 min, said on
/// stderr), so a pass outlives an S3 outage instead of dying on its status file; Ctrl-C stops.
async fn with_storage_retries<T, F, Fut>(what: &str, mut call: F) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StorageError>>,
{
    let mut wait = Duration::from_secs(2);
    loop {
        match call().await {
            Err(e) if e.kind.is_transient() => {
                eprintln!(
                    "simseries: cannot {what} ({e}); trying again in {}s",
                    wait.as_secs()
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = interrupt() => return Err(e),
                }
                wait = (wait * 2).min(Duration::from_secs(300));
            }
            result => return result,
        }
    }
}

async fn load_state(working: &dyn Storage, key: &str) -> Result<LocalState, String> {
    match with_storage_retries("read the status file", || working.read(key)).await {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{}: not a simseries status file ({e}); move it away to start the series afresh",
                working.location().url_of(key)
            )
        }),
        Err(e) if e.is_not_found() => Ok(LocalState::default()),
        Err(e) => Err(format!("cannot read the status file: {e}")),
    }
}

async fn save_state(working: &dyn Storage, key: &str, state: &LocalState) -> Result<(), String> {
    let body = serde_json::to_vec_pretty(state).expect("state serializes");
    with_storage_retries("write the status file", || working.write(key, body.clone()))
        .await
        .map_err(|e| {
            format!(
                "cannot write the status file: {e}; check that spec.context.workingLocation is writable"
            )
        })
}

/// One `simseries run` per series and working folder at a time: an exclusive OS lock
/// (`flock`) on `{name}/simseries/run.lock`, held while the process lives. The kernel
/// releases it when the holder dies, however it dies, so there is no stale lock to judge,
/// and the file itself is never removed (removing it would let a second run lock a new file
/// while the first still holds the old one).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    pub fn take(root: &Path, series: &str) -> Result<RunLock, String> {
        let dir = root.join(series).join("simseries");
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "cannot create {}: {e}; check that spec.context.workingLocation is writable",
                dir.display()
            )
        })?;
        let path = dir.join("run.lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                };
                return Err(format!(
                    "another `simseries run`{who} is working on series {series} in this working folder; wait for it or stop it"
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        // The holder's PID, for the message above; informative only.
        use std::io::{Seek, Write};
        let mut writer = &file;
        let _ = writer
            .set_len(0)
            .and_then(|()| writer.seek(std::io::SeekFrom::Start(0)).map(drop))
            .and_then(|()| writeln!(writer, "{}", std::process::id()));
        Ok(RunLock { _file: file })
    }
}

/// Completeness per condition and output extension, `n/N (p %)`, from the outputs in the
/// source planning uses (`series.manifestSource`).
pub async fn completeness_table(
    spec: &SimulationSeriesSpec,
    stores: &Stores,
) -> Result<(String, bool), String> {
    let series = validate(spec).map_err(|e| e.to_string())?;
    // The same source as planning: the table and the plan never disagree.
    let source = spec.series.manifest_source;
    let loaded = read_completeness(&series, stores, source)
        .await
        .map_err(|e| e.to_string())?;
    let table = &loaded.table;
    let seeds = series.seeds.len();
    let mut out = comfy_table::Table::new();
    out.load_style(comfy_table::presets::NOTHING);
    let mut header = vec!["GROUP".to_string(), "CONDITION".to_string()];
    header.extend(spec.series.extensions.iter().cloned());
    header.push("COMPLETE RUNS".into());
    out.set_header(header);
    let mut all_complete = true;
    let mut totals = vec![0usize; spec.series.extensions.len() + 1];
    let mut planned = 0usize;
    for group in series.groups.iter().filter(|g| !g.skipped) {
        for &condition in &group.conditions {
            let mut row = vec![
                group.name.clone(),
                spec.series.conditions[condition].key.clone(),
            ];
            for (e, total) in totals
                .iter_mut()
                .enumerate()
                .take(spec.series.extensions.len())
            {
                let n = (0..seeds)
                    .filter(|&slot| table.has_extension(condition, slot, e))
                    .count();
                *total += n;
                row.push(fraction(n, seeds));
            }
            let complete = (0..seeds)
                .filter(|&slot| table.state(condition, slot) == crate::manifest::RunState::Complete)
                .count();
            all_complete &= complete == seeds;
            totals[spec.series.extensions.len()] += complete;
            planned += seeds;
            row.push(fraction(complete, seeds));
            out.add_row(row);
        }
    }
    let mut total_row = vec!["TOTAL".to_string(), String::new()];
    total_row.extend(totals.iter().map(|n| fraction(*n, planned)));
    out.add_row(total_row);
    Ok((out.to_string(), all_complete))
}

fn fraction(n: usize, total: usize) -> String {
    let percent = if total == 0 {
        100.0
    } else {
        n as f64 * 100.0 / total as f64
    };
    format!("{n}/{total} ({percent:.1} %)")
}

/// Progress on a terminal, plain lines elsewhere.
struct Reporter {
    bar: Option<ProgressBar>,
    last_line: String,
    retries: u32,
}

impl Reporter {
    fn new(progress_bar: bool, retries: u32) -> Self {
        let bar = progress_bar.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} inputs {msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Reporter {
            bar,
            last_line: String::new(),
            retries: retries.max(1),
        }
    }

    fn line(&mut self, line: String) {
        if line == self.last_line {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(&line),
            None => eprintln!("{line}"),
        }
        self.last_line = line;
    }

    /// A line per phase change and poll.
    fn show(
        &mut self,
        status: &SimulationSeriesStatus,
        action: &Action,
        local: Option<&LocalExecutor>,
    ) {
        let Some(pass) = &status.pass else { return };
        let (mut done, mut failed, mut running, total) = counts(status);
        if pass.phase == Phase::Running
            && let Some(local) = local
        {
            // Local children report as they change; the status only at polls.
            (done, failed, running) = local.live_counts();
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position((done + failed) as u64);
            bar.set_message(format!(
                "({done} done, {failed} failed, {running} running) {:?}",
                pass.phase
            ));
            if matches!(action, Action::Poll | Action::Wait { .. }) {
                // The bar shows polls; lines are for phase changes.
                return;
            }
        }
        let what = match action {
            Action::Plan => "planning".to_string(),
            Action::WriteInputs => format!("writing inputs to {}", pass.date),
            Action::CopyInits => "copying init files".into(),
            Action::Register { .. } | Action::Submit { .. } => "submitting".into(),
            Action::Poll => format!("poll {}", pass.attempts + 1),
            Action::Wait { .. } if pass.phase == Phase::Running => format!(
                "running: {done}/{total} inputs done, {failed} failed, {running} running (after poll {} of {})",
                pass.attempts, self.retries
            ),
            Action::Wait { .. } => "waiting".into(),
            Action::Terminate { jobs } => format!(
                "terminating {} unfinished job(s) after the last poll",
                jobs.len()
            ),
            Action::CollectLogs => "saving logs".into(),
            Action::Clean => "cleaning up".into(),
            Action::Recount => "counting complete runs".into(),
            Action::Done => format!("{:?}", pass.phase).to_lowercase(),
        };
        self.line(format!("simseries: pass {}: {what}", pass.number));
    }

    /// Live counts between polls (local children report as they change).
    fn tick(&mut self, local: Option<&LocalExecutor>, next_poll: Timestamp) {
        if let (Some(bar), Some(local)) = (&self.bar, local) {
            let (done, failed, running) = local.live_counts();
            let left = next_poll.duration_since(Timestamp::now()).as_secs().max(0);
            bar.set_position((done + failed) as u64);
            bar.set_message(format!(
                "({done} done, {failed} failed, {running} running) Running, next poll in {left}s"
            ));
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// (done, failed, running, total) inputs of the pass, as last observed.
fn counts(status: &SimulationSeriesStatus) -> (u32, u32, u32, u32) {
    let Some(pass) = &status.pass else {
        return (0, 0, 0, 0);
    };
    let mut out = (0, 0, 0, 0);
    for job in pass.groups.iter().flat_map(|g| &g.jobs) {
        out.3 += job.array_size;
        if let Some(s) = &job.summary {
            out.0 += s.succeeded;
            out.1 += s.failed;
            out.2 += s.running + s.starting;
        }
    }
    out
}
