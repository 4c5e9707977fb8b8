//! Plans every case of tests/conformance (computed by the workflow simseries replaces) and
//! matches its expected missing runs, init copies and every input byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use simseries::model::layout::{self, Date};
use simseries::model::specfile;
use simseries::planning::prepare::{Locations, Prepared, Stores, prepare};
use simseries::storage::S3Options;

const DATE: &str = "2024-06-01";

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("series.yaml").is_file())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 5,
        "conformance cases are missing from {}",
        root.display()
    );
    cases
}

async fn prepare_case(case: &Path) -> (specfile::SeriesFile, Prepared) {
    let file = specfile::read(&case.join("series.yaml")).unwrap();
    let spec = &file.resource.spec;
    let locations = Locations::resolve(spec, Some(&file.folder)).unwrap();
    let stores = Stores::open(&locations, &S3Options::default()).await;
    let prepared = prepare(spec, &stores, DATE.parse::<Date>().unwrap())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    (file, prepared)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn every_case_matches_the_original_planning() {
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let (file, prepared) = prepare_case(&case).await;
        let spec = &file.resource.spec;
        let plan = &prepared.plan;

        let mut missing = Vec::new();
        for group in plan.groups.iter().filter(|g| !g.skipped) {
            for condition in &group.conditions {
                for seed in condition.rerun() {
                    missing.push(json!({
                        "group": group.name,
                        "key": condition.key,
                        "seed": seed,
                        "run": layout::run_key(&spec.series.name, &condition.key, seed),
                    }));
                }
            }
        }
        assert_eq!(
            Value::Array(missing),
            read_json(&case.join("expected/missing.json")),
            "{name}: missing runs"
        );

        let inits: Vec<Value> = plan
            .groups
            .iter()
            .flat_map(|g| &g.inits)
            .map(|c| json!({"source": c.source, "target": c.target.replace(DATE, "{date}")}))
            .collect();
        assert_eq!(
            Value::Array(inits),
            read_json(&case.join("expected/inits.json")),
            "{name}: init copies"
        );

        let expected_dir = case.join("expected/inputs");
        let mut expected = BTreeMap::new();
        if expected_dir.is_dir() {
            for entry in std::fs::read_dir(&expected_dir).unwrap() {
                let path = entry.unwrap().path();
                let file_name = path.file_name().unwrap().to_string_lossy().to_string();
                expected.insert(file_name, std::fs::read(&path).unwrap());
            }
        }
        let prefix = format!("{}/{DATE}/inputs/", spec.series.name);
        let actual: BTreeMap<String, Vec<u8>> = prepared
            .inputs
            .iter()
            .map(|input| {
                let file_name = input
                    .key
                    .strip_prefix(&prefix)
                    .unwrap_or_else(|| panic!("{name}: input {} is not under {prefix}", input.key));
                (file_name.to_string(), input.text.as_bytes().to_vec())
            })
            .collect();
        assert_eq!(
            actual.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{name}: input file names"
        );
        for (file_name, bytes) in &expected {
            assert!(
                actual[file_name] == *bytes,
                "{name}: {file_name} differs\n--- expected\n{}\n--- actual\n{}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(&actual[file_name])
            );
        }
    }
}
