//! The local executor: each array child is a process on this machine.
//!
//! A child runs the model's container image (with Docker or Podman, the dated folder mounted
//! at `/mnt`) or, without a container engine, `parameters.command` directly. Each child runs
//! in its own process group under a small `sh` wrapper that records its exit code in a file,
//! so the outcome survives a crash of `simseries run`; its output goes to a log file. Children
//! wait for a slot: at most `host cores / vcpus` run at once.
//!
//! Files of a job, under `{name}/{date}/simseries/pass-{n}/children/` (the scaffolding that
//! `cleanJobs` removes): `{fileSetName}_{index}.log` (output), `.exit` (exit code or
//! `terminated`), `.pid` (process group).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Notify, Semaphore, watch};

use super::{ChildOutcome, Definition, Executor, PassContext, save_group_logs};
use crate::logfilter::LogFilter;
use crate::reconcile::{Failure, GroupLogs, JobObservation};
use crate::spec::SimulationSeriesSpec;
use crate::status::{GroupJobs, JobRecord, Pass, StatusSummary};

/// Time a terminated child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// Runs the model once simseries has recorded this wrapper's PID, then writes the exit code
/// next to the log, so the outcome survives the death of `simseries run`.
///
/// The wait closes a race: a `simseries run` killed between starting a child and writing its
/// PID would leave a running child no restart can find, and the restart would start the
/// input again. Here a child whose PID was never recorded gives up after a minute without
/// running the model (and without an exit file), and only the wrapper whose PID the file
/// names ever runs it.
const WRAPPER: &str = r#"i=0; while [ "$(cat "$SIMSERIES_PID_FILE" 2>/dev/null)" != "$$" ]; do i=$((i+1)); if [ "$i" -gt 1200 ]; then exit 0; fi; sleep 0.05; done; "$@"; code=$?; printf '%s\n' "$code" > "$SIMSERIES_EXIT_FILE.tmp" && mv "$SIMSERIES_EXIT_FILE.tmp" "$SIMSERIES_EXIT_FILE"; exit $code"#;

/// How children are started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launcher {
    /// `parameters.command`, run in `cwd` (the spec file's folder).
    Command { argv: Vec<String>, cwd: PathBuf },
    /// `parameters.image`, run by `engine` (`docker` or `podman`).
    Container { engine: String, image: String },
}

impl Launcher {
    /// A container engine when the spec names an image and one answers; else the command.
    /// `SIMSERIES_CONTAINER_ENGINE` names the engine to use, or `none` for none.
    pub async fn choose(spec: &SimulationSeriesSpec, spec_dir: &Path) -> Result<Launcher, String> {
        let parameters = &spec.parameters;
        if let Some(image) = &parameters.image {
            let engines = match std::env::var("SIMSERIES_CONTAINER_ENGINE") {
                Ok(engine) if engine == "none" => vec![],
                Ok(engine) => vec![engine],
                Err(_) => vec!["docker".to_string(), "podman".to_string()],
            };
            for engine in engines {
                if engine_answers(&engine).await {
                    return Ok(Launcher::Container {
                        engine,
                        image: image.clone(),
                    });
                }
            }
        }
        match &parameters.command {
            Some(argv) if !argv.is_empty() => {
                check_program(&argv[0], spec_dir)?;
                Ok(Launcher::Command {
                    argv: argv.clone(),
                    cwd: spec_dir.to_path_buf(),
                })
            }
            _ if parameters.image.is_some() => Err(
                "spec.parameters.image needs a running container engine (docker or podman) and none answers; give spec.parameters.command to run the model directly".into(),
            ),
            _ => Err("nothing to run locally: give spec.parameters.command (or spec.parameters.image with docker or podman)".into()),
        }
    }
}

async fn engine_answers(engine: &str) -> bool {
    let probe = tokio::process::Command::new(engine)
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    matches!(tokio::time::timeout(Duration::from_secs(10), probe).await, Ok(Ok(s)) if s.success())
}

/// A missing program is reported before anything is written, not as N failed children.
fn check_program(program: &str, cwd: &Path) -> Result<(), String> {
    let found = if program.contains('/') {
        cwd.join(program).is_file()
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
            .unwrap_or(false)
    };
    if found {
        Ok(())
    } else {
        Err(format!(
            "spec.parameters.command: program {program:?} not found (looked in PATH{}); install it or fix the command",
            if program.contains('/') {
                format!(" and relative to {}", cwd.display())
            } else {
                String::new()
            }
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChildState {
    Pending,
    Running,
    Done { code: Option<i32>, terminated: bool },
}

impl ChildState {
    fn succeeded(self) -> bool {
        matches!(
            self,
            ChildState::Done {
                code: Some(0),
                terminated: false
            }
        )
    }
}

#[derive(Debug)]
struct LocalJob {
    pass: u32,
    file_set_name: String,
    children: Mutex<Vec<ChildState>>,
    cancel: watch::Sender<bool>,
    pids: Mutex<HashMap<usize, u32>>,
}

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
        self.root
            .join(context.folder.scaffolding())
            .join(format!("pass-{}", context.pass))
            .join("children")
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
    pub async fn shutdown(&self) {
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
        for state in children.iter() {
            match state {
                ChildState::Pending => summary.runnable += 1,
                ChildState::Running => summary.running += 1,
                s if s.succeeded() => summary.succeeded += 1,
                ChildState::Done { .. } => summary.failed += 1,
            }
        }
        let total = children.len() as u32;
        let state = if summary.succeeded == total {
            "SUCCEEDED"
        } else if summary.succeeded + summary.failed == total {
            "FAILED"
        } else if summary.running > 0 {
            "RUNNING"
        } else {
            "RUNNABLE"
        };
        JobObservation {
            id: id.to_string(),
            state: state.to_string(),
            summary,
        }
    }
}

/// The files of one child.
#[derive(Debug, Clone)]
struct ChildFiles {
    log: PathBuf,
    exit: PathBuf,
    pid: PathBuf,
}

impl ChildFiles {
    fn new(dir: &Path, file_set_name: &str, index: usize) -> Self {
        Self::at(dir.join(format!("{file_set_name}_{index}")))
    }

    /// The files of the child whose files are named `{base}.log`, `.exit` and `.pid`.
    fn at(base: PathBuf) -> Self {
        ChildFiles {
            log: base.with_extension("log"),
            exit: base.with_extension("exit"),
            pid: base.with_extension("pid"),
        }
    }

    fn recorded_state(&self) -> Option<ChildState> {
        let text = std::fs::read_to_string(&self.exit).ok()?;
        let text = text.trim();
        Some(if text == "terminated" {
            ChildState::Done {
                code: None,
                terminated: true,
            }
        } else {
            ChildState::Done {
                code: text.parse().ok(),
                terminated: false,
            }
        })
    }

    fn record(&self, state: ChildState) {
        let text = match state {
            ChildState::Done {
                terminated: true, ..
            } => "terminated".to_string(),
            ChildState::Done {
                code: Some(code), ..
            } => code.to_string(),
            _ => "-1".to_string(),
        };
        let temp = self.exit.with_extension("exit.tmp");
        if std::fs::write(&temp, format!("{text}\n")).is_ok() {
            let _ = std::fs::rename(&temp, &self.exit);
        }
    }

    /// The process group of a child started by an earlier `simseries run` and still running.
    fn live_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(&self.pid)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        // The wrapper's environment names this child's exit file; a reused PID would not.
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let marker = self.exit.display().to_string();
        let ours = !cmdline.is_empty()
            && environ
                .split(|b| *b == 0)
                .any(|entry| entry == format!("SIMSERIES_EXIT_FILE={marker}").as_bytes());
        ours.then_some(pid)
    }
}

struct ChildLaunch {
    job: Arc<LocalJob>,
    index: usize,
    files: ChildFiles,
    launcher: Launcher,
    env: Vec<(String, String)>,
    stopping: Arc<AtomicBool>,
    changed: Arc<Notify>,
}

/// Starts a job's children in index order, each when a slot is free (as a batch queue
/// would); after a termination the rest end without starting.
async fn dispatch(launches: Vec<ChildLaunch>, slots: Arc<Semaphore>, debt: Arc<AtomicUsize>) {
    for launch in launches {
        let mut cancel = launch.job.cancel.subscribe();
        let slot = async {
            loop {
                let permit = slots.clone().acquire_owned().await.ok()?;
                if debt.load(Ordering::SeqCst) == 0 {
                    return Some(permit);
                }
                // Orphans past the bound still run: give the slot back and wait.
                drop(permit);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let permit = tokio::select! {
            permit = slot => permit,
            _ = cancel.wait_for(|c| *c) => None,
        };
        match permit {
            Some(permit) if !*cancel.borrow() => {
                tokio::spawn(launch.run(permit));
            }
            _ => launch.finish(ChildState::Done {
                code: None,
                terminated: true,
            }),
        }
    }
}

impl ChildLaunch {
    async fn run(self, _permit: tokio::sync::OwnedSemaphorePermit) {
        let state = match self.spawn().await {
            Ok(state) => state,
            Err(message) => {
                append_log(
                    &self.files.log,
                    &format!("simseries: cannot start the child: {message}\n"),
                );
                ChildState::Done {
                    code: None,
                    terminated: false,
                }
            }
        };
        self.finish(state);
    }

    async fn spawn(&self) -> Result<ChildState, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.files.log)
            .map_err(|e| format!("cannot open {}: {e}", self.files.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg(WRAPPER)
            .arg("simseries-child")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .env("SIMSERIES_EXIT_FILE", &self.files.exit)
            .env("SIMSERIES_PID_FILE", &self.files.pid)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        match &self.launcher {
            Launcher::Command { argv, cwd } => {
                command.args(argv).current_dir(cwd);
            }
            Launcher::Container { engine, image } => {
                let dated = self
                    .env
                    .iter()
                    .find(|(k, _)| k == "SIMSERIES_WORKING_DIR")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                command
                    .arg(engine)
                    .args(["run", "--rm", "--init", "--name"])
                    .arg(container_name(
                        self.job.pass,
                        &self.job.file_set_name,
                        self.index,
                    ))
                    .arg("-v")
                    .arg(format!("{}:/mnt", dated.trim_end_matches('/')));
                for key in ["SIMULATION_TYPE", "FILE_SET_NAME", "JOB_ARRAY_INDEX"] {
                    if let Some((k, v)) = self.env.iter().find(|(k, _)| k == key) {
                        command.arg("-e").arg(format!("{k}={v}"));
                    }
                }
                command.arg(image);
            }
        }
        let mut child = command.spawn().map_err(|e| format!("sh: {e}"))?;
        if let Some(pid) = child.id() {
            // Whole or not at all: the wrapper compares the file with its own PID.
            let temp = self.files.pid.with_extension("pid.tmp");
            let _ = std::fs::write(&temp, pid.to_string())
                .and_then(|()| std::fs::rename(&temp, &self.files.pid));
            self.job
                .pids
                .lock()
                .expect("pids lock")
                .insert(self.index, pid);
        }
        self.set(ChildState::Running);
        let status = child.wait().await.map_err(|e| e.to_string())?;
        self.job.pids.lock().expect("pids lock").remove(&self.index);
        let terminated = *self.job.cancel.borrow();
        Ok(ChildState::Done {
            code: status.code(),
            terminated: terminated && !status.success(),
        })
    }

    fn set(&self, state: ChildState) {
        self.job.children.lock().expect("children lock")[self.index] = state;
        self.changed.notify_waiters();
    }

    fn finish(&self, state: ChildState) {
        if self.stopping.load(Ordering::SeqCst) {
            // Interrupted by the user, not by the series: leave no outcome, so it runs again.
            let _ = std::fs::remove_file(&self.files.exit);
            let _ = std::fs::remove_file(&self.files.pid);
            return;
        }
        // The wrapper wrote the exit code itself unless it was killed; termination wins.
        let state = match state {
            ChildState::Done {
                terminated: true, ..
            } => state,
            _ => self.files.recorded_state().unwrap_or(state),
        };
        self.files.record(state);
        self.set(state);
    }
}

/// Killing the engine's client does not stop a container, so each has a name to kill it by.
fn container_name(pass: u32, file_set_name: &str, index: usize) -> String {
    format!("simseries-p{pass}-{file_set_name}_{index}")
}

/// Waits for a child left running by an earlier `simseries run`, then reads its exit file.
async fn watch_orphan(
    job: Arc<LocalJob>,
    index: usize,
    pid: u32,
    files: ChildFiles,
    changed: Arc<Notify>,
) {
    while process_alive(pid) && files.recorded_state().is_none() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let state = files.recorded_state().unwrap_or(ChildState::Done {
        code: None,
        terminated: *job.cancel.borrow(),
    });
    if files.recorded_state().is_none() {
        files.record(state);
    }
    job.pids.lock().expect("pids lock").remove(&index);
    job.children.lock().expect("children lock")[index] = state;
    changed.notify_waiters();
}

/// Whether process `pid` runs (exists and is not a zombie waiting to be reaped).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn append_log(path: &Path, text: &str) {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(text.as_bytes());
    }
}

/// SIGTERM to every running child's process group, SIGKILL after the grace period.
async fn kill_job(job: &LocalJob, launcher: &Launcher) {
    let pids: Vec<u32> = job
        .pids
        .lock()
        .expect("pids lock")
        .values()
        .copied()
        .collect();
    if pids.is_empty() {
        return;
    }
    if let Launcher::Container { engine, .. } = launcher {
        // Killing the client does not stop a container; name it.
        let indices: Vec<usize> = job
            .pids
            .lock()
            .expect("pids lock")
            .keys()
            .copied()
            .collect();
        for index in indices {
            let name = container_name(job.pass, &job.file_set_name, index);
            let _ = tokio::process::Command::new(engine)
                .args(["kill", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
    }
    signal_groups(&pids, "TERM").await;
    let deadline = tokio::time::Instant::now() + GRACE;
    while tokio::time::Instant::now() < deadline {
        if pids
            .iter()
            .all(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal_groups(&pids, "KILL").await;
}

async fn signal_groups(pids: &[u32], signal: &str) {
    let mut command = tokio::process::Command::new("kill");
    command.arg(format!("-{signal}")).arg("--");
    for pid in pids {
        command.arg(format!("-{pid}"));
    }
    let _ = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
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
            let mut saved = Vec::new();
            for group in &pass.groups {
                let mut objects = Vec::new();
                for job in &group.jobs {
                    for index in 0..job.array_size as usize {
                        let files = ChildFiles::new(&dir, &job.file_set_name, index);
                        let text = std::fs::read(&files.log)
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_default();
                        objects.push((
                            context.folder.log(context.pass, &job.file_set_name, index),
                            filter.apply(&text).into_bytes(),
                        ));
                    }
                }
                saved.push(save_group_logs(context, &group.group, objects).await?);
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
                    let (state, exit_code, reason) = match state {
                        Some(s) if s.succeeded() => ("SUCCEEDED", Some(0), None),
                        Some(ChildState::Done {
                            terminated: true, ..
                        }) => ("FAILED", None, Some("terminated by simseries".to_string())),
                        Some(ChildState::Done { code, .. }) => ("FAILED", code, None),
                        Some(ChildState::Running) => ("RUNNING", None, None),
                        Some(ChildState::Pending) | None => ("RUNNABLE", None, None),
                    };
                    ChildOutcome {
                        index: index as u32,
                        state: state.to_string(),
                        exit_code,
                        reason,
                        id: None,
                    }
                })
                .collect())
        }
        .boxed()
    }

    fn release<'a>(
        &'a self,
        _context: &'a PassContext,
        _pass: &'a Pass,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        // Nothing is registered locally.
        async { Ok(()) }.boxed()
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
}

impl LocalExecutor {
    /// Resolves when any child changes state (used to end a pass early locally).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// (succeeded, failed, running) children of the jobs in memory, right now.
    pub fn live_counts(&self) -> (u32, u32, u32) {
        let mut counts = (0, 0, 0);
        for job in self.jobs.lock().expect("jobs lock").values() {
            for child in job.children.lock().expect("children lock").iter() {
                match child {
                    c if c.succeeded() => counts.0 += 1,
                    ChildState::Done { .. } => counts.1 += 1,
                    ChildState::Running => counts.2 += 1,
                    ChildState::Pending => {}
                }
            }
        }
        counts
    }

    /// Whether every child of every job in memory has an outcome.
    pub fn all_done(&self) -> bool {
        self.jobs.lock().expect("jobs lock").values().all(|job| {
            job.children
                .lock()
                .expect("children lock")
                .iter()
                .all(|c| matches!(c, ChildState::Done { .. }))
        })
    }
}
