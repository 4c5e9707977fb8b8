//! The completeness of a series, per group and condition: the share of seeds with each
//! output extension and with all of them. `simseries run` prints it at the end and
//! `simseries status` with the pass; `-o json` gives it as data.

use serde::Serialize;

use crate::cli::CliError;
use crate::model::spec::SimulationSeriesSpec;
use crate::model::validate::{ValidSeries, validate};
use crate::planning::manifest::{self, RunState};
use crate::planning::prepare::{Stores, read_completeness};

/// Completeness of the groups that are not skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Completeness {
    /// The output extensions, in the order of `series.extensions`.
    pub extensions: Vec<String>,
    pub rows: Vec<CompletenessRow>,
    /// Every run of the planned groups has all its outputs.
    pub all_complete: bool,
}

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletenessRow {
    pub group: String,
    pub condition: String,
    /// Seeds with each extension, in the order of [`Completeness::extensions`].
    pub with_extension: Vec<usize>,
    /// Seeds with every extension.
    pub complete: usize,
    pub seeds: usize,
}

impl Completeness {
    /// Reads the outputs from the source planning uses (`series.manifestSource`), so the
    /// table and the plan never disagree.
    pub async fn read(spec: &SimulationSeriesSpec, stores: &Stores) -> Result<Self, CliError> {
        let series = validate(spec)?;
        let loaded = read_completeness(&series, stores, spec.series.manifest_source, None).await?;
        Ok(Self::of(&series, &loaded.table))
    }

    /// The counts of `table`, per condition of the planned groups.
    pub fn of(series: &ValidSeries<'_>, table: &manifest::Completeness) -> Self {
        let spec = series.spec;
        let seeds = series.seeds.len();
        let extensions = spec.series.extensions.clone();
        let mut rows = Vec::new();
        for group in series.groups.iter().filter(|g| !g.skipped) {
            for &condition in &group.conditions {
                let count = |has: &dyn Fn(usize) -> bool| (0..seeds).filter(|&s| has(s)).count();
                rows.push(CompletenessRow {
                    group: group.name.clone(),
                    condition: spec.series.conditions[condition].key.clone(),
                    with_extension: (0..extensions.len())
                        .map(|e| count(&|slot| table.has_extension(condition, slot, e)))
                        .collect(),
                    complete: count(&|slot| table.state(condition, slot) == RunState::Complete),
                    seeds,
                });
            }
        }
        let all_complete = rows.iter().all(|r| r.complete == r.seeds);
        Completeness {
            extensions,
            rows,
            all_complete,
        }
    }

    /// `n/N (p %)` per condition and extension, with a total row.
    pub fn render(&self) -> String {
        let mut out = comfy_table::Table::new();
        out.load_style(comfy_table::presets::NOTHING);
        let mut header = vec!["GROUP".to_string(), "CONDITION".to_string()];
        header.extend(self.extensions.iter().cloned());
        header.push("COMPLETE RUNS".into());
        out.set_header(header);
        let mut totals = vec![0usize; self.extensions.len() + 1];
        let mut planned = 0usize;
        for row in &self.rows {
            let mut cells = vec![row.group.clone(), row.condition.clone()];
            for (e, n) in row.with_extension.iter().enumerate() {
                totals[e] += n;
                cells.push(fraction(*n, row.seeds));
            }
            totals[self.extensions.len()] += row.complete;
            planned += row.seeds;
            cells.push(fraction(row.complete, row.seeds));
            out.add_row(cells);
        }
        let mut total_row = vec!["TOTAL".to_string(), String::new()];
        total_row.extend(totals.iter().map(|n| fraction(*n, planned)));
        out.add_row(total_row);
        out.to_string()
    }
}

fn fraction(n: usize, total: usize) -> String {
    let percent = if total == 0 {
        100.0
    } else {
        n as f64 * 100.0 / total as f64
    };
    format!("{n}/{total} ({percent:.1} %)")
}
