//! Service faults: S3, AWS Batch and CloudWatch Logs answering with throttling, 5xx errors,
//! connection resets and stalls, injected by a proxy in front of moto. The pass backs off,
//! shows the reason in `pass.lastError` and the `Reconciling` condition while it waits, and
//! ends on its own once the faults stop, exactly as it would have without them.

mod common;

use std::time::Duration;

use common::aws_run::{
    BatchScenario, batch_status, normalized, rename_series, run_batch, submitted_jobs,
};
use common::fault_proxy::{Fault, FaultProxy, Service};
use common::moto;
use serde_json::Value;

/// The final status without what a recovered fault legitimately leaves: the last error of the
/// pass stays on record.
fn comparable(status: Value) -> Value {
    let mut status = normalized(status);
    if let Some(pass) = status.get_mut("pass").and_then(Value::as_object_mut) {
        pass.remove("lastError");
    }
    status
}

/// (service, fault, how many requests in a row get it)
const SCENARIOS: &[(Service, Fault, u32)] = &[
    // More than the SDK's own attempts (6 for Batch and Logs, 5 for S3): the pass itself must
    // back off and try again.
    (Service::Batch, Fault::Throttle, 14),
    (Service::S3, Fault::Throttle, 12),
    (Service::Logs, Fault::Throttle, 14),
    (Service::Batch, Fault::ServerError, 8),
    (Service::S3, Fault::ServerError, 8),
    (Service::Batch, Fault::Reset, 8),
    (Service::S3, Fault::Reset, 8),
    (Service::Logs, Fault::Reset, 8),
    (Service::Batch, Fault::Stall, 2),
    (Service::S3, Fault::Stall, 2),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_fault_is_backed_off_and_survived() {
    let moto = moto::shared();
    let bucket = format!("faults-{}", std::process::id());
    let queue = "faults-queue";
    moto.setup_batch(&bucket, queue);

    let baseline = BatchScenario::new(&bucket, queue, "FAULT_BASE");
    let out = run_batch(moto, &baseline, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = comparable(batch_status(moto, &baseline).await.unwrap());

    let mut injected = 0;
    for (i, (service, fault, count)) in SCENARIOS.iter().enumerate() {
        let what = format!("{count} x {fault:?} from {service:?}");
        let scenario = BatchScenario::new(&bucket, queue, &format!("FAULT_{i}"));
        let proxy = FaultProxy::start(&moto.endpoint).await;
        proxy.inject(*service, *fault, *count);
        // Stalls end by the SDK's attempt timeout, shortened here from a minute.
        let log = scenario.dir.join("run.log");
        let mut child = scenario
            .command(
                moto,
                &proxy.endpoint,
                &[("SIMSERIES_AWS_ATTEMPT_TIMEOUT", "2")],
            )
            .env("SIMSERIES_LOG", "simseries=debug")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // Watch the status (read from moto directly) while the faults last.
        let mut seen_error: Option<String> = None;
        let mut seen_reconciling: Option<String> = None;
        let watch = async {
            loop {
                if let Some(status) = batch_status(moto, &scenario).await {
                    if let Some(error) = status["pass"]["lastError"].as_str() {
                        seen_error.get_or_insert(error.to_string());
                    }
                    let reconciling = status["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|c| c["type"] == "Reconciling" && c["status"] == "True")
                        .and_then(|c| c["message"].as_str())
                        .filter(|m| m.contains("retrying after"));
                    if let Some(message) = reconciling {
                        seen_reconciling.get_or_insert(message.to_string());
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
        let ended = async {
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    return Some(status);
                }
                if tokio::time::Instant::now() > deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let exit = tokio::select! {
            exit = ended => exit,
            _ = watch => unreachable!(),
        };
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        let Some(exit) = exit else {
            let _ = child.kill();
            panic!("{what}: the run did not end: {stderr}");
        };
        assert_eq!(proxy.pending(*service), 0, "{what}: every fault was met");
        injected += proxy.injected();
        assert_eq!(exit.code(), Some(1), "{what}: {stderr}");
        assert_eq!(
            comparable(batch_status(moto, &scenario).await.unwrap()),
            rename_series(&expected, "FAULT_BASE", &scenario.series),
            "{what}: the pass ended differently: {stderr}"
        );
        assert_eq!(
            submitted_jobs(moto, &scenario).await,
            1,
            "{what}: submitted once"
        );
        if (*service, *fault) == (Service::Batch, Fault::Throttle) {
            // Past the SDK's retries: the pass recorded why it waits, and said so.
            let error = seen_error.unwrap_or_else(|| panic!("{what}: no lastError seen: {stderr}"));
            assert!(error.starts_with("Throttled: "), "{what}: {error}");
            let message = seen_reconciling.unwrap_or_default();
            assert!(
                message.contains("retrying after: Throttled"),
                "{what}: {message}"
            );
        }
        eprintln!(
            "{what}: survived ({} requests to {service:?})",
            proxy.seen(*service)
        );
    }
    eprintln!("{injected} faults injected and recovered from");
}
