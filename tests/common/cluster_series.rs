//! The AWS example driven to `Ready` in a test cluster by whichever controller the test runs
//! (a container, a process with the chart's RBAC): the steps a user and a model take, and the
//! waits between them.

use std::time::{Duration, Instant};

use test_cluster::{TestCluster, ok};

use super::aws_run::{example_runs, write_example_outputs};
use super::fixtures::Fixture;
use super::moto::Moto;

pub const NAME: &str = "aws-example";

/// A field of the series by JSONPath ("" while it has none).
pub fn field(cluster: &TestCluster, namespace: &str, path: &str) -> String {
    let out = cluster.kubectl(
        &[
            "-n",
            namespace,
            "get",
            "simser",
            NAME,
            "-o",
            &format!("jsonpath={path}"),
        ],
        None,
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Who holds Lease `lease` of `namespace` ("" for nobody, or no Lease yet).
pub fn lease_holder(cluster: &TestCluster, namespace: &str, lease: &str) -> String {
    let out = cluster.kubectl(
        &[
            "-n",
            namespace,
            "get",
            "lease",
            lease,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        None,
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits up to 90 s for `check`; on failure shows the controller's `logs`.
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool, logs: &dyn Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within 90 s; the controller logged:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Applies the AWS example (one seed, on `bucket` and `queue`, prepared by
/// `Moto::setup_batch`) in `namespace`. Its first pass submits one array job, which moto
/// finishes without running the model, so it ends Incomplete; the model's outputs then
/// appear, a rerun finds nothing missing and the series is Ready.
pub async fn example_reaches_ready(
    cluster: &TestCluster,
    moto: &Moto,
    bucket: &str,
    queue: &str,
    namespace: &str,
    logs: &dyn Fn() -> String,
) {
    let series = Fixture::aws_example()
        .on_s3(bucket)
        .on_aws("alice", queue)
        .named(NAME, Some(namespace), "AWS_EXAMPLE")
        .edit(|s| {
            s.spec.series.seeds = vec![0];
            s.spec.parameters.retry_delay = 1;
        })
        .yaml();
    ok(&cluster.kubectl(&["apply", "-f", "-"], Some(&series)));
    wait_for(
        "the first pass to end Incomplete",
        || field(cluster, namespace, "{.status.phase}") == "Incomplete",
        logs,
    );
    let date = field(cluster, namespace, "{.status.pass.date}");
    write_example_outputs(moto, bucket, &date, &example_runs(0..1)).await;
    ok(&cluster.kubectl(
        &[
            "-n",
            namespace,
            "annotate",
            "--overwrite",
            &format!("simser/{NAME}"),
            "simseries.io/rerun=outputs-written",
        ],
        None,
    ));
    wait_for(
        "the series to be Ready",
        || {
            field(
                cluster,
                namespace,
                "{.status.conditions[?(@.type==\"Ready\")].status}",
            ) == "True"
        },
        logs,
    );
}
