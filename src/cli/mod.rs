//! The command line: `simseries run` reconciles a series file on this machine (its status
//! file, run lock, progress display and completeness table); `simseries plan` reports what a
//! pass would do; `simseries status` shows a series, local or in the cluster; the kubectl
//! plugin (`kubectl simseries …`) reaches series in the cluster.

pub mod cluster;
pub mod completeness;
pub mod lock;
pub mod plan_report;
pub mod plugin;
pub mod progress;
pub mod report;
pub mod run;
pub mod signals;
pub mod status;
pub mod status_file;

use crate::executor::local::launcher::LaunchError;
use crate::model::specfile::SpecFileError;
use crate::model::validate::SpecErrors;
use crate::planning::prepare::PrepareError;
use crate::storage::StorageError;

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    SpecFile(#[from] SpecFileError),
    #[error(transparent)]
    Spec(#[from] SpecErrors),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    StatusFile(#[from] status_file::StatusFileError),
    #[error("{0}; check spec.context.workingLocation")]
    Unreachable(StorageError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error("cannot write {what}: {error}")]
    Write { what: String, error: StorageError },
    #[error(
        "cannot read the kubeconfig: {0}; set KUBECONFIG (or give simseries run --kubeconfig FILE), or choose a context with --context"
    )]
    Kubeconfig(String),
    #[error("Kubernetes API: {0}")]
    Kube(kube::Error),
    #[error("simulationseries {name:?} not found in namespace {namespace}")]
    NotFound { name: String, namespace: String },
    #[error("cannot read {what}: {error}")]
    Read { what: String, error: String },
    #[error("{0}")]
    NoSuchRun(String),
    #[error(
        "cannot write {path}: {error}; give --out a file in a folder that exists and you may write to"
    )]
    WriteFile { path: String, error: String },
}
