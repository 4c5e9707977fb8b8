//! The Indexed Job of one job of a pass, as a pure function of the pass and the settings: its
//! deterministic name, the labels that find a pass's Jobs in one list call, the annotations
//! that tell whose it is, and a pod template that keeps the AWS Batch container contract.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{Value, json};
use sha2::Digest;

use crate::executor::{PassContext, TAG_FILE_SET, TAG_GENERATION, TAG_OWNER, TAG_PASS, TAG_SERIES};
use crate::model::status::JobRecord;

/// Label holding a digest of (owner, generation, pass): the pass's Jobs in one list call.
pub const PASS_LABEL: &str = "simseries.io/pass-id";
/// `app.kubernetes.io/managed-by` of every Job and pod simseries creates.
pub const MANAGED_BY: &str = "simseries";
/// The label by which Kueue knows the LocalQueue of a Job.
pub const QUEUE_LABEL: &str = "kueue.x-k8s.io/queue-name";
/// The annotation (and label) the Job controller gives each pod: its completion index.
pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// The label the Job controller gives each pod: its Job's name.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The model's container in every pod.
pub const CONTAINER: &str = "model";
/// Characters of a Job name: the pods' host names are `{job}-{index}`, which must fit a
/// 63-character DNS label with indexes up to 99,999.
pub const MAX_JOB_NAME: usize = 52;

/// What a series' Jobs run and where, taken from the spec (and, in the cluster, the series).
#[derive(Debug, Clone, PartialEq)]
pub struct JobSettings {
    pub namespace: String,
    /// The image as given: Kubernetes pulls what it names.
    pub image: String,
    pub service_account: Option<String>,
    pub parallelism: Option<u32>,
    /// Kueue LocalQueue: the Jobs are created suspended, for Kueue to admit.
    pub queue_name: Option<String>,
    /// The series object (in the cluster): its Jobs are garbage collected with it.
    pub owner: Option<OwnerReference>,
}

fn digest(parts: &[&str]) -> String {
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The pass's identity as a label value: who runs it, which spec, which pass.
pub fn pass_id(context: &PassContext) -> String {
    digest(&[
        &context.owner,
        &context.generation.to_string(),
        &context.pass.to_string(),
    ])[..12]
        .to_string()
}

/// The Job's name: the job's own name as a DNS label, cut to leave room for a digest of the
/// pass and the file set, so the name is the same after a restart and unique across passes
/// and owners.
pub fn job_name(context: &PassContext, job: &JobRecord) -> String {
    let mut base: String = job
        .name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    base.truncate(MAX_JOB_NAME - 17);
    let base = base.trim_matches('-');
    let base = if base.is_empty() { "simseries" } else { base };
    let suffix = digest(&[&pass_id(context), &job.file_set_name]);
    format!("{base}-{suffix}")
}

/// The annotations that say whose a Job is; a Job found under its name is adopted only when
/// they match.
pub fn identity(context: &PassContext, job: &JobRecord) -> Vec<(&'static str, String)> {
    vec![
        (TAG_SERIES, context.spec.series.name.clone()),
        (TAG_OWNER, context.owner.clone()),
        (TAG_PASS, context.pass.to_string()),
        (TAG_GENERATION, context.generation.to_string()),
        (TAG_FILE_SET, job.file_set_name.clone()),
    ]
}

/// The Indexed Job of `job`.
pub fn job(context: &PassContext, settings: &JobSettings, job: &JobRecord) -> Job {
    let completions = job.array_size.max(1);
    let labels = labels(context, settings);
    let annotations: serde_json::Map<String, Value> = identity(context, job)
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    let environment = json!([
        {"name": "SIMULATION_TYPE", "value": "AWS"},
        {"name": "BATCH_WORKING_URL", "value": context.working_url()},
        {"name": "FILE_SET_NAME", "value": job.file_set_name},
        // AWS Batch numbers array children from 0, as the Job controller numbers completions.
        {"name": "AWS_BATCH_JOB_ARRAY_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": format!("metadata.annotations['{INDEX_ANNOTATION}']")
        }}},
    ]);
    let resources = json!({
        "cpu": context.spec.context.vcpus.to_string(),
        "memory": format!("{}Mi", context.spec.context.memory),
    });
    let mut pod = json!({
        // podFailurePolicy needs it; a failed pod is replaced by the Job, not restarted.
        "restartPolicy": "Never",
        "containers": [{
            "name": CONTAINER,
            "image": settings.image,
            "env": environment,
            "resources": {"requests": resources, "limits": resources},
        }],
    });
    if let Some(account) = &settings.service_account {
        pod["serviceAccountName"] = json!(account);
    }
    if let Some(seconds) = context.spec.parameters.timeout_seconds {
        // Per attempt, as AWS Batch's attemptDurationSeconds: the kubelet stops the pod.
        pod["activeDeadlineSeconds"] = json!(seconds);
    }
    let mut metadata = json!({
        "name": job_name(context, job),
        "namespace": settings.namespace,
        "labels": labels.clone(),
        "annotations": annotations,
    });
    if let Some(queue) = &settings.queue_name {
        metadata["labels"][QUEUE_LABEL] = json!(queue);
    }
    if let Some(owner) = &settings.owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    let parallelism = settings
        .parallelism
        .map_or(completions, |p| p.min(completions));
    let manifest = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": parallelism,
            // The model's own failures are not retried (as on AWS Batch): a failed pod fails
            // its index, and the other indexes run on.
            "backoffLimitPerIndex": 0,
            // A pod lost to node disruption (preemption, a drained or reclaimed node: the
            // Kubernetes form of a Spot reclaim) is replaced without counting as a failure.
            "podFailurePolicy": {"rules": [{
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            }]},
            // Kueue admits a suspended Job by unsuspending it.
            "suspend": settings.queue_name.is_some(),
            "template": {
                "metadata": {"labels": labels},
                "spec": pod,
            },
        },
    });
    serde_json::from_value(manifest).expect("the Job manifest matches the Job type")
}

fn labels(context: &PassContext, _settings: &JobSettings) -> Value {
    let mut labels = json!({
        "app.kubernetes.io/managed-by": MANAGED_BY,
        PASS_LABEL: pass_id(context),
    });
    // Series names are label characters; one that is too long for a label value is only in
    // the annotations.
    let series = &context.spec.series.name;
    if series.len() <= 63
        && series.starts_with(|c: char| c.is_ascii_alphanumeric())
        && series.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        labels[TAG_SERIES] = json!(series);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::tests::context as pass_context;

    fn record(name: &str, file_set: &str, size: u32) -> JobRecord {
        JobRecord::planned(name.into(), file_set.into(), size, size)
    }

    fn settings() -> JobSettings {
        JobSettings {
            namespace: "lab".into(),
            image: "ghcr.io/lab/arcade:3".into(),
            service_account: Some("model".into()),
            parallelism: Some(4),
            queue_name: None,
            owner: None,
        }
    }

    #[test]
    fn names_are_dns_labels_unique_per_pass_and_file_set_and_stable() {
        let context = pass_context(3);
        let long = "ALICE_".to_string() + &"VERY_LONG_SERIES_".repeat(10);
        let name = job_name(&context, &record(&long, "G-part1", 3));
        assert!(name.len() <= MAX_JOB_NAME, "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        assert!(!name.starts_with('-') && !name.ends_with('-'));
        assert_eq!(name, job_name(&context, &record(&long, "G-part1", 3)));
        assert_ne!(name, job_name(&context, &record(&long, "G-part2", 3)));
        assert_ne!(
            name,
            job_name(&pass_context(4), &record(&long, "G-part1", 3))
        );
        assert!(job_name(&context, &record("___", "G", 1)).starts_with("simseries-"));
    }

    #[test]
    fn the_job_keeps_the_batch_container_contract() {
        let context = pass_context(1);
        let job = job(&context, &settings(), &record("alice_G", "G", 5));
        let value = serde_json::to_value(&job).unwrap();
        let spec = &value["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(spec["completions"], 5);
        assert_eq!(spec["parallelism"], 4);
        assert_eq!(spec["backoffLimitPerIndex"], 0);
        assert_eq!(spec["suspend"], false);
        assert_eq!(
            spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["type"],
            "DisruptionTarget"
        );
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["serviceAccountName"], "model");
        let container = &pod["containers"][0];
        assert_eq!(container["image"], "ghcr.io/lab/arcade:3");
        assert_eq!(container["resources"]["requests"]["cpu"], "2");
        assert_eq!(container["resources"]["limits"]["memory"], "4096Mi");
        let env: Vec<String> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{}={}", e["name"].as_str().unwrap(), e["value"]))
            .collect();
        assert!(
            env.contains(&"SIMULATION_TYPE=\"AWS\"".to_string()),
            "{env:?}"
        );
        assert!(env.contains(&"FILE_SET_NAME=\"G\"".to_string()), "{env:?}");
        assert!(
            env.iter()
                .any(|e| e.starts_with("BATCH_WORKING_URL=") && e.ends_with("/\"")),
            "{env:?}"
        );
        assert_eq!(
            container["env"][3]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
        let labels = &value["metadata"]["labels"];
        assert_eq!(labels[PASS_LABEL], pass_id(&context));
        assert_eq!(
            spec["template"]["metadata"]["labels"][PASS_LABEL],
            pass_id(&context)
        );
        assert_eq!(value["metadata"]["annotations"][TAG_FILE_SET], "G");
        assert!(pod.get("activeDeadlineSeconds").is_none());
    }

    #[test]
    fn a_queue_suspends_the_job_for_kueue_and_a_timeout_bounds_each_pod() {
        let mut context = pass_context(1);
        std::sync::Arc::make_mut(&mut context.spec)
            .parameters
            .timeout_seconds = Some(600);
        let settings = JobSettings {
            queue_name: Some("lab-queue".into()),
            parallelism: Some(100),
            ..settings()
        };
        let value = serde_json::to_value(job(&context, &settings, &record("a", "G", 3))).unwrap();
        assert_eq!(value["spec"]["suspend"], true);
        assert_eq!(value["metadata"]["labels"][QUEUE_LABEL], "lab-queue");
        assert_eq!(
            value["spec"]["parallelism"], 3,
            "never more than the inputs"
        );
        assert_eq!(
            value["spec"]["template"]["spec"]["activeDeadlineSeconds"],
            600
        );
    }
}
