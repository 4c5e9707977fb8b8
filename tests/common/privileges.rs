//! Least privilege, checked: the permissions simseries is given (the README's IAM policy,
//! deploy/'s RBAC) against the calls it made in a test run (moto's recording, the stand-in
//! API server's request log). Nothing missing, nothing extra.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// IAM actions of the README's policy (its first JSON block).
pub fn readme_policy_actions() -> BTreeSet<String> {
    let readme = include_str!("../../README.md");
    let start = readme.find("```json\n").expect("a JSON block") + "```json\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let policy: Value = serde_json::from_str(&readme[start..end]).expect("the policy is JSON");
    let mut actions = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        match &statement["Action"] {
            Value::String(a) => {
                actions.insert(a.clone());
            }
            Value::Array(list) => actions.extend(list.iter().map(|a| a.as_str().unwrap().into())),
            _ => panic!("a statement without actions"),
        }
    }
    actions
}

/// The IAM actions behind the requests simseries made (those whose user agent carries its app
/// name), including what the requests imply: passing the job role, tagging on create.
pub fn actions_of_recording(recording: &[Value]) -> BTreeSet<String> {
    let mut actions = BTreeSet::new();
    for request in recording.iter().filter_map(request_of) {
        actions.insert(request.action);
        actions.extend(request.implies);
    }
    actions
}

/// How many requests simseries made per IAM action (`batch:DescribeJobs`, `logs:…`, `s3:…`).
pub fn calls_of_recording(recording: &[Value]) -> BTreeMap<String, usize> {
    let mut calls = BTreeMap::new();
    for request in recording.iter().filter_map(request_of) {
        *calls.entry(request.action).or_default() += 1;
    }
    calls
}

/// One recorded request, as IAM names it.
struct Request {
    action: String,
    /// Further actions it needs (`iam:PassRole` for a job role, tagging on create).
    implies: Vec<String>,
}

/// The request, if simseries made it (its user agent carries the app name).
fn request_of(entry: &Value) -> Option<Request> {
    let headers = &entry["headers"];
    let header = |name: &str| {
        headers.as_object().and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str())
        })
    };
    if !header("user-agent").is_some_and(|ua| ua.contains("app/simseries")) {
        return None;
    }
    let method = entry["method"].as_str().unwrap_or_default();
    let url = entry["url"].as_str().unwrap_or_default();
    let path_and_query = url.splitn(4, '/').nth(3).unwrap_or_default();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let body = body_text(entry);
    let mut implies = Vec::new();
    let action = if let Some(target) = header("x-amz-target") {
        let operation = target.rsplit('.').next().unwrap();
        format!("logs:{operation}")
    } else if let Some(operation) = path.strip_prefix("v1/") {
        let action = match (method, operation) {
            (_, op) if op.starts_with("tags/") => match method {
                "POST" => "TagResource",
                "DELETE" => "UntagResource",
                _ => "ListTagsForResource",
            },
            (_, "describejobdefinitions") => "DescribeJobDefinitions",
            (_, "describejobs") => "DescribeJobs",
            (_, "listjobs") => "ListJobs",
            (_, "registerjobdefinition") => "RegisterJobDefinition",
            (_, "deregisterjobdefinition") => "DeregisterJobDefinition",
            (_, "submitjob") => "SubmitJob",
            (_, "terminatejob") => "TerminateJob",
            (_, "canceljob") => "CancelJob",
            (_, other) => panic!("an unknown Batch call: {other}"),
        };
        if body.contains("\"tags\"") {
            // Tags given on create need the tagging permission too.
            implies.push("batch:TagResource".into());
        }
        if action == "RegisterJobDefinition" && body.contains("jobRoleArn") {
            implies.push("iam:PassRole".into());
        }
        format!("batch:{action}")
    } else {
        // S3, path-style: `bucket` or `bucket/key`.
        let has_key = path.split_once('/').is_some_and(|(_, key)| !key.is_empty());
        let action = match (method, has_key) {
            ("GET" | "HEAD", false) => "ListBucket",
            ("GET" | "HEAD", true) => "GetObject",
            ("PUT", true) => "PutObject",
            ("DELETE", true) => "DeleteObject",
            (m, _) => panic!("an unknown S3 call: {m} {path}?{query}"),
        };
        if header("x-amz-copy-source").is_some() {
            implies.push("s3:GetObject".into());
        }
        format!("s3:{action}")
    };
    Some(Request { action, implies })
}

/// The JSON bodies of the AWS Batch requests to `v1/{operation}` (e.g. `submitjob`) in a
/// recording: what went over the wire, whatever moto kept of it.
pub fn batch_request_bodies(recording: &[Value], operation: &str) -> Vec<Value> {
    recording
        .iter()
        .filter(|entry| {
            let url = entry["url"].as_str().unwrap_or_default();
            url.split('?')
                .next()
                .unwrap_or_default()
                .ends_with(&format!("/v1/{operation}"))
        })
        .filter_map(|entry| serde_json::from_str(&body_text(entry)).ok())
        .collect()
}

fn body_text(entry: &Value) -> String {
    let body = entry["body"].as_str().unwrap_or_default();
    if entry["body_encoded"].as_bool() == Some(true) {
        use base64_decode::decode;
        String::from_utf8_lossy(&decode(body)).into_owned()
    } else {
        body.to_string()
    }
}

/// A small base64 decoder (the recording encodes binary bodies).
mod base64_decode {
    pub fn decode(text: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        };
        let mut out = Vec::new();
        let mut buffer = 0u32;
        let mut bits = 0;
        for c in text.bytes().filter_map(value) {
            buffer = (buffer << 6) | u32::from(c);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        out
    }
}

/// One request to the Kubernetes API as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiAccess {
    pub group: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub verb: String,
    pub name: Option<String>,
}

/// The RBAC view of a request the API server audited (its `verb` and `objectRef`); `None` for
/// discovery and other non-resource URLs, which every authenticated user may read.
pub fn audited_access(event: &Value) -> Option<ApiAccess> {
    let object = event.get("objectRef")?;
    let field = |key: &str| object[key].as_str().unwrap_or_default().to_string();
    let resource = match object["subresource"].as_str() {
        Some(sub) => format!("{}/{sub}", field("resource")),
        None => field("resource"),
    };
    let verb = event["verb"].as_str()?.to_string();
    // `create` is not restricted by resource names.
    let name = (verb != "create")
        .then(|| object["name"].as_str().map(str::to_string))
        .flatten();
    Some(ApiAccess {
        group: field("apiGroup"),
        resource,
        verb,
        name,
    })
}

/// The (group, resource, verb, resourceNames) grants of RBAC rules.
pub fn grants_of(rules: &[Value]) -> Vec<(String, String, String, Vec<String>)> {
    let mut grants = Vec::new();
    for rule in rules {
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        for group in list("apiGroups") {
            for resource in list("resources") {
                for verb in list("verbs") {
                    grants.push((group.clone(), resource.clone(), verb, list("resourceNames")));
                }
            }
        }
    }
    grants
}

/// Whether `grant` allows `access`.
pub fn allows(grant: &(String, String, String, Vec<String>), access: &ApiAccess) -> bool {
    let (group, resource, verb, names) = grant;
    *group == access.group
        && *resource == access.resource
        && *verb == access.verb
        && (names.is_empty() || access.name.as_ref().is_some_and(|n| names.contains(n)))
}

/// The (group, resource, verb, resourceNames) grants of deploy/rbac.yaml's roles.
pub fn deploy_rbac_grants() -> Vec<(String, String, String, Vec<String>)> {
    let rbac: Vec<Value> =
        serde_yaml_ng::Deserializer::from_str(include_str!("../../deploy/rbac.yaml"))
            .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
            .collect();
    let rules: Vec<Value> = rbac
        .iter()
        .filter(|doc| doc["kind"] == "ClusterRole" || doc["kind"] == "Role")
        .flat_map(|doc| doc["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    grants_of(&rules)
}

/// A user's audited requests held against RBAC grants.
#[derive(Debug, Default)]
pub struct RbacReport {
    /// Requests the server refused (403): a grant the roles lack.
    pub refused: Vec<ApiAccess>,
    /// Requests no grant allows (answered all the same, e.g. by another role).
    pub ungranted: Vec<ApiAccess>,
    /// Grants no request used, as `group/resource verb`.
    pub unused: Vec<String>,
}

/// Compares what the audit log shows a user did with what `grants` allow.
pub fn rbac_report(
    audited: &[Value],
    grants: &[(String, String, String, Vec<String>)],
) -> RbacReport {
    let mut report = RbacReport::default();
    let mut accesses = BTreeSet::new();
    for event in audited {
        let Some(access) = audited_access(event) else {
            continue;
        };
        if event["responseStatus"]["code"] == 403 {
            report.refused.push(access.clone());
        }
        accesses.insert(access);
    }
    report.ungranted = accesses
        .iter()
        .filter(|a| !grants.iter().any(|g| allows(g, a)))
        .cloned()
        .collect();
    report.unused = grants
        .iter()
        .filter(|g| !accesses.iter().any(|a| allows(g, a)))
        .map(|(group, resource, verb, _)| format!("{group}/{resource} {verb}"))
        .collect();
    report
}
