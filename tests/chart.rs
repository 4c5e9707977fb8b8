//! The Helm chart (charts/simseries), with the helm built by scripts/k8s-tools.sh: it lints
//! strictly, refuses misspelt values, renders what the real API server accepts (Pod Security
//! `restricted` included), is the one source of deploy/, and installs, upgrades and uninstalls
//! on the test cluster, where a series reaches Ready through the RBAC it installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::cluster_series::{self, example_reaches_ready};
use common::moto;
use serde_json::Value;
use test_cluster::{TestCluster, ok, run_with_input, text};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/simseries");
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

/// helm with its caches and config in `home` (never the user's), talking to `kubeconfig`.
fn helm(home: &Path, kubeconfig: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(test_cluster::tool("helm"));
    command
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG");
    if let Some(kubeconfig) = kubeconfig {
        command.env("KUBECONFIG", kubeconfig);
    }
    run_with_input(command, None)
}

fn lint(home: &Path, values: &[&str]) -> Output {
    let mut args = vec!["lint", "--strict", CHART];
    args.extend(values);
    helm(home, None, &args)
}

#[test]
fn the_chart_lints_strictly_and_refuses_misspelt_values() {
    let home = common::temp_dir("chart-lint");
    ok(&lint(&home, &[]));
    for (value, says) in [
        ("replica=2", "additional properties 'replica' not allowed"),
        ("tenancy.mode=everyone", "/tenancy/mode"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("metricsPort=80", "/metricsPort"),
        ("serviceAccount.roleArn=my-role", "/serviceAccount/roleArn"),
    ] {
        let out = lint(&home, &["--set", value]);
        assert!(!out.status.success(), "{value} was accepted");
        assert!(text(&out).contains(says), "{value}: {}", text(&out));
    }
    let _ = std::fs::remove_dir_all(&home);
}

/// deploy/ is the chart rendered by scripts/render-deploy.sh: rendering again into a fresh
/// folder gives the same files, byte for byte.
#[test]
fn deploy_is_the_chart_rendered() {
    let dir = common::temp_dir("chart-render");
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/render-deploy.sh"
    ))
    .arg(&dir)
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let yaml_files = |folder: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
            .collect();
        names.sort();
        names
    };
    let rendered = yaml_files(&dir);
    assert_eq!(
        rendered,
        yaml_files(Path::new(DEPLOY)),
        "deploy/ has other files than the chart renders; run scripts/render-deploy.sh"
    );
    let kustomization =
        std::fs::read_to_string(Path::new(DEPLOY).join("kustomization.yaml")).unwrap();
    for name in &rendered {
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            std::fs::read_to_string(Path::new(DEPLOY).join(name)).unwrap(),
            "deploy/{name} differs from the chart; edit charts/simseries and run scripts/render-deploy.sh"
        );
        assert!(
            kustomization.contains(&format!("- {name}\n")),
            "deploy/kustomization.yaml does not list {name}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A namespace for the controller, as the README has users make it: Pod Security
/// `restricted` enforced (and warned of, so that a dry run shows any warning).
fn restricted_namespace(cluster: &TestCluster, namespace: &str) {
    ok(&cluster.kubectl(&["create", "namespace", namespace], None));
    ok(&cluster.kubectl(
        &[
            "label",
            "namespace",
            namespace,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
        None,
    ));
}

/// Every object of `helm template` with these values, applied with `--dry-run=server`: the
/// real server validates it (schemas, Pod Security of the namespace) and stores nothing.
fn dry_run(cluster: &TestCluster, home: &Path, namespace: &str, values: &[&str]) -> String {
    let mut args = vec!["template", "sweeps", CHART, "--namespace", namespace];
    args.extend(values);
    let manifests = ok(&helm(home, None, &args));
    let out = cluster.kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&manifests));
    assert!(out.status.success(), "{values:?}: {}", text(&out));
    text(&out)
}

#[test]
fn what_the_chart_renders_the_real_server_accepts_without_warnings() {
    let cluster = TestCluster::start();
    cluster.install_crd();
    let home = common::temp_dir("chart-dry-run");
    let namespace = "simseries";
    restricted_namespace(&cluster, namespace);
    let every_value = [
        "--set",
        "tenancy.mode=any",
        "--set",
        "watchNamespace=lab",
        "--set",
        "serviceAccount.roleArn=arn:aws:iam::123456789012:role/sweeps",
        "--set",
        "replicas=3",
        "--set-json",
        r#"extraArgs=["--concurrency","8"]"#,
        "--set-json",
        r#"extraEnv=[{"name":"AWS_REGION","value":"eu-west-1"}]"#,
        "--set-json",
        r#"imagePullSecrets=[{"name":"regcred"}]"#,
        "--set-json",
        r#"tolerations=[{"key":"spot","operator":"Exists"}]"#,
        "--set",
        "nodeSelector.pool=system",
        "--set",
        "podAnnotations.team=lab",
    ];
    for values in [&[][..], &every_value[..]] {
        let said = dry_run(&cluster, &home, namespace, values);
        assert!(!said.contains("Warning"), "{values:?}: {said}");
        assert!(
            said.contains("deployment.apps/sweeps-controller created (server dry run)"),
            "{said}"
        );
    }
    let _ = std::fs::remove_dir_all(&home);
}

/// The tenancy file of the installed ConfigMap.
fn installed_grants(cluster: &TestCluster, namespace: &str, release: &str) -> String {
    ok(&cluster.kubectl(
        &[
            "-n",
            namespace,
            "get",
            "configmap",
            &format!("{release}-tenancy"),
            "-o",
            "jsonpath={.data.tenancy\\.yaml}",
        ],
        None,
    ))
}

fn deployment(cluster: &TestCluster, namespace: &str, name: &str) -> Value {
    serde_json::from_str(&ok(&cluster.kubectl(
        &["-n", namespace, "get", "deployment", name, "-o", "json"],
        None,
    )))
    .unwrap()
}

/// `simseries controller` as the installed Deployment's container runs it, here as a process:
/// its args, but the metrics on a free address and the tenancy file where the ConfigMap's
/// content is written; the chart's ServiceAccount as its user.
struct Installed {
    child: Child,
    log: PathBuf,
}

impl Installed {
    fn start(
        cluster: &TestCluster,
        moto: &moto::Moto,
        dir: &Path,
        namespace: &str,
        release: &str,
    ) -> Installed {
        let pod = deployment(cluster, namespace, &format!("{release}-controller"))["spec"]
            ["template"]["spec"]
            .clone();
        let account = pod["serviceAccountName"].as_str().unwrap();
        let kubeconfig = cluster.service_account_kubeconfig(namespace, account);
        let tenancy = dir.join("tenancy.yaml");
        std::fs::write(&tenancy, installed_grants(cluster, namespace, release)).unwrap();
        let mut args: Vec<String> = pod["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        for (flag, value) in [
            ("--metrics-address", common::free_address()),
            ("--tenancy", tenancy.display().to_string()),
        ] {
            let at = args.iter().position(|a| a == flag).unwrap() + 1;
            args[at] = value;
        }
        let log = dir.join("controller.log");
        let child = Command::new(env!("CARGO_BIN_EXE_simseries"))
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .env("POD_NAME", format!("{release}-controller-0"))
            .env("POD_NAMESPACE", namespace)
            .envs(moto.env())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Installed { child, log }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_runs_a_series_upgrades_and_uninstalls() {
    let cluster = TestCluster::start();
    let home = common::temp_dir("chart-install");
    let admin = cluster.admin_kubeconfig.clone();
    let (namespace, release, lab) = ("simseries", "sweeps", "lab");
    restricted_namespace(&cluster, namespace);
    cluster.create_namespace(lab);
    let moto = moto::shared();
    let bucket = format!("chart-{}", std::process::id());
    let queue = format!("chart-queue-{}", std::process::id());
    moto.setup_batch(&bucket, &queue);
    let grants = serde_json::json!([
        {"namespace": lab, "locations": [format!("s3://{bucket}/")], "queues": [queue]}
    ])
    .to_string();

    // No kubelet runs the Deployment's pods here, so helm waits for nothing.
    let installed = helm(
        &home,
        Some(&admin),
        &[
            "install",
            release,
            CHART,
            "--namespace",
            namespace,
            "--set-json",
            &format!("tenancy.grants={grants}"),
        ],
    );
    assert!(installed.status.success(), "{}", text(&installed));
    assert!(
        !text(&installed).contains("Warning"),
        "{}",
        text(&installed)
    );
    ok(&cluster.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/simulationseries.simseries.io",
            "--timeout=30s",
        ],
        None,
    ));

    {
        let dir = home.join("installed");
        std::fs::create_dir_all(&dir).unwrap();
        let controller = Installed::start(&cluster, moto, &dir, namespace, release);
        example_reaches_ready(&cluster, moto, &bucket, &queue, lab, &|| controller.logs()).await;
        let holder =
            cluster_series::lease_holder(&cluster, namespace, &format!("{release}-controller"));
        assert_eq!(holder, format!("{release}-controller-0"));
    }

    // An upgrade changes what it is given and keeps the rest (the grants).
    ok(&helm(
        &home,
        Some(&admin),
        &[
            "upgrade",
            release,
            CHART,
            "--namespace",
            namespace,
            "--reuse-values",
            "--set",
            "replicas=1",
            "--set",
            "logFormat=text",
        ],
    ));
    let upgraded = deployment(&cluster, namespace, &format!("{release}-controller"));
    assert_eq!(upgraded["spec"]["replicas"], 1);
    let args = upgraded["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains(r#""--log-format","text""#), "{args}");
    let tenancy = installed_grants(&cluster, namespace, release);
    assert!(tenancy.contains(&format!("s3://{bucket}/")), "{tenancy}");
    let history = ok(&helm(
        &home,
        Some(&admin),
        &["history", release, "-n", namespace],
    ));
    assert_eq!(history.lines().count(), 3, "{history}");

    // Uninstalling removes what the chart's templates made; the CRD (crds/) and the series
    // stay, as Helm leaves CRDs, so nobody's sweep is deleted with the controller.
    ok(&helm(
        &home,
        Some(&admin),
        &["uninstall", release, "--namespace", namespace],
    ));
    for (kind, name) in [
        ("deployment", format!("{release}-controller")),
        ("serviceaccount", format!("{release}-controller")),
        ("configmap", format!("{release}-tenancy")),
        ("service", format!("{release}-metrics")),
    ] {
        let out = cluster.kubectl(&["-n", namespace, "get", kind, &name], None);
        assert!(!out.status.success(), "{kind} {name} is still there");
    }
    let role = cluster.kubectl(
        &["get", "clusterrole", &format!("{release}-controller")],
        None,
    );
    assert!(!role.status.success(), "the ClusterRole is still there");
    ok(&cluster.kubectl(&["get", "crd", "simulationseries.simseries.io"], None));
    assert_eq!(
        cluster_series::field(&cluster, lab, "{.status.phase}"),
        "Complete"
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// The values the schema defines, as dotted paths: an object with `properties` is walked,
/// anything else is one value.
fn schema_values(schema: &Value, prefix: &str, out: &mut Vec<String>) {
    for (name, property) in schema["properties"].as_object().unwrap() {
        let path = format!("{prefix}{name}");
        if property.get("properties").is_some() {
            schema_values(property, &format!("{path}."), out);
        } else {
            out.push(path);
        }
    }
}

/// The README's values table names every value of the schema, each with its default in
/// values.yaml, and nothing else.
#[test]
fn the_readme_lists_every_value_with_its_default() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{CHART}/values.schema.json")).unwrap(),
    )
    .unwrap();
    let mut defined = Vec::new();
    schema_values(&schema, "", &mut defined);
    let defaults: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(format!("{CHART}/values.yaml")).unwrap())
            .unwrap();
    let readme = include_str!("../README.md");
    let table = readme
        .split_once("| value | what it sets | default |")
        .expect("the README has the values table")
        .1;
    let rows: Vec<(String, String)> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            let unquote = |c: &str| c.trim().trim_matches('`').to_string();
            (unquote(cells[0]), unquote(cells[cells.len() - 1]))
        })
        .collect();
    let listed: Vec<&String> = rows.iter().map(|(v, _)| v).collect();
    let mut wanted: Vec<&String> = defined.iter().collect();
    let mut got = listed.clone();
    wanted.sort();
    got.sort();
    assert_eq!(
        got, wanted,
        "the README's values table and values.schema.json"
    );
    for (value, default) in &rows {
        let actual = value
            .split('.')
            .fold(&defaults, |node, part| &node[part])
            .to_string();
        assert_eq!(
            default, &actual,
            "the README says {value} defaults to {default}, values.yaml to {actual}"
        );
    }
}
