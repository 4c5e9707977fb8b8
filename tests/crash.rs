//! Nothing twice, nothing lost: a driver killed at every crash point of a pass, then restarted,
//! ends where an uninterrupted run ends, and never runs (locally) or submits (on AWS Batch) an
//! input twice.
//!
//! The crash points are `fail` points compiled into the test build of the binary
//! (`simseries::faults`); `FAILPOINTS=point=return` makes the process exit at once, without
//! destructors or cleanup, as `kill -9` would.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::aws_run::{
    BatchScenario, batch_status, normalized, rename_series, run_batch, submitted_jobs,
};
use common::{moto, quickstart, text};
use serde_json::Value;
use simseries::faults::{CRASH_EXIT_CODE, POINTS};

const DATE: &str = "2024-06-01";

/// Where each scenario dies: every point once, and the repeated points at later passages too.
fn crash_configs() -> Vec<String> {
    let mut configs: Vec<String> = POINTS.iter().map(|p| format!("{p}=return")).collect();
    for n in [2, 4, 6] {
        configs.push(format!("after-status-write={n}*off->return"));
    }
    for n in [1, 3, 7] {
        configs.push(format!("storage-write={n}*off->return"));
    }
    configs.push("after-poll=1*off->return".into());
    configs
}

// ---------------------------------------------------------------------------------------------
// The local driver: the quickstart's toy model as real processes.

/// Six runs, two of which outlive the last poll and are terminated.
fn local_series(name: &str) -> common::TestDir {
    quickstart(
        name,
        &[
            ("seeds: [0, 1, 2, 3]", "seeds: [0, 1]"),
            ("retries: 20", "retries: 2"),
            ("retryDelay: 5", "retryDelay: 3"),
            ("sleep: 1", "sleep: 0"),
            ("sleep: 1", "sleep: 0"),
            ("sleep: 1", "sleep: 60"),
        ],
    )
}

fn run_local(dir: &Path, failpoints: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_simseries"));
    command
        .args(["run", "-f"])
        .arg(dir.join("series.yaml"))
        .args(["--date", DATE])
        .env("SIMSERIES_CONTAINER_ENGINE", "none")
        .stdin(Stdio::null());
    match failpoints {
        Some(config) => command.env("FAILPOINTS", config),
        None => command.env_remove("FAILPOINTS"),
    };
    command.output().unwrap()
}

fn local_status(dir: &Path) -> Value {
    let path = dir.join("working/QUICKSTART/simseries/status.json");
    serde_json::from_slice::<Value>(&std::fs::read(path).unwrap()).unwrap()["status"].clone()
}

fn local_executions(dir: &Path) -> Vec<String> {
    let path = dir
        .join("working/QUICKSTART")
        .join(DATE)
        .join("executions.log");
    let mut runs: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    runs.sort();
    runs
}

/// Kills the straggling children a scenario leaves behind, so the next one starts clean.
fn stop_children(dir: &Path) {
    let _ = Command::new("pkill")
        .args(["-KILL", "-f", &dir.display().to_string()])
        .status();
}

#[test]
fn the_local_driver_survives_a_crash_at_every_point() {
    let baseline = local_series("crash-local-baseline");
    let out = run_local(&baseline, None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let expected = normalized(local_status(&baseline));
    assert_eq!(expected["phase"], "Incomplete", "two stragglers terminated");
    let expected_runs = local_executions(&baseline);
    assert_eq!(expected_runs.len(), 6);

    let mut crashed = 0;
    for (i, config) in crash_configs().iter().enumerate() {
        let dir = local_series(&format!("crash-local-{i}"));
        let first = run_local(&dir, Some(config));
        let code = first.status.code();
        assert_eq!(
            code,
            Some(CRASH_EXIT_CODE),
            "{config}: the crash point was not reached (is the binary built with the failpoints feature?): {}",
            text(&first.stderr)
        );
        crashed += 1;
        // Restart until the pass ends (a restart never crashes: no FAILPOINTS).
        let second = run_local(&dir, None);
        assert_eq!(
            second.status.code(),
            Some(1),
            "{config}: {}",
            text(&second.stderr)
        );
        assert_eq!(
            normalized(local_status(&dir)),
            expected,
            "{config}: the final status differs from an uninterrupted run"
        );
        assert_eq!(
            local_executions(&dir),
            expected_runs,
            "{config}: every input ran exactly once"
        );
        stop_children(&dir);
    }
    eprintln!("local driver: {crashed} crash points survived");
    stop_children(&baseline);
}

// ---------------------------------------------------------------------------------------------
// The AWS Batch driver: `simseries run` on an S3 working location, against moto.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_driver_survives_a_crash_at_every_point() {
    let moto = moto::shared();
    let bucket = format!("crash-{}", std::process::id());
    let queue = "crash-queue";
    moto.setup_batch(&bucket, queue);

    let baseline = BatchScenario::new(&bucket, queue, "CRASH_BASE");
    let out = run_batch(moto, &baseline, &[]);
    // moto runs no containers: the jobs succeed without outputs.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let expected = normalized(batch_status(moto, &baseline).await.unwrap());
    assert_eq!(submitted_jobs(moto, &baseline).await, 1);

    let mut crashed = 0;
    for (i, config) in crash_configs().iter().enumerate() {
        if config.starts_with("after-terminate") || config == "after-poll=1*off->return" {
            // moto's jobs finish inside SubmitJob: one poll sees them done and nothing is left
            // to terminate (the scripted fake of tests/batch_fake.rs covers both).
            continue;
        }
        let scenario = BatchScenario::new(&bucket, queue, &format!("CRASH_{i}"));
        let first = run_batch(moto, &scenario, &[("FAILPOINTS", config.as_str())]);
        assert_eq!(
            first.status.code(),
            Some(CRASH_EXIT_CODE),
            "{config}: the crash point was not reached: {}",
            text(&first.stderr)
        );
        crashed += 1;
        let second = run_batch(moto, &scenario, &[]);
        assert_eq!(
            second.status.code(),
            Some(1),
            "{config}: {}",
            text(&second.stderr)
        );
        let expected = rename_series(&expected, "CRASH_BASE", &scenario.series);
        assert_eq!(
            normalized(batch_status(moto, &scenario).await.unwrap()),
            expected,
            "{config}: the final status differs from an uninterrupted run"
        );
        assert_eq!(
            submitted_jobs(moto, &scenario).await,
            1,
            "{config}: the job was submitted exactly once"
        );
    }
    eprintln!("batch driver: {crashed} crash points survived");
}

// ---------------------------------------------------------------------------------------------
// The Kubernetes driver: `simseries run` with `executor: kubernetes`, on a real API server and
// Job controller, the test playing the node (tests/common/node.rs).

/// Six runs as one Indexed Job of six pods; index 5 hangs, so its Job is terminated after the
/// last poll.
fn kubernetes_series(name: &str) -> common::TestDir {
    quickstart(
        name,
        &[
            (
                "    vcpus: 1\n",
                "    vcpus: 1\n    executor: kubernetes\n    kubernetes: {namespace: crash}\n",
            ),
            ("seeds: [0, 1, 2, 3]", "seeds: [0, 1]"),
            (
                "    command: [sh, model/toy-model.sh]\n",
                "    image: ghcr.io/lab/toy-model:1\n",
            ),
            ("retries: 20", "retries: 3"),
            ("retryDelay: 5", "retryDelay: 2"),
        ],
    )
}

fn run_kubernetes(dir: &Path, kubeconfig: &Path, failpoints: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_simseries"));
    command
        .args(["run", "-f"])
        .arg(dir.join("series.yaml"))
        .args(["--date", DATE, "--kubeconfig"])
        .arg(kubeconfig)
        .stdin(Stdio::null());
    match failpoints {
        Some(config) => command.env("FAILPOINTS", config),
        None => command.env_remove("FAILPOINTS"),
    };
    tokio::task::block_in_place(|| command.output().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_driver_survives_a_crash_at_every_point() {
    use common::node::{Node, PodEnd};
    let cluster = test_cluster::TestCluster::start_with_job_controller();
    cluster.create_namespace("crash");
    let kubeconfig = cluster.admin_kubeconfig.clone();
    let _node = Node::start(
        cluster.admin_client().await,
        "crash",
        None,
        |_, index, _| {
            if index == 5 {
                PodEnd::Hang
            } else {
                PodEnd::Succeed
            }
        },
    );

    let baseline = kubernetes_series("crash-k8s-baseline");
    let out = run_kubernetes(&baseline, &kubeconfig, None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let expected = normalized(local_status(&baseline));
    assert_eq!(expected["phase"], "Incomplete", "the straggler terminated");
    assert_eq!(common::node::created_jobs(&cluster).len(), 1);

    let mut crashed = 0;
    for (i, config) in crash_configs().iter().enumerate() {
        let dir = kubernetes_series(&format!("crash-k8s-{i}"));
        let first = run_kubernetes(&dir, &kubeconfig, Some(config));
        assert_eq!(
            first.status.code(),
            Some(CRASH_EXIT_CODE),
            "{config}: the crash point was not reached: {}",
            text(&first.stderr)
        );
        crashed += 1;
        let second = run_kubernetes(&dir, &kubeconfig, None);
        assert_eq!(
            second.status.code(),
            Some(1),
            "{config}: {}",
            text(&second.stderr)
        );
        assert_eq!(
            normalized(local_status(&dir)),
            expected,
            "{config}: the final status differs from an uninterrupted run"
        );
        let created = common::node::created_jobs(&cluster);
        let mut distinct = created.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            (created.len(), distinct.len()),
            (crashed + 1, crashed + 1),
            "{config}: one Job per pass, created once: {created:?}"
        );
    }
    let jobs =
        test_cluster::ok(&cluster.kubectl(&["get", "jobs", "-n", "crash", "-o", "name"], None));
    assert_eq!(jobs, "", "every pass cleaned its Job");
    eprintln!("kubernetes driver: {crashed} crash points survived, 0 duplicate Jobs");
}
