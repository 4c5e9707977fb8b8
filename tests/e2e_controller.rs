//! End to end: the real `simseries controller` binary, `kubectl` built at the server's
//! version, moto for AWS, and for the Kubernetes API a real kube-apiserver and etcd started
//! by the test (crates/test-cluster, RBAC on, deploy/ installed, the controller as its
//! ServiceAccount), or a real cluster when `SIMSERIES_E2E_KUBECONFIG` names its kubeconfig
//! (see the README).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::aws_run::{check_batch_options, example_runs, write_example_outputs};
use common::fixtures::Fixture;
use common::moto::{self, Moto};
use common::{privileges, temp_dir};
use test_cluster::{TestCluster, ok, text};

const CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/simulationseries.yaml");

/// Where kubectl and the controller talk to: a control plane of this test's, or a real
/// cluster.
struct Cluster {
    /// kubectl's (and the kubectl plugin's) kubeconfig: a cluster admin's.
    kubeconfig: PathBuf,
    /// The controller's: deploy/'s ServiceAccount on the test's control plane.
    controller_kubeconfig: PathBuf,
    /// Where the test's series live.
    namespace: String,
    /// Where the controller keeps its Lease (deploy/'s Role grants it there).
    lease_namespace: String,
    kube_cache: PathBuf,
    /// The folder that holds `kube_cache` on a real cluster, removed with the test.
    _scratch: Option<common::TestDir>,
    local: Option<TestCluster>,
}

impl Cluster {
    /// A control plane of this test's with deploy/'s namespace, ServiceAccount and RBAC but
    /// not yet the CRD (`install_crd` applies all of deploy/).
    fn local() -> Cluster {
        let local = TestCluster::start();
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
        for part in ["namespace.yaml", "serviceaccount.yaml", "rbac.yaml"] {
            ok(&local.kubectl(&["apply", "-f", deploy.join(part).to_str().unwrap()], None));
        }
        let namespace = "e2e".to_string();
        local.create_namespace(&namespace);
        Cluster {
            kubeconfig: local.admin_kubeconfig.clone(),
            controller_kubeconfig: local.controller_kubeconfig(),
            namespace,
            lease_namespace: test_cluster::CONTROLLER_NAMESPACE.into(),
            kube_cache: local.dir().join("e2e-kube-cache"),
            _scratch: None,
            local: Some(local),
        }
    }

    fn real(kubeconfig: &str) -> Cluster {
        let namespace = format!("simseries-e2e-{}", std::process::id());
        let scratch = temp_dir("e2e-kube-cache");
        let cluster = Cluster {
            kubeconfig: kubeconfig.into(),
            controller_kubeconfig: kubeconfig.into(),
            namespace: namespace.clone(),
            lease_namespace: namespace.clone(),
            kube_cache: scratch.join("kube-cache"),
            _scratch: Some(scratch),
            local: None,
        };
        ok(&cluster.kubectl(&["create", "namespace", &namespace], None));
        cluster
    }

    /// kubectl as the admin, set up for this cluster.
    fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(test_cluster::tool("kubectl"));
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", &self.kube_cache);
        command
    }

    /// Runs kubectl (blocking; the tests use a multi-thread runtime).
    fn kubectl(&self, args: &[&str], input: Option<&str>) -> Output {
        test_cluster::run_with_input(self.kubectl_command(args), input)
    }

    fn ns_kubectl(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut all = vec!["-n", self.namespace.as_str()];
        all.extend_from_slice(args);
        self.kubectl(&all, input)
    }
}

/// The kubectl plugin as a user installs it: the binary linked as `kubectl-simseries` in a
/// folder on the PATH. Returns that folder.
fn install_plugin(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("kubectl-simseries");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_simseries"), &link).unwrap();
    bin
}

/// `kubectl ARGS` with the plugin folder first on the PATH and the user's AWS credentials
/// (moto's), as a user runs `kubectl simseries …`.
fn kubectl_plugin_command(cluster: &Cluster, moto: &Moto, bin: &Path, args: &[&str]) -> Command {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = cluster.kubectl_command(args);
    command
        .env("PATH", path)
        .envs(moto.env())
        .stdin(Stdio::null());
    command
}

fn kubectl_with_plugin(cluster: &Cluster, moto: &Moto, bin: &Path, args: &[&str]) -> Output {
    let mut command = kubectl_plugin_command(cluster, moto, bin, args);
    tokio::task::block_in_place(|| command.output().unwrap())
}

/// The controller as a process.
struct Controller {
    child: Child,
    metrics: String,
    log: PathBuf,
}

impl Controller {
    fn start(cluster: &Cluster, moto: &Moto, dir: &Path, name: &str) -> Controller {
        Self::start_with(cluster, moto, dir, name, &[], &[])
    }

    /// A controller with extra arguments and environment.
    fn start_with(
        cluster: &Cluster,
        moto: &Moto,
        dir: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Controller {
        let metrics = common::free_address();
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_simseries"));
        command
            .args(["controller", "--metrics-address", &metrics])
            .args([
                "--lease-namespace",
                &cluster.lease_namespace,
                "--namespace",
                &cluster.namespace,
            ])
            .arg("--tenancy")
            .arg(dir.join("tenancy.yaml"))
            .env("KUBECONFIG", &cluster.controller_kubeconfig)
            .env("SIMSERIES_LOG", "info,simseries=debug")
            .env("POD_NAME", name)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, value) in moto.env() {
            command.env(key, value);
        }
        // moto takes any secret: this one must never show in a status, event, log or metric.
        command.env("AWS_SECRET_ACCESS_KEY", SECRET_CANARY);
        command.env_remove("FAILPOINTS").args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let controller = Controller {
            child: command.spawn().unwrap(),
            metrics,
            log,
        };
        wait_for(
            "the controller to be ready",
            || controller.get("/readyz").starts_with("HTTP/1.1 200"),
            &controller,
        );
        controller
    }

    fn get(&self, path: &str) -> String {
        common::http_get(&self.metrics, path)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to a minute for the process to end by itself; its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// A counter's value in a metrics answer.
fn counter(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool, controller: &Controller) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !tokio::task::block_in_place(&mut check) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; controller log:\n{}",
            controller.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The AWS example on this test's bucket and queue.
/// Installs the CRD and waits until it is served.
/// On the test's control plane, all of deploy/ (`kubectl apply -k`), as a user installs it.
fn install_crd(cluster: &Cluster) {
    match &cluster.local {
        Some(local) => local.install_deploy(),
        None => {
            ok(&cluster.kubectl(&["apply", "-f", CRD], None));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster
        .ns_kubectl(&["get", "simser"], None)
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the CRD is not served");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The tenancy file the test's controllers read (`dir/tenancy.yaml`): the series of
/// `namespace` may use the test's bucket and queue, nothing else.
fn grant(dir: &Path, namespace: &str, bucket: &str, queue: &str) {
    std::fs::write(
        dir.join("tenancy.yaml"),
        format!(
            "grants:\n- namespace: {namespace}\n  locations: [s3://{bucket}/]\n  queues: [{queue}]\n"
        ),
    )
    .unwrap();
}

/// Permissions the run cannot exercise, each with where it is shown instead.
const UNEXERCISED: &[(&str, &str)] = &[
    (
        "batch:TerminateJob",
        "moto's jobs finish inside SubmitJob, so none is left to terminate (tests/batch_fake.rs)",
    ),
    (
        "batch:ListJobs",
        "only a submission after a restart or a failed call looks for its job by name: this scenario's passes never do, the crash test beside it (on the same moto, so in the recording when both run) does",
    ),
    (
        "batch/jobs create",
        "only series with `executor: kubernetes` make Jobs: tests/kubernetes_jobs.rs holds the controller to these grants",
    ),
    ("batch/jobs get", "as batch/jobs create"),
    ("batch/jobs list", "as batch/jobs create"),
    ("batch/jobs patch", "as batch/jobs create"),
    ("batch/jobs delete", "as batch/jobs create"),
    ("/pods list", "as batch/jobs create"),
    ("/pods/log get", "as batch/jobs create"),
    (
        "events.k8s.io/events patch",
        "kube's event recorder patches a repeated event into a series (kube-runtime's Recorder)",
    ),
];

/// The README's IAM policy and deploy/'s RBAC grant what the controller used in this run:
/// nothing missing, nothing extra (but the calls listed in `UNEXERCISED`).
fn check_least_privilege(cluster: &Cluster, moto: &Moto) {
    let unexercised: Vec<&str> = UNEXERCISED.iter().map(|(p, _)| *p).collect();
    let used = privileges::actions_of_recording(&moto.recording());
    let granted = privileges::readme_policy_actions();
    let missing: Vec<&String> = used.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "the README's IAM policy lacks {missing:?}"
    );
    let extra: Vec<&String> = granted
        .difference(&used)
        .filter(|a| !unexercised.contains(&a.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "the README's IAM policy grants unused {extra:?}"
    );

    let Some(local) = &cluster.local else {
        return;
    };
    // What the server's audit log says the controller's ServiceAccount did.
    let requests = local.audit_events_of(&test_cluster::controller_user());
    assert!(!requests.is_empty(), "no request of the controller audited");
    let report = privileges::rbac_report(&requests, &privileges::deploy_rbac_grants());
    assert!(
        report.refused.is_empty(),
        "the server refused the controller (deploy/rbac.yaml lacks a grant): {:?}",
        report.refused
    );
    assert!(
        report.ungranted.is_empty(),
        "deploy/rbac.yaml does not allow {:?}",
        report.ungranted
    );
    let unused: Vec<&String> = report
        .unused
        .iter()
        .filter(|g| !unexercised.contains(&g.as_str()))
        .collect();
    assert!(
        unused.is_empty(),
        "deploy/rbac.yaml grants {unused:?}, which the controller never used"
    );
}

/// The controller's AWS secret in this test, searched for wherever the controller writes.
const SECRET_CANARY: &str = "canary-secret-3f9c1e7a";

/// The AWS example on `bucket` and `queue` as object `name` in `namespace`, with `seeds`,
/// polls `retry_delay` seconds apart and every AWS Batch option beyond the original's.
fn example(
    bucket: &str,
    queue: &str,
    namespace: &str,
    seeds: std::ops::Range<u32>,
    retry_delay: u64,
) -> Fixture {
    Fixture::aws_example()
        .on_s3(bucket)
        .on_aws("alice", queue)
        .named("aws-example", Some(namespace), "AWS_EXAMPLE")
        .batch_options()
        .edit(|s| {
            s.spec.series.seeds = seeds.collect();
            s.spec.parameters.retry_delay = retry_delay;
        })
}

fn series(
    bucket: &str,
    queue: &str,
    namespace: &str,
    seeds: std::ops::Range<u32>,
    retry_delay: u64,
) -> String {
    example(bucket, queue, namespace, seeds, retry_delay).yaml()
}

/// `kubectl wait` on the series until `condition` (e.g. `--for=condition=Ready`).
fn wait_series(cluster: &Cluster, controller: &Controller, condition: &str) {
    let waited = cluster.ns_kubectl(
        &["wait", condition, "simser/aws-example", "--timeout=90s"],
        None,
    );
    assert!(
        waited.status.success(),
        "{}\ncontroller log:\n{}",
        text(&waited),
        controller.logs()
    );
}

fn jsonpath(cluster: &Cluster, path: &str) -> String {
    ok(&cluster.ns_kubectl(
        &[
            "get",
            "simser",
            "aws-example",
            "-o",
            &format!("jsonpath={path}"),
        ],
        None,
    ))
}

/// Who holds the controller's Lease ("" for nobody, or no Lease yet).
fn lease_holder(cluster: &Cluster) -> String {
    String::from_utf8_lossy(
        &cluster
            .kubectl(
                &[
                    "-n",
                    &cluster.lease_namespace,
                    "get",
                    "lease",
                    "simseries-controller",
                    "-o",
                    "jsonpath={.spec.holderIdentity}",
                ],
                None,
            )
            .stdout,
    )
    .into_owned()
}

/// The health Flux and Argo CD compute for a live series (kstatus), e.g. `Current`.
fn health(cluster: &Cluster, name: &str) -> String {
    let object = ok(&cluster.ns_kubectl(&["get", "simser", name, "-o", "json"], None));
    let computed = test_cluster::kstatus(&object);
    computed
        .split_once(':')
        .map_or(computed.clone(), |(status, _)| status.to_string())
}

/// `kubectl apply --server-side` of a series, as Flux (and Argo CD with ServerSideApply)
/// applies it: the user's field manager beside the controller's status writes.
fn apply_server_side(cluster: &Cluster, yaml: &str) {
    ok(&cluster.kubectl(
        &[
            "apply",
            "--server-side",
            "--field-manager=gitops",
            "-f",
            "-",
        ],
        Some(yaml),
    ));
}

fn jobs_named(moto: &Moto, queue: &str, name: &str) -> Vec<(String, i32)> {
    let batch = moto.batch();
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            let listed = batch
                .list_jobs()
                .job_queue(queue)
                .filters(
                    aws_sdk_batch::types::KeyValuesPair::builder()
                        .name("JOB_NAME")
                        .values(name)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            // moto lists array children (`parent:index`) with their parent; AWS does not.
            let ids: Vec<String> = listed
                .job_summary_list()
                .iter()
                .map(|j| j.job_id().unwrap().to_string())
                .filter(|id| !id.contains(':'))
                .collect();
            if ids.is_empty() {
                return Vec::new();
            }
            let described = batch
                .describe_jobs()
                .set_jobs(Some(ids))
                .send()
                .await
                .unwrap();
            described
                .jobs()
                .iter()
                .map(|j| {
                    (
                        j.job_id().unwrap().to_string(),
                        j.array_properties().and_then(|a| a.size()).unwrap_or(1),
                    )
                })
                .collect()
        })
    })
}

/// Writes the lines a model would have logged into the CloudWatch stream of each child of
/// array job `id` (moto runs no containers, so it logs nothing itself).
async fn write_model_logs(moto: &Moto, id: &str, children: u32) {
    for index in 0..children {
        let lines = [
            format!("toy-model: input AWS_EXAMPLE_{index}.xml, 100 steps"),
            "toy-model: step 100/100".to_string(),
            "toy-model: done".to_string(),
        ];
        moto.log_job(&format!("{id}:{index}"), &lines).await;
    }
}

async fn scenario(cluster: Cluster) {
    let moto = moto::shared();
    let bucket = format!("e2e-{}-{}", std::process::id(), cluster.namespace.len());
    let queue = format!("e2e-queue-{}", std::process::id());
    moto.setup_batch(&bucket, &queue);
    // Every AWS call from here on is recorded, for the least-privilege check at the end.
    moto.start_recording();
    let dir = temp_dir("e2e");
    let ns = cluster.namespace.clone();
    grant(&dir, &ns, &bucket, &queue);

    // Without the CRD, the controller says how to install it and stops.
    let mut without = Command::new(env!("CARGO_BIN_EXE_simseries"));
    without
        .args([
            "controller",
            "--no-leader-election",
            "--metrics-address",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &cluster.controller_kubeconfig);
    {
        let out = tokio::task::block_in_place(|| without.output().unwrap());
        assert!(!out.status.success());
        assert!(
            text(&out).contains("kubectl apply -f crds/simulationseries.yaml"),
            "{}",
            text(&out)
        );
    }

    install_crd(&cluster);
    let controller = Controller::start(&cluster, moto, &dir, "replica-a");

    // Apply a series, as a user or a GitOps tool would. moto runs no containers: the jobs
    // succeed and no output appears, so the pass ends Incomplete and the series is not Ready.
    ok(&cluster.kubectl(
        &["apply", "-f", "-"],
        Some(&series(&bucket, &queue, &ns, 0..3, 1)),
    ));
    wait_series(
        &cluster,
        &controller,
        "--for=jsonpath={.status.phase}=Incomplete",
    );
    assert_eq!(
        jsonpath(
            &cluster,
            "{.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}"
        ),
        "False OutputsMissing"
    );
    // Stalled (OutputsMissing) reads as Failed to GitOps tools: nothing more happens by itself.
    assert_eq!(health(&cluster, "aws-example"), "Failed");
    let ready = jsonpath(
        &cluster,
        "{.status.conditions[?(@.type==\"Ready\")].message}",
    );
    assert!(
        ready.contains(&format!(
            "6 run(s) have no outputs (e.g. AWS_EXAMPLE_LOW_0000); the model must write them under s3://{bucket}/work/AWS_EXAMPLE/"
        )),
        "{ready}"
    );

    let table = ok(&cluster.ns_kubectl(&["get", "simulationseries"], None));
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "PHASE", "RUNS", "PASS", "FAILED", "ATTEMPTS", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..6],
        ["aws-example", "Incomplete", "0/6", "6/6", "0", "1"],
        "{table}"
    );
    let wide = ok(&cluster.ns_kubectl(&["get", "simulationseries", "-o", "wide"], None));
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert!(header.contains(&"ACTIVE"), "{wide}");
    assert!(header.contains(&"VCPU-H"), "{wide}");

    // The kubectl plugin: kubectl finds it, and it shows what the status and S3 hold.
    let bin = install_plugin(&dir);
    let plugin = |args: &[&str]| kubectl_with_plugin(&cluster, moto, &bin, args);
    let listed = plugin(&["plugin", "list"]);
    assert!(
        text(&listed).contains("kubectl-simseries"),
        "{}",
        text(&listed)
    );
    let help = ok(&plugin(&["simseries", "--help"]));
    for command in ["status", "report", "logs", "rerun", "plan"] {
        assert!(help.contains(command), "{command} not in:\n{help}");
    }
    let shown = ok(&plugin(&["simseries", "status", "aws-example", "-n", &ns]));
    for part in [
        "Ready:  False (OutputsMissing)",
        "Inputs: 6/6 done, 0 failed, 0 running",
        "Usage:  ",
        "over 6 attempt(s) of 6 child(ren); estimated cost",
        "alice_AWS_EXAMPLE",
        "LOW ",
    ] {
        assert!(shown.contains(part), "{part:?} not in:\n{shown}");
    }
    assert!(
        shown
            .lines()
            .any(|l| l.trim_start().starts_with("TOTAL") && l.contains("0/6 (0.0 %)")),
        "{shown}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&plugin(&[
        "simseries",
        "status",
        "aws-example",
        "-n",
        &ns,
        "-o",
        "json",
    ])))
    .unwrap();
    assert_eq!(json["status"]["phase"], "Incomplete");
    assert_eq!(json["completeness"]["allComplete"], false);
    assert_eq!(json["completeness"]["rows"][0]["seeds"], 3);
    // The report of the same series: read from the cluster and S3 as status reads them.
    let page = dir.join("aws-example-report.html");
    ok(&plugin(&[
        "simseries",
        "report",
        "aws-example",
        "-n",
        &ns,
        "--out",
        page.to_str().unwrap(),
    ]));
    let page = std::fs::read_to_string(&page).unwrap();
    let embedded = common::embedded_status(&page);
    assert_eq!(embedded["completeness"], json["completeness"]);
    let runs: u64 = json["completeness"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seeds"].as_u64().unwrap())
        .sum();
    assert!(
        page.contains(&format!("data-state=\"missing\" data-count=\"{runs}\"")),
        "every run is missing its outputs"
    );
    let log = plugin(&["simseries", "logs", "aws-example", "LOW_0000", "-n", &ns]);
    assert!(log.status.success(), "{}", text(&log));
    // The README's transcript (`scripts/test.sh --test e2e_controller -- --nocapture`).
    eprintln!(
        "--- transcript ---\n$ kubectl get simser\n{table}\n$ kubectl get simser -o wide\n{wide}\n$ kubectl simseries status aws-example\n{shown}--- end ---"
    );
    let by_input = plugin(&[
        "simseries",
        "logs",
        "aws-example",
        "AWS_EXAMPLE_0",
        "-n",
        &ns,
    ]);
    assert_eq!(by_input.stdout, log.stdout, "the same child's log");
    let unknown = plugin(&["simseries", "logs", "aws-example", "NOPE_0000", "-n", &ns]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("no run or input \"NOPE_0000\" in pass 1 of aws-example"),
        "{}",
        text(&unknown)
    );
    let missing = plugin(&["simseries", "status", "no-such-series", "-n", &ns]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains(&format!(
            "simulationseries \"no-such-series\" not found in namespace {ns}"
        )),
        "{}",
        text(&missing)
    );
    // A reader that goes away (`kubectl simseries status … | head`) ends it quietly.
    let mut piped = kubectl_plugin_command(
        &cluster,
        moto,
        &bin,
        &["simseries", "status", "aws-example", "-n", &ns],
    );
    piped.stdout(Stdio::piped()).stderr(Stdio::piped());
    let closed = tokio::task::block_in_place(|| {
        let mut child = piped.spawn().unwrap();
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    });
    assert!(
        matches!(closed.status.code(), Some(0 | 141)),
        "{}",
        text(&closed)
    );
    assert!(!text(&closed).contains("panicked"), "{}", text(&closed));
    let planned = ok(&plugin(&["simseries", "plan", "aws-example", "-n", &ns]));
    assert!(planned.contains("Series AWS_EXAMPLE"), "{planned}");
    assert!(
        planned.contains(&format!("dated folder s3://{bucket}/work/AWS_EXAMPLE/")),
        "{planned}"
    );
    assert!(ok(&cluster.ns_kubectl(&["get", "simser"], None)).contains("aws-example"));
    assert_eq!(
        jsonpath(&cluster, "{.status.pass.groups[0].jobs[0].arraySize}"),
        "6"
    );
    assert_eq!(jobs_named(moto, &queue, "alice_AWS_EXAMPLE").len(), 1);

    let described = ok(&cluster.ns_kubectl(&["describe", "simser", "aws-example"], None));
    for word in [
        "PassStarted",
        "Submitted",
        "OutputsMissing",
        "Warning",
        "Ready",
        "Reconciling",
        "Stalled",
        "UsageMeasured",
    ] {
        assert!(described.contains(word), "{word} not in:\n{described}");
    }
    let explained = ok(&cluster.kubectl(&["explain", "simulationseries.spec.series"], None));
    assert!(explained.contains("manifestSource"), "{explained}");
    let explained = ok(&cluster.kubectl(&["explain", "simulationseries.spec.parameters"], None));
    for field in [
        "spotRetries",
        "timeoutSeconds",
        "schedulingPriority",
        "vcpuHourPrice",
    ] {
        assert!(explained.contains(field), "{field} not in:\n{explained}");
    }

    // What the pass used: one measured attempt per child (moto runs each for milliseconds),
    // in the status, the wide table and the metrics.
    assert_eq!(
        jsonpath(
            &cluster,
            "{.status.pass.usage.children} {.status.pass.usage.attempts}"
        ),
        "6 6"
    );
    assert!(
        controller
            .get("/metrics")
            .contains("simseries_vcpu_hours_total"),
        "no usage counter"
    );

    // A series reaching for a bucket its namespace was not granted is refused, and says why.
    let outsider = example("someone-elses-bucket", &queue, &ns, 0..1, 1)
        .named("outsider", Some(&ns), "AWS_EXAMPLE")
        .yaml();
    ok(&cluster.kubectl(&["apply", "-f", "-"], Some(&outsider)));
    let waited = cluster.ns_kubectl(
        &[
            "wait",
            "--for=condition=Stalled",
            "simser/outsider",
            "--timeout=60s",
        ],
        None,
    );
    assert!(
        waited.status.success(),
        "{}\n{}",
        text(&waited),
        controller.logs()
    );
    let stalled = ok(&cluster.ns_kubectl(
        &[
            "get",
            "simser",
            "outsider",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Stalled\")].reason}: {.status.conditions[?(@.type==\"Stalled\")].message}",
        ],
        None,
    ));
    assert!(
        stalled.starts_with(&format!(
            "NotAllowed: spec.context.workingLocation: s3://someone-elses-bucket/work is outside what namespace {ns} may use"
        )),
        "{stalled}"
    );
    assert_eq!(health(&cluster, "outsider"), "Failed");
    ok(&cluster.ns_kubectl(&["delete", "simser", "outsider", "--timeout=60s"], None));

    // The model's outputs appear; adding a seed (a new generation) runs only the new runs.
    let date = jsonpath(&cluster, "{.status.pass.date}");
    write_example_outputs(moto, &bucket, &date, &example_runs(0..3)).await;
    // From here on the spec is applied server-side, by a manager of its own: the controller's
    // status writes (another manager, the status subresource) never conflict with it.
    apply_server_side(&cluster, &series(&bucket, &queue, &ns, 0..4, 1));
    wait_series(
        &cluster,
        &controller,
        "--for=jsonpath={.status.pass.number}=2",
    );
    wait_series(
        &cluster,
        &controller,
        "--for=jsonpath={.status.phase}=Incomplete",
    );
    assert_eq!(
        jsonpath(&cluster, "{.status.pass.groups[0].jobs[0].arraySize}"),
        "2",
        "only LOW_0003 and HIGH_0003"
    );
    assert_eq!(jsonpath(&cluster, "{.status.observedGeneration}"), "2");
    assert_eq!(jsonpath(&cluster, "{.status.progress}"), "6/8");
    assert_eq!(jobs_named(moto, &queue, "alice_AWS_EXAMPLE").len(), 2);

    // A restart in the middle of a pass resumes it without submitting again.
    write_example_outputs(moto, &bucket, &date, &example_runs(3..4)).await;
    apply_server_side(&cluster, &series(&bucket, &queue, &ns, 0..5, 6));
    wait_series(
        &cluster,
        &controller,
        "--for=jsonpath={.status.phase}=Running",
    );
    assert_eq!(health(&cluster, "aws-example"), "InProgress");
    let id = jsonpath(&cluster, "{.status.pass.groups[0].jobs[0].id}");
    assert!(!id.is_empty());
    write_model_logs(moto, &id, 2).await;
    let metrics = controller.get("/metrics");
    assert!(
        metrics.contains("simseries_aws_calls_total{api=\"SubmitJob\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("simseries_reconciliations_total"),
        "{metrics}"
    );
    // A second replica beside the leader, as deploy/'s two replicas run: ready, but it
    // reconciles nothing while replica-a holds the Lease.
    let standby = Controller::start(&cluster, moto, &dir, "replica-b");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        counter(&standby.get("/metrics"), "simseries_reconciliations_total"),
        Some(0.0),
        "the standby reconciled while the leader held the Lease:\n{}",
        standby.logs()
    );
    assert_eq!(lease_holder(&cluster), "replica-a");
    controller.kill();
    let controller = standby;
    wait_series(
        &cluster,
        &controller,
        "--for=jsonpath={.status.phase}=Incomplete",
    );
    assert_eq!(jsonpath(&cluster, "{.status.pass.number}"), "3");
    assert_eq!(
        jsonpath(&cluster, "{.status.pass.groups[0].jobs[0].id}"),
        id,
        "the same job, adopted"
    );
    // The saved log of one run, through the plugin: the model's lines.
    let log = ok(&plugin(&[
        "simseries",
        "logs",
        "aws-example",
        "HIGH_0004",
        "-n",
        &ns,
    ]));
    assert!(
        log.contains("toy-model: input AWS_EXAMPLE_1.xml, 100 steps\ntoy-model: step 100/100\ntoy-model: done"),
        "{log}"
    );
    eprintln!(
        "--- transcript ---\n$ kubectl simseries logs aws-example HIGH_0004\n{log}--- end ---"
    );
    assert_eq!(
        jobs_named(moto, &queue, "alice_AWS_EXAMPLE").len(),
        3,
        "one job per pass"
    );
    let metrics = controller.get("/metrics");
    assert!(
        !metrics.contains("simseries_aws_calls_total{api=\"SubmitJob\"}"),
        "the new replica submitted nothing:\n{metrics}"
    );
    assert_eq!(lease_holder(&cluster), "replica-b");

    // A changed rerun annotation starts a pass of the unchanged spec: what is still missing.
    ok(&cluster.ns_kubectl(
        &["annotate", "simser", "aws-example", "simseries.io/rerun=1"],
        None,
    ));
    wait_series(
        &cluster,
        &controller,
        "--for=jsonpath={.status.pass.number}=4",
    );
    wait_series(
        &cluster,
        &controller,
        "--for=jsonpath={.status.phase}=Incomplete",
    );
    assert_eq!(
        jsonpath(&cluster, "{.status.pass.groups[0].jobs[0].arraySize}"),
        "2",
        "LOW_0004 and HIGH_0004"
    );
    assert_eq!(jsonpath(&cluster, "{.status.pass.rerun}"), "1");

    // Once the model has written every output, a rerun finds nothing missing: Ready.
    write_example_outputs(moto, &bucket, &date, &example_runs(4..5)).await;
    let rerun = ok(&plugin(&["simseries", "rerun", "aws-example", "-n", &ns]));
    assert!(
        rerun.starts_with("simulationseries.simseries.io/aws-example rerun requested"),
        "{rerun}"
    );
    wait_series(
        &cluster,
        &controller,
        "--for=jsonpath={.status.pass.number}=5",
    );
    wait_series(&cluster, &controller, "--for=condition=Ready");
    assert_eq!(jsonpath(&cluster, "{.status.phase}"), "Complete");
    assert_eq!(health(&cluster, "aws-example"), "Current");
    // The same spec applied again by its manager: no conflict, no new generation.
    let generation = jsonpath(&cluster, "{.metadata.generation}");
    apply_server_side(&cluster, &series(&bucket, &queue, &ns, 0..5, 6));
    assert_eq!(jsonpath(&cluster, "{.metadata.generation}"), generation);
    let managers = jsonpath(&cluster, "{.metadata.managedFields[*].manager}");
    for manager in ["gitops", "simseries"] {
        assert!(managers.contains(manager), "{manager} not in {managers}");
    }
    assert_eq!(health(&cluster, "aws-example"), "Current");
    assert_eq!(jsonpath(&cluster, "{.status.progress}"), "10/10");

    let object = ok(&cluster.ns_kubectl(&["get", "simser", "aws-example", "-o", "yaml"], None));
    assert!(
        !object.contains(SECRET_CANARY),
        "the AWS secret is in the status"
    );

    // Deleting the series runs the finalizer; kubectl waits until the object is gone.
    let deleted = cluster.ns_kubectl(&["delete", "simser", "aws-example", "--timeout=90s"], None);
    assert!(
        deleted.status.success(),
        "{}\n{}",
        text(&deleted),
        controller.logs()
    );
    let gone = cluster.ns_kubectl(&["get", "simser", "aws-example"], None);
    assert!(
        !gone.status.success() && text(&gone).contains("NotFound"),
        "{}",
        text(&gone)
    );
    check_least_privilege(&cluster, moto);
    check_batch_options(&moto.recording(), "alice_AWS_EXAMPLE");

    let events = ok(&cluster.ns_kubectl(&["get", "events", "-o", "yaml"], None));
    assert!(events.contains("CleanedUp"), "{events}");
    // No credential anywhere the controller writes.
    for (what, written) in [
        ("events", events.clone()),
        ("log", controller.logs()),
        ("metrics", controller.get("/metrics")),
    ] {
        assert!(
            !written.contains(SECRET_CANARY),
            "the AWS secret is in the {what}"
        );
    }
    controller.kill();
    if cluster.local.is_none() {
        let _ = cluster.kubectl(
            &["delete", "namespace", &cluster.namespace, "--wait=false"],
            None,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_controller_runs_series_on_a_real_api_server() {
    scenario(Cluster::local()).await;
}

/// Runs only when SIMSERIES_E2E_KUBECONFIG names a real cluster's kubeconfig (kind, k3d…).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_controller_runs_series_against_a_real_cluster() {
    let Ok(kubeconfig) = std::env::var("SIMSERIES_E2E_KUBECONFIG") else {
        eprintln!("SIMSERIES_E2E_KUBECONFIG is not set: the real-cluster suite does not run");
        return;
    };
    scenario(Cluster::real(&kubeconfig)).await;
}

/// The controller killed at every crash point of a pass and restarted: each series' job is
/// submitted once, and the pass ends as an uninterrupted one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_survives_a_crash_at_every_point() {
    let cluster = Cluster::local();
    let moto = moto::shared();
    let bucket = format!("e2e-crash-{}", std::process::id());
    let queue = format!("e2e-crash-queue-{}", std::process::id());
    moto.setup_batch(&bucket, &queue);
    let dir = temp_dir("e2e-crash");
    let ns = cluster.namespace.clone();
    grant(&dir, &ns, &bucket, &queue);
    install_crd(&cluster);
    // moto needs one poll and leaves nothing to terminate: those points are not reached here
    // (tests/crash.rs and tests/batch_fake.rs cover them).
    let points: Vec<&str> = simseries::faults::POINTS
        .iter()
        .copied()
        .filter(|p| *p != "after-terminate")
        .collect();
    let single = ["--no-leader-election"];
    for (i, point) in points.iter().enumerate() {
        let name = format!("crash-{i}");
        let series_name = format!("CRASH_{i}");
        let yaml = example(&bucket, &queue, &ns, 0..3, 1)
            .named(&name, Some(&ns), &series_name)
            .yaml();
        let config = format!("{point}=return");
        let mut crashing = Controller::start_with(
            &cluster,
            moto,
            &dir,
            &format!("crashing-{i}"),
            &single,
            &[("FAILPOINTS", config.as_str())],
        );
        ok(&cluster.kubectl(&["apply", "-f", "-"], Some(&yaml)));
        assert_eq!(
            crashing.exit_code(),
            Some(simseries::faults::CRASH_EXIT_CODE),
            "{point}: not reached:\n{}",
            crashing.logs()
        );
        let controller =
            Controller::start_with(&cluster, moto, &dir, &format!("after-{i}"), &single, &[]);
        // moto's jobs succeed without outputs: an uninterrupted pass ends Incomplete.
        let waited = cluster.ns_kubectl(
            &[
                "wait",
                "--for=jsonpath={.status.phase}=Incomplete",
                &format!("simser/{name}"),
                "--timeout=90s",
            ],
            None,
        );
        assert!(
            waited.status.success(),
            "{point}: {}\n{}",
            text(&waited),
            controller.logs()
        );
        let field = |path: &str| {
            ok(&cluster.ns_kubectl(
                &["get", "simser", &name, "-o", &format!("jsonpath={path}")],
                None,
            ))
        };
        assert_eq!(
            [
                field("{.status.phase}"),
                field("{.status.pass.number}"),
                field("{.status.progress}"),
                field("{.status.pass.groups[0].jobs[0].arraySize}"),
                field("{.status.pass.groups[0].jobs[0].state}"),
                field("{.status.pass.groups[0].logs.count}"),
            ],
            ["Incomplete", "1", "0/6", "6", "SUCCEEDED", "6"],
            "{point}: the pass ended differently"
        );
        let jobs = jobs_named(moto, &queue, &format!("alice_{series_name}"));
        assert_eq!(jobs.len(), 1, "{point}: submitted once: {jobs:?}");
        controller.kill();
    }
    eprintln!("controller: {} crash points survived", points.len());
}

/// A leader stopped by SIGTERM (a rolling update, a drained node) finishes, exits 0 and gives
/// its Lease up, so the standby takes over at its next attempt rather than after the lease
/// expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_by_sigterm_hands_its_lease_over() {
    let cluster = Cluster::local();
    let moto = moto::shared();
    let dir = temp_dir("e2e-handover");
    grant(&dir, &cluster.namespace, "none", "none");
    install_crd(&cluster);
    let mut leader = Controller::start(&cluster, moto, &dir, "first");
    wait_for(
        "the first replica to lead",
        || lease_holder(&cluster) == "first",
        &leader,
    );
    let standby = Controller::start(&cluster, moto, &dir, "second");
    let stopped = Command::new("kill")
        .args(["-TERM", &leader.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert_eq!(leader.exit_code(), Some(0), "{}", leader.logs());
    assert!(
        leader.logs().contains("released the leader lease"),
        "{}",
        leader.logs()
    );
    assert_ne!(lease_holder(&cluster), "first", "the Lease is still held");
    wait_for(
        "the standby to lead",
        || lease_holder(&cluster) == "second",
        &standby,
    );
}
