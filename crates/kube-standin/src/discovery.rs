//! Legacy (unaggregated) discovery. kubectl 1.32 first asks for aggregated discovery
//! (`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,...,
//! application/json`); an answer with a plain `application/json` content type makes it fall back
//! to this per-group-version form, as it does with older servers.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::registry::{self, Flavor, ResourceDef};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-simseries-standin",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    })
}

/// Group → its versions, preferred (highest priority) first.
fn groups(defs: &[ResourceDef]) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for def in defs.iter().filter(|d| !d.group.is_empty()) {
        let versions = groups.entry(def.group.clone()).or_default();
        if !versions.contains(&def.version) {
            versions.push(def.version.clone());
        }
    }
    for versions in groups.values_mut() {
        versions.sort_by_key(|v| registry::version_priority(v));
    }
    groups
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": gv(&versions[0]),
    })
}

pub fn group_list(defs: &[ResourceDef]) -> Value {
    // Built-in groups come before CRD groups, as the real server orders them.
    let mut entries: Vec<(bool, String, Vec<String>)> = groups(defs)
        .into_iter()
        .map(|(name, versions)| {
            let custom = defs.iter().any(|d| d.group == name && d.is_custom());
            (custom, name, versions)
        })
        .collect();
    entries.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": entries.iter().map(|(_, n, v)| group_json(n, v)).collect::<Vec<_>>(),
    })
}

pub fn group(defs: &[ResourceDef], name: &str) -> Option<Value> {
    let versions = groups(defs).remove(name)?;
    let mut group = group_json(name, &versions);
    group["kind"] = json!("APIGroup");
    group["apiVersion"] = json!("v1");
    Some(group)
}

pub fn resource_list(defs: &[ResourceDef], group: &str, version: &str) -> Option<Value> {
    let in_gv: Vec<&ResourceDef> = defs
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if in_gv.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for def in in_gv {
        let mut resource = json!({
            "name": def.plural,
            "singularName": def.singular,
            "namespaced": def.namespaced,
            "kind": def.kind,
            "verbs": VERBS,
        });
        if !def.short_names.is_empty() {
            resource["shortNames"] = json!(def.short_names);
        }
        if !def.categories.is_empty() {
            resource["categories"] = json!(def.categories);
        }
        resource["storageVersionHash"] = json!(storage_version_hash(def));
        resources.push(resource);
        if def.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", def.plural),
                "singularName": "",
                "namespaced": def.namespaced,
                "kind": def.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if def.flavor == Flavor::Namespace {
            resources.push(json!({
                "name": "namespaces/finalize",
                "singularName": "",
                "namespaced": false,
                "kind": "Namespace",
                "verbs": ["update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// A stable short hash of the storage location, like the real server's.
fn storage_version_hash(def: &ResourceDef) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    (&def.group, &def.version, &def.kind).hash(&mut hasher);
    format!("{:016x}", hasher.finish())[..11].to_string()
}
