//! Process control: whether a process lives, and stopping process groups (SIGTERM, SIGKILL
//! after a grace period; containers by name first).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

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

/// Stops processes: the named containers first (killing the engine's client does not stop a
/// container), then SIGTERM to each process group, SIGKILL after the grace period.
pub(super) async fn stop(pids: &[u32], containers: Option<(&str, Vec<String>)>) {
    if pids.is_empty() {
        return;
    }
    if let Some((engine, names)) = containers {
        for name in names {
            let _ = tokio::process::Command::new(engine)
                .args(["kill", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
    }
    signal_groups(pids, "TERM").await;
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
    signal_groups(pids, "KILL").await;
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
