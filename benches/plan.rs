//! Planning at scale: 1,000,000 runs (1,000 conditions x 1,000 seeds) against a manifest of
//! about 1.5 million rows, on one core.
//!
//! Run with `cargo bench --bench plan`. It prints the median of several rounds for:
//! - simseries: reading the manifest into the completeness table and planning (ARCADE inputs);
//! - baseline: the original's approach on the same data (a set of KEY strings per extension,
//!   then one formatted key per run and extension), measured side by side;
//! - rendering and XML-checking every input of the plan;
//! - writing those inputs into a new dated folder as `simseries` does (`LocalStorage::write_all`,
//!   all or nothing), beside the file system's own limit: a minimal writer that creates, writes
//!   and closes each file into a fresh folder from one thread (and from two, to show whether a
//!   second writer helps on one directory); then into the existing folder (a later pass of the
//!   same date).

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use simseries::model::layout::Date;
use simseries::model::spec::{
    Condition, Context, ManifestSource, Parameters, Series, SimulationSeriesSpec,
};
use simseries::model::validate::validate;
use simseries::planning::inputs::render_inputs;
use simseries::planning::manifest::Completeness;
use simseries::planning::plan::plan;
use simseries::planning::template::Template;
use simseries::storage::LocalStorage;
use simseries::storage::Storage;

const CONDITIONS: usize = 1000;
const SEEDS: u32 = 1000;
const ROUNDS: usize = 5;

fn spec(seeds_per_job: u32) -> SimulationSeriesSpec {
    let conditions = (0..CONDITIONS)
        .map(|i| {
            let mut parameters = Map::new();
            parameters.insert("ticks".into(), Value::from(100 + i as u64));
            parameters.insert("adhesion".into(), Value::from(1.0 / (i as f64 + 3.0)));
            Condition {
                key: format!("C{i:04}"),
                group: None,
                parameters,
            }
        })
        .collect();
    SimulationSeriesSpec {
        context: Context {
            working_location: "working".into(),
            manifest_location: ".".into(),
            template_location: ".".into(),
            account: None,
            region: None,
            user: None,
            vcpus: 1,
            memory: 1024,
            queue: None,
            share_identifier: None,
            propagate_tags: false,
            executor: None,
            kubernetes: None,
        },
        series: Series {
            name: "BENCH".into(),
            manifest_key: "manifest.csv".into(),
            template_key: "template.xml".into(),
            seeds: (0..SEEDS).collect(),
            conditions,
            extensions: vec!["CELLS.tar.xz".into(), "LOCATIONS.tar.xz".into()],
            inits: Vec::new(),
            groups: None,
            manifest_source: ManifestSource::File,
        },
        parameters: Parameters {
            model: "ARCADE".into(),
            image: None,
            command: None,
            retries: 1,
            retry_delay: 1,
            seeds_per_job,
            log_filter: String::new(),
            terminate_jobs: true,
            save_logs: true,
            clean_jobs: true,
            spot_retries: 0,
            timeout_seconds: None,
            scheduling_priority: None,
            vcpu_hour_price: None,
        },
    }
}

/// 1.5 M rows: 700,000 complete runs (two rows each), 100,000 incomplete (one row), and
/// 200,000 missing; plus rows of another series. Runs are shuffled deterministically.
fn manifest() -> Vec<u8> {
    let mut csv = String::from("KEY,EXTENSION,LOCATION,FULL_KEY\n");
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut rows = 0;
    for c in 0..CONDITIONS {
        for seed in 0..SEEDS {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bucket = state % 10;
            let key = format!("BENCH_C{c:04}_{seed:04}");
            let exts: &[&str] = match bucket {
                0..=6 => &["CELLS.tar.xz", "LOCATIONS.tar.xz"],
                7 => &["CELLS.tar.xz"],
                _ => &[],
            };
            for ext in exts {
                csv.push_str(&format!(
                    "{key},{ext},s3://bucket,BENCH/2024-01-01/outputs/{key}.{ext}\n"
                ));
                rows += 1;
            }
        }
    }
    for i in 0..100_000 {
        csv.push_str(&format!(
            "OTHER_X_{:04},CELLS.tar.xz,s3://bucket,OTHER/x\n",
            i % 10_000
        ));
        rows += 1;
    }
    eprintln!("manifest: {rows} rows, {} MB", csv.len() / 1_000_000);
    csv.into_bytes()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(mut f: impl FnMut() -> T) -> Duration {
    let samples = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    median(samples)
}

/// The original approach: KEYs per extension as strings, then a formatted key per run.
fn baseline(spec: &SimulationSeriesSpec, bytes: &[u8]) -> usize {
    let mut keys: HashMap<String, HashSet<String>> = HashMap::new();
    let mut reader = csv::Reader::from_reader(bytes);
    for record in reader.records() {
        let record = record.unwrap();
        keys.entry(record[1].to_string())
            .or_default()
            .insert(record[0].to_string());
    }
    let empty = HashSet::new();
    let all: HashSet<&String> = keys.values().flatten().collect();
    let mut to_run = 0;
    for condition in &spec.series.conditions {
        for seed in &spec.series.seeds {
            let key = format!("{}_{}_{seed:04}", spec.series.name, condition.key);
            let missing = !all.contains(&key);
            let incomplete = spec
                .series
                .extensions
                .iter()
                .any(|e| !keys.get(e).unwrap_or(&empty).contains(&key));
            if missing || incomplete {
                to_run += 1;
            }
        }
    }
    to_run
}

fn main() {
    let bytes = manifest();
    let date: Date = "2024-06-01".parse().unwrap();

    let spec = spec(25);
    let valid = validate(&spec).unwrap();
    let planned = {
        let mut table = Completeness::new(&valid);
        table.load_csv(&bytes, "manifest.csv").unwrap();
        plan(&valid, &table, date)
    };
    let totals = planned.totals();
    let baseline_count = baseline(&spec, &bytes);
    assert_eq!(
        baseline_count as u64,
        totals.missing + totals.incomplete,
        "both agree"
    );
    println!(
        "series: {} runs, {} complete, {} missing, {} incomplete -> {} inputs (seedsPerJob 25)",
        totals.runs, totals.complete, totals.missing, totals.incomplete, totals.inputs
    );

    let simseries = time(|| {
        let mut table = Completeness::new(&valid);
        table.load_csv(&bytes, "manifest.csv").unwrap();
        plan(&valid, &table, date)
    });
    let read_only = time(|| {
        let mut table = Completeness::new(&valid);
        table.load_csv(&bytes, "manifest.csv").unwrap();
        table
    });
    let baseline_time = time(|| baseline(&spec, &bytes));
    println!(
        "plan 1,000,000 runs (read manifest + plan): {simseries:>10.1?}  (of which reading the manifest: {read_only:.1?})"
    );
    println!("baseline (string sets, original approach):  {baseline_time:>10.1?}");
    println!(
        "ratio baseline / simseries:                 {:>10.1}x",
        baseline_time.as_secs_f64() / simseries.as_secs_f64()
    );

    let template = Template::parse(
        "template.xml",
        "<?xml version=\"1.0\"?>\n<set>\n{%- for c in conditions %}\n  <series name=\"{{ c.key }}\" start=\"{{ c.start_seed }}\" end=\"{{ c.end_seed }}\" ticks=\"{{ c.ticks }}\" interval=\"{{ c.ticks // 4 }}\"><potts.parameter id=\"ADHESION\" value=\"{{ c.adhesion }}\" /></series>\n{%- endfor %}\n</set>\n",
    )
    .unwrap();
    let render = time(|| render_inputs(&valid, &planned, &template).unwrap().len());
    println!(
        "render + XML-check {} inputs:             {render:>10.1?}  ({:.1} us per input)",
        totals.inputs,
        render.as_secs_f64() * 1e6 / totals.inputs as f64
    );

    let objects: Vec<(String, Vec<u8>)> = render_inputs(&valid, &planned, &template)
        .unwrap()
        .into_iter()
        .map(|input| (input.key, input.text.into_bytes()))
        .collect();
    writes(&objects);
}

/// Each write starts from clean page cache state: the previous round's files are flushed, so
/// no writer pays for another's.
fn flushed() {
    let _ = std::process::Command::new("sync").status();
}

/// Creates, writes and closes each file into `folder`, which exists: the least any writer
/// does. `threads` writers take contiguous shares.
fn minimal_writer(folder: &std::path::Path, files: &[(String, Vec<u8>)], threads: usize) {
    use std::io::Write;
    let share = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for chunk in files.chunks(share) {
            scope.spawn(move || {
                for (key, body) in chunk {
                    let name = key.rsplit('/').next().unwrap();
                    let mut file = std::fs::File::create(folder.join(name)).unwrap();
                    file.write_all(body).unwrap();
                }
            });
        }
    });
}

fn writes(objects: &[(String, Vec<u8>)]) {
    let bytes: usize = objects.iter().map(|(_, b)| b.len()).sum();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-writes");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fresh = |name: &str| {
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        dir
    };
    let mut minimal = Vec::new();
    let mut minimal_two = Vec::new();
    let mut new_folder = Vec::new();
    let mut existing_folder = Vec::new();
    for round in 0..ROUNDS {
        for (threads, samples) in [(1, &mut minimal), (2, &mut minimal_two)] {
            let folder = fresh(&format!("minimal-{threads}-{round}"));
            std::fs::create_dir_all(&folder).unwrap();
            flushed();
            let start = Instant::now();
            minimal_writer(&folder, objects, threads);
            samples.push(start.elapsed());
        }
        let store = LocalStorage::new(fresh(&format!("simseries-{round}")));
        for samples in [&mut new_folder, &mut existing_folder] {
            flushed();
            let start = Instant::now();
            runtime
                .block_on(store.write_all(objects.to_vec(), 32))
                .unwrap();
            samples.push(start.elapsed());
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    let (minimal, minimal_two) = (median(minimal), median(minimal_two));
    let (new_folder, existing_folder) = (median(new_folder), median(existing_folder));
    let ratio = |d: Duration| d.as_secs_f64() / minimal.as_secs_f64();
    println!(
        "write {} inputs ({} MB) into a fresh folder:",
        objects.len(),
        bytes / 1_000_000
    );
    println!("  minimal writer, 1 thread (the limit):     {minimal:>10.1?}");
    println!(
        "  minimal writer, 2 threads:                {minimal_two:>10.1?}  ({:.2}x the limit)",
        ratio(minimal_two)
    );
    println!(
        "  simseries, new dated folder:              {new_folder:>10.1?}  ({:.2}x the limit)",
        ratio(new_folder)
    );
    println!(
        "  simseries, the same folder again:         {existing_folder:>10.1?}  ({:.2}x the limit)",
        ratio(existing_folder)
    );
}
