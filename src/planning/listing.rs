//! Listing what a series has produced: the `outputs/` folder of each dated folder below
//! `{name}/` (never its inputs, logs or init copies). On S3 a large folder is cut into key
//! ranges listed at once, at most [`DEFAULT_CONCURRENCY`] requests in flight; the ranges are
//! cut at run keys spread evenly over the series, since its outputs are named after them.

use std::sync::Mutex;

use tokio::sync::Semaphore;

use crate::model::layout;
use crate::model::validate::ValidSeries;
use crate::planning::manifest::Completeness;
use crate::storage::{DEFAULT_CONCURRENCY, Storage, StorageResult};

/// A range of an outputs folder holds about this many keys when the series' outputs are
/// spread evenly (two S3 pages).
const KEYS_PER_RANGE: u64 = 2_000;

/// At most this many ranges per folder: past it, a range's pages outnumber its first one.
const MAX_RANGES: u64 = 256;

/// The dated folders of a series (`{name}/{folder}/`), including any that hold no outputs.
pub async fn dated_folders(working: &dyn Storage, series: &str) -> StorageResult<Vec<String>> {
    working.list_folders(&layout::series_prefix(series)).await
}

/// The outputs folder of a dated folder `{name}/{folder}/`.
pub fn outputs_of(dated_folder: &str) -> String {
    format!("{dated_folder}outputs/")
}

/// Records into `table` every object of the `outputs/` folders of `dated_folders`; returns
/// how many objects were listed.
pub async fn record_outputs(
    working: &dyn Storage,
    series: &ValidSeries<'_>,
    dated_folders: &[String],
    table: &mut Completeness,
) -> StorageResult<u64> {
    let limit = Semaphore::new(DEFAULT_CONCURRENCY);
    let table = Mutex::new(table);
    let sink = |keys: Vec<String>| {
        let mut table = table.lock().expect("no listing panics while recording");
        for key in &keys {
            table.record_object(key);
        }
    };
    // Only a store that pays a round trip per page gains from ranges (S3).
    let run_keys = if working.location().is_s3() {
        split_run_keys(series)
    } else {
        Vec::new()
    };
    let folders: Vec<(String, Vec<String>)> = dated_folders
        .iter()
        .map(|folder| {
            let outputs = outputs_of(folder);
            let split_at = run_keys.iter().map(|k| format!("{outputs}{k}")).collect();
            (outputs, split_at)
        })
        .collect();
    let listings = folders
        .iter()
        .map(|(outputs, split_at)| working.list_split(outputs, split_at, &limit, &sink));
    let counts = futures::future::try_join_all(listings).await?;
    Ok(counts.into_iter().sum())
}

/// Run keys that cut an outputs folder into ranges of about [`KEYS_PER_RANGE`] keys when
/// every run of the series has its outputs there: run keys at even steps through the run keys
/// in the order S3 lists them.
pub fn split_run_keys(series: &ValidSeries<'_>) -> Vec<String> {
    let spec = &series.spec.series;
    let seeds = series.seeds.len() as u64;
    let runs = spec.conditions.len() as u64 * seeds;
    let keys = runs * spec.extensions.len().max(1) as u64;
    let ranges = (keys / KEYS_PER_RANGE).clamp(1, MAX_RANGES);
    if ranges == 1 || seeds == 0 {
        return Vec::new();
    }
    // Run keys sort by condition key then by the four-digit seed; `{condition}_` only
    // approximates that order when one key is a prefix of another, which moves work between
    // ranges but never what is listed.
    let mut conditions: Vec<&str> = spec.conditions.iter().map(|c| c.key.as_str()).collect();
    conditions.sort_by_cached_key(|c| format!("{c}_"));
    (1..ranges)
        .map(|step| {
            let run = step * runs / ranges;
            let condition = conditions[(run / seeds) as usize];
            let seed = series.seeds[(run % seeds) as usize];
            layout::run_key(&spec.name, condition, seed)
        })
        .collect()
}
