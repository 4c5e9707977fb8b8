//! A real Kubernetes control plane for one test: etcd and kube-apiserver (built by
//! scripts/k8s-tools.sh) on free 127.0.0.1 ports in a temporary folder, run the way
//! controller-runtime's envtest runs them: TLS from a throwaway CA, client certificates as
//! users, RBAC enforced, a service-account signing key, and an audit log of every request.
//!
//! ```text
//! let cluster = TestCluster::start();                     // ready, RBAC on
//! cluster.kubectl(&["apply", "-k", "deploy/"], None);     // as system:masters
//! let config = cluster.controller_kubeconfig();            // as the controller's ServiceAccount
//! ```
//!
//! With [`TestCluster::start_with_job_controller`], kube-controller-manager runs beside them
//! with its Job and garbage-collector controllers only: Jobs get their pods and their counts,
//! and what is deleted takes its dependents along.
//!
//! Not covered, since none runs here: the other controllers (no namespace deletion, no default
//! ServiceAccounts or tokens) and kubelets (no pod runs: a test that needs pods to end plays
//! the node through the pods' status).
//! Every process is stopped and the folder removed when the fixture drops, a panic included.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;

/// The namespace and ServiceAccount of deploy/: the controller's identity.
pub const CONTROLLER_NAMESPACE: &str = "simseries-system";
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "simseries-controller";

/// The address at which a container on slirp4netns (`allow_host_loopback=true`) reaches this
/// machine's 127.0.0.1, and so the API server: its certificate names it.
pub const SLIRP_HOST_LOOPBACK: &str = "10.0.2.2";

/// The user name the controller has: deploy/'s ServiceAccount.
pub fn controller_user() -> String {
    format!("system:serviceaccount:{CONTROLLER_NAMESPACE}:{CONTROLLER_SERVICE_ACCOUNT}")
}

/// The folder holding kube-apiserver, kubectl, etcd and kstatus: `SIMSERIES_K8S_TOOLS` (set by
/// scripts/test.sh), else what scripts/k8s-tools.sh builds or finds in its cache.
pub fn tools() -> &'static Path {
    static TOOLS: OnceLock<PathBuf> = OnceLock::new();
    TOOLS.get_or_init(|| {
        if let Ok(dir) = std::env::var("SIMSERIES_K8S_TOOLS") {
            return PathBuf::from(dir);
        }
        let script = workspace().join("scripts/k8s-tools.sh");
        let out = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/k8s-tools.sh runs");
        assert!(
            out.status.success(),
            "scripts/k8s-tools.sh could not build the control plane (see its lines above)"
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// The path of one of the built tools (`kubectl`, `kstatus`…).
pub fn tool(name: &str) -> PathBuf {
    tools().join(name)
}

/// A throwaway certificate authority: it signs the server's certificate and every user's.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Authority {
    fn new() -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "simseries test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        Authority {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate and its key (PEM): a client's for `user` in `groups` (the API server
    /// reads CN as the user name, O as the groups), or the server's for `names`.
    fn issue(&self, user: &str, groups: &[&str], names: &[&str], server: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, user);
        for group in groups {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *group);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A free port on 127.0.0.1 (bound, then released for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process of the control plane, stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(name: &'static str, command: &mut Command, dir: &Path) -> Server {
        let log = dir.join(format!("{name}.log"));
        let child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} could not start: {e}"));
        Server { name, child, log }
    }

    /// The end of what it printed, for a failure message.
    fn tail(&self) -> String {
        let err = self.log.with_extension("err");
        let text = std::fs::read_to_string(&err).unwrap_or_default()
            + &std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    fn stop(&mut self) {
        if self.exited() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running control plane. Dropping it stops both servers and removes its folder.
pub struct TestCluster {
    dir: PathBuf,
    authority: Authority,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// A kubeconfig for `system:masters`: what a cluster admin (and the tests' kubectl) use.
    pub admin_kubeconfig: PathBuf,
    audit_log: PathBuf,
    // Stopped in this order: the controller manager, the API server, then its etcd.
    controller_manager: Option<Server>,
    apiserver: Server,
    etcd: Server,
}

impl TestCluster {
    /// Starts etcd and kube-apiserver and waits until the server is ready (its RBAC bootstrap
    /// roles included). Panics with their logs if either fails. A port taken between choosing
    /// it and binding it (by a test starting its own cluster beside) means a fresh try.
    pub fn start() -> TestCluster {
        let mut attempt = 1;
        loop {
            match Self::try_start() {
                Ok(cluster) => return cluster,
                Err(why) if attempt < 3 && why.contains("address already in use") => {
                    attempt += 1;
                }
                Err(why) => panic!("{why}"),
            }
        }
    }

    fn try_start() -> Result<TestCluster, String> {
        let tools = tools();
        let dir = temp_dir();
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        let authority = Authority::new();
        let write = |name: &str, text: &str| {
            let path = certs.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca = write("ca.crt", &authority.pem);
        let (cert, key) = authority.issue(
            "kube-apiserver",
            &[],
            // 10.0.2.2: the host's loopback as a podman container on slirp4netns reaches it
            // (tests/in_cluster.rs), as a pod reaches the API server at the kubernetes
            // Service's address, which a real server's certificate names too.
            &[
                "localhost",
                "127.0.0.1",
                SLIRP_HOST_LOOPBACK,
                "kubernetes.default.svc",
            ],
            true,
        );
        let serving_cert = write("apiserver.crt", &cert);
        let serving_key = write("apiserver.key", &key);
        let signing = KeyPair::generate().unwrap();
        let sa_public = write("sa.pub", &signing.public_key_pem());
        let sa_private = write("sa.key", &signing.serialize_pem());
        let audit_policy = write(
            "audit-policy.yaml",
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
        );
        let audit_log = dir.join("audit.log");

        let etcd_port = free_port();
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let etcd = Server::spawn(
            "etcd",
            Command::new(tools.join("etcd"))
                .arg(format!("--data-dir={}", dir.join("etcd").display()))
                .arg(format!("--listen-client-urls={etcd_url}"))
                .arg(format!("--advertise-client-urls={etcd_url}"))
                .arg(format!(
                    "--listen-peer-urls=http://127.0.0.1:{}",
                    free_port()
                ))
                .arg("--unsafe-no-fsync")
                .arg("--log-level=warn"),
            &dir,
        );

        let port = free_port();
        let url = format!("https://127.0.0.1:{port}");
        let apiserver = Server::spawn(
            "kube-apiserver",
            Command::new(tools.join("kube-apiserver"))
                .arg(format!("--etcd-servers={etcd_url}"))
                .arg(format!("--cert-dir={}", certs.display()))
                .arg(format!("--tls-cert-file={}", serving_cert.display()))
                .arg(format!("--tls-private-key-file={}", serving_key.display()))
                .arg(format!("--client-ca-file={}", ca.display()))
                .arg(format!("--secure-port={port}"))
                .arg("--bind-address=127.0.0.1")
                // No kubernetes Service endpoints: the reconciler refuses a loopback address.
                .arg("--advertise-address=127.0.0.1")
                .arg("--endpoint-reconciler-type=none")
                .arg("--authorization-mode=RBAC")
                .arg("--service-cluster-ip-range=10.0.0.0/24")
                .arg("--allow-privileged=true")
                .arg("--disable-admission-plugins=ServiceAccount")
                .arg("--service-account-issuer=https://kubernetes.default.svc")
                .arg(format!(
                    "--service-account-key-file={}",
                    sa_public.display()
                ))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    sa_private.display()
                ))
                .arg(format!("--audit-policy-file={}", audit_policy.display()))
                .arg(format!("--audit-log-path={}", audit_log.display()))
                .arg("--audit-log-format=json")
                .arg("--audit-log-mode=blocking")
                .arg("-v=1"),
            &dir,
        );
        let mut cluster = TestCluster {
            admin_kubeconfig: dir.join("admin.kubeconfig"),
            dir,
            authority,
            url,
            audit_log,
            controller_manager: None,
            apiserver,
            etcd,
        };
        let admin = cluster.kubeconfig_for("kubernetes-admin", &["system:masters"]);
        std::fs::rename(&admin, &cluster.admin_kubeconfig).unwrap();
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// Starts the control plane and kube-controller-manager with its Job and garbage-collector
    /// controllers (as `system:masters`, without leader election or a serving port).
    pub fn start_with_job_controller() -> TestCluster {
        let mut cluster = Self::start();
        let manager = Server::spawn(
            "kube-controller-manager",
            Command::new(tool("kube-controller-manager"))
                .arg(format!(
                    "--kubeconfig={}",
                    cluster.admin_kubeconfig.display()
                ))
                .arg("--controllers=job-controller,garbage-collector-controller")
                .arg("--leader-elect=false")
                .arg("--secure-port=0")
                .arg("--use-service-account-credentials=false")
                .arg("-v=1"),
            &cluster.dir,
        );
        cluster.controller_manager = Some(manager);
        std::thread::sleep(Duration::from_millis(300));
        if let Some(manager) = cluster.controller_manager.as_mut()
            && manager.exited()
        {
            panic!(
                "kube-controller-manager exited while starting:\n{}",
                manager.tail()
            );
        }
        cluster
    }

    /// The end of kube-controller-manager's log, for a failure message.
    pub fn controller_manager_log(&self) -> String {
        self.controller_manager
            .as_ref()
            .map_or_else(String::new, Server::tail)
    }

    /// Ready, or why not (a dropped `self` stops what did start).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.kubectl_command(&["get", "--raw", "/readyz"]).output();
            if out.is_ok_and(|o| o.status.success()) {
                return Ok(());
            }
            for server in [&mut self.etcd, &mut self.apiserver] {
                if server.exited() {
                    return Err(format!(
                        "{} exited while starting:\n{}",
                        server.name,
                        server.tail()
                    ));
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "kube-apiserver not ready within 60 s:\n{}",
                    self.apiserver.tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A kubeconfig (in the cluster's folder) authenticating as `user` in `groups` with a
    /// client certificate from the cluster's CA; default namespace `default`.
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str]) -> PathBuf {
        let (cert, key) = self.authority.issue(user, groups, &[], false);
        let stem = user.replace(':', "-");
        let cert_path = self.dir.join("certs").join(format!("{stem}.crt"));
        let key_path = self.dir.join("certs").join(format!("{stem}.key"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        let path = self.dir.join(format!("{stem}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {url}
    certificate-authority: {ca}
contexts:
- name: test
  context:
    cluster: test
    user: {user:?}
    namespace: default
current-context: test
users:
- name: {user:?}
  user:
    client-certificate: {cert}
    client-key: {key}
",
                url = self.url,
                ca = self.dir.join("certs/ca.crt").display(),
                cert = cert_path.display(),
                key = key_path.display(),
            ),
        )
        .unwrap();
        path
    }

    /// A kubeconfig whose user is a ServiceAccount: its user name and groups, as the API
    /// server gives them to the account's tokens, so RBAC bound to the account applies.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        self.kubeconfig_for(
            &format!("system:serviceaccount:{namespace}:{name}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{namespace}"),
                "system:authenticated",
            ],
        )
    }

    /// The controller's kubeconfig: deploy/'s ServiceAccount.
    pub fn controller_kubeconfig(&self) -> PathBuf {
        self.service_account_kubeconfig(CONTROLLER_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT)
    }

    /// A command running the built kubectl as the admin (its caches in the cluster's folder).
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        self.kubectl_command_as(&self.admin_kubeconfig, args)
    }

    /// The same with another kubeconfig (another user).
    pub fn kubectl_command_as(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(tool("kubectl"));
        command
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("kube-cache"))
            .stdin(Stdio::null());
        command
    }

    /// Runs kubectl as the admin with `input` on its standard input and waits for it (inside a
    /// multi-thread Tokio runtime, through `block_in_place`).
    pub fn kubectl(&self, args: &[&str], input: Option<&str>) -> Output {
        run_with_input(self.kubectl_command(args), input)
    }

    /// The same as another user.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], input: Option<&str>) -> Output {
        run_with_input(self.kubectl_command_as(kubeconfig, args), input)
    }

    /// A kube-rs client from a kubeconfig of this cluster.
    pub async fn client(&self, kubeconfig: &Path) -> kube::Client {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(kubeconfig).expect("reading the kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("a client config from the kubeconfig");
        kube::Client::try_from(config).expect("a kube client")
    }

    /// The admin's kube-rs client.
    pub async fn admin_client(&self) -> kube::Client {
        self.client(&self.admin_kubeconfig.clone()).await
    }

    /// Every request the server has answered so far, as its audit log has them (one JSON
    /// object a request: `verb`, `user`, `objectRef`, `responseStatus`, `userAgent`…).
    pub fn audit_events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .filter(|event: &Value| event["stage"] == "ResponseComplete")
            .collect()
    }

    /// The audit events of one user.
    pub fn audit_events_of(&self, user: &str) -> Vec<Value> {
        self.audit_events()
            .into_iter()
            .filter(|e| e["user"]["username"] == user)
            .collect()
    }

    /// The process IDs of kube-apiserver and etcd (to measure what they use).
    pub fn server_pids(&self) -> Vec<u32> {
        vec![self.apiserver.child.id(), self.etcd.child.id()]
    }

    /// The folder of this cluster (certificates, logs, kubeconfigs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate's file, for clients that need it (a pod's `ca.crt`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("certs/ca.crt")
    }

    /// Installs deploy/ with `kubectl apply -k` (CRD, namespace, ServiceAccount, RBAC, the
    /// tenancy ConfigMap and the Deployment, which no kubelet here runs) and waits until the
    /// CRD is established.
    pub fn install_deploy(&self) {
        let deploy = workspace().join("deploy");
        ok(&self.kubectl(&["apply", "-k", deploy.to_str().unwrap()], None));
        self.wait_crd_established();
    }

    /// Installs the CRD alone (crds/simulationseries.yaml) and waits until it is established.
    pub fn install_crd(&self) {
        let crd = workspace().join("crds/simulationseries.yaml");
        ok(&self.kubectl(&["apply", "-f", crd.to_str().unwrap()], None));
        self.wait_crd_established();
    }

    fn wait_crd_established(&self) {
        ok(&self.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "crd/simulationseries.simseries.io",
                "--timeout=30s",
            ],
            None,
        ));
    }

    /// Creates a namespace.
    pub fn create_namespace(&self, namespace: &str) {
        ok(&self.kubectl(&["create", "namespace", namespace], None));
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(manager) = self.controller_manager.as_mut() {
            manager.stop();
        }
        self.apiserver.stop();
        self.etcd.stop();
        if std::env::var_os("SIMSERIES_KEEP_CLUSTER").is_some() {
            eprintln!("cluster folder kept: {}", self.dir.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a command with `input` on its standard input (none: /dev/null) and waits for it;
/// inside a multi-thread Tokio runtime through `block_in_place`.
pub fn run_with_input(mut command: Command, input: Option<&str>) -> Output {
    let mut run = move || {
        let mut child = command
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the command runs");
        if let Some(input) = input {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .expect("writing the command's input");
        }
        child.wait_with_output().expect("the command finishes")
    };
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
        _ => run(),
    }
}

/// A command's standard output and error as text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The standard output of a command that must have succeeded.
pub fn ok(output: &Output) -> String {
    assert!(output.status.success(), "kubectl failed: {}", text(output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What kstatus (Flux's and Argo CD's health check) computes for an object, as
/// `STATUS: MESSAGE`.
pub fn kstatus(object_json: &str) -> String {
    let out = run_with_input(
        {
            let mut c = Command::new(tool("kstatus"));
            c.stdin(Stdio::null());
            c
        },
        Some(object_json),
    );
    assert!(out.status.success(), "kstatus failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The simseries workspace this crate belongs to.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh folder for one cluster.
fn temp_dir() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("simseries-cluster-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}
