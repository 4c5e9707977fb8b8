//! Leader election on a real Lease of a real kube-apiserver (crates/test-cluster), with its
//! optimistic concurrency: one leader at a time, takeover after expiry, a lost lease noticed.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use simseries::controller::leader::LeaderElection;
use test_cluster::TestCluster;

fn elector(api: &Api<Lease>, name: &str, identity: &str) -> LeaderElection {
    LeaderElection::new(api.clone(), name, identity)
        .with_timing(Duration::from_secs(2), Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_replica_leads_until_it_stops_renewing() {
    let cluster = tokio::task::block_in_place(TestCluster::start);
    let api: Api<Lease> = Api::namespaced(cluster.admin_client().await, "default");
    let a = elector(&api, "leader", "a");
    let b = elector(&api, "leader", "b");

    assert!(a.try_acquire().await.unwrap(), "a free lease is taken");
    assert!(!b.try_acquire().await.unwrap(), "a held lease is not");
    assert!(a.try_acquire().await.unwrap(), "the holder renews");
    let lease = api.get("leader").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("a"));
    assert_eq!(lease.lease_transitions, Some(0));

    // a stops renewing; once the lease expires, b takes it, and a notices it lost it.
    let a_holding = tokio::spawn(async move { a.hold().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!b.try_acquire().await.unwrap(), "a still renews");
    a_holding.abort();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        b.try_acquire().await.unwrap(),
        "an expired lease is taken over"
    );
    let lease = api.get("leader").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("b"));
    assert_eq!(lease.lease_transitions, Some(1));
    let a = elector(&api, "leader", "a");
    let lost = tokio::time::timeout(Duration::from_secs(5), a.hold()).await;
    assert!(
        lost.is_ok(),
        "a replica that is not the holder stops holding"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_racing_for_a_free_lease_have_one_winner() {
    let cluster = tokio::task::block_in_place(TestCluster::start);
    let api: Api<Lease> = Api::namespaced(cluster.admin_client().await, "default");
    for round in 0..5 {
        let name = format!("race-{round}");
        let electors: Vec<LeaderElection> = (0..4)
            .map(|i| elector(&api, &name, &format!("r{i}")))
            .collect();
        let results = futures::future::join_all(electors.iter().map(|e| e.try_acquire())).await;
        let winners = results.iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(winners, 1, "round {round}: {results:?}");
    }
}
