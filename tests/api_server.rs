//! What the real kube-apiserver (crates/test-cluster) enforces on simseries' manifests: RBAC
//! for the controller's ServiceAccount, the CRD's schema (pruning, defaults, bounds and CEL
//! rules) as `kubectl apply` meets it, and the fixture's own promises (RBAC on, nothing left).

mod common;

use std::path::Path;

use test_cluster::{TestCluster, ok, text};

const CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/simulationseries.yaml");

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

/// The CRD installs as generated (the real server checks it is structural and that its CEL
/// rules compile within their cost budget).
#[test]
fn the_generated_crd_is_accepted_and_served() {
    let cluster = TestCluster::start();
    ok(&cluster.kubectl(&["apply", "-f", CRD], None));
    ok(&cluster.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/simulationseries.simseries.io",
            "--timeout=30s",
        ],
        None,
    ));
}
