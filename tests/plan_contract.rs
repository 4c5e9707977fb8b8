//! The planning contract of DESIGN.md, case by case, as plain data (no I/O).

mod common;

use common::{SERIES, manifest, series};
use simseries::model::layout::Date;
use simseries::model::validate::validate;
use simseries::planning::manifest::Completeness;
use simseries::planning::plan::{Input, Plan, SeedRange, plan};

fn date() -> Date {
    "2024-02-29".parse().unwrap()
}

fn plan_with(yaml: &str, csv: &str) -> Plan {
    let resource = series(yaml);
    let valid = validate(&resource.spec).unwrap_or_else(|e| panic!("{e}"));
    let mut table = Completeness::new(&valid);
    table.load_csv(csv.as_bytes(), "manifest.csv").unwrap();
    plan(&valid, &table, date())
}

fn ranges(input: &Input) -> Vec<(usize, u32, u32)> {
    match input {
        Input::Ranges(r) => r
            .iter()
            .map(
                |SeedRange {
                     condition,
                     start,
                     end,
                 }| (*condition, *start, *end),
            )
            .collect(),
        Input::Run { .. } => panic!("expected ARCADE ranges"),
    }
}

#[test]
fn missing_and_incomplete_runs_both_rerun() {
    let csv = manifest(&["S_A_0000", "S_A_0001"], &["S_A_0002"]);
    let plan = plan_with(SERIES, &csv);
    let a = &plan.groups[0].conditions[0];
    assert_eq!((a.key.as_str(), a.total, a.complete), ("A", 4, 2));
    assert_eq!(a.missing, [3]);
    assert_eq!(a.incomplete, [2]);
    assert_eq!(a.rerun(), [2, 3]);
    let totals = plan.totals();
    assert_eq!(
        (
            totals.runs,
            totals.complete,
            totals.missing,
            totals.incomplete
        ),
        (12, 2, 9, 1)
    );
}

#[test]
fn rows_of_other_series_and_unknown_extensions_are_ignored() {
    let csv = "KEY,EXTENSION,LOCATION,FULL_KEY\n\
        SX_A_0000,CELLS.tar.xz,s3://b,k\nSX_A_0000,LOCATIONS.tar.xz,s3://b,k\n\
        S_A_0000,OTHER.txt,s3://b,k\nS,SUMMARY.txt,s3://b,k\nS_A_00001,CELLS.tar.xz,s3://b,k\n\
        S_Z_0000,CELLS.tar.xz,s3://b,k\nS_A_0009,CELLS.tar.xz,s3://b,k\n";
    let plan = plan_with(SERIES, csv);
    let a = &plan.groups[0].conditions[0];
    // OTHER.txt is a row for S_A_0000 but not one of its extensions: the run is incomplete.
    assert_eq!(a.incomplete, [0]);
    assert_eq!(a.missing, [1, 2, 3]);
    assert_eq!(plan.totals().complete, 0);
}

#[test]
fn named_groups_take_their_conditions_in_groups_order() {
    let yaml = SERIES.replace("groups: {G: '', H: ''}", "groups: {H: '', G: ''}");
    let plan = plan_with(&yaml, &manifest(&[], &[]));
    let names: Vec<(&str, &str)> = plan
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.key.as_str()))
        .collect();
    assert_eq!(names, [("H", "S_H"), ("G", "S_G")]);
    let keys = |i: usize| {
        plan.groups[i]
            .conditions
            .iter()
            .map(|c| c.key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(0), ["C"]);
    assert_eq!(keys(1), ["A", "B"]);
    assert_eq!(plan.folder.input("S_H", 0), "S/2024-02-29/inputs/S_H_0.xml");
}

#[test]
fn the_default_group_takes_every_condition_and_init() {
    let yaml = SERIES.replace("    groups: {G: '', H: ''}\n", "");
    let plan = plan_with(&yaml, &manifest(&[], &[]));
    assert_eq!(plan.groups.len(), 1);
    let group = &plan.groups[0];
    assert_eq!((group.name.as_str(), group.key.as_str()), ("_", "S"));
    assert_eq!(group.conditions.len(), 3);
    // The init's `group: G` does not matter for `_`.
    assert_eq!(
        group.inits[0].target,
        "S/2024-02-29/inits/S_0001.CELLS.json"
    );
}

#[test]
fn null_groups_are_skipped() {
    let yaml = SERIES.replace("groups: {G: '', H: ''}", "groups: {G: null, H: ''}");
    let plan = plan_with(&yaml, &manifest(&[], &[]));
    let g = &plan.groups[0];
    assert!(g.skipped);
    assert!(g.inputs.is_empty() && g.inits.is_empty());
    assert_eq!(g.conditions.len(), 2, "completeness is still reported");
    assert!(!plan.groups[1].skipped);
    assert_eq!(plan.totals().runs, 4, "only group H counts");
}

#[test]
fn arcade_ranges_are_split_by_seeds_per_job_and_packed() {
    // A misses 0-3 (one range of 4, split into 0-1 and 2-3); B misses 1 and 3; C misses 0-3.
    let csv = manifest(&["S_B_0000", "S_B_0002"], &[]);
    let plan = plan_with(SERIES, &csv);
    let g = &plan.groups[0];
    let inputs: Vec<_> = g.inputs.iter().map(ranges).collect();
    assert_eq!(
        inputs,
        vec![vec![(0, 0, 1)], vec![(0, 2, 3)], vec![(1, 1, 1), (1, 3, 3)]]
    );
    let h: Vec<_> = plan.groups[1].inputs.iter().map(ranges).collect();
    assert_eq!(h, vec![vec![(2, 0, 1)], vec![(2, 2, 3)]]);

    // With 5 seeds per job, ranges of A and B pack into one input up to 5 seeds.
    let yaml = SERIES.replace("seedsPerJob: 2", "seedsPerJob: 5");
    let plan = plan_with(&yaml, &csv);
    let inputs: Vec<_> = plan.groups[0].inputs.iter().map(ranges).collect();
    assert_eq!(inputs, vec![vec![(0, 0, 3), (1, 1, 1)], vec![(1, 3, 3)]]);
}

#[test]
fn arcade_orders_runs_by_condition_key() {
    let yaml = SERIES
        .replace("{key: A, group: G", "{key: ZZ, group: G")
        .replace("seedsPerJob: 2", "seedsPerJob: 1");
    let plan = plan_with(&yaml, &manifest(&[], &[]));
    // B (index 1) sorts before ZZ (index 0).
    let first: Vec<usize> = plan.groups[0]
        .inputs
        .iter()
        .map(|i| ranges(i)[0].0)
        .collect();
    assert_eq!(first, [1, 1, 1, 1, 0, 0, 0, 0]);
}

#[test]
fn other_models_get_one_input_per_run_in_condition_then_seed_order() {
    let yaml = SERIES.replace("model: ARCADE", "model: PhysiCell");
    let csv = manifest(&["S_A_0001"], &["S_B_0000"]);
    let plan = plan_with(&yaml, &csv);
    let runs: Vec<(usize, u32)> = plan.groups[0].inputs.iter().flat_map(Input::runs).collect();
    assert_eq!(
        runs,
        [(0, 0), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3)]
    );
    assert!(
        plan.groups[0]
            .inputs
            .iter()
            .all(|i| matches!(i, Input::Run { .. }))
    );
}

#[test]
fn inits_are_copied_only_when_their_seeds_meet_a_run() {
    // Group G runs seeds 0 and 3 only: the init serves 1 and 2, so nothing is copied.
    let csv = manifest(&["S_A_0001", "S_A_0002", "S_B_0001", "S_B_0002"], &[]);
    let plan = plan_with(SERIES, &csv);
    assert!(plan.groups[0].inits.is_empty());
    // Once seed 2 of B is incomplete, every seed and extension of the init is copied.
    let csv = manifest(&["S_A_0001", "S_A_0002", "S_B_0001"], &["S_B_0002"]);
    let plan = plan_with(SERIES, &csv);
    let copies: Vec<(&str, &str)> = plan.groups[0]
        .inits
        .iter()
        .map(|c| (c.source.as_str(), c.target.as_str()))
        .collect();
    assert_eq!(
        copies,
        [
            (
                "INIT/inits/inits.ARCADE/INIT_K.CELLS.json",
                "S/2024-02-29/inits/S_G_0001.CELLS.json"
            ),
            (
                "INIT/inits/inits.ARCADE/INIT_K.CELLS.json",
                "S/2024-02-29/inits/S_G_0002.CELLS.json"
            ),
        ]
    );
    // Inits of other groups are not copied for this group.
    assert!(plan.groups[1].inits.is_empty());
}

#[test]
fn a_complete_series_plans_nothing() {
    let all: Vec<String> = ["A", "B", "C"]
        .iter()
        .flat_map(|c| (0..4).map(move |s| format!("S_{c}_{s:04}")))
        .collect();
    let keys: Vec<&str> = all.iter().map(String::as_str).collect();
    let plan = plan_with(SERIES, &manifest(&keys, &[]));
    assert!(plan.is_empty());
    assert_eq!(plan.totals().complete, 12);
    assert!(plan.groups.iter().all(|g| g.inits.is_empty()));
}

#[test]
fn a_listing_counts_outputs_only() {
    let resource = series(SERIES);
    let valid = validate(&resource.spec).unwrap();
    let mut table = Completeness::new(&valid);
    for key in [
        "S/2024-01-01/outputs/S_A_0000.CELLS.tar.xz",
        "S/2024-01-01/outputs/S_A_0000.LOCATIONS.tar.xz",
        "S/2024-01-02/outputs/nested/S_A_0001.CELLS.tar.xz",
        // Inputs, inits and logs never count, whatever their names.
        "S/2024-01-01/inputs/S_A_0002.CELLS.tar.xz",
        "S/2024-01-01/inits/S_A_0003.CELLS.tar.xz",
        "S/S_A_0003.CELLS.tar.xz",
    ] {
        table.record_object(key);
    }
    let plan = plan(&valid, &table, date());
    let a = &plan.groups[0].conditions[0];
    assert_eq!(a.complete, 1);
    assert_eq!(a.incomplete, [1]);
    assert_eq!(a.missing, [2, 3]);
}

#[test]
fn series_without_extensions_are_refused() {
    // With no extensions any stray file would count a run as complete; a spec must say which
    // outputs a complete run has.
    let yaml = SERIES.replace(
        "extensions: [CELLS.tar.xz, LOCATIONS.tar.xz]",
        "extensions: []",
    );
    let err = validate(&series(&yaml).spec).unwrap_err();
    assert!(
        err.to_string()
            .contains("spec.series.extensions: no extensions"),
        "{err}"
    );
}

#[test]
fn manifests_without_the_columns_or_with_ragged_rows_are_rejected() {
    let resource = series(SERIES);
    let valid = validate(&resource.spec).unwrap();
    let mut table = Completeness::new(&valid);
    let err = table
        .load_csv(b"KEY,EXT\nS_A_0000,CELLS.tar.xz\n", "s3://b/manifest.csv")
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("s3://b/manifest.csv line 1"), "{text}");
    assert!(text.contains("EXTENSION, LOCATION, FULL_KEY"), "{text}");
    let err = table
        .load_csv(b"KEY,EXTENSION,LOCATION,FULL_KEY\nS_A_0000,CELLS.tar.xz,s3://b,k\nS_A_0001,CELLS.tar.xz\n", "m.csv")
        .unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
    // Column order and a BOM do not matter.
    let rows = table
        .load_csv(
            "\u{feff}FULL_KEY,LOCATION,EXTENSION,KEY\nk,s3://b,CELLS.tar.xz,S_A_0000\n".as_bytes(),
            "m.csv",
        )
        .unwrap();
    assert_eq!(rows, 1);
}
