//! The controller at scale: N SimulationSeries (default 10,000) on a real kube-apiserver.
//!
//! Run with `cargo bench --bench controller` (or `-- 2000` for another N, `-- 10000 16` for
//! the controller's `--concurrency` too; default 4, the controller's own). It starts etcd and
//! kube-apiserver (crates/test-cluster, built by scripts/k8s-tools.sh), installs deploy/,
//! creates N series of the AWS example whose passes have finished, then starts the release
//! `simseries controller` as deploy/'s ServiceAccount and measures:
//! 1. finished passes: the time until every series has been reconciled, the Kubernetes writes
//!    and the AWS calls they made (both must be zero), and the controller's memory;
//! 2. a wave of new generations: every spec edited at once; the time until every series shows
//!    the new generation in its status, and the memory after.
//!
//! AWS is a listener that counts connections: any call the controller makes to AWS lands there.
//! The wave's edit names a working location outside S3, so each new pass fails its check before
//! any AWS call (a Failed phase, an InvalidSpec condition and events): the wave measures the
//! controller's own work per series (watch, read, two status writes, events), not AWS's. Passes
//! that call AWS are measured by the AWS Batch tests against moto.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use test_cluster::TestCluster;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/aws/series.yaml");

fn main() {
    // `cargo bench` adds `--bench`; the numbers are ours.
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let count = numbers.first().copied().unwrap_or(10_000);
    let concurrency = numbers.get(1).copied().unwrap_or(4);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(count, concurrency));
}

/// Counts the connections made to it: the AWS endpoint of the controller.
async fn aws_counter() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (address, calls)
}

/// CPU seconds (user + system) used so far by process `pid` (`self` for this one).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state.
    (ticks(11) + ticks(12)) / 100.0
}

/// The controller's peak resident memory (VmHWM) and current (VmRSS), in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn get_metrics(address: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
        return String::new();
    };
    let request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer
}

/// The controller's writes to a status, from the server's audit log.
fn status_writes(cluster: &TestCluster) -> usize {
    cluster
        .audit_events_of(&test_cluster::controller_user())
        .iter()
        .filter(|e| e["objectRef"]["subresource"] == "status")
        .filter(|e| !matches!(e["verb"].as_str(), Some("get" | "list" | "watch")))
        .count()
}

/// CPU seconds of the control plane's processes (kube-apiserver and etcd).
fn control_plane_cpu(cluster: &TestCluster) -> f64 {
    cluster
        .server_pids()
        .iter()
        .map(|pid| cpu_seconds(&pid.to_string()))
        .sum()
}

async fn run(count: usize, concurrency: usize) {
    let cluster = tokio::task::block_in_place(TestCluster::start);
    tokio::task::block_in_place(|| cluster.install_deploy());
    let client = cluster.admin_client().await;
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource {
            group: "simseries.io".into(),
            version: "v1alpha1".into(),
            api_version: "simseries.io/v1alpha1".into(),
            kind: "SimulationSeries".into(),
            plural: "simulationseries".into(),
        },
    );
    // Wait until the CRD is served.
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.list(&ListParams::default().limit(1)).await.is_err() {
        assert!(Instant::now() < deadline, "the CRD is not served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let example: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(EXAMPLE).unwrap()).unwrap();
    let finished = json!({
        "phase": "Complete",
        "observedGeneration": 1,
        "pass": {"number": 1, "generation": 1, "date": "2026-11-01", "phase": "Complete"},
    });
    let started = Instant::now();
    stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let mut object = example.clone();
            object["metadata"] = json!({
                "name": format!("series-{i:05}"),
                "namespace": "default",
                "finalizers": ["simseries.io/cleanup"],
            });
            let status = json!({"status": finished.clone()});
            async move {
                let object: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
                let name = object.metadata.name.clone().unwrap();
                api.create(&PostParams::default(), &object).await?;
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                    .await?;
                Ok::<_, kube::Error>(())
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .expect("the series are created");
    println!(
        "{count} finished series created on kube-apiserver in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (aws, aws_calls) = aws_counter().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!(
        "simseries-bench-controller-{}.log",
        std::process::id()
    ));
    let writes_before = status_writes(&cluster);
    let started = Instant::now();
    let mut controller = std::process::Command::new(env!("CARGO_BIN_EXE_simseries"))
        .args([
            "controller",
            "--metrics-address",
            &metrics,
            "--namespace",
            "default",
        ])
        .args(["--lease-namespace", test_cluster::CONTROLLER_NAMESPACE])
        .args(["--tenancy", "any"])
        .args(["--concurrency", &concurrency.to_string()])
        .env("KUBECONFIG", cluster.controller_kubeconfig())
        .env("SIMSERIES_LOG", "warn")
        .env("POD_NAME", "bench")
        .env("AWS_ENDPOINT_URL", &aws)
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_REGION", "us-west-2")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the controller starts");
    let pid = controller.id();

    // 1. Finished passes: every series reconciled once, nothing written, nothing asked of AWS.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let text = get_metrics(&metrics).await;
        if counter(&text, "simseries_reconciliations_total") >= count as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every series was reconciled; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reconciled = started.elapsed();
    // Let any late work show before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (peak_finished, rss_finished) = memory(pid);
    let cpu_finished = (
        cpu_seconds(&pid.to_string()),
        control_plane_cpu(&cluster),
        cpu_seconds("self"),
    );
    let writes = status_writes(&cluster) - writes_before;
    let calls = aws_calls.load(Ordering::SeqCst);

    // 2. A wave of new generations.
    let edit = json!({"spec": {"context": {"workingLocation": "/data/not-s3"}}});
    let started = Instant::now();
    let wave_started = k8s_openapi::jiff::Timestamp::now();
    stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let edit = edit.clone();
            async move {
                api.patch(
                    &format!("series-{i:05}"),
                    &PatchParams::default(),
                    &Patch::Merge(edit),
                )
                .await
                .map(drop)
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .expect("the specs are edited");
    let edited = started.elapsed();
    // Listing 10,000 series costs the API server (and this process) CPU that the controller
    // would otherwise get: look every 2 s, and take the end from the series themselves, the
    // latest time a Stalled condition was set.
    let deadline = Instant::now() + Duration::from_secs(1200);
    let last_change = loop {
        let list = api
            .list(&ListParams::default())
            .await
            .expect("the series list");
        let done: Vec<&Value> = list
            .items
            .iter()
            .filter(|o| o.data["status"]["observedGeneration"] == json!(2))
            .map(|o| &o.data["status"])
            .collect();
        if done.len() == count {
            break done
                .iter()
                .filter_map(|status| status["conditions"].as_array())
                .flatten()
                .filter(|c| c["type"] == "Stalled")
                .filter_map(|c| c["lastTransitionTime"].as_str())
                .filter_map(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .max()
                .expect("each series has a Stalled condition");
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} series saw their new generation",
            done.len()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    // Condition times have whole seconds: the wave ends within the second after the last one.
    let wave = Duration::try_from(last_change.duration_since(wave_started)).unwrap_or_default()
        + Duration::from_secs(1);
    let (peak_wave, rss_wave) = memory(pid);
    let cpu_wave = (
        cpu_seconds(&pid.to_string()) - cpu_finished.0,
        control_plane_cpu(&cluster) - cpu_finished.1,
        cpu_seconds("self") - cpu_finished.2,
    );
    let wave_calls = aws_calls.load(Ordering::SeqCst) - calls;
    let _ = controller.kill();
    let _ = controller.wait();

    println!();
    println!(
        "| {count} series, --concurrency {concurrency} | time | status writes | AWS calls | controller memory (peak / now) | CPU: controller / kube-apiserver and etcd / bench |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| finished passes, controller start | {:.1} s until all reconciled | {writes} | {calls} | {peak_finished:.0} MiB / {rss_finished:.0} MiB | {:.1} s / {:.1} s / {:.1} s (with creating the series) |",
        reconciled.as_secs_f64(),
        cpu_finished.0,
        cpu_finished.1,
        cpu_finished.2,
    );
    println!(
        "| a wave of new generations | {:.0} s until all show it ({:.1} s to edit them) | {} | {wave_calls} | {peak_wave:.0} MiB / {rss_wave:.0} MiB | {:.1} s / {:.1} s / {:.1} s |",
        wave.as_secs_f64(),
        edited.as_secs_f64(),
        status_writes(&cluster) - writes_before - writes,
        cpu_wave.0,
        cpu_wave.1,
        cpu_wave.2,
    );
    assert_eq!(calls, 0, "finished passes made AWS calls");
    assert_eq!(writes, 0, "finished passes wrote their status");
}
