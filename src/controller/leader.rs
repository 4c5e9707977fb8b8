//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! reconciles (and submits jobs) at a time.
//!
//! A replica takes the Lease when it is free, expired, or already its own, and renews it every
//! `renew` period; every write carries the Lease's resourceVersion, so two replicas racing for
//! it cannot both win (the loser gets 409 Conflict). A leader that cannot renew before the
//! lease expires stops: the process exits and Kubernetes restarts it as a follower. A leader
//! stopped by a signal gives the Lease up, so another replica takes over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};

#[derive(Clone)]
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    renew: Duration,
}

impl LeaderElection {
    pub fn new(api: Api<Lease>, name: &str, identity: &str) -> Self {
        LeaderElection {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            duration: Duration::from_secs(15),
            renew: Duration::from_secs(5),
        }
    }

    pub fn with_timing(mut self, duration: Duration, renew: Duration) -> Self {
        self.duration = duration;
        self.renew = renew;
        self
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election: cannot reach the lease"),
            }
            tokio::time::sleep(self.renew).await;
        }
    }

    /// Renews the Lease until it is lost; returns then.
    pub async fn hold(&self) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.renew).await;
            match self.try_acquire().await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: cannot renew the lease");
                    if last_renewal.elapsed() >= self.duration {
                        return;
                    }
                }
            }
        }
    }

    /// One attempt: takes or renews the Lease if it is free, expired or ours.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let existing = self.api.get_opt(&self.name).await?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref();
        let ours = holder == Some(self.identity.as_str());
        let duration = spec
            .lease_duration_seconds
            .unwrap_or(self.duration.as_secs() as i32);
        let expired = match spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) {
            Some(MicroTime(renewed)) => {
                *renewed + SignedDuration::from_secs(i64::from(duration)) < now
            }
            None => true,
        };
        if !(ours || holder.is_none() || expired) {
            return Ok(false);
        }
        let (acquired, transitions) = if ours {
            (
                spec.acquire_time.map(|t| t.0).unwrap_or(now),
                spec.lease_transitions.unwrap_or(0),
            )
        } else {
            (now, spec.lease_transitions.unwrap_or(0) + 1)
        };
        lease.spec = Some(self.spec(acquired, now, transitions));
        // The resourceVersion read above makes this write fail if another replica won.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up, if this replica still holds it, so that another takes over at its
    /// next attempt instead of waiting for the lease to expire (a replica stopped by SIGTERM:
    /// a rolling update, a drained node).
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        lease.spec = Some(spec);
        // Carries the resourceVersion read: if another replica took it meanwhile, it stays theirs.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs() as i32),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}
