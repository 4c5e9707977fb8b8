//! How a child is started: the model's container image under Docker or Podman (the dated
//! folder mounted at `/mnt`), or `parameters.command` run directly; chosen once per run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::model::spec::SimulationSeriesSpec;

/// Why nothing can run locally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "spec.parameters.image needs a running container engine (docker or podman) and none answers; give spec.parameters.command to run the model directly"
    )]
    NoEngine,
    #[error(
        "nothing to run locally: give spec.parameters.command (or spec.parameters.image with docker or podman)"
    )]
    NothingToRun,
    #[error(
        "spec.parameters.command: program {program:?} not found (looked in {looked_in}); install it or fix the command"
    )]
    ProgramNotFound { program: String, looked_in: String },
}

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
    pub async fn choose(
        spec: &SimulationSeriesSpec,
        spec_dir: &Path,
    ) -> Result<Launcher, LaunchError> {
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
            _ if parameters.image.is_some() => Err(LaunchError::NoEngine),
            _ => Err(LaunchError::NothingToRun),
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
fn check_program(program: &str, cwd: &Path) -> Result<(), LaunchError> {
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
        Err(LaunchError::ProgramNotFound {
            program: program.to_string(),
            looked_in: if program.contains('/') {
                format!("PATH and relative to {}", cwd.display())
            } else {
                "PATH".to_string()
            },
        })
    }
}

/// Killing the engine's client does not stop a container, so each has a name to kill it by.
pub(super) fn container_name(pass: u32, file_set_name: &str, index: usize) -> String {
    format!("simseries-p{pass}-{file_set_name}_{index}")
}
