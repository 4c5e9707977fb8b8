//! The CRD in crds/ is generated from the Rust types and documents every field.

use serde_json::Value;

const CRD_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/simulationseries.yaml");

#[test]
fn crd_file_matches_the_types() {
    let on_disk = std::fs::read_to_string(CRD_FILE).expect("crds/simulationseries.yaml exists");
    let generated = simseries::model::crd::crd_yaml();
    assert!(
        on_disk == generated,
        "crds/simulationseries.yaml is out of date; regenerate it with\n  cargo run -- crd > crds/simulationseries.yaml"
    );
}

/// Helm installs the CRD from the chart's crds/: the same file.
#[test]
fn the_chart_installs_the_same_crd() {
    let chart = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/simseries/crds/simulationseries.yaml"
    ))
    .expect("charts/simseries/crds/simulationseries.yaml exists");
    assert!(
        chart == simseries::model::crd::crd_yaml(),
        "charts/simseries/crds/simulationseries.yaml is out of date; regenerate it with\n  cargo run -- crd > charts/simseries/crds/simulationseries.yaml"
    );
}

#[test]
fn the_binary_prints_the_same_crd() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_simseries"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        simseries::model::crd::crd_yaml()
    );
}

fn schema() -> Value {
    let crd: Value = serde_yaml_ng::from_str(&simseries::model::crd::crd_yaml()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Every property, at any depth, has a description, so `kubectl explain` documents it.
#[test]
fn every_field_has_a_description() {
    fn walk(path: &str, node: &Value, undocumented: &mut Vec<String>) {
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            for (name, child) in properties {
                let child_path = format!("{path}.{name}");
                if child.get("description").is_none() {
                    undocumented.push(child_path.clone());
                }
                walk(&child_path, child, undocumented);
            }
        }
        if let Some(items) = node.get("items") {
            walk(&format!("{path}[]"), items, undocumented);
        }
    }
    let schema = schema();
    let mut undocumented = Vec::new();
    for top in ["spec", "status"] {
        assert!(
            schema["properties"][top]["description"].is_string(),
            "{top}"
        );
        walk(top, &schema["properties"][top], &mut undocumented);
    }
    assert!(
        undocumented.is_empty(),
        "fields without a description: {undocumented:#?}"
    );
}

#[test]
fn schema_rejects_what_it_can() {
    let schema = schema();
    let spec = &schema["properties"]["spec"]["properties"];
    let series = &spec["series"]["properties"];
    assert_eq!(series["seeds"]["items"]["minimum"], 0.0);
    assert_eq!(series["seeds"]["items"]["maximum"], 9999.0);
    assert_eq!(series["seeds"]["x-kubernetes-list-type"], "set");
    assert_eq!(series["conditions"]["x-kubernetes-list-type"], "map");
    assert_eq!(series["conditions"]["x-kubernetes-list-map-keys"][0], "key");
    assert_eq!(
        series["conditions"]["items"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    for name in [
        &series["name"],
        &series["conditions"]["items"]["properties"]["key"],
    ] {
        assert_eq!(name["pattern"], "^[A-Za-z0-9_-]+$");
    }
    assert_eq!(series["groups"]["additionalProperties"]["nullable"], true);
    let parameters = &spec["parameters"]["properties"];
    assert_eq!(parameters["retries"]["minimum"], 0.0);
    assert_eq!(parameters["seedsPerJob"]["minimum"], 1.0);
    assert_eq!(spec["context"]["properties"]["vcpus"]["minimum"], 1.0);
    assert_eq!(spec["context"]["properties"]["memory"]["minimum"], 1.0);
    let required = |v: &Value| -> Vec<String> {
        v["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        required(&schema["properties"]["spec"]),
        ["context", "parameters", "series"]
    );
    assert!(required(&spec["series"]).contains(&"seeds".to_string()));
}

#[test]
fn printer_columns_show_progress() {
    let crd: Value = serde_yaml_ng::from_str(&simseries::model::crd::crd_yaml()).unwrap();
    let version = &crd["spec"]["versions"][0];
    let columns: Vec<(String, String)> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["jsonPath"].as_str().unwrap().into(),
            )
        })
        .collect();
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Phase", "Runs", "Pass", "Failed", "Attempts", "Active", "vCPU-h", "Age"
        ]
    );
    let path = |name: &str| columns.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(path("Pass"), ".status.passProgress");
    assert_eq!(path("Failed"), ".status.inputs.failed");
    let active = &version["additionalPrinterColumns"][5];
    assert_eq!(active["priority"], 1, "Active only with -o wide");
    let usage = &version["additionalPrinterColumns"][6];
    assert_eq!(usage["jsonPath"], ".status.pass.usage.vcpuHours");
    assert_eq!(usage["priority"], 1, "vCPU-hours only with -o wide");
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "simser");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
}
