//! The Kubernetes executor against a real kube-apiserver and the real Job controller
//! (kube-controller-manager): a series runs as Indexed Jobs, with `simseries run --kubeconfig`
//! and with the controller, and ends as it would on AWS Batch. No kubelet runs here: the test
//! plays the node (tests/common/node.rs), so images, containers and pod logs are not covered.

mod common;

use std::time::{Duration, Instant};

use common::node::{Node, PodEnd, created_jobs};
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

/// A bucket holding the AWS example's template (its manifest source is the listing).
async fn aws_example_bucket(moto: &common::moto::Moto) -> String {
    let bucket = moto.bucket("k8s-jobs").await;
    let template = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/aws/template.xml"
    ))
    .unwrap();
    moto.s3()
        .put_object()
        .bucket(&bucket)
        .key("config/template.xml")
        .body(template.into())
        .send()
        .await
        .unwrap();
    bucket
}

/// The AWS example (2 seeds: 4 runs) as object `name` (series `series`) in namespace `lab`,
/// on Kubernetes, polled `polls` times a second apart.
fn aws_example_on_kubernetes(bucket: &str, name: &str, series: &str, polls: u32) -> String {
    common::fixtures::Fixture::aws_example()
        .on_s3(bucket)
        .named(name, Some("lab"), series)
        .polls(polls, 1)
        .edit(|s| {
            let context = &mut s.spec.context;
            context.executor = Some(simseries::model::spec::ExecutorKind::Kubernetes);
            context.kubernetes = Some(Default::default());
            s.spec.series.seeds = vec![0, 1];
            s.spec.parameters.image = Some("ghcr.io/lab/toy-model:1".into());
        })
        .yaml()
}

/// The controller as deploy/'s ServiceAccount, with leader election, on moto's S3; its log
/// file.
fn start_controller(
    cluster: &TestCluster,
    moto: &common::moto::Moto,
) -> (Stopped, std::path::PathBuf) {
    start_controller_with(cluster, moto, "controller", &[], &[])
}

/// The same, logging to `{name}.log`, with more arguments and environment.
fn start_controller_with(
    cluster: &TestCluster,
    moto: &common::moto::Moto,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Stopped, std::path::PathBuf) {
    use std::process::{Command, Stdio};
    let log = cluster.dir().join(format!("{name}.log"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_simseries"));
    command
        .args(["controller", "--tenancy", "any"])
        .args(["--lease-namespace", test_cluster::CONTROLLER_NAMESPACE])
        .args(["--metrics-address", &common::free_address()])
        .args(args)
        .env_remove("FAILPOINTS")
        .env("KUBECONFIG", cluster.controller_kubeconfig())
        .env("SIMSERIES_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (key, value) in moto.env() {
        command.env(key, value);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    (Stopped(command.spawn().unwrap()), log)
}

/// A process killed when the test ends, a failed one included.
struct Stopped(std::process::Child);

impl Stopped {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        self.stop();
    }
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
        created_jobs(&cluster).len(),
        1,
        "{:?}",
        created_jobs(&cluster)
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
    assert_eq!(created_jobs(&cluster).len(), 2);
}

/// The controller, as deploy/'s ServiceAccount, runs the AWS example (on moto's S3) as
/// Indexed Jobs in the series' namespace, owned by the series. Pass 1: a pod lost to a node
/// disruption is replaced; a straggler is still running after the last poll, so its Job is
/// terminated (the Job controller stops its pod) and the pass ends Incomplete. The outputs
/// appear for the rest; a rerun runs the straggler's run alone and the series is Ready. The
/// controller used exactly what deploy/rbac.yaml grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_runs_a_series_as_indexed_jobs_to_ready() {
    let cluster = TestCluster::start_with_job_controller();
    cluster.install_deploy();
    cluster.create_namespace("lab");
    let moto = common::moto::shared();
    let bucket = aws_example_bucket(moto).await;
    // The Job controller replaces a disrupted pod after its pod-failure backoff (10 s).
    let series =
        aws_example_on_kubernetes(&bucket, common::cluster_series::NAME, "AWS_EXAMPLE", 20);
    let (mut controller, log) = start_controller(&cluster, moto);
    let logs =
        || std::fs::read_to_string(&log).unwrap_or_default() + &cluster.controller_manager_log();

    // Index 1's first pod is disrupted; index 3 hangs through pass 1 and runs in pass 2.
    let pass_one = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let in_pass_one = pass_one.clone();
    let node = Node::start(
        cluster.admin_client().await,
        "lab",
        Some(moto.s3()),
        move |_, index, attempt| match (index, attempt) {
            (1, 0) => PodEnd::Disrupt,
            (3, _) if in_pass_one.load(std::sync::atomic::Ordering::SeqCst) => PodEnd::Hang,
            _ => PodEnd::Succeed,
        },
    );
    ok(&cluster.kubectl(&["apply", "-f", "-"], Some(&series)));
    let field = |path: &str| common::cluster_series::field(&cluster, "lab", path);

    // The Job is the series' own: the garbage collector deletes it with the series.
    wait_until(
        "a Job in the series' namespace",
        || !ok(&cluster.kubectl(&["get", "jobs", "-n", "lab", "-o", "name"], None)).is_empty(),
        logs,
    );
    let jobs: Value = serde_json::from_str(&ok(
        &cluster.kubectl(&["get", "jobs", "-n", "lab", "-o", "json"], None)
    ))
    .unwrap();
    let owner = &jobs["items"][0]["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "SimulationSeries", "{jobs:#}");
    assert_eq!(owner["name"], common::cluster_series::NAME);
    assert_eq!(
        owner["uid"].as_str(),
        Some(field("{.metadata.uid}").as_str())
    );

    wait_until(
        "pass 1 to end Incomplete",
        || field("{.status.phase}") == "Incomplete",
        logs,
    );
    let job = field("{.status.pass.groups[0].jobs[0]}");
    let job: Value = serde_json::from_str(&job).unwrap();
    assert_eq!(job["terminated"], true, "{job:#}");
    assert_eq!(job["summary"]["succeeded"], 3, "{job:#}");
    assert_eq!(field("{.status.runs.complete}"), "3");
    let attempts = node.attempts();
    assert_eq!(
        attempts.values().map(Vec::len).sum::<usize>(),
        5,
        "4 pods and the disrupted one's replacement: {attempts:?}"
    );

    pass_one.store(false, std::sync::atomic::Ordering::SeqCst);
    ok(&cluster.kubectl(
        &[
            "-n",
            "lab",
            "annotate",
            "--overwrite",
            "simser/aws-example",
            "simseries.io/rerun=straggler",
        ],
        None,
    ));
    wait_until(
        "the series to be Ready",
        || field("{.status.conditions[?(@.type==\"Ready\")].status}") == "True",
        logs,
    );
    assert_eq!(field("{.status.runs.complete}"), "4");
    assert_eq!(field("{.status.pass.groups[0].jobs[0].arraySize}"), "1");
    assert_eq!(
        created_jobs(&cluster).len(),
        2,
        "{:?}",
        created_jobs(&cluster)
    );
    wait_until(
        "the Jobs to be cleaned",
        || ok(&cluster.kubectl(&["get", "jobs", "-n", "lab", "-o", "name"], None)).is_empty(),
        logs,
    );

    // deploy/rbac.yaml grants what the controller used, all of it (but a repeated event). A
    // watch is audited when it ends: stop the controller first.
    controller.stop();
    std::thread::sleep(Duration::from_secs(1));
    let requests = cluster.audit_events_of(&test_cluster::controller_user());
    let report =
        common::privileges::rbac_report(&requests, &common::privileges::deploy_rbac_grants());
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(report.ungranted.is_empty(), "{:?}", report.ungranted);
    let unused: Vec<&String> = report
        .unused
        .iter()
        .filter(|g| *g != "events.k8s.io/events patch")
        .collect();
    assert!(unused.is_empty(), "granted but never used: {unused:?}");
    let polls = requests
        .iter()
        .filter(|e| e["verb"] == "list" && e["objectRef"]["resource"] == "jobs")
        .count();
    eprintln!("Job list calls (one per poll) in 2 passes: {polls}");
}

/// Kueue's contract, on the real Job controller (Kueue itself does not run here): with
/// `queueName` the Job is created suspended with Kueue's queue label, no pod starts, and the
/// status says what the job waits for; once admitted (Kueue unsuspends it) its pods run and
/// the pass completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_name_leaves_the_job_suspended_until_kueue_admits_it() {
    let cluster = TestCluster::start_with_job_controller();
    cluster.create_namespace("sims");
    let dir = quickstart_on_kubernetes("k8s-kueue", "sims", "[0]");
    common::edit_file(
        &dir.join("series.yaml"),
        &[("parallelism: 3}", "parallelism: 3, queueName: lab-queue}")],
    );
    let _node = Node::start(cluster.admin_client().await, "sims", None, |_, _, _| {
        PodEnd::Succeed
    });
    let run = {
        let dir = dir.to_path_buf();
        let kubeconfig = cluster.admin_kubeconfig.clone();
        std::thread::spawn(move || {
            let file = dir.join("series.yaml");
            common::simseries(
                &[
                    "run",
                    "-f",
                    file.to_str().unwrap(),
                    "--kubeconfig",
                    kubeconfig.to_str().unwrap(),
                    "--date",
                    DATE,
                ],
                &[],
            )
        })
    };
    let jobs = || -> Value {
        serde_json::from_str(&ok(
            &cluster.kubectl(&["get", "jobs", "-n", "sims", "-o", "json"], None)
        ))
        .unwrap()
    };
    wait_until(
        "the Job to be created",
        || !jobs()["items"].as_array().unwrap().is_empty(),
        || cluster.controller_manager_log(),
    );
    let job = jobs()["items"][0].clone();
    assert_eq!(job["spec"]["suspend"], true, "{job:#}");
    assert_eq!(
        job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"],
        "lab-queue"
    );
    let status_file = dir.join("working/QUICKSTART/simseries/status.json");
    let waiting = || {
        let text = std::fs::read_to_string(&status_file).unwrap_or_default();
        let status: Value = serde_json::from_str(&text).unwrap_or_default();
        status["status"]["pass"]["groups"][0]["jobs"][0].clone()
    };
    wait_until(
        "the status to show the job waiting for admission",
        || waiting()["waitingFor"] == "admission by Kueue (LocalQueue lab-queue)",
        || waiting().to_string(),
    );
    assert_eq!(waiting()["state"], "RUNNABLE");
    let shown = tokio::task::block_in_place(|| {
        common::simseries(
            &["status", "-f", dir.join("series.yaml").to_str().unwrap()],
            &[],
        )
    });
    assert!(
        common::text(&shown.stdout)
            .contains("RUNNABLE (waiting for admission by Kueue (LocalQueue lab-queue))"),
        "{}{}",
        common::text(&shown.stdout),
        common::text(&shown.stderr)
    );
    assert_eq!(waiting()["summary"]["runnable"], 3);
    let pods = ok(&cluster.kubectl(&["get", "pods", "-n", "sims", "-o", "name"], None));
    assert_eq!(pods, "", "a suspended Job starts no pod");

    // Admitted: Kueue resumes the Job.
    let name = job["metadata"]["name"].as_str().unwrap();
    ok(&cluster.kubectl(
        &[
            "-n",
            "sims",
            "patch",
            "job",
            name,
            "--type=merge",
            "-p",
            r#"{"spec":{"suspend":false}}"#,
        ],
        None,
    ));
    let output = tokio::task::block_in_place(|| run.join().unwrap());
    let said = common::text(&output.stderr) + &common::text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert_eq!(status(&dir)["runs"]["complete"], 3);
    assert_eq!(created_jobs(&cluster).len(), 1);
}

/// A poll costs one list call for all the Jobs of a pass, whatever their children: a series of
/// 10,002 runs (two Jobs, past the 10,000 inputs of one), left suspended, is polled five times
/// and then terminated (the Jobs never started, so they are deleted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_is_one_list_call_at_ten_thousand_children() {
    let cluster = TestCluster::start_with_job_controller();
    cluster.create_namespace("sims");
    let seeds: Vec<String> = (0..3334).map(|s| s.to_string()).collect();
    let dir = quickstart_on_kubernetes("k8s-scale", "sims", &format!("[{}]", seeds.join(", ")));
    common::edit_file(
        &dir.join("series.yaml"),
        &[
            (
                "parallelism: 3}",
                "parallelism: 3, queueName: never-admitted}",
            ),
            ("    retries: 60", "    retries: 5"),
        ],
    );
    let output = run(&dir, &cluster, &[]);
    let said = common::text(&output.stderr) + &common::text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{said}");
    let status = status(&dir);
    let jobs = status["pass"]["groups"][0]["jobs"]
        .as_array()
        .unwrap()
        .clone();
    let sizes: Vec<u64> = jobs
        .iter()
        .map(|j| j["arraySize"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![10000, 2], "{jobs:?}");
    assert!(jobs.iter().all(|j| j["terminated"] == true), "{jobs:?}");
    let polls = status["attempts"].as_u64().unwrap();

    let mine: Vec<Value> = cluster
        .audit_events()
        .into_iter()
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|a| a.starts_with("kubectl-simseries/"))
        })
        .collect();
    let calls = |verb: &str, resource: &str| {
        mine.iter()
            .filter(|e| e["verb"] == verb && e["objectRef"]["resource"] == resource)
            .count() as u64
    };
    eprintln!(
        "10,002 children, {polls} polls: {} Job lists, {} Job gets, {} pod lists, {} calls in all",
        calls("list", "jobs"),
        calls("get", "jobs"),
        calls("list", "pods"),
        mine.len()
    );
    // One list per poll, and one before cleaning.
    assert_eq!(calls("list", "jobs"), polls + 1, "{polls} polls");
    assert_eq!(calls("create", "jobs"), 2);
    assert_eq!(calls("delete", "jobs"), 2, "never started: deleted");
    assert!(mine.len() as u64 <= polls + 12, "{} calls", mine.len());
    assert_eq!(
        ok(&cluster.kubectl(&["get", "jobs", "-n", "sims", "-o", "name"], None)),
        ""
    );
}

/// A user the cluster does not allow to create Jobs, and a namespace that does not exist: the
/// pass fails at its submission with what to fix, and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_submission_says_what_to_fix() {
    let cluster = TestCluster::start();
    cluster.create_namespace("sims");
    let alice = cluster.kubeconfig_for("alice", &[]);
    let dir = quickstart_on_kubernetes("k8s-refused", "sims", "[0]");
    let file = dir.join("series.yaml");
    let out = tokio::task::block_in_place(|| {
        common::simseries(
            &[
                "run",
                "-f",
                file.to_str().unwrap(),
                "--kubeconfig",
                alice.to_str().unwrap(),
            ],
            &[],
        )
    });
    let said = common::text(&out.stderr) + &common::text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("was not submitted: Forbidden: creating Job"),
        "the user is told why: {said}"
    );
    let status = status(&dir);
    let error = status["pass"]["lastError"].to_string() + &status["conditions"].to_string();
    assert!(error.contains("Forbidden"), "{status:#}");
    assert!(
        error.contains("create, get, list, patch and delete on jobs"),
        "{status:#}"
    );

    let dir = quickstart_on_kubernetes("k8s-no-namespace", "missing", "[0]");
    let out = run(&dir, &cluster, &[]);
    let said = common::text(&out.stderr) + &common::text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("was not submitted: NotFound"), "{said}");
    let status = self::status(&dir);
    assert!(
        status
            .to_string()
            .contains(r#"namespaces \"missing\" not found"#),
        "{status:#}"
    );
    assert!(created_jobs(&cluster).is_empty());
}

/// Deleting a series stops its running Jobs, and the garbage collector deletes them with it
/// (their owner reference); with `simseries.io/on-delete: keep-jobs` they run on, no longer
/// owned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_series_stops_its_jobs_unless_told_to_keep_them() {
    let cluster = TestCluster::start_with_job_controller();
    cluster.install_deploy();
    cluster.create_namespace("lab");
    let moto = common::moto::shared();
    let bucket = aws_example_bucket(moto).await;
    let (_controller, log) = start_controller(&cluster, moto);
    let logs =
        || std::fs::read_to_string(&log).unwrap_or_default() + &cluster.controller_manager_log();
    let _node = Node::start(
        cluster.admin_client().await,
        "lab",
        Some(moto.s3()),
        |_, _, _| PodEnd::Hang,
    );
    let stopped = aws_example_on_kubernetes(&bucket, "stopped", "STOPPED", 600);
    let kept = aws_example_on_kubernetes(&bucket, "kept", "KEPT", 600).replace(
        "name: kept\n",
        "name: kept\n  annotations:\n    simseries.io/on-delete: keep-jobs\n",
    );
    assert!(kept.contains("keep-jobs"), "{kept}");
    ok(&cluster.kubectl(&["apply", "-f", "-"], Some(&stopped)));
    ok(&cluster.kubectl(&["apply", "-f", "-"], Some(&kept)));
    let jobs = || -> Vec<Value> {
        let list: Value = serde_json::from_str(&ok(
            &cluster.kubectl(&["get", "jobs", "-n", "lab", "-o", "json"], None)
        ))
        .unwrap();
        list["items"].as_array().unwrap().clone()
    };
    let owned_by = |job: &Value| job["metadata"]["ownerReferences"][0]["name"].clone();
    let running = |name: &str| {
        jobs()
            .iter()
            .any(|j| owned_by(j) == name && j["status"]["active"].as_i64() == Some(4))
    };
    wait_until(
        "both series' Jobs to run",
        || running("stopped") && running("kept"),
        logs,
    );

    for name in ["stopped", "kept"] {
        ok(&cluster.kubectl(
            &["delete", "-n", "lab", "simser", name, "--timeout=60s"],
            None,
        ));
    }
    wait_until(
        "the stopped series' Job to be gone and the kept one to run on",
        || {
            let jobs = jobs();
            jobs.len() == 1
                && jobs[0]["metadata"].get("ownerReferences").is_none()
                && jobs[0]["status"]["active"].as_i64() == Some(4)
        },
        || format!("{:#?}\n{}", jobs(), logs()),
    );
    let events = ok(&cluster.kubectl(&["get", "events", "-n", "lab", "-o", "json"], None));
    assert!(events.contains("1 Job(s) terminated"), "{events}");
    assert!(events.contains("1 running Job(s) kept"), "{events}");
}

/// The controller's crash matrix on this executor: killed at every crash point while it
/// reconciles a new series (4 runs as one Indexed Job, one straggler terminated), then
/// replaced; the pass ends as an uninterrupted one does and its Job was created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_survives_a_crash_at_every_point_on_kubernetes() {
    let cluster = TestCluster::start_with_job_controller();
    cluster.install_deploy();
    cluster.create_namespace("lab");
    let moto = common::moto::shared();
    let bucket = aws_example_bucket(moto).await;
    let _node = Node::start(
        cluster.admin_client().await,
        "lab",
        Some(moto.s3()),
        |_, index, _| {
            if index == 3 {
                PodEnd::Hang
            } else {
                PodEnd::Succeed
            }
        },
    );
    let single = ["--no-leader-election"];
    for (i, point) in simseries::faults::POINTS.iter().enumerate() {
        let name = format!("crash-{i}");
        let yaml = aws_example_on_kubernetes(&bucket, &name, &format!("CRASH_{i}"), 3);
        let config = format!("{point}=return");
        let (mut crashing, crash_log) = start_controller_with(
            &cluster,
            moto,
            &format!("crashing-{i}"),
            &single,
            &[("FAILPOINTS", config.as_str())],
        );
        ok(&cluster.kubectl(&["apply", "-f", "-"], Some(&yaml)));
        let deadline = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Some(status) = crashing.0.try_wait().unwrap() {
                break status.code();
            }
            assert!(
                Instant::now() < deadline,
                "{point}: not reached:\n{}",
                std::fs::read_to_string(&crash_log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(
            code,
            Some(simseries::faults::CRASH_EXIT_CODE),
            "{point}: {}",
            std::fs::read_to_string(&crash_log).unwrap_or_default()
        );
        let (_controller, log) =
            start_controller_with(&cluster, moto, &format!("after-{i}"), &single, &[]);
        let field = |path: &str| {
            ok(&cluster.kubectl(
                &[
                    "-n",
                    "lab",
                    "get",
                    "simser",
                    &name,
                    "-o",
                    &format!("jsonpath={path}"),
                ],
                None,
            ))
        };
        wait_until(
            &format!("{point}: the pass to end"),
            || field("{.status.phase}") == "Incomplete",
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
        assert_eq!(
            [
                field("{.status.pass.number}"),
                field("{.status.progress}"),
                field("{.status.pass.groups[0].jobs[0].arraySize}"),
                field("{.status.pass.groups[0].jobs[0].terminated}"),
                field("{.status.pass.groups[0].logs.count}"),
                field("{.status.pass.usage.children}"),
            ],
            ["1", "3/4", "4", "true", "4", "3"],
            "{point}: the pass ended differently"
        );
        let uid = field("{.metadata.uid}");
        let created: Vec<String> = created_jobs(&cluster)
            .into_iter()
            .filter(|job| job.starts_with(&format!("alice-crash-{i}-")))
            .collect();
        assert_eq!(
            created.len(),
            1,
            "{point}: one Job, created once: {created:?} ({uid})"
        );
    }
    eprintln!(
        "controller on Kubernetes: {} crash points survived, 0 duplicate Jobs",
        simseries::faults::POINTS.len()
    );
}
