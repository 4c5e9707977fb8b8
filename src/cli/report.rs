//! `simseries report` (and `kubectl simseries report`): the series read as `simseries status`
//! reads it (its status, one listing of the outputs, the pass record) and its earlier pass
//! records, handed to
//! [`crate::report`] and written as one HTML file, or the completeness map alone as SVG or PNG.

use std::path::{Path, PathBuf};

use crate::cli::CliError;
use crate::cli::completeness::Completeness;
use crate::cli::status::{self, FailedRun, SeriesView, StatusReport, Target};
use crate::model::location::Location;
use crate::model::record::PassRecord;
use crate::model::validate::validate;
use crate::planning::listing;
use crate::planning::prepare::read_completeness;
use crate::report::grid::{Grid, PassRuns};
use crate::report::history::{PassLine, is_pass_record};
use crate::report::page::{self, FailedRow, PageInput};
use crate::report::picture::{self, Details};
use crate::storage::{S3Options, StorageError, list_all};

/// What `simseries report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// The whole report, one self-contained HTML file.
    Html,
    /// The completeness map alone, as SVG.
    Svg,
    /// The completeness map alone, as PNG.
    Png,
}

impl ReportFormat {
    fn extension(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Svg => "svg",
            ReportFormat::Png => "png",
        }
    }
}

/// The report's bytes and the name it is written under by default (`{series}-report.{ext}`).
pub struct Report {
    pub bytes: Vec<u8>,
    pub default_name: String,
    /// The same reading as `simseries status -o json` gives it.
    pub status: StatusReport,
}

/// Reads the series `target` names and makes its report.
pub async fn make(
    target: &Target,
    s3: &S3Options,
    format: ReportFormat,
) -> Result<Report, CliError> {
    let view = status::view(target, s3).await?;
    let series = validate(&view.spec)?;
    let loaded = read_completeness(
        &series,
        &view.stores,
        view.spec.series.manifest_source,
        None,
    )
    .await?;
    let record = view.pass_record().await?;
    let active = view
        .status
        .pass
        .as_ref()
        .is_some_and(|p| !p.phase.is_finished());
    let grid = Grid::new(
        &series,
        &loaded.table,
        record.as_ref().map(|record| PassRuns { record, active }),
    );
    let completeness = Completeness::of(&series, &loaded.table);
    let status = StatusReport::of(&view, completeness, record.as_ref());
    let details = details(&grid, &status.failed_runs);
    let title = format!("Completeness of {}", view.title);
    let bytes = match format {
        ReportFormat::Svg => picture::svg(&grid, &title, &details).into_bytes(),
        ReportFormat::Png => picture::png(&grid),
        ReportFormat::Html => {
            let rows: Vec<FailedRow> = status
                .failed_runs
                .iter()
                .map(|run| failed_row(run, &view.locations.working))
                .collect();
            let status_json = serde_json::to_string(&status).expect("a status report serializes");
            let history = history(&view).await?;
            let generated_at = k8s_openapi::jiff::Timestamp::now()
                .round(k8s_openapi::jiff::Unit::Second)
                .map_or_else(|_| String::new(), |t| t.to_string());
            page::html(
                &grid,
                &details,
                &PageInput {
                    title: &view.title,
                    status: &view.status,
                    failed: &rows,
                    status_json: &status_json,
                    generated_at: &generated_at,
                    history: &history,
                },
            )
            .into_bytes()
        }
    };
    Ok(Report {
        bytes,
        default_name: format!("{}-report.{}", view.spec.series.name, format.extension()),
        status,
    })
}

/// Every pass record of the series, oldest first: one listing of each dated folder's
/// `simseries/` and one read per record.
async fn history(view: &SeriesView) -> Result<Vec<PassLine>, CliError> {
    let working = view.stores.working.as_ref();
    let unreadable = |what: String| {
        move |e: StorageError| CliError::Read {
            what,
            error: e.to_string(),
        }
    };
    let folders = listing::dated_folders(working, &view.spec.series.name)
        .await
        .map_err(unreadable(
            view.locations.working.url_of(&view.spec.series.name),
        ))?;
    let mut lines = Vec::new();
    for folder in folders {
        let prefix = format!("{folder}simseries/");
        let keys = list_all(working, &prefix)
            .await
            .map_err(unreadable(view.locations.working.url_of(&prefix)))?;
        for key in keys.iter().filter(|k| is_pass_record(k)) {
            let bytes = working
                .read(key)
                .await
                .map_err(unreadable(view.locations.working.url_of(key)))?;
            // A record that does not parse (written by another version) is left out, not fatal.
            if let Ok(record) = serde_json::from_slice::<PassRecord>(&bytes) {
                lines.push(PassLine::of(&record));
            }
        }
    }
    lines.sort_by_key(|line| line.pass);
    Ok(lines)
}

/// Writes `report` to `output`, or beside the working directory under its default name;
/// returns where.
pub fn write(report: &Report, output: Option<&Path>) -> Result<PathBuf, CliError> {
    let path = output.map_or_else(|| PathBuf::from(&report.default_name), Path::to_path_buf);
    std::fs::write(&path, &report.bytes).map_err(|e| CliError::WriteFile {
        path: path.display().to_string(),
        error: e.to_string(),
    })?;
    Ok(path)
}

/// The hover text of each failed run in the map: its exit code and reason.
fn details(grid: &Grid, failed: &[FailedRun]) -> Details {
    let rows: std::collections::HashMap<&str, usize> = grid
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.condition.as_str(), i))
        .collect();
    let mut out = Details::new();
    for run in failed {
        let (Some(&row), Ok(column)) = (
            rows.get(run.condition.as_str()),
            grid.seeds.binary_search(&run.seed),
        ) else {
            continue;
        };
        let mut text = run
            .exit_code
            .map_or_else(|| "no exit code".to_string(), |c| format!("exit {c}"));
        if let Some(reason) = &run.reason {
            text.push_str(&format!(", {reason}"));
        }
        out.insert((row, column), text);
    }
    out
}

fn failed_row(run: &FailedRun, working: &Location) -> FailedRow {
    let log_href = match (working, &run.log) {
        (Location::Local(folder), Some(key)) => Some(file_url(&folder.join(key))),
        _ => None,
    };
    FailedRow {
        condition: run.condition.clone(),
        seed: run.seed,
        input: run.input.clone(),
        exit_code: run.exit_code,
        reason: run.reason.clone(),
        log: run.log.clone(),
        log_href,
    }
}

/// `file://` and the absolute path, its bytes outside the unreserved set percent-encoded.
fn file_url(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut url = String::from("file://");
    for byte in absolute.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}
