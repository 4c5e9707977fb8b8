//! What every AWS client of simseries shares: the configuration (the standard chain of
//! credentials and region, and the app name `simseries` in every request's user agent, so
//! CloudTrail and the tests can tell its calls apart) and the attempt timeout.

use std::time::Duration;

use aws_config::{AppName, BehaviorVersion, SdkConfig};

/// The AWS configuration of the environment (IRSA, profile, variables, …).
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .app_name(AppName::new("simseries").expect("a valid app name"))
        .load()
        .await
}

/// How long one attempt of an AWS call may take before it is given up and retried:
/// `default`, or `SIMSERIES_AWS_ATTEMPT_TIMEOUT` seconds (for networks where the defaults are
/// too long or too short, and the fault tests).
pub fn attempt_timeout(default: Duration) -> Duration {
    std::env::var("SIMSERIES_AWS_ATTEMPT_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(default, Duration::from_secs)
}
