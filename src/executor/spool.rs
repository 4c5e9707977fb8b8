//! Logs on their way to the working location: each child's log is assembled in a file of a
//! local spool folder, then saved with one streamed write ([`Storage::write_from_file`]), so
//! a log of gigabytes is never held in memory, whichever executor read it (CloudWatch pages,
//! pod logs; the local executor's children already write to files).
//!
//! [`Storage::write_from_file`]: crate::storage::Storage::write_from_file

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{StreamExt, TryStreamExt};

use super::{PassContext, group_logs, storage_failure};
use crate::model::outcome::{Failure, GroupLogs};

const PREFIX: &str = "simseries-spool-";

/// A folder of the system's temporary folder for one collection of logs, removed with it.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    files: AtomicU64,
}

impl Spool {
    /// A new, empty spool. Spools left by processes that no longer run (killed before they
    /// could remove theirs) are removed first.
    pub fn new() -> Result<Spool, Failure> {
        static SPOOLS: AtomicU64 = AtomicU64::new(0);
        let temp = std::env::temp_dir();
        remove_abandoned(&temp);
        let n = SPOOLS.fetch_add(1, Ordering::Relaxed);
        let dir = temp.join(format!("{PREFIX}{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| io_failure(&dir, e))?;
        Ok(Spool {
            dir,
            files: AtomicU64::new(0),
        })
    }

    /// The path of a new file in the spool (not created).
    pub fn file(&self) -> PathBuf {
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{n}.log"))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes the spools of processes that are gone, where the system says which run (`/proc`).
fn remove_abandoned(temp: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A failure to assemble a log in the spool: worth trying again (a full disk may clear).
pub fn io_failure(path: &Path, error: std::io::Error) -> Failure {
    Failure::transient("LogsNotSaved", format!("{}: {error}", path.display()))
}

/// Saves one group's logs, each `(key, file)` from its file, at most
/// [`crate::storage::DEFAULT_CONCURRENCY`] at a time, and describes them for the status.
pub async fn save_group_logs(
    context: &PassContext,
    group: &str,
    files: Vec<(String, PathBuf)>,
) -> Result<GroupLogs, Failure> {
    let keys: Vec<String> = files.iter().map(|(key, _)| key.clone()).collect();
    let working = context.working.as_ref();
    futures::stream::iter(files)
        .map(|(key, file)| async move {
            crate::storage::write_from_file(working, &key, &file)
                .await
                .map_err(|e| storage_failure("LogsNotSaved", &e))
        })
        .buffer_unordered(crate::storage::DEFAULT_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    Ok(group_logs(context, group, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_is_removed_with_its_files_and_abandoned_ones_go_too() {
        let temp = std::env::temp_dir();
        // No process has this ID (it is past the kernel's limit).
        let abandoned = temp.join(format!("{PREFIX}4294967295-0"));
        std::fs::create_dir_all(&abandoned).unwrap();
        let spool = Spool::new().unwrap();
        assert!(!abandoned.exists(), "an abandoned spool is removed");
        let file = spool.file();
        std::fs::write(&file, "log").unwrap();
        assert_ne!(spool.file(), file, "every file is new");
        let dir = spool.dir.clone();
        drop(spool);
        assert!(!dir.exists());
    }
}
