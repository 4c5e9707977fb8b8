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
    #[error(
        "spec.parameters.image: {image} is not among {engine}'s local images, and {engine} could not pull it ({detail}); build, load or pull it first (`{engine} images` lists the local ones)"
    )]
    ImageUnavailable {
        engine: String,
        image: String,
        detail: String,
    },
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
                    ensure_image(&engine, image).await?;
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

/// The image must be among the engine's local images, or pulled once before any child starts
/// (rather than by each child, or not at all with no registry in reach).
async fn ensure_image(engine: &str, image: &str) -> Result<(), LaunchError> {
    let inspect = tokio::process::Command::new(engine)
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if matches!(tokio::time::timeout(Duration::from_secs(30), inspect).await, Ok(Ok(s)) if s.success())
    {
        return Ok(());
    }
    let pull = tokio::process::Command::new(engine)
        .args(["pull", image])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let detail = match tokio::time::timeout(PULL_TIMEOUT, pull).await {
        Ok(Ok(out)) if out.status.success() => return Ok(()),
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .trim()
            .to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer in {} s", PULL_TIMEOUT.as_secs()),
    };
    Err(LaunchError::ImageUnavailable {
        engine: engine.to_string(),
        image: image.to_string(),
        detail,
    })
}

/// How long pulling a missing image may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(600);

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

/// Killing the engine's client does not stop a container, so each has a name to kill it by:
/// `simseries-{scope}-p{pass}-{fileSetName}_{index}`, where the scope (see [`container_scope`])
/// tells two working folders apart that hold series of the same name.
pub(super) fn container_name(scope: &str, pass: u32, file_set_name: &str, index: usize) -> String {
    format!("simseries-{scope}-p{pass}-{file_set_name}_{index}")
}

/// A short digest of the working folder: the same on every run there (a restart finds its
/// containers), different for another folder.
pub fn container_scope(root: &Path) -> String {
    use sha2::{Digest, Sha256};
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_differ_between_working_folders_and_repeat_within_one() {
        let a = container_scope(Path::new("/data/a/working"));
        let b = container_scope(Path::new("/data/b/working"));
        assert_ne!(a, b);
        assert_eq!(a, container_scope(Path::new("/data/a/working")));
        let name = container_name(&a, 2, "QUICKSTART", 5);
        assert_eq!(name, format!("simseries-{a}-p2-QUICKSTART_5"));
        assert_ne!(name, container_name(&b, 2, "QUICKSTART", 5));
    }
}
