//! Process control of local children: whether a process lives, and stopping a job's children
//! (SIGTERM to each process group, SIGKILL after a grace period; containers by name).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::child::LocalJob;
use super::launcher::{Launcher, container_name};

/// Time a terminated child gets between SIGTERM and SIGKILL.
pub(super) const GRACE: Duration = Duration::from_secs(5);

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

/// SIGTERM to every running child's process group, SIGKILL after the grace period.
pub(super) async fn kill_job(job: &LocalJob, launcher: &Launcher) {
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

pub(super) async fn signal_groups(pids: &[u32], signal: &str) {
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
