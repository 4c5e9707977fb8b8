//! Uploading a pass's inputs to S3: simseries' bounded concurrency against one object at a
//! time (the original's pattern), on the same moto server, side by side.
//!
//! Run with `SIMSERIES_MOTO_SERVER=.venv/bin/moto_server cargo bench --bench upload` (the moto
//! that `scripts/test.sh` installs; `moto_server` on the PATH also does), or `-- 5000` for
//! another number of inputs (default 2,000 of about 2 KiB, like ARCADE inputs). It prints the
//! median of 3 rounds of each, alternating, each into a prefix of its own, twice: straight to
//! moto (which answers one request at a time, so its CPU is the limit), and through a proxy
//! that holds each request 20 ms, standing in for the round trip to S3 from a laptop or a
//! cluster in another region.

#[path = "support/latency_proxy.rs"]
mod latency_proxy;
#[allow(dead_code)]
#[path = "../tests/common/moto.rs"]
mod moto;

use latency_proxy::latency_proxy;

use std::time::{Duration, Instant};

use simseries::model::location::Location;
use simseries::storage::{DEFAULT_CONCURRENCY, S3Storage, Storage};

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(count));
}

/// An input of about 2 KiB: a few conditions' lines, as a rendered ARCADE input.
fn input(i: usize) -> Vec<u8> {
    let mut text = format!("<?xml version=\"1.0\"?>\n<set index=\"{i}\">\n");
    for line in 0..24 {
        text.push_str(&format!(
            "  <series name=\"S_{i}_{line}\" start=\"{line}\" end=\"{}\" ticks=\"2016\" />\n",
            line + 1
        ));
    }
    text.push_str("</set>\n");
    text.into_bytes()
}

async fn upload(store: &S3Storage, round: usize, concurrency: usize, count: usize) -> Duration {
    let objects: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| (format!("r{round}/c{concurrency}/S_{i}.xml"), input(i)))
        .collect();
    let started = Instant::now();
    store
        .write_all(objects, concurrency)
        .await
        .expect("the upload succeeds");
    started.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn run(count: usize) {
    let moto = moto::start(&[]);
    let bucket = moto.bucket("upload").await;
    compare(&moto, &bucket, count, "straight to moto").await;
    let far = moto.through(latency_proxy(moto.endpoint.clone(), Duration::from_millis(20)).await);
    compare(&far, &bucket, count, "20 ms away").await;
}

async fn compare(moto: &moto::Moto, bucket: &str, count: usize, label: &str) {
    let location = Location::parse(&format!("s3://{bucket}/bench"), None).unwrap();
    let store = S3Storage::with_client(location, moto.s3());
    // A first small upload so that neither side pays for moto's warm-up.
    upload(&store, 99, DEFAULT_CONCURRENCY, 50).await;
    let (mut bounded, mut sequential) = (Vec::new(), Vec::new());
    for round in 0..3 {
        if round % 2 == 0 {
            bounded.push(upload(&store, round, DEFAULT_CONCURRENCY, count).await);
            sequential.push(upload(&store, round, 1, count).await);
        } else {
            sequential.push(upload(&store, round, 1, count).await);
            bounded.push(upload(&store, round, DEFAULT_CONCURRENCY, count).await);
        }
    }
    let (bounded, sequential) = (median(bounded), median(sequential));
    println!();
    println!(
        "| {count} inputs of about 2 KiB, moto S3 {label} | wall time (median of 3) | objects/s |"
    );
    println!("|---|---|---|");
    for (name, time) in [
        (
            format!("simseries: at most {DEFAULT_CONCURRENCY} at a time"),
            bounded,
        ),
        ("one at a time (the original)".to_string(), sequential),
    ] {
        println!(
            "| {name} | {:.2} s | {:.0} |",
            time.as_secs_f64(),
            count as f64 / time.as_secs_f64()
        );
    }
    println!(
        "| ratio | {:.1}x | |",
        sequential.as_secs_f64() / bounded.as_secs_f64()
    );
}
