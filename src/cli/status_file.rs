//! The local record of a series, `{name}/simseries/status.json` in the working location: what
//! the status subresource holds in the cluster, plus the `--rerun` counter that stands for the
//! `simseries.io/rerun` annotation. Reads and writes outlive a storage outage.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cli::signals::interrupt;
use crate::model::spec::SimulationSeriesSpec;
use crate::model::status::SimulationSeriesStatus;
use crate::pass::backoff::Backoff;
use crate::storage::{Storage, StorageError};

/// Waits while storage is throttled or out of reach: 2 s doubling up to 5 min.
const STORAGE_RETRIES: Backoff = Backoff {
    base: Duration::from_secs(2),
    max: Duration::from_secs(300),
};

/// The status file's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalState {
    pub api_version: String,
    pub kind: String,
    pub series: String,
    /// `--rerun` counter: stands for the `simseries.io/rerun` annotation.
    pub rerun: u64,
    pub status: SimulationSeriesStatus,
}

impl LocalState {
    /// The rerun value `decide` compares (`None` until the first `--rerun`).
    pub fn rerun_value(&self) -> Option<String> {
        (self.rerun > 0).then(|| self.rerun.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatusFileError {
    #[error(
        "{url}: not a simseries status file ({error}); move it away to start the series afresh"
    )]
    Unreadable { url: String, error: String },
    #[error("cannot read the status file: {0}")]
    Read(StorageError),
    #[error(
        "cannot write the status file: {0}; check that spec.context.workingLocation is writable"
    )]
    Write(StorageError),
}

/// The generation of a spec without a cluster: a digest of its content.
pub fn spec_generation(spec: &SimulationSeriesSpec) -> i64 {
    let bytes = serde_json::to_vec(spec).expect("a spec serializes");
    let digest = Sha256::digest(&bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 1) as i64
}

/// The status file of a series; a missing file is a series never run here.
pub async fn load(working: &dyn Storage, key: &str) -> Result<LocalState, StatusFileError> {
    match with_storage_retries("read the status file", || working.read(key)).await {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StatusFileError::Unreadable {
            url: working.location().url_of(key),
            error: e.to_string(),
        }),
        Err(e) if e.is_not_found() => Ok(LocalState::default()),
        Err(e) => Err(StatusFileError::Read(e)),
    }
}

pub async fn save(
    working: &dyn Storage,
    key: &str,
    state: &LocalState,
) -> Result<(), StatusFileError> {
    let body = serde_json::to_vec_pretty(state).expect("state serializes");
    with_storage_retries("write the status file", || working.write(key, body.clone()))
        .await
        .map_err(StatusFileError::Write)
}

/// Retries `call` while storage is throttled or out of reach (said on stderr), so a pass
/// outlives an S3 outage instead of dying on its status file; Ctrl-C stops.
pub async fn with_storage_retries<T, F, Fut>(what: &str, mut call: F) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StorageError>>,
{
    let mut failures = 0;
    loop {
        match call().await {
            Err(e) if e.kind.is_transient() => {
                failures += 1;
                let wait = STORAGE_RETRIES.after(failures);
                eprintln!(
                    "simseries: cannot {what} ({e}); trying again in {}s",
                    wait.as_secs()
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = interrupt() => return Err(e),
                }
            }
            result => return result,
        }
    }
}
