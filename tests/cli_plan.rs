//! `simseries plan` end to end on local folders: output formats, --write-inputs, bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_dir, files_below, simseries, temp_dir};
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn plan_table_on_the_example() {
    let out = simseries(
        &[
            "plan",
            "-f",
            repo("examples/arcade-plan/series.yaml").to_str().unwrap(),
            "--date",
            "2024-06-01",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("GROUP"), "{text}");
    assert!(
        text.contains(
            "Runs: 12 total, 3 complete, 8 missing, 1 incomplete -> 5 input(s), 8 init copy(ies)"
        ),
        "{text}"
    );
    assert!(
        text.contains("TUMOR_GROWTH/2024-06-01/inputs/TUMOR_GROWTH_VARIANTS_3.xml  LOW_ADHESION 3"),
        "{text}"
    );
    assert!(
        !text.contains("Warning"),
        "the example's init files exist: {text}"
    );
}

#[test]
fn plan_json_is_complete_and_stable() {
    let out = simseries(
        &[
            "plan",
            "-f",
            repo("tests/conformance/arcade-groups/series.yaml")
                .to_str()
                .unwrap(),
            "-o",
            "json",
            "--date",
            "2024-06-01",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "apiVersion",
            "kind",
            "series",
            "model",
            "date",
            "workingLocation",
            "manifestSource",
            "totals",
            "groups",
            "missingInitSources"
        ]
    );
    assert_eq!(doc["kind"], "Plan");
    assert_eq!(doc["totals"]["inputs"], 12);
    assert_eq!(doc["totals"]["initCopies"], 6);
    let groups = doc["groups"].as_array().unwrap();
    assert_eq!(
        groups
            .iter()
            .map(|g| g["group"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["A", "B", "C"]
    );
    assert_eq!(groups[2]["skipped"], true);
    assert!(groups[2]["runs"].as_array().unwrap().is_empty());
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(repo(
            "tests/conformance/arcade-groups/expected/missing.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let runs: Vec<Value> = groups
        .iter()
        .flat_map(|g| {
            g["runs"].as_array().unwrap().iter().map(move |r| {
                serde_json::json!({"group": g["group"], "key": r["key"], "seed": r["seed"], "run": r["run"]})
            })
        })
        .collect();
    assert_eq!(Value::Array(runs), expected);
    assert_eq!(
        groups[0]["inputs"][0]["path"],
        "ARCADE_SERIES/2024-06-01/inputs/ARCADE_SERIES_A_0.xml"
    );
    assert_eq!(groups[0]["inputs"][0]["runs"][0], "ARCADE_SERIES_C00_0000");
    // The init sources are not in the (absent) working folder of the case.
    assert_eq!(
        doc["missingInitSources"][0],
        "INIT_SET/inits/inits.ARCADE/INIT_SET_SMALL.CELLS.json"
    );
}

#[test]
fn write_inputs_lays_out_the_dated_folder() {
    for case in [
        "arcade-groups",
        "arcade-packed",
        "physicell",
        "arcade-default-group",
        "complete",
    ] {
        let dir = temp_dir("write-inputs");
        let case_dir = repo(&format!("tests/conformance/{case}"));
        let out = simseries(
            &[
                "plan",
                "-f",
                case_dir.join("series.yaml").to_str().unwrap(),
                "--write-inputs",
                dir.to_str().unwrap(),
                "--date",
                "2024-06-01",
            ],
            &[],
        );
        assert!(out.status.success(), "{case}: {}", stderr(&out));
        let series: Value = serde_yaml_ng::from_str(
            &std::fs::read_to_string(case_dir.join("series.yaml")).unwrap(),
        )
        .unwrap();
        let name = series["spec"]["series"]["name"].as_str().unwrap();
        let dated = dir.join(name).join("2024-06-01");
        let expected_inputs = files_below(&case_dir.join("expected/inputs"));
        assert_eq!(
            files_below(&dated.join("inputs")),
            expected_inputs,
            "{case}"
        );
        for file in &expected_inputs {
            assert_eq!(
                std::fs::read(dated.join("inputs").join(file)).unwrap(),
                std::fs::read(case_dir.join("expected/inputs").join(file)).unwrap(),
                "{case}: {file}"
            );
        }
        let inits: Value =
            serde_json::from_str(&std::fs::read_to_string(dated.join("inits.json")).unwrap())
                .unwrap();
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(case_dir.join("expected/inits.json"))
                .unwrap()
                .replace("{date}", "2024-06-01"),
        )
        .unwrap();
        assert_eq!(inits, expected, "{case}");
        // Nothing was written next to the case (its working location).
        assert!(!case_dir.join("working").exists(), "{case}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// A copy of the example to break in one way.
fn broken_example(name: &str, edit: impl FnOnce(&Path)) -> common::TestDir {
    let dir = temp_dir(name);
    copy_dir(&repo("examples/arcade-plan"), &dir);
    edit(&dir);
    dir
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// Plans `dir/series.yaml` with --write-inputs and expects one clear error and nothing written.
fn assert_fails(dir: &Path, words: &[&str]) {
    let out_dir = dir.join("out");
    let before = files_below(dir);
    let out = simseries(
        &[
            "plan",
            "-f",
            dir.join("series.yaml").to_str().unwrap(),
            "--write-inputs",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        stdout(&out)
    );
    assert!(err.starts_with("error: "), "{err}");
    for word in words {
        assert!(err.contains(word), "{word:?} not in: {err}");
    }
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(!out_dir.exists(), "nothing may be written");
    assert_eq!(files_below(dir), before, "nothing may change");
}

#[test]
fn a_missing_template_is_named() {
    let dir = broken_example("no-template", |d| {
        std::fs::remove_file(d.join("template.xml")).unwrap()
    });
    assert_fails(
        &dir,
        &[
            "template.xml: not found",
            "spec.context.templateLocation",
            "spec.series.templateKey",
        ],
    );
}

#[test]
fn a_missing_manifest_is_named() {
    let dir = broken_example("no-manifest", |d| {
        std::fs::remove_file(d.join("manifest.csv")).unwrap()
    });
    assert_fails(
        &dir,
        &[
            "manifest.csv: not found",
            "spec.context.manifestLocation",
            "manifestSource: listing",
        ],
    );
}

#[test]
fn a_manifest_without_the_columns_is_named() {
    let dir = broken_example("bad-manifest", |d| {
        std::fs::write(d.join("manifest.csv"), "KEY,EXT\nA,b\n").unwrap()
    });
    assert_fails(
        &dir,
        &[
            "manifest.csv line 1",
            "missing column(s) EXTENSION, LOCATION, FULL_KEY",
        ],
    );
}

#[test]
fn an_undefined_template_variable_names_the_line() {
    let dir = broken_example("undefined", |d| {
        replace_in(
            &d.join("template.xml"),
            "{{ condition.ticks // 10 }}",
            "{{ condition.tick_count }}",
        )
    });
    assert_fails(
        &dir,
        &[
            "template template.xml line 4",
            "undefined",
            "condition.tick_count",
            "TUMOR_GROWTH_BASELINE_0.xml",
        ],
    );
}

#[test]
fn a_template_syntax_error_names_the_line() {
    let dir = broken_example("syntax", |d| {
        replace_in(&d.join("template.xml"), "{%- endif %}", "")
    });
    assert_fails(&dir, &["template template.xml line"]);
}

#[test]
fn invalid_xml_is_caught_before_anything_is_written() {
    let dir = broken_example("bad-xml", |d| {
        replace_in(&d.join("template.xml"), "</potts>", "</pots>")
    });
    assert_fails(
        &dir,
        &[
            "not well-formed XML",
            "line 6",
            "TUMOR_GROWTH_BASELINE_0.xml",
        ],
    );
    // A value that breaks the XML is caught the same way.
    let dir = broken_example("bad-value", |d| {
        replace_in(
            &d.join("series.yaml"),
            "growth_rate: 0.05\n      hypoxia: false\n    - key: LOW",
            "growth_rate: '<0.05'\n      hypoxia: false\n    - key: LOW",
        )
    });
    assert_fails(&dir, &["not well-formed XML", "'<' in an attribute value"]);
}

#[test]
fn invalid_specs_list_every_problem() {
    let dir = broken_example("bad-spec", |d| {
        replace_in(
            &d.join("series.yaml"),
            "seeds: [0, 1, 2, 3]",
            "seeds: [0, 1, 2, 12000]",
        );
        replace_in(&d.join("series.yaml"), "key: HYPOXIC", "key: LOW_ADHESION");
        replace_in(
            &d.join("series.yaml"),
            "group: VARIANTS\n      seeds",
            "group: OTHER\n      seeds",
        );
    });
    assert_fails(
        &dir,
        &[
            "4 problems",
            "spec.series.seeds[3]",
            "spec.series.inits[0].seeds[3]",
            "spec.series.conditions[2].key: duplicate",
            "spec.series.inits[0].group: unknown group \"OTHER\"",
        ],
    );
}

#[test]
fn a_file_that_is_not_a_series_is_named() {
    let dir = broken_example("not-series", |d| {
        std::fs::write(d.join("series.yaml"), "apiVersion: v1\nkind: ConfigMap\n").unwrap()
    });
    assert_fails(&dir, &["series.yaml", "no SimulationSeries found"]);
    let out = simseries(&["plan", "-f", "/nonexistent/series.yaml"], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/series.yaml: cannot read"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_init_files_are_a_warning_in_a_dry_run() {
    let dir = broken_example("no-inits", |d| {
        std::fs::remove_dir_all(d.join("working")).unwrap()
    });
    let out = simseries(
        &["plan", "-f", dir.join("series.yaml").to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Warning: these init files are not in the working location yet"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bad_dates_and_usage_are_rejected_by_the_parser() {
    let out = simseries(&["plan", "-f", "x.yaml", "--date", "2024-13-01"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a valid date"),
        "{}",
        stderr(&out)
    );
}
