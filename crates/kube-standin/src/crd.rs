//! What the apiextensions server does to a CustomResourceDefinition besides storing it: the
//! checks that decide whether its resources can be served at all, the defaulted names, and the
//! status a CRD has once its names are accepted (tools wait for `Established`).

use serde_json::{Value, json};

/// The finalizer the real server adds when a CRD is deleted, removed once every custom
/// resource of it is gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Checks the parts of a CRD this server relies on and fills in server defaults; on success
/// returns nothing, on failure the validation message.
pub fn validate_and_default(crd: &mut Value) -> Result<(), String> {
    let spec = &mut crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default().to_string();
    let plural = spec["names"]["plural"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = spec["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut problems = Vec::new();
    if group.is_empty() {
        problems.push("spec.group: Required value".to_string());
    }
    if plural.is_empty() {
        problems.push("spec.names.plural: Required value".to_string());
    }
    if kind.is_empty() {
        problems.push("spec.names.kind: Required value".to_string());
    }
    if !matches!(spec["scope"].as_str(), Some("Namespaced" | "Cluster")) {
        problems.push("spec.scope: Unsupported value: must be Namespaced or Cluster".to_string());
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage_versions = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count();
    if storage_versions != 1 {
        problems.push(
            "spec.versions: Invalid value: must have exactly one version marked as storage version"
                .into(),
        );
    }
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if name != format!("{plural}.{group}") {
        problems.push(format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        ));
    }
    if !problems.is_empty() {
        return Err(problems.join(", "));
    }
    let names = &mut crd["spec"]["names"];
    if names["singular"].as_str().unwrap_or_default().is_empty() {
        names["singular"] = json!(kind.to_lowercase());
    }
    if names["listKind"].as_str().unwrap_or_default().is_empty() {
        names["listKind"] = json!(format!("{kind}List"));
    }
    if crd["spec"]["conversion"].is_null() {
        crd["spec"]["conversion"] = json!({"strategy": "None"});
    }
    Ok(())
}

/// The status the name-acceptance and establishing controllers write, keeping the
/// transition times of conditions that did not change.
pub fn accept(crd: &mut Value, previous_status: Option<&Value>) {
    let now = super::meta::now();
    let old_conditions = previous_status
        .map(|s| s["conditions"].clone())
        .unwrap_or(Value::Null);
    let condition = |kind: &str, reason: &str, message: &str| {
        let since = old_conditions
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["type"] == kind && c["status"] == "True")
            })
            .map(|c| c["lastTransitionTime"].clone())
            .unwrap_or_else(|| json!(now));
        json!({"type": kind, "status": "True", "lastTransitionTime": since, "reason": reason, "message": message})
    };
    let mut conditions = vec![
        condition("NamesAccepted", "NoConflicts", "no conflicts found"),
        condition(
            "Established",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        ),
    ];
    if !crd["metadata"]["deletionTimestamp"].is_null() {
        conditions.push(condition(
            "Terminating",
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        ));
    }
    let mut stored_versions: Vec<Value> = previous_status
        .and_then(|s| s["storedVersions"].as_array().cloned())
        .unwrap_or_default();
    for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
        if v["storage"].as_bool() == Some(true) && !stored_versions.contains(&v["name"]) {
            stored_versions.push(v["name"].clone());
        }
    }
    crd["status"] = json!({
        "conditions": conditions,
        "acceptedNames": crd["spec"]["names"].clone(),
        "storedVersions": stored_versions,
    });
}
