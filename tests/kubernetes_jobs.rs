//! The Kubernetes executor against a real kube-apiserver and the real Job controller
//! (kube-controller-manager): a series runs as Indexed Jobs, with `simseries run --kubeconfig`
//! and with the controller, and ends as it would on AWS Batch. No kubelet runs here: the test
//! plays the node (tests/common/node.rs), so images, containers and pod logs are not covered.

mod common;

use std::time::{Duration, Instant};

use common::node::{Node, PodEnd};
use serde_json::Value;
use test_cluster::{TestCluster, ok};

const DATE: &str = "2026-12-04";

/// The quickstart (3 conditions) with `seeds` on Kubernetes in `namespace`: each child's pod
/// runs `ghcr.io/lab/toy-model:1`, 3 at a time, polled every second.
fn quickstart_on_kubernetes(name: &str, namespace: &str, seeds: &str) -> common::TestDir {
    common::quickstart(
        name,
        &[
            (
                "    vcpus: 1\n",
                &format!(
                    "    vcpus: 1\n    executor: kubernetes\n    kubernetes: {{namespace: {namespace}, parallelism: 3}}\n"
                ),
            ),
            ("    seeds: [0, 1, 2, 3]", &format!("    seeds: {seeds}")),
            (
                "    command: [sh, model/toy-model.sh]\n",
                "    image: ghcr.io/lab/toy-model:1\n",
            ),
            ("    retries: 20", "    retries: 60"),
            ("    retryDelay: 5", "    retryDelay: 1"),
        ],
    )
}

fn run(dir: &std::path::Path, cluster: &TestCluster, extra: &[&str]) -> std::process::Output {
    let file = dir.join("series.yaml");
    let kubeconfig = cluster.admin_kubeconfig.clone();
    let mut args = vec![
        "run".to_string(),
        "-f".into(),
        file.display().to_string(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--date".into(),
        DATE.into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    tokio::task::block_in_place(|| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::simseries(&args, &[("SIMSERIES_LOG", "info".into())])
    })
}

fn status(dir: &std::path::Path) -> Value {
    let text =
        std::fs::read_to_string(dir.join("working/QUICKSTART/simseries/status.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["status"].clone()
}

/// The Job creations the audit log shows, by Job name.
fn job_creations(cluster: &TestCluster) -> Vec<String> {
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

fn wait_until(what: &str, mut check: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} within 60 s:\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A pass on the real Job controller: a pod lost to a node disruption is replaced and its run
/// completes; a pod that exits 3 fails its index (not retried, as on AWS Batch) while the
/// other indexes run on; the pass ends Incomplete with that run missing, its Job deleted. A
/// rerun runs the missing run alone and the series is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simseries_run_runs_a_series_as_indexed_jobs() {
    let cluster = TestCluster::start_with_job_controller();
    cluster.create_namespace("sims");
    let dir = quickstart_on_kubernetes("k8s-run", "sims", "[0, 1]");
    let admin = cluster.admin_client().await;
    let node = Node::start(admin, "sims", None, |_, index, attempt| {
        match (index, attempt) {
            (1, 0) => PodEnd::Disrupt,
            (4, _) => PodEnd::Fail(3),
            _ => PodEnd::Succeed,
        }
    });

    let first = run(&dir, &cluster, &[]);
    let said = common::text(&first.stderr) + &common::text(&first.stdout);
    assert_eq!(
        first.status.code(),
        Some(1),
        "{said}\n{}",
        cluster.controller_manager_log()
    );
    let status = status(&dir);
    let pass = &status["pass"];
    assert_eq!(pass["phase"], "Incomplete", "{status:#}");
    let jobs = pass["groups"][0]["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{status:#}");
    let job = &jobs[0];
    assert_eq!(job["state"], "FAILED", "{status:#}");
    assert_eq!(job["summary"]["succeeded"], 5, "{status:#}");
    assert_eq!(job["summary"]["failed"], 1, "{status:#}");
    assert_eq!(status["runs"]["complete"], 5, "{status:#}");

    // The disrupted pod was replaced (not counted as a failure); the failing one was not.
    let attempts = node.attempts();
    let of = |index: u32| {
        attempts
            .iter()
            .find(|((_, i), _)| *i == index)
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        of(1),
        vec![PodEnd::Disrupt, PodEnd::Succeed],
        "{attempts:?}"
    );
    assert_eq!(of(4), vec![PodEnd::Fail(3)], "{attempts:?}");
    assert_eq!(
        attempts.values().map(Vec::len).sum::<usize>(),
        7,
        "{attempts:?}"
    );

    // The pass record has each child's attempts, as from AWS Batch.
    let record_key = pass["record"].as_str().unwrap();
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("working").join(record_key)).unwrap(),
    )
    .unwrap();
    let children = record.to_string();
    assert!(children.contains("DisruptionTarget"), "{record:#}");
    assert!(children.contains("\"exitCode\":3"), "{record:#}");

    // One log file per child, in the same keys as on AWS Batch.
    let logs = common::files_below(&dir.join(format!("working/QUICKSTART/{DATE}/logs")));
    assert_eq!(logs.len(), 6, "{logs:?}");

    // One Job created, then deleted by the clean step, its pods with it (garbage collector).
    assert_eq!(
        job_creations(&cluster).len(),
        1,
        "{:?}",
        job_creations(&cluster)
    );
    let jobs_left = || ok(&cluster.kubectl(&["get", "jobs", "-n", "sims", "-o", "name"], None));
    assert_eq!(jobs_left(), "");
    wait_until(
        "the pods to be collected with their Job",
        || ok(&cluster.kubectl(&["get", "pods", "-n", "sims", "-o", "name"], None)).is_empty(),
        || cluster.controller_manager_log(),
    );

    let second = run(&dir, &cluster, &["--rerun"]);
    let said = common::text(&second.stderr) + &common::text(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{said}");
    let status = self::status(&dir);
    assert_eq!(status["runs"]["complete"], 6, "{status:#}");
    assert_eq!(
        status["pass"]["groups"][0]["jobs"][0]["arraySize"], 1,
        "only the missing run: {status:#}"
    );
    assert_eq!(job_creations(&cluster).len(), 2);
}
