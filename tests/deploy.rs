//! deploy/ renders with kustomize (kubectl's) into the CRD of crds/ and a least-privilege,
//! locked-down controller.

use serde_json::Value;

fn rendered() -> Vec<Value> {
    let out = std::process::Command::new(test_cluster::tool("kubectl"))
        .args(["kustomize", concat!(env!("CARGO_MANIFEST_DIR"), "/deploy")])
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_yaml_ng::from_str::<Value>(doc).unwrap())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// Numbers as f64: kustomize writes `minimum: 1.0` as `1`.
fn normalized(value: &Value) -> Value {
    match value {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn the_crd_installed_is_the_generated_one() {
    let docs = rendered();
    let crd: Value = serde_yaml_ng::from_str(&simseries::model::crd::crd_yaml()).unwrap();
    assert!(
        normalized(find(&docs, "CustomResourceDefinition")) == normalized(&crd),
        "deploy/ does not install crds/simulationseries.yaml as generated"
    );
}

#[test]
fn the_controller_gets_only_what_it_uses() {
    let docs = rendered();
    let rules = find(&docs, "ClusterRole")["rules"]
        .as_array()
        .unwrap()
        .clone();
    let grants: Vec<(String, String, Vec<String>)> = rules
        .iter()
        .flat_map(|rule| {
            let verbs: Vec<String> = rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            let groups = rule["apiGroups"].as_array().unwrap().clone();
            let resources = rule["resources"].as_array().unwrap().clone();
            groups.into_iter().flat_map(move |g| {
                let verbs = verbs.clone();
                resources.clone().into_iter().map(move |r| {
                    (
                        g.as_str().unwrap().to_string(),
                        r.as_str().unwrap().to_string(),
                        verbs.clone(),
                    )
                })
            })
        })
        .collect();
    let expected = [
        (
            "simseries.io",
            "simulationseries",
            vec!["list", "watch", "patch"],
        ),
        (
            "simseries.io",
            "simulationseries/status",
            vec!["get", "patch"],
        ),
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            vec!["get"],
        ),
        ("events.k8s.io", "events", vec!["create", "patch"]),
        // The Kubernetes executor's Indexed Jobs and what it reads of their pods.
        (
            "batch",
            "jobs",
            vec!["create", "get", "list", "patch", "delete"],
        ),
        ("", "pods", vec!["list"]),
        ("", "pods/log", vec!["get"]),
    ];
    assert_eq!(grants.len(), expected.len(), "{grants:?}");
    for (group, resource, verbs) in expected {
        assert!(
            grants
                .iter()
                .any(|(g, r, v)| g == group && r == resource && *v == verbs),
            "{group}/{resource} {verbs:?} not granted exactly: {grants:?}"
        );
    }
    for rule in &rules {
        let verbs = rule["verbs"].as_array().unwrap();
        // Deleting is granted on Jobs alone: the ones the executor made, once they ended.
        let deletes_only_jobs = rule["resources"] == serde_json::json!(["jobs"]);
        assert!(
            !verbs
                .iter()
                .any(|v| v == "*" || v == "update" || (v == "delete" && !deletes_only_jobs)),
            "{rule}"
        );
    }
    let lease = find(&docs, "Role");
    assert_eq!(lease["metadata"]["namespace"], "simseries-system");
    assert!(lease["rules"].to_string().contains("leases"));
}

#[test]
fn the_deployment_is_locked_down_and_probed() {
    let docs = rendered();
    let deployment = find(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(
        container["resources"]["requests"].is_object()
            && container["resources"]["limits"].is_object()
    );
    assert_eq!(container["args"][0], "controller");
    let env = container["env"].to_string();
    assert!(env.contains("POD_NAMESPACE") && env.contains("POD_NAME"));
    assert_eq!(pod["serviceAccountName"], "simseries-controller");
    let account = find(&docs, "ServiceAccount");
    assert!(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].is_string());
}

#[test]
fn a_new_install_grants_no_namespace_anything() {
    let docs = rendered();
    let deployment = find(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = args
        .iter()
        .position(|a| *a == "--tenancy")
        .expect("--tenancy");
    let file = args[at + 1];
    assert_eq!(file, "/etc/simseries/tenancy.yaml");
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/etc/simseries");
    assert_eq!(pod["volumes"][0]["configMap"]["name"], "simseries-tenancy");
    let config = find(&docs, "ConfigMap");
    let grants: serde_json::Value =
        serde_yaml_ng::from_str(config["data"]["tenancy.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(grants["grants"], serde_json::json!([]), "safe by default");
}

/// The paths of the build stage's `COPY` lines in deploy/Dockerfile (sources, not `--from`).
fn dockerfile_copies() -> Vec<String> {
    let dockerfile = include_str!("../deploy/Dockerfile");
    let build_stage = dockerfile
        .split("\nFROM ")
        .find(|stage| stage.contains("AS build"))
        .expect("deploy/Dockerfile has a stage named build");
    build_stage
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .filter(|rest| !rest.starts_with("--from"))
        .flat_map(|rest| {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            // Every part but the last (the destination) is a source.
            parts[..parts.len() - 1]
                .iter()
                .map(|p| p.trim_end_matches('/').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What `cargo build --locked --bin simseries` needs of the tree, read from Cargo.toml: the
/// manifest and lock file, the library and binary sources, every workspace member and every
/// declared bench target (cargo refuses a manifest whose targets are missing).
fn workspace_paths() -> Vec<String> {
    let manifest: toml_like::Manifest = toml_like::read(include_str!("../Cargo.toml"));
    let mut paths = vec!["Cargo.toml".to_string(), "Cargo.lock".into(), "src".into()];
    paths.extend(manifest.members.into_iter().filter(|m| m != "."));
    paths.extend(
        manifest
            .benches
            .into_iter()
            .map(|b| format!("benches/{b}.rs")),
    );
    paths
}

/// The two things read from Cargo.toml, without a TOML crate: the workspace members and the
/// bench names (both are one-line arrays and `name = "…"` lines in this manifest).
mod toml_like {
    pub struct Manifest {
        pub members: Vec<String>,
        pub benches: Vec<String>,
    }

    pub fn read(text: &str) -> Manifest {
        let members = text
            .lines()
            .find_map(|l| l.strip_prefix("members = ["))
            .expect("Cargo.toml lists the workspace members on one line")
            .trim_end_matches(']')
            .split(',')
            .map(|m| m.trim().trim_matches('"').to_string())
            .filter(|m| !m.is_empty())
            .collect();
        let mut benches = Vec::new();
        let mut in_bench = false;
        for line in text.lines() {
            if line.starts_with('[') {
                in_bench = line == "[[bench]]";
            } else if in_bench && let Some(name) = line.strip_prefix("name = ") {
                benches.push(name.trim_matches('"').to_string());
            }
        }
        Manifest { members, benches }
    }
}

/// No test can build the image's first stage here (its base comes from a registry these
/// machines do not reach): this checks instead that it copies every path the build needs.
#[test]
fn the_image_build_stage_copies_every_path_the_workspace_needs() {
    let copies = dockerfile_copies();
    let covered = |path: &str| {
        copies
            .iter()
            .any(|c| path == c || path.starts_with(&format!("{c}/")))
    };
    let paths = workspace_paths();
    assert!(paths.iter().any(|p| p.starts_with("crates/")), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("benches/")), "{paths:?}");
    for path in &paths {
        assert!(
            covered(path),
            "deploy/Dockerfile's build stage does not copy {path} (copies {copies:?})"
        );
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(path)
                .exists(),
            "{path} is not in the tree"
        );
    }
    let dockerfile = include_str!("../deploy/Dockerfile");
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(dockerfile.contains("ARG BUILD_IMAGE=") && dockerfile.contains("ARG RUNTIME_IMAGE="));
    assert!(
        dockerfile.contains("\nUSER 65532:65532\n"),
        "a non-root runtime"
    );
}
