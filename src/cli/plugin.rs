//! What the kubectl plugin (`kubectl simseries …`) does beyond `status`: the saved log of one
//! run, a rerun of a series, and a dry run of a series' live spec.

use k8s_openapi::jiff::Timestamp;

use crate::cli::CliError;
use crate::cli::cluster::ClusterSeries;
use crate::cli::status::SeriesView;
use crate::model::layout::Date;
use crate::model::record::{ChildRecord, PassRecord};
use crate::model::spec::RERUN_ANNOTATION;
use crate::planning::prepare::{Prepared, prepare};
use crate::storage::S3Options;

/// The saved log of one run of the current (or last) pass: `run` is `CONDITION_SEED`
/// (`LOW_0003`), a full run key, or an input name (`AWS_EXAMPLE_5`, with or without `.xml`).
pub async fn log(
    cluster: &ClusterSeries,
    name: &str,
    run: &str,
    s3: &S3Options,
) -> Result<Vec<u8>, CliError> {
    let view = SeriesView::from_cluster(cluster, name, s3).await?;
    let Some(record) = view.pass_record().await? else {
        return Err(CliError::NoSuchRun(format!(
            "series {name} has no pass record yet; its logs are saved at the end of a pass"
        )));
    };
    let child = find_child(&record, &view.spec.series.name, run).ok_or_else(|| {
        CliError::NoSuchRun(format!(
            "no run or input {run:?} in pass {} of {name}; give CONDITION_SEED (e.g. {}) or an input name (e.g. {})",
            record.pass,
            example_run(&record, &view.spec.series.name),
            example_input(&record),
        ))
    })?;
    let key = child.log.as_ref().ok_or_else(|| {
        CliError::NoSuchRun(format!(
            "the log of {run} was not saved (parameters.saveLogs is off, or the pass has not ended)"
        ))
    })?;
    view.stores
        .working
        .read(key)
        .await
        .map_err(|e| CliError::Read {
            what: view.locations.working.url_of(key),
            error: e.to_string(),
        })
}

fn find_child<'a>(record: &'a PassRecord, series: &str, run: &str) -> Option<&'a ChildRecord> {
    let run = run.trim_end_matches(".xml");
    let full = format!("{series}_{run}");
    record
        .groups
        .iter()
        .flat_map(|g| &g.jobs)
        .flat_map(|j| &j.children)
        .find(|child| {
            child.runs.iter().any(|r| r == run || *r == full)
                || child
                    .input
                    .rsplit('/')
                    .next()
                    .is_some_and(|file| file.trim_end_matches(".xml") == run)
        })
}

fn example_run(record: &PassRecord, series: &str) -> String {
    record
        .groups
        .iter()
        .flat_map(|g| &g.jobs)
        .flat_map(|j| &j.children)
        .flat_map(|c| &c.runs)
        .next()
        .map(|r| r.trim_start_matches(&format!("{series}_")).to_string())
        .unwrap_or_else(|| "LOW_0000".into())
}

fn example_input(record: &PassRecord) -> String {
    record
        .groups
        .iter()
        .flat_map(|g| &g.jobs)
        .flat_map(|j| &j.children)
        .next()
        .and_then(|c| c.input.rsplit('/').next())
        .map(|f| f.trim_end_matches(".xml").to_string())
        .unwrap_or_else(|| "NAME_0".into())
}

/// Sets `simseries.io/rerun` to a fresh value; returns it.
pub async fn rerun(cluster: &ClusterSeries, name: &str) -> Result<String, CliError> {
    let value = Timestamp::now().to_string();
    cluster.annotate(name, RERUN_ANNOTATION, &value).await?;
    Ok(value)
}

/// The plan of a series' live spec, as `simseries plan` makes it (nothing is written).
pub async fn plan(
    cluster: &ClusterSeries,
    name: &str,
    s3: &S3Options,
    date: Option<Date>,
) -> Result<(SeriesView, Prepared), CliError> {
    let view = SeriesView::from_cluster(cluster, name, s3).await?;
    let prepared = prepare(
        &view.spec,
        &view.stores,
        date.unwrap_or_else(Date::today_utc),
    )
    .await?;
    Ok((view, prepared))
}
