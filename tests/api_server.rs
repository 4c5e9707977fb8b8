//! What the real kube-apiserver (crates/test-cluster) enforces on simseries' manifests: RBAC
//! for the controller's ServiceAccount, the CRD's schema (pruning, defaults, bounds and CEL
//! rules) as `kubectl apply` meets it, and the fixture's own promises (RBAC on, nothing left).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_cluster::{TestCluster, ok, text};

#[test]
fn the_fixture_enforces_rbac_and_leaves_nothing_behind() {
    let cluster = TestCluster::start();
    let dir = cluster.dir().to_path_buf();
    let version = ok(&cluster.kubectl(&["version", "-o", "json"], None));
    let version: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(
        version["serverVersion"]["gitVersion"], "v1.37.2",
        "{version}"
    );
    assert_eq!(
        version["clientVersion"]["gitVersion"], "v1.37.2",
        "{version}"
    );

    // A ServiceAccount without bindings may not even list namespaces.
    let nobody = cluster.service_account_kubeconfig("default", "nobody");
    let refused = cluster.kubectl_as(&nobody, &["get", "namespaces"], None);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains(
            "User \"system:serviceaccount:default:nobody\" cannot list resource \"namespaces\""
        ),
        "{}",
        text(&refused)
    );
    // The audit log saw the refusal, as the least-privilege checks read it.
    let audited = cluster.audit_events_of("system:serviceaccount:default:nobody");
    assert!(
        audited
            .iter()
            .any(|e| e["verb"] == "list" && e["responseStatus"]["code"] == 403),
        "{audited:?}"
    );

    let pids = cluster.server_pids();
    drop(cluster);
    assert_stopped(&pids, &dir);
}

/// Neither process runs any more and the folder is gone.
fn assert_stopped(pids: &[u32], dir: &Path) {
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "process {pid} still runs"
        );
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn a_panicking_test_still_stops_its_cluster() {
    let seen = std::sync::Mutex::new(None);
    let outcome = std::panic::catch_unwind(|| {
        let cluster = TestCluster::start();
        *seen.lock().unwrap() = Some((cluster.server_pids(), cluster.dir().to_path_buf()));
        panic!("a failing assertion");
    });
    assert!(outcome.is_err());
    let (pids, dir) = seen.lock().unwrap().take().unwrap();
    assert_stopped(&pids, &dir);
}

/// The CRD installs as generated, without a warning (the real server checks that it is
/// structural, that its CEL rules compile within their cost budget, and warns of formats it
/// does not know, as it did of schemars' `uint32`).
#[test]
fn the_generated_crd_is_accepted_without_warnings() {
    let cluster = TestCluster::start();
    let crd = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/simulationseries.yaml");
    let applied = cluster.kubectl(&["apply", "-f", crd], None);
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(!text(&applied).contains("Warning"), "{}", text(&applied));
    cluster.install_crd();
}

/// The AWS example as a series of `namespace` whose working location is a local folder: the
/// controller refuses it (Stalled, InvalidSpec) before any AWS call, writing its status and
/// publishing events.
fn refused_series(namespace: &str) -> String {
    example_with(|series| {
        series["metadata"]["namespace"] = namespace.into();
        series["spec"]["context"]["workingLocation"] = "/data/not-s3".into();
    })
}

/// deploy/'s ClusterRole less its `events create` grant, as a JSON manifest.
fn role_without_events() -> String {
    let rbac = include_str!("../deploy/rbac.yaml");
    let mut role: serde_json::Value = serde_yaml_ng::Deserializer::from_str(rbac)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .find(|doc: &serde_json::Value| doc["kind"] == "ClusterRole")
        .unwrap();
    let rules = role["rules"].as_array_mut().unwrap();
    let before = rules.len();
    rules.retain(|rule| rule["apiGroups"][0] != "events.k8s.io");
    assert_eq!(rules.len(), before - 1, "deploy/rbac.yaml grants events");
    role.to_string()
}

/// With `events create` taken from its role, the controller still reconciles (the status says
/// what happened), names the missing permission in its log and metrics, and keeps running;
/// the least-privilege check of the end-to-end test reports the refusal.
#[test]
fn a_role_without_events_create_is_named_and_survived() {
    let cluster = TestCluster::start();
    cluster.install_deploy();
    ok(&cluster.kubectl(&["apply", "-f", "-"], Some(&role_without_events())));
    cluster.create_namespace("lab");
    ok(&cluster.kubectl(&["apply", "-f", "-"], Some(&refused_series("lab"))));

    let log = cluster.dir().join("controller.log");
    let metrics = common::free_address();
    let mut controller = Command::new(env!("CARGO_BIN_EXE_simseries"))
        .args(["controller", "--no-leader-election", "--tenancy", "any"])
        .args(["--metrics-address", &metrics])
        .env("KUBECONFIG", cluster.controller_kubeconfig())
        .env("SIMSERIES_LOG", "info")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-west-2")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let waited = cluster.kubectl(
        &[
            "wait",
            "-n",
            "lab",
            "--for=condition=Stalled",
            "simser/aws-example",
            "--timeout=60s",
        ],
        None,
    );
    assert!(waited.status.success(), "{}\n{}", text(&waited), logs());
    let reason = ok(&cluster.kubectl(
        &[
            "get",
            "-n",
            "lab",
            "simser",
            "aws-example",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Stalled\")].reason}",
        ],
        None,
    ));
    assert_eq!(reason, "InvalidSpec");
    // What Flux and Argo CD make of it: a failure, not progress.
    let object = ok(&cluster.kubectl(
        &["get", "-n", "lab", "simser", "aws-example", "-o", "json"],
        None,
    ));
    let health = test_cluster::kstatus(&object);
    assert!(health.starts_with("Failed:"), "{health}");

    let deadline = Instant::now() + Duration::from_secs(30);
    while !common::http_get(&metrics, "/metrics")
        .contains("simseries_event_errors_total{reason=\"Forbidden\"}")
    {
        assert!(
            Instant::now() < deadline,
            "no event error counted:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        logs().contains("the controller's role lacks `create` on events.k8s.io/events"),
        "{}",
        logs()
    );
    assert!(
        logs().contains("cannot create resource \"events\" in API group \"events.k8s.io\""),
        "the server's own words are in the log:\n{}",
        logs()
    );
    assert!(!logs().contains('\u{1b}'), "colour codes in a log file");
    // Still running and ready: a missing grant is no reason to crash-loop.
    std::thread::sleep(Duration::from_secs(2));
    assert!(controller.try_wait().unwrap().is_none(), "{}", logs());
    assert!(common::http_get(&metrics, "/readyz").starts_with("HTTP/1.1 200"));
    let _ = controller.kill();
    let _ = controller.wait();

    // The least-privilege check sees the refusal.
    let audited = cluster.audit_events_of(&test_cluster::controller_user());
    let report =
        common::privileges::rbac_report(&audited, &common::privileges::deploy_rbac_grants());
    assert!(
        report
            .refused
            .iter()
            .any(|a| a.group == "events.k8s.io" && a.resource == "events" && a.verb == "create"),
        "{report:?}"
    );
}

/// The AWS example with one edit, as JSON for `kubectl apply -f -`.
fn example_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/aws/series.yaml"
    ))
    .unwrap();
    let mut series: serde_json::Value = serde_yaml_ng::from_str(&example).unwrap();
    edit(&mut series);
    series.to_string()
}

type Edit = fn(&mut serde_json::Value);

/// Bad series, each with what the server's refusal must say: the field and the rule.
const REFUSED: &[(&str, Edit, &[&str])] = &[
    (
        "retries past its bound",
        |s| s["spec"]["parameters"]["retries"] = 100_001.into(),
        &["spec.parameters.retries", "less than or equal to 100000"],
    ),
    (
        "retryDelay past a week",
        |s| s["spec"]["parameters"]["retryDelay"] = 604_801.into(),
        &["spec.parameters.retryDelay", "less than or equal to 604800"],
    ),
    (
        "seedsPerJob 0",
        |s| s["spec"]["parameters"]["seedsPerJob"] = 0.into(),
        &["spec.parameters.seedsPerJob", "greater than or equal to 1"],
    ),
    (
        "timeoutSeconds under AWS Batch's minimum",
        |s| s["spec"]["parameters"]["timeoutSeconds"] = 30.into(),
        &[
            "spec.parameters.timeoutSeconds",
            "AWS Batch takes at least 60 seconds",
        ],
    ),
    (
        "spotRetries past AWS Batch's attempts",
        |s| s["spec"]["parameters"]["spotRetries"] = 10.into(),
        &["spec.parameters.spotRetries", "give 0 to 9"],
    ),
    (
        "schedulingPriority past AWS Batch's",
        |s| s["spec"]["parameters"]["schedulingPriority"] = 10_000.into(),
        &["spec.parameters.schedulingPriority", "give 0 to 9999"],
    ),
    (
        "a negative vcpuHourPrice",
        |s| s["spec"]["parameters"]["vcpuHourPrice"] = (-1.0).into(),
        &["spec.parameters.vcpuHourPrice", "price of one vCPU-hour"],
    ),
    (
        "no extensions",
        |s| s["spec"]["series"]["extensions"] = serde_json::json!([]),
        &["spec.series.extensions", "at least 1 items"],
    ),
    (
        "an extension twice",
        |s| s["spec"]["series"]["extensions"] = serde_json::json!(["CELLS.csv", "CELLS.csv"]),
        &["spec.series.extensions[1]", "Duplicate value"],
    ),
    (
        "two conditions with one key",
        |s| s["spec"]["series"]["conditions"][1]["key"] = "LOW".into(),
        &["spec.series.conditions[1]", "Duplicate value"],
    ),
    (
        "group _ beside named groups",
        |s| s["spec"]["series"]["groups"] = serde_json::json!({"_": "", "A": ""}),
        &[
            "spec.series.groups",
            "group `_` already holds every condition",
        ],
    ),
    (
        "an empty groups map",
        |s| s["spec"]["series"]["groups"] = serde_json::json!({}),
        &["spec.series.groups", "at least 1 properties"],
    ),
    (
        "more runs than a series may plan",
        |s| {
            s["spec"]["series"]["seeds"] = (0..10_000).collect::<Vec<u32>>().into();
            s["spec"]["series"]["conditions"] = (0..1_001)
                .map(|i| serde_json::json!({"key": format!("C{i}")}))
                .collect::<Vec<_>>()
                .into();
        },
        &["spec.series", "at most 10000000 runs"],
    ),
    (
        "a misspelt field",
        |s| s["spec"]["parameters"]["spotRetires"] = 2.into(),
        &["unknown field \"spec.parameters.spotRetires\""],
    ),
];

/// `kubectl apply` of a bad series is refused by the API server with the field and the rule,
/// before any controller sees it; the good one beside them is taken, with the schema's
/// defaults filled in.
#[test]
fn the_api_server_refuses_bad_series_naming_the_field() {
    let cluster = TestCluster::start();
    cluster.install_crd();
    for (what, edit, words) in REFUSED {
        let refused = cluster.kubectl(&["apply", "-f", "-"], Some(&example_with(edit)));
        assert!(!refused.status.success(), "{what}: accepted");
        for word in *words {
            assert!(
                text(&refused).contains(word),
                "{what}: {word:?} not in:\n{}",
                text(&refused)
            );
        }
    }
    let none = cluster.kubectl(&["get", "simser", "-A", "-o", "name"], None);
    assert_eq!(ok(&none), "", "a bad series was stored");

    // The example itself is taken, and the schema's defaults are filled in by the server.
    ok(&cluster.kubectl(&["apply", "-f", "-"], Some(&example_with(|_| {}))));
    let stored = ok(&cluster.kubectl(
        &[
            "get",
            "simser",
            "aws-example",
            "-o",
            "jsonpath={.spec.parameters.seedsPerJob} {.spec.parameters.saveLogs} {.spec.series.inits}",
        ],
        None,
    ));
    assert_eq!(stored, "1 true []");

    // A client that does not ask for strict field validation gets an unknown field pruned,
    // with a warning, never stored.
    let warned = cluster.kubectl(
        &["apply", "--validate=warn", "-f", "-"],
        Some(&example_with(|s| {
            s["spec"]["parameters"]["spotRetires"] = 2.into()
        })),
    );
    assert!(
        text(&warned).contains("unknown field \"spec.parameters.spotRetires\""),
        "{}",
        text(&warned)
    );
    let parameters = ok(&cluster.kubectl(
        &[
            "get",
            "simser",
            "aws-example",
            "-o",
            "jsonpath={.spec.parameters}",
        ],
        None,
    ));
    assert!(!parameters.contains("spotRetires"), "{parameters}");
}

/// deploy/'s namespace enforces the `restricted` Pod Security profile, and its Deployment meets
/// it: the API server (whose PodSecurity admission checks a workload's pod template against the
/// namespace's level) gives no warning. A Deployment that runs as root gets one.
#[test]
fn the_deployment_meets_the_restricted_pod_security_profile() {
    let cluster = TestCluster::start();
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let applied = cluster.kubectl(&["apply", "-k", deploy.to_str().unwrap()], None);
    let said = text(&applied);
    assert!(applied.status.success(), "{said}");
    assert!(!said.contains("Warning"), "{said}");
    let level = ok(&cluster.kubectl(
        &[
            "get",
            "namespace",
            test_cluster::CONTROLLER_NAMESPACE,
            "-o",
            "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
        ],
        None,
    ));
    assert_eq!(level, "restricted");

    // The same Deployment without its pod's non-root settings is named as a violation.
    let deployment = ok(&cluster.kubectl(
        &[
            "get",
            "deployment",
            "-n",
            test_cluster::CONTROLLER_NAMESPACE,
            "simseries-controller",
            "-o",
            "json",
        ],
        None,
    ));
    let mut deployment: serde_json::Value = serde_json::from_str(&deployment).unwrap();
    deployment["metadata"]["name"] = "as-root".into();
    for key in [
        "resourceVersion",
        "uid",
        "managedFields",
        "creationTimestamp",
    ] {
        deployment["metadata"].as_object_mut().unwrap().remove(key);
    }
    deployment["spec"]["template"]["spec"]["securityContext"] = serde_json::json!({});
    let warned = cluster.kubectl(&["apply", "-f", "-"], Some(&deployment.to_string()));
    assert!(
        text(&warned).contains("would violate PodSecurity \"restricted:latest\""),
        "{}",
        text(&warned)
    );
}
