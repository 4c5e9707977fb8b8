//! The controller image run as its Deployment's pod would run it, against the test cluster's
//! real API server: deploy/Dockerfile's runtime stage built with podman by
//! scripts/controller-image.sh (on a base made from this machine's files, with this build's
//! binary), the container given what the kubelet gives a pod of deploy/deployment.yaml — the
//! args, env, port, user and read-only root of the manifest, a ServiceAccount token from the
//! TokenRequest API with `ca.crt` and `namespace` at /var/run/secrets/kubernetes.io/serviceaccount/,
//! `KUBERNETES_SERVICE_HOST`/`_PORT`, the tenancy ConfigMap as files — and a network namespace
//! of its own (slirp4netns, from which the host's loopback, so the API server and moto, is
//! 10.0.2.2). moto stands for AWS.
//!
//! Not covered, since no kubelet runs here: the probes are called by the test, not a kubelet;
//! the token is not rotated; the pod's name is given, not assigned.
//! Without a container engine (scripts/test.sh prepares podman) the test says why and does
//! nothing else.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster_series::{example_reaches_ready, lease_holder};
use common::moto::{self, Moto};
use serde_json::Value;
use test_cluster::{CONTROLLER_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT, TestCluster, ok, text};

const DEPLOYMENT: &str = include_str!("../deploy/deployment.yaml");
const NAMESPACE: &str = "lab";

fn engine() -> Option<String> {
    match std::env::var("SIMSERIES_TEST_ENGINE") {
        Ok(engine) => Some(engine),
        Err(_) => {
            let why = std::env::var("SIMSERIES_TEST_ENGINE_SKIPPED").unwrap_or_else(|_| {
                "SIMSERIES_TEST_ENGINE is not set (run scripts/test.sh)".into()
            });
            eprintln!("SKIPPED: no container engine: {why}");
            None
        }
    }
}

/// The image of this build's binary (scripts/controller-image.sh).
fn image() -> String {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/controller-image.sh"
    ))
    .arg(env!("CARGO_BIN_EXE_simseries"))
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The Deployment's pod spec, as the manifest has it.
fn pod_spec() -> Value {
    let deployment: Value = serde_yaml_ng::from_str(DEPLOYMENT).unwrap();
    deployment["spec"]["template"]["spec"].clone()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// One controller pod: a podman container, removed when dropped.
struct Pod {
    name: String,
    container: String,
    /// Where the container's port is published on this machine.
    address: String,
}

impl Pod {
    /// Runs the image as the kubelet would run the manifest's controller container in pod
    /// `name`: `files` holds the ServiceAccount folder and each ConfigMap volume's files.
    fn start(cluster: &TestCluster, moto: &Moto, image: &str, files: &Path, name: &str) -> Pod {
        let spec = pod_spec();
        let container = &spec["containers"][0];
        let address = common::free_address();
        let port = container["ports"][0]["containerPort"].as_u64().unwrap();
        let api_port = cluster.url.rsplit(':').next().unwrap().to_string();
        let security = &spec["securityContext"];
        let user = format!("{}:{}", security["runAsUser"], security["runAsGroup"]);
        let id = format!("simseries-test-{name}-{}", std::process::id());
        let mut command = Command::new("podman");
        command
            .args(["run", "--detach", "--name", &id, "--pull=never"])
            .arg("--network=slirp4netns:allow_host_loopback=true")
            .arg(format!("--publish={address}:{port}"))
            .arg(format!("--user={user}"));
        // podman's default seccomp profile is the runtime's default the manifest asks for.
        assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(security["runAsNonRoot"], true);
        let hardening = &container["securityContext"];
        if hardening["readOnlyRootFilesystem"] == true {
            command.arg("--read-only");
        }
        if hardening["allowPrivilegeEscalation"] == false {
            command.arg("--security-opt=no-new-privileges");
        }
        for capability in strings(&hardening["capabilities"]["drop"]) {
            command.arg(format!("--cap-drop={capability}"));
        }
        command.arg(format!(
            "--volume={}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
            files.join("serviceaccount").display()
        ));
        for mount in container["volumeMounts"].as_array().unwrap() {
            let volume = mount["name"].as_str().unwrap();
            command.arg(format!(
                "--volume={}:{}:ro",
                files.join(volume).display(),
                mount["mountPath"].as_str().unwrap()
            ));
        }
        // The kubelet's environment: the Service of the API server, then the manifest's.
        let host = test_cluster::SLIRP_HOST_LOOPBACK;
        command
            .arg(format!("--env=KUBERNETES_SERVICE_HOST={host}"))
            .arg(format!("--env=KUBERNETES_SERVICE_PORT={api_port}"));
        for variable in container["env"].as_array().unwrap() {
            let key = variable["name"].as_str().unwrap();
            let value = match variable["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => name.to_string(),
                Some("metadata.namespace") => CONTROLLER_NAMESPACE.to_string(),
                Some(other) => panic!("the test does not give a pod's {other}"),
                None => variable["value"].as_str().unwrap().to_string(),
            };
            command.arg(format!("--env={key}={value}"));
        }
        // AWS as IRSA or extraEnv would give it, here moto.
        for (key, value) in moto.env() {
            let value = value.replace("127.0.0.1", host);
            command.arg(format!("--env={key}={value}"));
        }
        command.arg(image).args(strings(&container["args"]));
        let out = command.output().unwrap();
        assert!(out.status.success(), "podman run: {}", text(&out));
        Pod {
            name: name.to_string(),
            container: id,
            address,
        }
    }

    fn get(&self, path: &str) -> String {
        common::http_get(&self.address, path)
    }

    fn logs(&self) -> String {
        let out = Command::new("podman")
            .args(["logs", &self.container])
            .output()
            .unwrap();
        text(&out)
    }

    /// `podman stop` with the pod's grace period: SIGTERM, then SIGKILL after it. How long the
    /// container took to end, and its exit code.
    fn stop(&self, grace: u64) -> (Duration, i64) {
        let started = Instant::now();
        let out = Command::new("podman")
            .args(["stop", "--time", &grace.to_string(), &self.container])
            .output()
            .unwrap();
        assert!(out.status.success(), "podman stop: {}", text(&out));
        let took = started.elapsed();
        let out = Command::new("podman")
            .args([
                "inspect",
                "--format",
                "{{.State.ExitCode}}",
                &self.container,
            ])
            .output()
            .unwrap();
        (took, text(&out).trim().parse().unwrap())
    }

    fn wait_for(&self, what: &str, check: impl FnMut() -> bool) {
        common::cluster_series::wait_for(what, check, &|| {
            format!("(pod {})\n{}", self.name, self.logs())
        });
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "--force", "--time", "0", &self.container])
            .output();
    }
}

/// What the kubelet mounts: the projected ServiceAccount volume (a token from the TokenRequest
/// API, the cluster's CA, the namespace) and each ConfigMap volume of the pod, read from the
/// server.
fn pod_files(cluster: &TestCluster, dir: &Path) -> PathBuf {
    let files = dir.join("pod");
    let account = files.join("serviceaccount");
    std::fs::create_dir_all(&account).unwrap();
    let token = ok(&cluster.kubectl(
        &[
            "create",
            "token",
            CONTROLLER_SERVICE_ACCOUNT,
            "-n",
            CONTROLLER_NAMESPACE,
            "--duration=1h",
        ],
        None,
    ));
    std::fs::write(account.join("token"), token.trim()).unwrap();
    std::fs::copy(cluster.ca_file(), account.join("ca.crt")).unwrap();
    std::fs::write(account.join("namespace"), CONTROLLER_NAMESPACE).unwrap();
    for volume in pod_spec()["volumes"].as_array().unwrap() {
        let name = volume["configMap"]["name"].as_str().unwrap();
        let map: Value = serde_json::from_str(&ok(&cluster.kubectl(
            &[
                "-n",
                CONTROLLER_NAMESPACE,
                "get",
                "configmap",
                name,
                "-o",
                "json",
            ],
            None,
        )))
        .unwrap();
        let folder = files.join(volume["name"].as_str().unwrap());
        std::fs::create_dir_all(&folder).unwrap();
        for (key, value) in map["data"].as_object().unwrap() {
            std::fs::write(folder.join(key), value.as_str().unwrap()).unwrap();
        }
    }
    // The container runs as the manifest's user, not this test's: everything is readable.
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(dir).status();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_in_cluster_as_its_deployment_and_hands_over_when_stopped() {
    if engine().is_none() {
        return;
    }
    let started = Instant::now();
    let image = image();
    eprintln!("image {image} ready in {:?}", started.elapsed());
    let cluster = TestCluster::start();
    cluster.install_deploy();
    cluster.create_namespace(NAMESPACE);
    let moto = moto::shared();
    let bucket = format!("in-cluster-{}", std::process::id());
    let queue = format!("in-cluster-queue-{}", std::process::id());
    moto.setup_batch(&bucket, &queue);
    // The cluster administrator grants the lab its bucket and queue in the tenancy ConfigMap.
    let grants = format!(
        "grants:\n- namespace: {NAMESPACE}\n  locations: [s3://{bucket}/]\n  queues: [{queue}]\n"
    );
    let patch = serde_json::json!({"data": {"tenancy.yaml": grants}}).to_string();
    ok(&cluster.kubectl(
        &[
            "-n",
            CONTROLLER_NAMESPACE,
            "patch",
            "configmap",
            "simseries-tenancy",
            "--type=merge",
            "-p",
            &patch,
        ],
        None,
    ));
    let dir = common::temp_dir("in-cluster");
    let files = pod_files(&cluster, &dir);

    let first = Pod::start(&cluster, moto, &image, &files, "simseries-controller-a");
    first.wait_for("/readyz answers 200", || {
        first.get("/readyz").starts_with("HTTP/1.1 200")
    });
    assert!(first.get("/healthz").starts_with("HTTP/1.1 200"));
    first.wait_for("the first pod to lead", || {
        lease_holder(&cluster, CONTROLLER_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT) == first.name
    });
    // It authenticated with the mounted token: the server saw the ServiceAccount.
    assert!(
        !cluster
            .audit_events_of(&test_cluster::controller_user())
            .is_empty(),
        "no request as the ServiceAccount"
    );

    example_reaches_ready(&cluster, moto, &bucket, &queue, NAMESPACE, &|| first.logs()).await;
    let metrics = first.get("/metrics");
    assert!(
        metrics.contains("simseries_aws_calls_total{api=\"SubmitJob\"} 1"),
        "{metrics}"
    );

    // A second pod stands by; the first, stopped as the kubelet stops a pod, ends within its
    // grace period, gives the Lease up, and the second leads.
    let second = Pod::start(&cluster, moto, &image, &files, "simseries-controller-b");
    second.wait_for("the second pod's /readyz answers", || {
        second.get("/readyz").starts_with("HTTP/1.1 ")
    });
    assert_eq!(
        lease_holder(&cluster, CONTROLLER_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT),
        first.name
    );
    let grace = pod_spec()["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap_or(30);
    let (took, code) = first.stop(grace);
    eprintln!("the leader stopped in {took:?} with exit code {code}");
    assert!(
        took < Duration::from_secs(grace) && code == 0,
        "stopped in {took:?} with exit code {code} (grace {grace} s):\n{}",
        first.logs()
    );
    assert!(
        first.logs().contains("released the leader lease"),
        "{}",
        first.logs()
    );
    second.wait_for("the second pod to lead", || {
        lease_holder(&cluster, CONTROLLER_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT) == second.name
    });
    second.wait_for("the second pod to be ready", || {
        second.get("/readyz").starts_with("HTTP/1.1 200")
    });
    let _ = std::fs::remove_dir_all(&dir);
}
