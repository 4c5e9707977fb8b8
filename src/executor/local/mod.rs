//! The local executor: each array child is a process on this machine.
//!
//! A child runs the model's container image (with Docker or Podman, the dated folder mounted
//! at `/mnt`) or, without a container engine, `parameters.command` directly. Each child runs
//! in its own process group under a small `sh` wrapper that records its exit code in a file,
//! so the outcome survives a crash of `simseries run`; its output goes to a log file. Children
//! wait for a slot: at most `host cores / vcpus` run at once.
//!
//! The children's files are under `{name}/{date}/simseries/pass-{n}/children/`, the
//! scaffolding that `cleanJobs` removes.

pub mod child;
pub mod launcher;
pub mod process;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use tokio::sync::{Notify, Semaphore, watch};

use self::child::{ChildFiles, ChildLaunch, ChildState, LocalJob, dispatch, watch_orphan};
use self::launcher::Launcher;
use self::launcher::{container_name, container_scope};
use self::process::{GRACE, process_alive};
use super::{Executor, LiveCounts, PassContext, group_logs, storage_failure};
use crate::model::logfilter::LogFilter;
use crate::model::outcome::{ChildOutcome, Definition, Failure, GroupLogs, JobObservation};
use crate::model::status::{GroupJobs, JobRecord, JobState, Pass, StatusSummary};

/// Runs array children as local processes.
#[derive(Debug)]
pub struct LocalExecutor {
    launcher: Launcher,
    /// The local working root.
    root: PathBuf,
    slots: Arc<Semaphore>,
    /// Children left running by an earlier `simseries run` that found no free slot: no new
    /// child starts while any of them still runs, so the bound holds across restarts.
    slot_debt: Arc<AtomicUsize>,
    /// Passes whose children folder was scanned for such children.
    scanned: Mutex<HashSet<u32>>,
    jobs: Mutex<HashMap<String, Arc<LocalJob>>>,
    /// Set on shutdown (Ctrl-C): children killed then are not recorded, so they run again.
    stopping: Arc<AtomicBool>,
    changed: Arc<Notify>,
}

impl LocalExecutor {
    /// `root` is the local working location; `vcpus` of each child bounds the concurrency.
    pub fn new(launcher: Launcher, root: PathBuf, vcpus: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let slots = (cores / vcpus.max(1) as usize).max(1);
        LocalExecutor {
            launcher,
            root,
            slots: Arc::new(Semaphore::new(slots)),
            slot_debt: Arc::new(AtomicUsize::new(0)),
            scanned: Mutex::new(HashSet::new()),
            jobs: Mutex::new(HashMap::new()),
            stopping: Arc::new(AtomicBool::new(false)),
            changed: Arc::new(Notify::new()),
        }
    }

    fn children_dir(&self, context: &PassContext) -> PathBuf {
        self.root.join(context.folder.children(context.pass))
    }

    fn job_id(context: &PassContext, file_set_name: &str) -> String {
        format!("local-{}-{file_set_name}", context.pass)
    }

    /// Counts, once per pass and before any child of it starts, the children that an earlier
    /// `simseries run` left running — of every job of the pass, not only the one at hand —
    /// against the concurrency bound. Each holds a slot (or, past the bound, a debt that keeps
    /// new children waiting) until its process ends.
    fn count_running_orphans(&self, context: &PassContext) {
        if !self
            .scanned
            .lock()
            .expect("scanned lock")
            .insert(context.pass)
        {
            return;
        }
        let Ok(entries) = std::fs::read_dir(self.children_dir(context)) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "pid") {
                continue;
            }
            let Some(pid) = ChildFiles::at(path.with_extension("")).live_pid() else {
                continue;
            };
            let permit = self.slots.clone().try_acquire_owned().ok();
            if permit.is_none() {
                self.slot_debt.fetch_add(1, Ordering::SeqCst);
            }
            let debt = self.slot_debt.clone();
            tokio::spawn(async move {
                while process_alive(pid) {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                if permit.is_none() {
                    debt.fetch_sub(1, Ordering::SeqCst);
                }
                drop(permit);
            });
        }
    }

    /// The job in memory, or adopted from its files: finished children keep their outcome,
    /// children still running under a dead `simseries run` are waited for, the rest start.
    fn ensure(
        &self,
        context: &PassContext,
        record: &JobRecord,
    ) -> Result<(String, Arc<LocalJob>), Failure> {
        let id = Self::job_id(context, &record.file_set_name);
        if let Some(job) = self.jobs.lock().expect("jobs lock").get(&id) {
            return Ok((id, job.clone()));
        }
        self.count_running_orphans(context);
        let dir = self.children_dir(context);
        std::fs::create_dir_all(&dir).map_err(|e| {
            Failure::permanent(
                "WorkingLocationNotWritable",
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let outputs = self.root.join(context.folder.outputs());
        std::fs::create_dir_all(&outputs).map_err(|e| {
            Failure::permanent(
                "WorkingLocationNotWritable",
                format!("cannot create {}: {e}", outputs.display()),
            )
        })?;
        let size = record.array_size as usize;
        let (cancel, _) = watch::channel(record.terminated);
        let job = Arc::new(LocalJob {
            scope: container_scope(&self.root),
            pass: context.pass,
            file_set_name: record.file_set_name.clone(),
            children: Mutex::new(vec![ChildState::Pending; size]),
            cancel,
            pids: Mutex::new(HashMap::new()),
        });
        self.jobs
            .lock()
            .expect("jobs lock")
            .insert(id.clone(), job.clone());
        let mut launches = Vec::new();
        for index in 0..size {
            let files = ChildFiles::new(&dir, &record.file_set_name, index);
            if let Some(state) = files.recorded_state() {
                job.children.lock().expect("children lock")[index] = state;
            } else if let Some(pid) = files.live_pid() {
                job.children.lock().expect("children lock")[index] = ChildState::Running;
                job.pids.lock().expect("pids lock").insert(index, pid);
                tokio::spawn(watch_orphan(
                    job.clone(),
                    index,
                    pid,
                    files,
                    self.changed.clone(),
                ));
            } else if record.terminated {
                job.children.lock().expect("children lock")[index] = ChildState::Done {
                    code: None,
                    terminated: true,
                };
            } else {
                launches.push(ChildLaunch {
                    job: job.clone(),
                    index,
                    files,
                    launcher: self.launcher.clone(),
                    env: self.child_env(context, &record.file_set_name, index),
                    stopping: self.stopping.clone(),
                    changed: self.changed.clone(),
                });
            }
        }
        tokio::spawn(dispatch(
            launches,
            self.slots.clone(),
            self.slot_debt.clone(),
        ));
        Ok((id, job))
    }

    fn child_env(
        &self,
        context: &PassContext,
        file_set_name: &str,
        index: usize,
    ) -> Vec<(String, String)> {
        let dated = self.root.join(context.folder.root());
        let dated_str = format!("{}/", dated.display().to_string().trim_end_matches('/'));
        vec![
            ("SIMULATION_TYPE".into(), "LOCAL".into()),
            ("FILE_SET_NAME".into(), file_set_name.into()),
            ("JOB_ARRAY_INDEX".into(), index.to_string()),
            ("SIMSERIES_WORKING_DIR".into(), dated_str.clone()),
            (
                "SIMSERIES_INPUT".into(),
                format!("{dated_str}inputs/{file_set_name}_{index}.xml"),
            ),
            ("SIMSERIES_INPUTS_DIR".into(), format!("{dated_str}inputs/")),
            (
                "SIMSERIES_OUTPUTS_DIR".into(),
                format!("{dated_str}outputs/"),
            ),
            ("SIMSERIES_INITS_DIR".into(), format!("{dated_str}inits/")),
        ]
    }

    /// Stops every child without recording an outcome, so a later run starts them again
    /// (Ctrl-C). Waits until they are gone.
    async fn stop_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let jobs: Vec<Arc<LocalJob>> = self
            .jobs
            .lock()
            .expect("jobs lock")
            .values()
            .cloned()
            .collect();
        for job in &jobs {
            let _ = job.cancel.send(true);
            kill_job(job, &self.launcher).await;
        }
    }

    fn observe(id: &str, job: &LocalJob) -> JobObservation {
        let children = job.children.lock().expect("children lock");
        let mut summary = StatusSummary::default();
        for child in children.iter() {
            summary.add(child.job_state(), 1);
        }
        let total = children.len() as u32;
        let state = if summary.succeeded == total {
            JobState::Succeeded
        } else if summary.succeeded + summary.failed == total {
            JobState::Failed
        } else if summary.running > 0 {
            JobState::Running
        } else {
            JobState::Runnable
        };
        JobObservation {
            id: id.to_string(),
            state,
            summary,
            waiting_for: None,
        }
    }
}

/// Stops every running child of a job (its containers by name, since killing the engine's
/// client does not stop a container).
async fn kill_job(job: &LocalJob, launcher: &Launcher) {
    let (pids, indices): (Vec<u32>, Vec<usize>) = {
        let pids = job.pids.lock().expect("pids lock");
        (
            pids.values().copied().collect(),
            pids.keys().copied().collect(),
        )
    };
    let containers = match launcher {
        Launcher::Container { engine, .. } => Some((
            engine.as_str(),
            indices
                .into_iter()
                .map(|index| container_name(&job.scope, job.pass, &job.file_set_name, index))
                .collect(),
        )),
        Launcher::Command { .. } => None,
    };
    process::stop(&pids, containers).await;
}

impl Executor for LocalExecutor {
    fn register<'a>(
        &'a self,
        _context: &'a PassContext,
        group: &'a GroupJobs,
    ) -> BoxFuture<'a, Result<Definition, Failure>> {
        // No job definitions locally; the launcher is the definition.
        let definition = match &self.launcher {
            Launcher::Command { argv, .. } => format!("local:command:{}", argv.join(" ")),
            Launcher::Container { engine, image } => format!("local:{engine}:{image}"),
        };
        let _ = group;
        async move {
            Ok(Definition {
                id: definition,
                owned: false,
            })
        }
        .boxed()
    }

    fn submit<'a>(
        &'a self,
        context: &'a PassContext,
        _group: &'a GroupJobs,
        job: &'a JobRecord,
        // Finding a job again costs nothing locally: `ensure` always looks.
        _may_exist: bool,
    ) -> BoxFuture<'a, Result<String, Failure>> {
        async move { self.ensure(context, job).map(|(id, _)| id) }.boxed()
    }

    fn poll<'a>(
        &'a self,
        context: &'a PassContext,
        jobs: &'a [JobRecord],
    ) -> BoxFuture<'a, Result<Vec<JobObservation>, Failure>> {
        async move {
            let mut observed = Vec::new();
            for record in jobs.iter().filter(|j| j.id.is_some()) {
                let (id, job) = self.ensure(context, record)?;
                observed.push(Self::observe(&id, &job));
            }
            Ok(observed)
        }
        .boxed()
    }

    fn terminate<'a>(
        &'a self,
        context: &'a PassContext,
        jobs: &'a [JobRecord],
    ) -> BoxFuture<'a, Result<Vec<String>, Failure>> {
        async move {
            let mut terminated = Vec::new();
            for record in jobs {
                let (id, job) = self.ensure(context, record)?;
                let _ = job.cancel.send(true);
                kill_job(&job, &self.launcher).await;
                // Wait until every child has an outcome (pending ones end at once).
                let deadline = tokio::time::Instant::now() + GRACE * 2;
                while tokio::time::Instant::now() < deadline
                    && job
                        .children
                        .lock()
                        .expect("children lock")
                        .iter()
                        .any(|c| !matches!(c, ChildState::Done { .. }))
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                terminated.push(id);
            }
            Ok(terminated)
        }
        .boxed()
    }

    fn collect_logs<'a>(
        &'a self,
        context: &'a PassContext,
        pass: &'a Pass,
    ) -> BoxFuture<'a, Result<Vec<GroupLogs>, Failure>> {
        async move {
            let filter = LogFilter::parse(&context.spec.parameters.log_filter)
                .map_err(|e| Failure::permanent("InvalidLogFilter", e.to_string()))?;
            let dir = self.children_dir(context);
            let filter = Arc::new(filter);
            let mut saved = Vec::new();
            for group in &pass.groups {
                let children: Vec<(String, PathBuf)> = group
                    .jobs
                    .iter()
                    .flat_map(|job| {
                        (0..job.array_size as usize).map(|index| {
                            (
                                context.folder.log(context.pass, &job.file_set_name, index),
                                ChildFiles::new(&dir, &job.file_set_name, index).log,
                            )
                        })
                    })
                    .collect();
                let keys: Vec<String> = children.iter().map(|(key, _)| key.clone()).collect();
                // Collected first: a stream of closures' futures is not `Send` for every
                // lifetime.
                let saves: Vec<_> = children
                    .iter()
                    .map(|(key, log)| save_child_log(context, key, log, filter.clone()))
                    .collect();
                futures::stream::iter(saves)
                    .buffer_unordered(crate::storage::DEFAULT_CONCURRENCY)
                    .try_collect::<()>()
                    .await?;
                saved.push(group_logs(context, &group.group, keys));
            }
            Ok(saved)
        }
        .boxed()
    }

    fn children<'a>(
        &'a self,
        context: &'a PassContext,
        job: &'a JobRecord,
    ) -> BoxFuture<'a, Result<Vec<ChildOutcome>, Failure>> {
        async move {
            let dir = self.children_dir(context);
            let in_memory = job
                .id
                .as_ref()
                .and_then(|id| self.jobs.lock().expect("jobs lock").get(id).cloned());
            Ok((0..job.array_size as usize)
                .map(|index| {
                    let files = ChildFiles::new(&dir, &job.file_set_name, index);
                    let state = files.recorded_state().or_else(|| {
                        in_memory
                            .as_ref()
                            .map(|j| j.children.lock().expect("children lock")[index])
                    });
                    let state = state.unwrap_or(ChildState::Pending);
                    let (exit_code, reason) = match state {
                        s if s.succeeded() => (Some(0), None),
                        ChildState::Done {
                            terminated: true, ..
                        } => (None, Some("terminated by simseries".to_string())),
                        ChildState::Done { code, .. } => (code, None),
                        ChildState::Running | ChildState::Pending => (None, None),
                    };
                    ChildOutcome {
                        exit_code,
                        ..ChildOutcome::bare(index as u32, Some(state.job_state()), reason)
                    }
                })
                .collect())
        }
        .boxed()
    }

    fn clean<'a>(
        &'a self,
        context: &'a PassContext,
        _pass: &'a Pass,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        async move {
            let dir = self.children_dir(context);
            match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Failure::permanent(
                    "CleanFailed",
                    format!("cannot remove {}: {e}", dir.display()),
                )),
            }
        }
        .boxed()
    }

    fn live(&self) -> Option<LiveCounts> {
        let mut counts = LiveCounts::default();
        for job in self.jobs.lock().expect("jobs lock").values() {
            for child in job.children.lock().expect("children lock").iter() {
                match child {
                    c if c.succeeded() => counts.done += 1,
                    ChildState::Done { .. } => counts.failed += 1,
                    ChildState::Running => {
                        counts.running += 1;
                        counts.unfinished += 1;
                    }
                    ChildState::Pending => counts.unfinished += 1,
                }
            }
        }
        Some(counts)
    }

    fn changed(&self) -> BoxFuture<'_, ()> {
        async move { self.changed.notified().await }.boxed()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        async move { self.stop_all().await }.boxed()
    }
}

/// Saves one child's log under `key`, streamed from its output file and filtered line by
/// line: the whole of what it printed, never held in memory. A child that printed nothing
/// (or never started) gets an empty log.
async fn save_child_log(
    context: &PassContext,
    key: &str,
    log: &std::path::Path,
    filter: Arc<LogFilter>,
) -> Result<(), Failure> {
    let source = log.to_path_buf();
    let filtered = log.with_extension("log.filtered");
    let target = filtered.clone();
    let prepared = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
        let input = match std::fs::File::open(&source) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        match input {
            // Nothing to filter out: the output file is the log.
            Some(_) if filter.is_empty() => Ok(source),
            input => {
                let mut writer = std::io::BufWriter::new(std::fs::File::create(&target)?);
                if let Some(file) = input {
                    filter.copy(&mut std::io::BufReader::new(file), &mut writer)?;
                }
                std::io::Write::flush(&mut writer)?;
                Ok(target)
            }
        }
    })
    .await
    .map_err(|e| Failure::transient("LogsNotSaved", e.to_string()))?
    .map_err(|e| Failure::transient("LogsNotSaved", format!("filtering {}: {e}", log.display())))?;
    let written = crate::storage::write_from_file(context.working.as_ref(), key, &prepared).await;
    let _ = std::fs::remove_file(&filtered);
    written.map_err(|e| storage_failure("LogsNotSaved", &e))
}
