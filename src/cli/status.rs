//! `simseries status` (and `kubectl simseries status`): how far a series is, without opening
//! S3 by hand. For a local series (its status file) or one in the cluster (its status
//! subresource, with the outputs and the pass record read with the user's own credentials):
//! the completeness per group, condition and extension, the current or last pass with each
//! job, and the runs that failed or were terminated, with their log keys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use serde::Serialize;

use crate::cli::CliError;
use crate::cli::cluster::ClusterSeries;
use crate::cli::completeness::Completeness;
use crate::cli::signals::interrupt;
use crate::cli::status_file;
use crate::model::layout;
use crate::model::record::PassRecord;
use crate::model::spec::SimulationSeriesSpec;
use crate::model::specfile;
use crate::model::status::{JobState, SimulationSeriesStatus};
use crate::planning::prepare::{Locations, Stores};
use crate::storage::S3Options;

/// Which series.
#[derive(Debug, Clone)]
pub enum Target {
    /// A series file run with `simseries run`.
    File(PathBuf),
    /// A series in the cluster.
    Cluster {
        name: String,
        namespace: Option<String>,
        context: Option<String>,
    },
}

/// A series as it stands: its spec, its status and where its files are.
pub struct SeriesView {
    /// `NAME (namespace NS)` or the file.
    pub title: String,
    pub spec: SimulationSeriesSpec,
    pub status: SimulationSeriesStatus,
    pub locations: Locations,
    pub stores: Stores,
}

/// Where [`show`] reads a series from, connected once for every refresh of a watch.
enum Source<'a> {
    File(&'a Path),
    Cluster {
        cluster: Box<ClusterSeries>,
        name: &'a str,
    },
}

impl<'a> Source<'a> {
    async fn connect(target: &'a Target) -> Result<Source<'a>, CliError> {
        Ok(match target {
            Target::File(path) => Source::File(path),
            Target::Cluster {
                name,
                namespace,
                context,
            } => Source::Cluster {
                cluster: Box::new(
                    ClusterSeries::connect(namespace.as_deref(), context.as_deref()).await?,
                ),
                name,
            },
        })
    }

    async fn view(&self, s3: &S3Options) -> Result<SeriesView, CliError> {
        match self {
            Source::File(path) => SeriesView::from_file(path, s3).await,
            Source::Cluster { cluster, name } => SeriesView::from_cluster(cluster, name, s3).await,
        }
    }
}

impl SeriesView {
    async fn from_file(path: &Path, s3: &S3Options) -> Result<SeriesView, CliError> {
        let file = specfile::read(path)?;
        let spec = file.resource.spec;
        let locations = Locations::resolve(&spec, Some(&file.folder))?;
        let stores = Stores::open_for(&spec, &locations, s3).await;
        let key = layout::status_file(&spec.series.name);
        let state = status_file::load(stores.working.as_ref(), &key).await?;
        Ok(SeriesView {
            title: path.display().to_string(),
            spec,
            status: state.status,
            locations,
            stores,
        })
    }

    pub async fn from_cluster(
        cluster: &ClusterSeries,
        name: &str,
        s3: &S3Options,
    ) -> Result<SeriesView, CliError> {
        let series = cluster.get(name).await?;
        let spec = series.spec;
        let locations = Locations::resolve(&spec, None)?;
        let stores = Stores::open_for(&spec, &locations, s3).await;
        Ok(SeriesView {
            title: format!("{name} (namespace {})", cluster.namespace),
            spec,
            status: series.status.unwrap_or_default(),
            locations,
            stores,
        })
    }

    /// The record of the current (or last) pass, if it wrote one.
    pub async fn pass_record(&self) -> Result<Option<PassRecord>, CliError> {
        let Some(key) = self.status.pass.as_ref().and_then(|p| p.record.as_ref()) else {
            return Ok(None);
        };
        let url = self.locations.working.url_of(key);
        let bytes = match self.stores.working.read(key).await {
            Ok(bytes) => bytes,
            // Not written yet (the pass is planning) or cleaned away by hand.
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => {
                return Err(CliError::Read {
                    what: url,
                    error: e.to_string(),
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CliError::Read {
                what: url,
                error: e.to_string(),
            })
    }
}

/// What `simseries status` shows, as `-o json` gives it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub series: String,
    pub status: SimulationSeriesStatus,
    pub completeness: Completeness,
    /// Runs whose input failed or was terminated in the current (or last) pass.
    pub failed_runs: Vec<FailedRun>,
}

/// A run whose input failed or was terminated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedRun {
    pub run: String,
    pub condition: String,
    pub seed: u32,
    /// Key of the input in the working location.
    pub input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Key of the saved log in the working location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

impl StatusReport {
    pub async fn read(view: &SeriesView) -> Result<StatusReport, CliError> {
        let completeness = Completeness::read(&view.spec, &view.stores).await?;
        let record = view.pass_record().await?;
        Ok(StatusReport::of(view, completeness, record.as_ref()))
    }

    /// The report of `view` with what was read of it.
    pub fn of(
        view: &SeriesView,
        completeness: Completeness,
        record: Option<&PassRecord>,
    ) -> StatusReport {
        StatusReport {
            series: view.title.clone(),
            status: view.status.clone(),
            completeness,
            failed_runs: record
                .map(|r| failed_runs(&view.spec, r))
                .unwrap_or_default(),
        }
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let status = &self.status;
        let mut out = format!("Series {}\n", self.series);
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
        if let Some(ready) = ready {
            out.push_str(&format!("Ready:  {} ({})", ready.status, ready.reason));
            if !ready.message.is_empty() {
                out.push_str(&format!(": {}", ready.message));
            }
            out.push('\n');
        }
        if let Some(runs) = &status.runs {
            out.push_str(&format!(
                "Runs:   {}/{} complete, {} missing, {} incomplete\n",
                runs.complete, runs.total, runs.missing, runs.incomplete
            ));
        }
        match &status.pass {
            None => out.push_str("Pass:   none yet\n"),
            Some(pass) => {
                out.push_str(&format!(
                    "Pass:   {} ({:?}), generation {}, date {}, polls {}",
                    pass.number,
                    pass.phase,
                    pass.generation,
                    pass.date
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "-".into()),
                    pass.attempts
                ));
                if let Some(next) = &pass.next_poll_at {
                    out.push_str(&format!(", next poll {}", next.0));
                }
                if let Some(error) = &pass.last_error {
                    out.push_str(&format!(", last error {error}"));
                }
                out.push('\n');
                let inputs = pass.input_counts();
                out.push_str(&format!(
                    "Inputs: {}/{} done, {} failed, {} running\n",
                    inputs.done, inputs.total, inputs.failed, inputs.running
                ));
                if let Some(usage) = &pass.usage {
                    out.push_str(&format!("Usage:  {}\n", usage.describe()));
                }
                if pass.groups.iter().any(|g| !g.jobs.is_empty()) {
                    out.push('\n');
                    out.push_str(&jobs_table(pass));
                    out.push('\n');
                }
            }
        }
        out.push('\n');
        out.push_str(&self.completeness.render());
        out.push('\n');
        if !self.failed_runs.is_empty() {
            out.push_str("\nFailed or terminated runs:\n");
            out.push_str(&failed_table(&self.failed_runs));
            out.push('\n');
        }
        out
    }
}

fn jobs_table(pass: &crate::model::status::Pass) -> String {
    let mut table = Table::new();
    table.load_style(NOTHING);
    table.set_header([
        "GROUP", "JOB", "ID", "STATE", "INPUTS", "DONE", "FAILED", "RUNNING",
    ]);
    for group in &pass.groups {
        for job in &group.jobs {
            let summary = job.summary.clone().unwrap_or_default();
            let state = match (job.state, job.terminated, &job.waiting_for) {
                (Some(state), true, _) => format!("{state} (terminated)"),
                (Some(state), false, Some(waiting)) => format!("{state} (waiting for {waiting})"),
                (Some(state), false, None) => state.to_string(),
                (None, ..) => "-".to_string(),
            };
            table.add_row([
                group.group.clone(),
                job.name.clone(),
                job.id.clone().unwrap_or_else(|| "-".into()),
                state,
                job.array_size.to_string(),
                summary.succeeded.to_string(),
                summary.failed.to_string(),
                (summary.running + summary.starting).to_string(),
            ]);
        }
    }
    table.to_string()
}

fn failed_table(runs: &[FailedRun]) -> String {
    let mut table = Table::new();
    table.load_style(NOTHING);
    table.set_header(["CONDITION", "SEED", "INPUT", "EXIT", "REASON", "LOG"]);
    for run in runs {
        table.add_row([
            run.condition.clone(),
            run.seed.to_string(),
            run.input.clone(),
            run.exit_code.map_or("-".into(), |c| c.to_string()),
            run.reason.clone().unwrap_or_else(|| "-".into()),
            run.log.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table.to_string()
}

/// The runs of every child that failed or was terminated, from the pass record.
pub fn failed_runs(spec: &SimulationSeriesSpec, record: &PassRecord) -> Vec<FailedRun> {
    let mut out = Vec::new();
    for job in record.groups.iter().flat_map(|g| &g.jobs) {
        for child in &job.children {
            let Some(outcome) = &child.outcome else {
                continue;
            };
            if outcome.state != Some(JobState::Failed) {
                continue;
            }
            for run in &child.runs {
                let Some((condition, seed)) = split_run(spec, run) else {
                    continue;
                };
                out.push(FailedRun {
                    run: run.clone(),
                    condition,
                    seed,
                    input: child.input.clone(),
                    exit_code: outcome.exit_code,
                    reason: outcome.reason.clone(),
                    log: child.log.clone(),
                });
            }
        }
    }
    out
}

/// The condition and seed of a run key `{name}_{condition}_{seed:04}`.
pub fn split_run(spec: &SimulationSeriesSpec, run: &str) -> Option<(String, u32)> {
    let rest = run.strip_prefix(&format!("{}_", spec.series.name))?;
    let (condition, seed) = rest.rsplit_once('_')?;
    Some((condition.to_string(), seed.parse().ok()?))
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

impl Format {
    pub fn render(self, report: &StatusReport) -> String {
        match self {
            Format::Table => report.render(),
            Format::Json => {
                let mut text = serde_json::to_string_pretty(report).expect("a report serializes");
                text.push('\n');
                text
            }
            Format::Yaml => serde_yaml_ng::to_string(report).expect("a report serializes"),
        }
    }
}

/// The series `target` names, as it stands now.
pub async fn view(target: &Target, s3: &S3Options) -> Result<SeriesView, CliError> {
    Source::connect(target).await?.view(s3).await
}

/// Prints the report with `print`; with `watch`, again every `every` until the pass ends
/// (or Ctrl-C).
pub async fn show(
    target: &Target,
    s3: &S3Options,
    format: Format,
    watch: Option<Duration>,
    mut print: impl FnMut(&str),
) -> Result<(), CliError> {
    let source = Source::connect(target).await?;
    loop {
        let view = source.view(s3).await?;
        let report = StatusReport::read(&view).await?;
        print(&format.render(&report));
        let active = report
            .status
            .pass
            .as_ref()
            .is_some_and(|p| !p.phase.is_finished());
        let Some(every) = watch.filter(|_| active) else {
            return Ok(());
        };
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = interrupt() => return Ok(()),
        }
        if format == Format::Table {
            print("\n");
        }
    }
}
