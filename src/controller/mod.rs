//! `simseries controller`: reconciles `SimulationSeries` resources in a cluster.

pub mod cloud;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod reconciler;
pub mod tenancy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, CustomResourceExt, ResourceExt};

use crate::model::spec::SimulationSeries;
use crate::storage::S3Options;
use cloud::AwsCloud;
use leader::LeaderElection;
use metrics::Metrics;
use reconciler::{Reconciler, error_policy, reconcile};

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Watch one namespace; all namespaces when `None`.
    pub namespace: Option<String>,
    /// Series reconciled at once.
    pub concurrency: u16,
    pub metrics_address: SocketAddr,
    pub leader_election: bool,
    pub lease_name: String,
    /// Namespace of the Lease; default: the pod's namespace (`POD_NAMESPACE`), else the
    /// client's default.
    pub lease_namespace: Option<String>,
    pub s3: S3Options,
    /// Which locations and queues each namespace may use.
    pub tenancy: tenancy::Tenancy,
}

/// The name of the CRD, for the installation check.
fn crd_name() -> String {
    SimulationSeries::crd().metadata.name.unwrap_or_default()
}

/// Why the controller stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("cannot reach the Kubernetes API (in-cluster config or KUBECONFIG): {0}")]
    Unreachable(kube::Error),
    #[error(
        "the CRD {0} does not serve v1alpha1; install this version's CRD: kubectl apply -f crds/simulationseries.yaml (or `simseries crd | kubectl apply -f -`)"
    )]
    CrdVersion(String),
    #[error(
        "the CRD {0} is not installed; install it with `kubectl apply -f crds/simulationseries.yaml` (or `simseries crd | kubectl apply -f -`)"
    )]
    CrdMissing(String),
    #[error("cannot check the CRD {name}: {error}")]
    CrdUnreadable { name: String, error: kube::Error },
    #[error("lost the leader lease; exiting so that only one replica works")]
    LeaseLost,
}

/// Runs until SIGTERM/SIGINT, or until the leader lease is lost.
pub async fn run(options: ControllerOptions) -> Result<(), ControllerError> {
    let client = Client::try_default()
        .await
        .map_err(ControllerError::Unreachable)?;
    check_crd(&client).await?;

    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let server = tokio::spawn(http::serve(
        options.metrics_address,
        metrics.clone(),
        ready.clone(),
    ));
    // Ready once the API and the CRD answer: a follower is ready too (to take over), so a
    // Deployment of several replicas rolls out.
    ready.store(true, Ordering::SeqCst);

    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let election = if options.leader_election {
        let namespace = options
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| client.default_namespace().to_string());
        let election = LeaderElection::new(
            Api::<Lease>::namespaced(client.clone(), &namespace),
            &options.lease_name,
            &identity,
        );
        tracing::info!(lease = %options.lease_name, %namespace, %identity, "waiting to lead");
        election.acquire().await;
        tracing::info!(%identity, "leading");
        Some(election)
    } else {
        None
    };

    let cloud = Arc::new(AwsCloud::load(&options.s3, metrics.clone()).await);
    let reporter = Reporter {
        controller: "simseries".into(),
        instance: Some(identity.clone()),
    };
    if options.tenancy == tenancy::Tenancy::DenyAll {
        tracing::warn!(
            "no tenancy grants (--tenancy): every series will be refused until the cluster administrator grants locations and queues"
        );
    }
    let context = Arc::new(Reconciler::new(
        client.clone(),
        reporter,
        metrics.clone(),
        cloud,
        options.tenancy.clone(),
    ));
    let api: Api<SimulationSeries> = match &options.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    // The cache holds every series; a real API server sends each with its managedFields and,
    // after a client-side `kubectl apply`, a copy of the spec in an annotation. The reconciler
    // reads neither, and at 10,000 series they are most of the controller's memory.
    let (cache, cache_writer) = reflector::store();
    let series = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|series| {
            series.managed_fields_mut().clear();
            series.annotations_mut().remove(LAST_APPLIED_ANNOTATION);
        })
        .reflect(cache_writer)
        .applied_objects();
    let controller = Controller::for_stream(series, cache)
        .with_config(ControllerConfig::default().concurrency(options.concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(series = %object.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        });
    let lease_lost = async {
        match &election {
            Some(election) => election.hold().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        _ = controller => Ok(()),
        _ = lease_lost => Err(ControllerError::LeaseLost),
    };
    server.abort();
    // Stopped by a signal after the running reconciles ended: hand the Lease over.
    if outcome.is_ok()
        && let Some(election) = &election
    {
        match election.release().await {
            Ok(()) => tracing::info!(%identity, "released the leader lease"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot release the leader lease; it expires by itself")
            }
        }
    }
    outcome
}

/// Where `kubectl apply` (client-side) keeps the last applied manifest.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Says how to install the CRD when it is missing.
async fn check_crd(client: &Client) -> Result<(), ControllerError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.get_opt(&crd_name()).await {
        Ok(Some(crd)) => {
            let served = crd
                .spec
                .versions
                .iter()
                .any(|v| v.name == "v1alpha1" && v.served);
            if served {
                Ok(())
            } else {
                Err(ControllerError::CrdVersion(crd_name()))
            }
        }
        Ok(None) => Err(ControllerError::CrdMissing(crd_name())),
        Err(error) => Err(ControllerError::CrdUnreadable {
            name: crd_name(),
            error,
        }),
    }
}
