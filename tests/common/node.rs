//! The test as the node of a cluster without kubelets: it watches the pods the real Job
//! controller creates, does what the model would do from each pod's environment (reads its
//! input, writes its outputs into the working folder) and reports the pod's end through the
//! pods' status subresource, as a kubelet does: succeeded, failed with an exit code, or lost
//! to a node disruption (the `DisruptionTarget` condition).
//!
//! Not covered: containers (no image is pulled or run; tests/containers.rs runs the model
//! images with a real engine), and pod logs, which the API server reads from a kubelet.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

/// How one attempt of one child ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodEnd {
    /// Writes its outputs and exits 0.
    Succeed,
    /// Exits with this code without outputs.
    Fail(i32),
    /// Lost to a node disruption before it finished.
    Disrupt,
    /// Keeps running (a straggler).
    Hang,
}

/// What the node did, per (file set, index): the ends of the attempts in order.
pub type Attempts = BTreeMap<(String, u32), Vec<PodEnd>>;

/// Plays the node for the pods of `namespace` until dropped.
pub struct Node {
    task: tokio::task::JoinHandle<()>,
    pub attempts: Arc<Mutex<Attempts>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An env value of the pod's model container.
fn env(pod: &Pod, name: &str) -> Option<String> {
    pod.spec.as_ref()?.containers[0]
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .clone()
}

fn index(pod: &Pod) -> Option<u32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get("batch.kubernetes.io/job-completion-index")?
        .parse()
        .ok()
}

/// The working folder of a pod: a local folder, or an S3 one through the test's client.
enum Working<'a> {
    Local(PathBuf),
    S3 {
        client: &'a aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
    },
}

impl Working<'_> {
    async fn read(&self, key: &str) -> String {
        match self {
            Working::Local(dir) => std::fs::read_to_string(dir.join(key))
                .unwrap_or_else(|e| panic!("the node reads {key}: {e}")),
            Working::S3 {
                client,
                bucket,
                prefix,
            } => {
                let object = client
                    .get_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{key}"))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("the node reads {key}: {e}"));
                let bytes = object.body.collect().await.unwrap().into_bytes();
                String::from_utf8(bytes.to_vec()).unwrap()
            }
        }
    }

    async fn write(&self, key: &str) {
        match self {
            Working::Local(dir) => {
                let path = dir.join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, "output").unwrap();
            }
            Working::S3 {
                client,
                bucket,
                prefix,
            } => {
                client
                    .put_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{key}"))
                    .body(b"output".to_vec().into())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// The example models' outputs for their input: `{series}_{key}_{seed:04}.{extension}`, the
/// extensions its input lists.
async fn write_outputs(
    s3: Option<&aws_sdk_s3::Client>,
    working_url: &str,
    file_set: &str,
    index: u32,
) {
    let working = match working_url.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            Working::S3 {
                client: s3.expect("an S3 client for an s3:// working folder"),
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            }
        }
        None => Working::Local(PathBuf::from(working_url)),
    };
    let input = working
        .read(&format!("inputs/{file_set}_{index}.xml"))
        .await;
    let attribute = |name: &str| -> String {
        let start = input.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        input[start..].split('"').next().unwrap().to_string()
    };
    // The series is the folder above the dated one: `{working}/{name}/{date}/`.
    let series = working_url
        .trim_end_matches('/')
        .rsplit('/')
        .nth(1)
        .expect("BATCH_WORKING_URL ends in {name}/{date}/");
    let run = format!(
        "{}_{}_{:04}",
        series,
        attribute("key"),
        attribute("seed").parse::<u32>().unwrap()
    );
    for extension in attribute("extensions").split(' ') {
        working.write(&format!("outputs/{run}.{extension}")).await;
    }
}

fn terminated(code: i32, reason: &str) -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now();
    let started = now - k8s_openapi::jiff::SignedDuration::from_secs(60);
    json!({
        "startTime": started.to_string(),
        "containerStatuses": [{
            "name": "model", "image": "model", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": reason,
                "startedAt": started.to_string(), "finishedAt": now.to_string()}},
        }],
    })
}

/// The names of the Jobs the server created (201), once per creation, from its audit log.
pub fn created_jobs(cluster: &test_cluster::TestCluster) -> Vec<String> {
    cluster
        .audit_events()
        .into_iter()
        .filter(|e| {
            e["verb"] == "create"
                && e["objectRef"]["resource"] == "jobs"
                && e["responseStatus"]["code"] == 201
        })
        .map(|e| {
            e["objectRef"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

impl Node {
    /// Starts playing the node: each new pod's attempt ends as `plan(file_set, index,
    /// attempt)` says (attempts counted from 0).
    pub fn start(
        client: kube::Client,
        namespace: &str,
        s3: Option<aws_sdk_s3::Client>,
        plan: impl Fn(&str, u32, usize) -> PodEnd + Send + 'static,
    ) -> Node {
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let attempts: Arc<Mutex<Attempts>> = Arc::default();
        let seen = attempts.clone();
        let task = tokio::spawn(async move {
            let mut handled: HashSet<String> = HashSet::new();
            loop {
                let list = pods.list(&ListParams::default()).await;
                for pod in list.map(|l| l.items).unwrap_or_default() {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
                    if handled.contains(&name)
                        || pod.metadata.deletion_timestamp.is_some()
                        || matches!(phase.as_deref(), Some("Succeeded" | "Failed"))
                    {
                        continue;
                    }
                    let (Some(file_set), Some(index), Some(working)) = (
                        env(&pod, "FILE_SET_NAME"),
                        index(&pod),
                        env(&pod, "BATCH_WORKING_URL"),
                    ) else {
                        continue;
                    };
                    let end = {
                        let mut attempts = seen.lock().unwrap();
                        let tried = attempts.entry((file_set.clone(), index)).or_default();
                        let end = plan(&file_set, index, tried.len());
                        tried.push(end);
                        end
                    };
                    let status = match end {
                        PodEnd::Succeed => {
                            write_outputs(s3.as_ref(), &working, &file_set, index).await;
                            let mut s = terminated(0, "Completed");
                            s["phase"] = json!("Succeeded");
                            s
                        }
                        PodEnd::Fail(code) => {
                            let mut s = terminated(code, "Error");
                            s["phase"] = json!("Failed");
                            s
                        }
                        PodEnd::Disrupt => {
                            let mut s = terminated(137, "Error");
                            s["phase"] = json!("Failed");
                            s["conditions"] = json!([{
                                "type": "DisruptionTarget", "status": "True",
                                "reason": "TerminationByKubelet",
                                "message": "the node was reclaimed",
                                "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
                            }]);
                            s
                        }
                        PodEnd::Hang => json!({
                            "phase": "Running",
                            "startTime": k8s_openapi::jiff::Timestamp::now().to_string(),
                            "conditions": [{"type": "Ready", "status": "True"}],
                        }),
                    };
                    let patch = json!({"status": status});
                    match pods
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => {
                            handled.insert(name);
                        }
                        Err(e) => eprintln!("node: pod {name} status not set: {e}"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Node { task, attempts }
    }

    /// The attempts so far.
    pub fn attempts(&self) -> Attempts {
        self.attempts.lock().unwrap().clone()
    }
}
