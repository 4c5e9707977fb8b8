//! What `simseries plan` prints: a table for people, stable JSON for programs.

use comfy_table::presets::NOTHING;
use comfy_table::{CellAlignment, Table};
use serde::Serialize;

use crate::model::layout;
use crate::model::spec::{ManifestSource, SimulationSeriesSpec};
use crate::planning::plan::{GroupPlan, Input};
use crate::planning::prepare::{Locations, Prepared};

/// Lines of inputs and init copies shown per group in the table; JSON has them all.
const TABLE_LIST_LIMIT: usize = 20;

/// The JSON plan document (`--output json`). Field names and order are stable within
/// `apiVersion`; see the README's "Plan JSON" section.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanDocument {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub series: String,
    pub model: String,
    pub date: String,
    pub working_location: String,
    pub manifest_source: ManifestSource,
    pub totals: TotalsDocument,
    pub groups: Vec<GroupDocument>,
    pub missing_init_sources: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TotalsDocument {
    pub runs: u64,
    pub complete: u64,
    pub missing: u64,
    pub incomplete: u64,
    pub inputs: u64,
    pub init_copies: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDocument {
    pub group: String,
    pub group_key: String,
    pub skipped: bool,
    pub conditions: Vec<ConditionDocument>,
    /// Runs to (re)run, in condition then seed order.
    pub runs: Vec<RunDocument>,
    pub inputs: Vec<InputDocument>,
    pub init_copies: Vec<InitCopyDocument>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionDocument {
    pub key: String,
    pub runs: u32,
    pub complete: u32,
    pub missing: Vec<u32>,
    pub incomplete: Vec<u32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDocument {
    pub key: String,
    pub seed: u32,
    pub run: String,
    /// `missing` or `incomplete`.
    pub state: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputDocument {
    /// Key in the working location.
    pub path: String,
    /// Run keys the input covers.
    pub runs: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitCopyDocument {
    pub source: String,
    pub target: String,
}

impl PlanDocument {
    pub fn new(spec: &SimulationSeriesSpec, locations: &Locations, prepared: &Prepared) -> Self {
        let plan = &prepared.plan;
        let totals = plan.totals();
        PlanDocument {
            api_version: "simseries.io/v1alpha1",
            kind: "Plan",
            series: plan.series.clone(),
            model: plan.model.clone(),
            date: plan.folder.date().to_string(),
            working_location: locations.working.to_string(),
            manifest_source: spec.series.manifest_source,
            totals: TotalsDocument {
                runs: totals.runs,
                complete: totals.complete,
                missing: totals.missing,
                incomplete: totals.incomplete,
                inputs: totals.inputs,
                init_copies: totals.inits,
            },
            groups: plan
                .groups
                .iter()
                .map(|g| group_document(spec, &plan.series, g, &prepared.plan.folder))
                .collect(),
            missing_init_sources: prepared.missing_init_sources.clone(),
        }
    }
}

fn group_document(
    spec: &SimulationSeriesSpec,
    series: &str,
    group: &GroupPlan,
    folder: &layout::DatedFolder,
) -> GroupDocument {
    let key_of = |condition: usize| spec.series.conditions[condition].key.as_str();
    let runs = if group.skipped {
        Vec::new()
    } else {
        group
            .conditions
            .iter()
            .flat_map(|c| {
                let mut runs: Vec<(u32, &'static str)> = c
                    .missing
                    .iter()
                    .map(|s| (*s, "missing"))
                    .chain(c.incomplete.iter().map(|s| (*s, "incomplete")))
                    .collect();
                runs.sort_unstable();
                runs.into_iter().map(|(seed, state)| RunDocument {
                    key: c.key.clone(),
                    seed,
                    run: layout::run_key(series, &c.key, seed),
                    state,
                })
            })
            .collect()
    };
    GroupDocument {
        group: group.name.clone(),
        group_key: group.key.clone(),
        skipped: group.skipped,
        conditions: group
            .conditions
            .iter()
            .map(|c| ConditionDocument {
                key: c.key.clone(),
                runs: c.total,
                complete: c.complete,
                missing: c.missing.clone(),
                incomplete: c.incomplete.clone(),
            })
            .collect(),
        runs,
        inputs: group
            .inputs
            .iter()
            .enumerate()
            .map(|(index, input)| InputDocument {
                path: group.input_key(folder, index),
                runs: input
                    .runs()
                    .into_iter()
                    .map(|(c, seed)| layout::run_key(series, key_of(c), seed))
                    .collect(),
            })
            .collect(),
        init_copies: group
            .inits
            .iter()
            .map(|c| InitCopyDocument {
                source: c.source.clone(),
                target: c.target.clone(),
            })
            .collect(),
    }
}

/// The human-readable plan.
pub fn plan_table(
    spec: &SimulationSeriesSpec,
    locations: &Locations,
    prepared: &Prepared,
) -> String {
    let plan = &prepared.plan;
    let totals = plan.totals();
    let mut out = String::new();
    out.push_str(&format!(
        "Series {} (model {}), dated folder {}{}\n",
        plan.series,
        plan.model,
        locations.working.url_of(""),
        plan.folder.root()
    ));
    let source = match spec.series.manifest_source {
        ManifestSource::File => format!("manifest ({} rows)", prepared.manifest_rows.unwrap_or(0)),
        ManifestSource::Listing => format!(
            "listing of the outputs in the working location ({} objects)",
            prepared.listed_objects.unwrap_or(0)
        ),
        ManifestSource::Both => format!(
            "manifest ({} rows) and listing of the outputs ({} objects)",
            prepared.manifest_rows.unwrap_or(0),
            prepared.listed_objects.unwrap_or(0)
        ),
    };
    out.push_str(&format!("Completeness from the {source}\n\n"));

    let mut table = Table::new();
    table.load_style(NOTHING);
    table.set_header([
        "GROUP",
        "CONDITION",
        "RUNS",
        "COMPLETE",
        "MISSING",
        "INCOMPLETE",
        "",
    ]);
    for group in &plan.groups {
        for condition in &group.conditions {
            table.add_row([
                group.name.clone(),
                condition.key.clone(),
                condition.total.to_string(),
                condition.complete.to_string(),
                condition.missing.len().to_string(),
                condition.incomplete.len().to_string(),
                if group.skipped {
                    "skipped".into()
                } else {
                    String::new()
                },
            ]);
        }
    }
    for column in 2..=5 {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push_str(&table.to_string());
    out.push_str(&format!(
        "\n\nRuns: {} total, {} complete, {} missing, {} incomplete -> {} input(s), {} init copy(ies)\n",
        totals.runs, totals.complete, totals.missing, totals.incomplete, totals.inputs, totals.inits
    ));

    for group in plan.groups.iter().filter(|g| !g.skipped) {
        if group.inputs.is_empty() && group.inits.is_empty() {
            continue;
        }
        out.push_str(&format!("\nGroup {} ({}):\n", group.name, group.key));
        for (index, input) in group.inputs.iter().enumerate().take(TABLE_LIST_LIMIT) {
            out.push_str(&format!(
                "  input {}  {}\n",
                group.input_key(&plan.folder, index),
                describe_input(spec, input)
            ));
        }
        if group.inputs.len() > TABLE_LIST_LIMIT {
            out.push_str(&format!(
                "  ... and {} more inputs (--output json lists them all)\n",
                group.inputs.len() - TABLE_LIST_LIMIT
            ));
        }
        for copy in group.inits.iter().take(TABLE_LIST_LIMIT) {
            out.push_str(&format!("  init  {} <- {}\n", copy.target, copy.source));
        }
        if group.inits.len() > TABLE_LIST_LIMIT {
            out.push_str(&format!(
                "  ... and {} more init copies (--output json lists them all)\n",
                group.inits.len() - TABLE_LIST_LIMIT
            ));
        }
    }
    if !prepared.missing_init_sources.is_empty() {
        out.push_str("\nWarning: these init files are not in the working location yet; a run would fail to copy them:\n");
        for source in &prepared.missing_init_sources {
            out.push_str(&format!("  {}\n", locations.working.url_of(source)));
        }
    }
    if plan.is_empty() {
        out.push_str("\nNothing to run: every run of the planned groups is complete.\n");
    }
    out
}

fn describe_input(spec: &SimulationSeriesSpec, input: &Input) -> String {
    let key = |c: usize| spec.series.conditions[c].key.as_str();
    match input {
        Input::Ranges(ranges) => ranges
            .iter()
            .map(|r| {
                if r.start == r.end {
                    format!("{} {}", key(r.condition), r.start)
                } else {
                    format!("{} {}-{}", key(r.condition), r.start, r.end)
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
        Input::Run { condition, seed } => format!("{} {seed}", key(*condition)),
    }
}
