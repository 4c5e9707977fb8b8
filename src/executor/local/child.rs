//! One array child as a process: the `sh` wrapper that records its exit code in a file (so
//! the outcome survives a crash of `simseries run`), the files of the exit-file protocol, the
//! dispatch of children to free slots, and the watch over children an earlier run left behind.
//!
//! Files of a child, under `{name}/{date}/simseries/pass-{n}/children/`:
//! `{fileSetName}_{index}.log` (output), `.exit` (exit code or `terminated`), `.pid`
//! (process group).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};

use super::launcher::{Launcher, container_name};
use super::process::process_alive;
use crate::model::status::JobState;

/// Why a child could not be started or waited for; its log says so, and the child counts as
/// failed (no exit code).
#[derive(Debug, thiserror::Error)]
pub(super) enum SpawnError {
    #[error("cannot open {}: {source}", path.display())]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sh: {0}")]
    Start(std::io::Error),
    #[error("waiting for the child: {0}")]
    Wait(std::io::Error),
}

/// Runs the model once simseries has recorded this wrapper's PID, then writes the exit code
/// next to the log, so the outcome survives the death of `simseries run`.
///
/// The wait closes a race: a `simseries run` killed between starting a child and writing its
/// PID would leave a running child no restart can find, and the restart would start the
/// input again. Here a child whose PID was never recorded gives up after a minute without
/// running the model (and without an exit file), and only the wrapper whose PID the file
/// names ever runs it.
pub(super) const WRAPPER: &str = r#"i=0; while [ "$(cat "$SIMSERIES_PID_FILE" 2>/dev/null)" != "$$" ]; do i=$((i+1)); if [ "$i" -gt 1200 ]; then exit 0; fi; sleep 0.05; done; "$@"; code=$?; printf '%s\n' "$code" > "$SIMSERIES_EXIT_FILE.tmp" && mv "$SIMSERIES_EXIT_FILE.tmp" "$SIMSERIES_EXIT_FILE"; exit $code"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChildState {
    Pending,
    Running,
    Done { code: Option<i32>, terminated: bool },
}

impl ChildState {
    pub(super) fn succeeded(self) -> bool {
        matches!(
            self,
            ChildState::Done {
                code: Some(0),
                terminated: false
            }
        )
    }

    /// The state AWS Batch would report for such a child.
    pub(super) fn job_state(self) -> JobState {
        match self {
            ChildState::Pending => JobState::Runnable,
            ChildState::Running => JobState::Running,
            s if s.succeeded() => JobState::Succeeded,
            ChildState::Done { .. } => JobState::Failed,
        }
    }
}

#[derive(Debug)]
pub(super) struct LocalJob {
    /// Tells this working folder's containers from another's (see `container_scope`).
    pub(super) scope: String,
    pub(super) pass: u32,
    pub(super) file_set_name: String,
    pub(super) children: Mutex<Vec<ChildState>>,
    pub(super) cancel: watch::Sender<bool>,
    pub(super) pids: Mutex<HashMap<usize, u32>>,
}

/// The files of one child.
#[derive(Debug, Clone)]
pub(super) struct ChildFiles {
    pub(super) log: PathBuf,
    pub(super) exit: PathBuf,
    pub(super) pid: PathBuf,
}

impl ChildFiles {
    pub(super) fn new(dir: &Path, file_set_name: &str, index: usize) -> Self {
        Self::at(dir.join(format!("{file_set_name}_{index}")))
    }

    /// The files of the child whose files are named `{base}.log`, `.exit` and `.pid`.
    pub(super) fn at(base: PathBuf) -> Self {
        ChildFiles {
            log: base.with_extension("log"),
            exit: base.with_extension("exit"),
            pid: base.with_extension("pid"),
        }
    }

    pub(super) fn recorded_state(&self) -> Option<ChildState> {
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

    pub(super) fn record(&self, state: ChildState) {
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
    pub(super) fn live_pid(&self) -> Option<u32> {
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

pub(super) struct ChildLaunch {
    pub(super) job: Arc<LocalJob>,
    pub(super) index: usize,
    pub(super) files: ChildFiles,
    pub(super) launcher: Launcher,
    pub(super) env: Vec<(String, String)>,
    pub(super) stopping: Arc<AtomicBool>,
    pub(super) changed: Arc<Notify>,
}

/// Starts a job's children in index order, each when a slot is free (as a batch queue
/// would); after a termination the rest end without starting.
pub(super) async fn dispatch(
    launches: Vec<ChildLaunch>,
    slots: Arc<Semaphore>,
    debt: Arc<AtomicUsize>,
) {
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
    pub(super) async fn run(self, _permit: tokio::sync::OwnedSemaphorePermit) {
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

    pub(super) async fn spawn(&self) -> Result<ChildState, SpawnError> {
        let open_log = |source| SpawnError::Log {
            path: self.files.log.clone(),
            source,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.files.log)
            .map_err(open_log)?;
        let err = log.try_clone().map_err(open_log)?;
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
                        &self.job.scope,
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
        let mut child = command.spawn().map_err(SpawnError::Start)?;
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
        let status = child.wait().await.map_err(SpawnError::Wait)?;
        self.job.pids.lock().expect("pids lock").remove(&self.index);
        let terminated = *self.job.cancel.borrow();
        Ok(ChildState::Done {
            code: status.code(),
            terminated: terminated && !status.success(),
        })
    }

    pub(super) fn set(&self, state: ChildState) {
        self.job.children.lock().expect("children lock")[self.index] = state;
        self.changed.notify_waiters();
    }

    pub(super) fn finish(&self, state: ChildState) {
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

/// Waits for a child left running by an earlier `simseries run`, then reads its exit file.
pub(super) async fn watch_orphan(
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

pub(super) fn append_log(path: &Path, text: &str) {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(text.as_bytes());
    }
}
