//! Listing a series' outputs on S3 before planning: one sequential ListObjectsV2 stream over
//! everything under `{name}/` (what planning did before) against the outputs folders of the
//! dated folders, a large one cut into ranges listed at once (`planning::listing`, what
//! planning and the recount do now), side by side in one run on the same moto server, through
//! a proxy that holds each request 20 ms (the round trip to S3 from a laptop or a cluster in
//! another region; `SIMSERIES_BENCH_LATENCY_MS` sets another). Both must find the same completeness; the bench stops if they do not.
//!
//! Run with `SIMSERIES_MOTO_SERVER=.venv/bin/moto_server cargo bench --bench listing` (the
//! moto that `scripts/test.sh` installs), or `-- 20000` for another number of outputs
//! (default 200,000: 1,000 conditions x 100 seeds x 2 extensions). Filling moto takes a few
//! minutes at the default size. It prints the wall time of each (median of 3, alternating),
//! the ListObjectsV2 calls, the ratio, and a projection to 2,000,000 outputs.

#[path = "support/latency_proxy.rs"]
mod latency_proxy;
#[allow(dead_code)]
#[path = "../tests/common/moto.rs"]
mod moto;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use latency_proxy::latency_proxy;
use simseries::model::location::Location;
use simseries::model::validate::validate;
use simseries::planning::listing;
use simseries::planning::manifest::Completeness;
use simseries::storage::{self, DEFAULT_CONCURRENCY, S3Storage, Storage};

const SEEDS: usize = 100;
const EXTENSIONS: [&str; 2] = ["CELLS.tar.xz", "LOCATIONS.tar.xz"];

fn main() {
    let outputs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(outputs));
}

/// Counts the requests a client sends.
#[derive(Debug, Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "Calls"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn series_yaml(conditions: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: simseries.io/v1alpha1\nkind: SimulationSeries\nmetadata: {name: s}\nspec:\n  \
         context: {workingLocation: s3://b/work, manifestLocation: s3://b/config, \
         templateLocation: s3://b/config, vcpus: 1, memory: 512}\n  series:\n    name: S\n    manifestKey: m.csv\n    \
         templateKey: t.xml\n    manifestSource: listing\n",
    );
    yaml.push_str(&format!(
        "    seeds: [{}]\n    extensions: [{}]\n    conditions:\n",
        (0..SEEDS)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        EXTENSIONS.join(", ")
    ));
    for c in 0..conditions {
        yaml.push_str(&format!("    - {{key: C{c:05}, rate: 0.5}}\n"));
    }
    yaml.push_str(
        "  parameters: {model: ARCADE, image: arcade:latest, retries: 1, retryDelay: 1}\n",
    );
    yaml
}

/// The S3 server the bench lists from.
enum Server {
    /// moto, started by the bench.
    Moto(moto::Moto),
    /// Another S3 server (`benches/listing.sh` starts Garage), with a bucket, credentials
    /// and region from the environment.
    External { endpoint: String },
}

impl Server {
    async fn start() -> (Server, String) {
        match std::env::var("SIMSERIES_BENCH_S3_ENDPOINT") {
            Ok(endpoint) => {
                let bucket = std::env::var("SIMSERIES_BENCH_S3_BUCKET")
                    .expect("SIMSERIES_BENCH_S3_BUCKET names the bucket of the external server");
                (Server::External { endpoint }, bucket)
            }
            Err(_) => {
                let moto = moto::start(&[]);
                let bucket = moto.bucket("listing").await;
                (Server::Moto(moto), bucket)
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Server::Moto(_) => "moto",
            Server::External { .. } => "Garage",
        }
    }

    fn endpoint(&self) -> String {
        match self {
            Server::Moto(moto) => moto.endpoint.clone(),
            Server::External { endpoint, .. } => endpoint.clone(),
        }
    }

    /// A client of the server, reached at `endpoint` (the server, or the proxy before it).
    fn client(&self, endpoint: &str) -> aws_sdk_s3::Client {
        match self {
            Server::Moto(moto) => moto.through(endpoint.to_string()).s3(),
            Server::External { .. } => {
                let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}"));
                let config = aws_sdk_s3::Config::builder()
                    .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                    .region(aws_sdk_s3::config::Region::new(env("AWS_REGION")))
                    .endpoint_url(endpoint)
                    .credentials_provider(aws_sdk_s3::config::Credentials::new(
                        env("AWS_ACCESS_KEY_ID"),
                        env("AWS_SECRET_ACCESS_KEY"),
                        None,
                        None,
                        "bench",
                    ))
                    .force_path_style(true)
                    .build();
                aws_sdk_s3::Client::from_conf(config)
            }
        }
    }
}

async fn run(outputs: usize) {
    let conditions = outputs.div_ceil(SEEDS * EXTENSIONS.len());
    let series = simseries::model::specfile::parse(&series_yaml(conditions)).unwrap();
    let valid = validate(&series.spec).unwrap();
    let (server, bucket) = Server::start().await;
    let location = Location::parse(&format!("s3://{bucket}/work"), None).unwrap();

    let near = S3Storage::with_client(location.clone(), server.client(&server.endpoint()));
    let started = Instant::now();
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    for c in 0..conditions {
        // What else a dated folder holds: an input a condition, a log a run.
        objects.push((format!("S/2024-01-01/inputs/S_{c}.xml"), b"<set/>".to_vec()));
        for seed in 0..SEEDS {
            let run = format!("S_C{c:05}_{seed:04}");
            objects.push((
                format!("S/2024-01-01/logs/pass-1/{run}.log"),
                b"log".to_vec(),
            ));
            for extension in EXTENSIONS {
                objects.push((
                    format!("S/2024-01-01/outputs/{run}.{extension}"),
                    b"x".to_vec(),
                ));
            }
        }
    }
    let total = objects.len();
    for chunk in objects.chunks(20_000) {
        near.write_all(chunk.to_vec(), DEFAULT_CONCURRENCY)
            .await
            .expect("the server takes the objects");
    }
    eprintln!(
        "{total} objects ({} outputs) written to {} in {:.0} s",
        conditions * SEEDS * EXTENSIONS.len(),
        server.name(),
        started.elapsed().as_secs_f64()
    );

    // The round trip: 20 ms unless SIMSERIES_BENCH_LATENCY_MS says otherwise (a full page
    // from S3 takes 50-100 ms).
    let latency_ms: u64 = std::env::var("SIMSERIES_BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let far = latency_proxy(server.endpoint(), Duration::from_millis(latency_ms)).await;
    let calls = Calls::default();
    let client = server.client(&far);
    let client = aws_sdk_s3::Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(calls.clone())
            .build(),
    );
    let store = S3Storage::with_client(location, client);
    // A first request so that neither side pays for the connection's set-up.
    store.probe().await.unwrap();

    let sequential = || async {
        let mut table = Completeness::new(&valid);
        let keys = storage::list_all(&store, "S/").await.unwrap();
        for key in &keys {
            table.record_object(key);
        }
        (table, keys.len() as u64)
    };
    let in_ranges = || async {
        let mut table = Completeness::new(&valid);
        let folders = listing::dated_folders(&store, "S").await.unwrap();
        let listed = listing::record_outputs(&store, &valid, &folders, &mut table)
            .await
            .unwrap();
        (table, listed)
    };
    let (mut seq_times, mut par_times) = (Vec::new(), Vec::new());
    let (mut seq_calls, mut par_calls) = (0, 0);
    let (mut seq_keys, mut par_keys) = (0, 0);
    for round in 0..3 {
        for which in [round % 2, 1 - round % 2] {
            calls.0.store(0, Ordering::Relaxed);
            let started = Instant::now();
            let (table, keys) = if which == 0 {
                sequential().await
            } else {
                in_ranges().await
            };
            let elapsed = started.elapsed();
            let made = calls.0.load(Ordering::Relaxed);
            assert_same_completeness(&table, &valid);
            if which == 0 {
                (seq_calls, seq_keys) = (made, keys);
                seq_times.push(elapsed);
            } else {
                (par_calls, par_keys) = (made, keys);
                par_times.push(elapsed);
            }
        }
    }
    let (seq, par) = (median(seq_times), median(par_times));
    let outputs = conditions * SEEDS * EXTENSIONS.len();
    println!();
    println!(
        "| {total} objects ({outputs} outputs) on {} S3, {latency_ms} ms away | wall time (median of 3) | ListObjectsV2 calls | keys listed |",
        server.name()
    );
    println!("|---|---|---|---|");
    println!(
        "| sequential, everything under `{{name}}/` (before) | {:.2} s | {seq_calls} | {seq_keys} |",
        seq.as_secs_f64()
    );
    println!(
        "| outputs folders in ranges, at most {DEFAULT_CONCURRENCY} at a time (now) | {:.2} s | {par_calls} | {par_keys} |",
        par.as_secs_f64()
    );
    println!(
        "| ratio | {:.1}x | | |",
        seq.as_secs_f64() / par.as_secs_f64()
    );
    // Sequential pages cost a round trip each; ranges share DEFAULT_CONCURRENCY requests in
    // flight (one range per 2,000 outputs, at most 256 a folder). A call costs what a
    // sequential call cost here.
    let per_call = seq.as_secs_f64() / seq_calls as f64;
    let at = 2_000_000f64;
    let seq_projected = at * (total as f64 / outputs as f64) / 1000.0;
    let par_projected = at / 1000.0 + 256.0 + 2.0;
    println!();
    println!(
        "Projection to {at} outputs (and the same share of other objects) at {:.0} ms a call: \
         sequential {:.0} s ({seq_projected:.0} calls), in ranges {:.1} s ({par_projected:.0} \
         calls, {DEFAULT_CONCURRENCY} in flight).",
        per_call * 1000.0,
        seq_projected * per_call,
        par_projected / DEFAULT_CONCURRENCY as f64 * per_call,
    );
}

/// Both listings must give the table every run complete.
fn assert_same_completeness(table: &Completeness, valid: &simseries::model::validate::ValidSeries) {
    for condition in 0..valid.spec.series.conditions.len() {
        for slot in 0..valid.seeds.len() {
            assert_eq!(
                table.state(condition, slot),
                simseries::planning::manifest::RunState::Complete,
                "condition {condition}, seed slot {slot}"
            );
        }
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}
