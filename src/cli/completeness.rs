//! The completeness table `simseries run` prints at the end: per group and condition, the
//! share of seeds with each output extension and with all of them.

use crate::cli::CliError;
use crate::model::spec::SimulationSeriesSpec;
use crate::model::validate::validate;
use crate::planning::manifest::RunState;
use crate::planning::prepare::{Stores, read_completeness};

/// Completeness per condition and output extension, `n/N (p %)`, from the outputs in the
/// source planning uses (`series.manifestSource`).
pub async fn completeness_table(
    spec: &SimulationSeriesSpec,
    stores: &Stores,
) -> Result<(String, bool), CliError> {
    let series = validate(spec)?;
    // The same source as planning: the table and the plan never disagree.
    let source = spec.series.manifest_source;
    let loaded = read_completeness(&series, stores, source).await?;
    let table = &loaded.table;
    let seeds = series.seeds.len();
    let mut out = comfy_table::Table::new();
    out.load_style(comfy_table::presets::NOTHING);
    let mut header = vec!["GROUP".to_string(), "CONDITION".to_string()];
    header.extend(spec.series.extensions.iter().cloned());
    header.push("COMPLETE RUNS".into());
    out.set_header(header);
    let mut all_complete = true;
    let mut totals = vec![0usize; spec.series.extensions.len() + 1];
    let mut planned = 0usize;
    for group in series.groups.iter().filter(|g| !g.skipped) {
        for &condition in &group.conditions {
            let mut row = vec![
                group.name.clone(),
                spec.series.conditions[condition].key.clone(),
            ];
            for (e, total) in totals
                .iter_mut()
                .enumerate()
                .take(spec.series.extensions.len())
            {
                let n = (0..seeds)
                    .filter(|&slot| table.has_extension(condition, slot, e))
                    .count();
                *total += n;
                row.push(fraction(n, seeds));
            }
            let complete = (0..seeds)
                .filter(|&slot| table.state(condition, slot) == RunState::Complete)
                .count();
            all_complete &= complete == seeds;
            totals[spec.series.extensions.len()] += complete;
            planned += seeds;
            row.push(fraction(complete, seeds));
            out.add_row(row);
        }
    }
    let mut total_row = vec!["TOTAL".to_string(), String::new()];
    total_row.extend(totals.iter().map(|n| fraction(*n, planned)));
    out.add_row(total_row);
    Ok((out.to_string(), all_complete))
}

fn fraction(n: usize, total: usize) -> String {
    let percent = if total == 0 {
        100.0
    } else {
        n as f64 * 100.0 / total as f64
    };
    format!("{n}/{total} ({percent:.1} %)")
}
