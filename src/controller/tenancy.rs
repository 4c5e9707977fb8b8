//! Tenancy: which S3 locations and AWS Batch queues the series of each namespace may use.
//!
//! The controller has one AWS role for every namespace, so whoever may create a
//! `SimulationSeries` could otherwise reach any bucket or queue that role reaches. The cluster
//! administrator grants locations (prefixes) and queues per namespace in a file, usually a
//! mounted ConfigMap, read again at every pass so edits apply without a restart:
//!
//! ```yaml
//! grants:
//! - namespace: lab-a            # or "*" for every namespace
//!   locations: [s3://lab-a-data/, s3://shared/lab-a/]
//!   queues: [lab-a-queue]       # names (in the controller's account and region) or ARNs
//! ```
//!
//! A series outside its grants is refused with reason `NotAllowed`, naming the field and the
//! grants; the pass is tried again on a backoff, so a new grant lets it run.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::location::Location;
use crate::model::outcome::Failure;
use crate::planning::prepare::Locations;

/// Where the grants come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenancy {
    /// No grants configured: every series is refused (the safe default of a new install).
    DenyAll,
    /// Every namespace may use whatever the controller's role reaches (`--tenancy any`): for a
    /// cluster whose every series author may use all of the role's buckets and queues.
    AllowAll,
    /// Grants read from this file at every pass.
    File(PathBuf),
}

/// The grants file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// What one namespace (or every namespace, `*`) may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub namespace: String,
    /// `s3://bucket/` or `s3://bucket/prefix/`: locations at or below one of these.
    #[serde(default)]
    pub locations: Vec<String>,
    /// Batch job queues by name or ARN.
    #[serde(default)]
    pub queues: Vec<String>,
}

const REFUSED: &str = "NotAllowed";

impl Tenancy {
    /// `any` grants everything; any other value is the grants file.
    pub fn from_flag(value: Option<&str>) -> Tenancy {
        match value {
            None | Some("") => Tenancy::DenyAll,
            Some("any") => Tenancy::AllowAll,
            Some(path) => Tenancy::File(PathBuf::from(path)),
        }
    }

    /// Checks that the series of `namespace` stays within its grants.
    pub fn check(
        &self,
        namespace: &str,
        locations: &Locations,
        queue: Option<&str>,
    ) -> Result<(), Failure> {
        let grants = match self {
            Tenancy::AllowAll => return Ok(()),
            Tenancy::DenyAll => {
                return Err(Failure::permanent(
                    REFUSED,
                    "the controller has no tenancy grants, so it runs no series; the cluster administrator grants locations and queues per namespace in the tenancy file (--tenancy FILE; see the README)",
                ));
            }
            Tenancy::File(path) => read_grants(path)?,
        };
        grants.check(namespace, locations, queue)
    }
}

fn read_grants(path: &Path) -> Result<Grants, Failure> {
    let unavailable = |why: String| {
        Failure::transient(
            "TenancyUnavailable",
            format!(
                "cannot read the tenancy grants {}: {why}; the cluster administrator fixes the file (--tenancy)",
                path.display()
            ),
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| unavailable(e.to_string()))?;
    // The error names the line and field, never the file's content.
    serde_yaml_ng::from_str(&text).map_err(|e| unavailable(e.to_string()))
}

impl Grants {
    pub fn check(
        &self,
        namespace: &str,
        locations: &Locations,
        queue: Option<&str>,
    ) -> Result<(), Failure> {
        let mine: Vec<&Grant> = self
            .grants
            .iter()
            .filter(|g| g.namespace == namespace || g.namespace == "*")
            .collect();
        let allowed_locations: Vec<&str> = mine
            .iter()
            .flat_map(|g| g.locations.iter().map(String::as_str))
            .collect();
        for (field, location) in [
            ("workingLocation", &locations.working),
            ("manifestLocation", &locations.manifest),
            ("templateLocation", &locations.template),
        ] {
            if !allowed_locations
                .iter()
                .any(|grant| location_within(location, grant))
            {
                return Err(refusal(
                    namespace,
                    &format!("spec.context.{field}: {location}"),
                    "locations",
                    &allowed_locations,
                ));
            }
        }
        if let Some(queue) = queue {
            let allowed_queues: Vec<&str> = mine
                .iter()
                .flat_map(|g| g.queues.iter().map(String::as_str))
                .collect();
            if !allowed_queues.iter().any(|grant| same_queue(queue, grant)) {
                return Err(refusal(
                    namespace,
                    &format!("spec.context.queue: {queue}"),
                    "queues",
                    &allowed_queues,
                ));
            }
        }
        Ok(())
    }
}

fn refusal(namespace: &str, what: &str, kind: &str, granted: &[&str]) -> Failure {
    let granted = if granted.is_empty() {
        "none".to_string()
    } else {
        granted.join(", ")
    };
    Failure::permanent(
        REFUSED,
        format!(
            "{what} is outside what namespace {namespace} may use (granted {kind}: {granted}); use a granted one, or ask the cluster administrator to grant it in the simseries tenancy file"
        ),
    )
}

/// Whether `location` is `grant` or below it, comparing whole path parts (a grant of
/// `s3://b/lab` does not cover `s3://b/lab-other`).
fn location_within(location: &Location, grant: &str) -> bool {
    let Ok(grant) = Location::parse(grant, None) else {
        return false;
    };
    match (location, &grant) {
        (
            Location::S3 { bucket, prefix },
            Location::S3 {
                bucket: granted_bucket,
                prefix: granted_prefix,
            },
        ) => {
            bucket == granted_bucket
                && (granted_prefix.is_empty()
                    || prefix == granted_prefix
                    || prefix.starts_with(&format!("{granted_prefix}/")))
        }
        _ => false,
    }
}

/// A queue matches a grant by ARN, or by name when the grant is a bare name.
fn same_queue(queue: &str, grant: &str) -> bool {
    let name = |q: &str| {
        q.rsplit_once("job-queue/")
            .map_or(q, |(_, n)| n)
            .to_string()
    };
    if queue == grant {
        return true;
    }
    !grant.starts_with("arn:") && name(queue) == grant
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locations(working: &str) -> Locations {
        Locations {
            working: Location::parse(working, None).unwrap(),
            manifest: Location::parse("s3://lab-a/config", None).unwrap(),
            template: Location::parse("s3://lab-a/config", None).unwrap(),
        }
    }

    fn grants() -> Grants {
        serde_yaml_ng::from_str(
            "grants:\n- namespace: team-a\n  locations: [s3://lab-a/, s3://shared/team-a]\n  queues: [qa]\n- namespace: '*'\n  locations: [s3://public]\n",
        )
        .unwrap()
    }

    #[test]
    fn a_namespace_uses_its_grants_only() {
        let g = grants();
        assert!(
            g.check("team-a", &locations("s3://lab-a/work"), Some("qa"))
                .is_ok()
        );
        assert!(
            g.check(
                "team-a",
                &locations("s3://shared/team-a/w"),
                Some("arn:aws:batch:us-west-2:1:job-queue/qa")
            )
            .is_ok()
        );
        let err = g
            .check("team-a", &locations("s3://shared/team-b/w"), Some("qa"))
            .unwrap_err();
        assert_eq!(err.reason, "NotAllowed");
        assert!(
            err.message.starts_with(
                "spec.context.workingLocation: s3://shared/team-b/w is outside what namespace team-a may use"
            ),
            "{}",
            err.message
        );
        // Whole path parts: `team-a` does not grant `team-a-other`.
        assert!(
            g.check("team-a", &locations("s3://shared/team-a-other"), Some("qa"))
                .is_err()
        );
        let err = g
            .check("team-a", &locations("s3://lab-a/w"), Some("qb"))
            .unwrap_err();
        assert!(
            err.message.contains("spec.context.queue: qb"),
            "{}",
            err.message
        );
        // Another namespace has only the `*` grant.
        let err = g
            .check("team-b", &locations("s3://lab-a/w"), Some("qa"))
            .unwrap_err();
        assert!(
            err.message.contains("granted locations: s3://public"),
            "{}",
            err.message
        );
    }

    #[test]
    fn without_grants_nothing_runs_and_any_allows_all() {
        let l = locations("s3://lab-a/w");
        let err = Tenancy::from_flag(None).check("x", &l, None).unwrap_err();
        assert!(err.message.contains("no tenancy grants"), "{}", err.message);
        assert!(Tenancy::from_flag(Some("any")).check("x", &l, None).is_ok());
        let missing = Tenancy::from_flag(Some("/nonexistent/tenancy.yaml"));
        let err = missing.check("x", &l, None).unwrap_err();
        assert_eq!(err.reason, "TenancyUnavailable");
    }
}
