//! One `simseries run` per series and working folder at a time: an exclusive OS lock
//! (`flock`) on `{name}/simseries/run.lock`, held while the process lives. The kernel releases
//! it when the holder dies, however it dies, so there is no stale lock to judge, and the file
//! itself is never removed (removing it would let a second run lock a new file while the first
//! still holds the old one).

use std::path::{Path, PathBuf};

use crate::model::layout;

/// The lock, held until dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "cannot create {}: {error}; check that spec.context.workingLocation is writable",
        dir.display()
    )]
    Folder { dir: PathBuf, error: std::io::Error },
    #[error("cannot open {}: {error}", path.display())]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "another `simseries run`{holder} is working on series {series} in this working folder; wait for it or stop it"
    )]
    Held { series: String, holder: String },
    #[error("cannot lock {}: {error}", path.display())]
    Lock {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl RunLock {
    pub fn take(root: &Path, series: &str) -> Result<RunLock, LockError> {
        let path = root.join(layout::run_lock(series));
        let dir = path.parent().unwrap_or(root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|error| LockError::Folder {
            dir: dir.clone(),
            error,
        })?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| LockError::Open {
                path: path.clone(),
                error,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(LockError::Held {
                    series: series.to_string(),
                    holder: if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {holder})")
                    },
                });
            }
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(LockError::Lock { path, error });
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
