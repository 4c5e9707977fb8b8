//! S3 storage and `simseries plan` on S3 locations, against a real moto server.

mod common;

use std::path::Path;

use common::moto::{self, Moto};
use common::{simseries, temp_dir};
use futures::TryStreamExt;
use serde_json::Value;
use simseries::model::location::Location;
use simseries::storage::{self, S3Storage, Storage, StorageErrorKind};

fn store(moto: &Moto, bucket: &str, prefix: &str) -> S3Storage {
    let location = Location::parse(&format!("s3://{bucket}/{prefix}"), None).unwrap();
    S3Storage::with_client(location, moto.s3())
}

#[tokio::test]
async fn write_list_read_copy_exists() {
    let moto = moto::shared();
    let bucket = moto.bucket("storage").await;
    let s3 = store(moto, &bucket, "root/prefix");
    s3.probe().await.unwrap();

    // More than one ListObjectsV2 page (1,000 keys).
    let objects: Vec<(String, Vec<u8>)> = (0..1205)
        .map(|i| {
            (
                format!("S/2024-01-01/outputs/S_A_{i:04}.CELLS.json"),
                format!("{{\"i\":{i}}}").into_bytes(),
            )
        })
        .collect();
    s3.write_all(objects, 32).await.unwrap();
    s3.write("S/2024-01-01/inputs/S_0.xml", b"<a/>".to_vec())
        .await
        .unwrap();
    s3.write("SX/other", b"x".to_vec()).await.unwrap();

    let pages: Vec<Vec<String>> = s3
        .list("S/2024-01-01/outputs/")
        .try_collect()
        .await
        .unwrap();
    assert!(
        pages.len() >= 2,
        "expected several pages, got {}",
        pages.len()
    );
    let keys: Vec<String> = pages.into_iter().flatten().collect();
    assert_eq!(keys.len(), 1205);
    assert_eq!(
        keys[0], "S/2024-01-01/outputs/S_A_0000.CELLS.json",
        "keys are relative to the location"
    );
    assert_eq!(storage::list_all(&s3, "S/").await.unwrap().len(), 1206);
    assert_eq!(storage::list_all(&s3, "S").await.unwrap().len(), 1207);

    assert_eq!(
        s3.read("S/2024-01-01/outputs/S_A_0042.CELLS.json")
            .await
            .unwrap(),
        b"{\"i\":42}"
    );
    storage::copy_all(
        &s3,
        vec![("SX/other".into(), "S/2024-01-01/inits/S_0000.txt".into())],
        4,
    )
    .await
    .unwrap();
    assert!(s3.exists("S/2024-01-01/inits/S_0000.txt").await.unwrap());
    assert!(!s3.exists("S/nothing").await.unwrap());
    let err = s3.read("S/nothing").await.unwrap_err();
    assert_eq!(err.kind, StorageErrorKind::NotFound);
    assert!(
        err.to_string()
            .starts_with(&format!("s3://{bucket}/root/prefix/S/nothing: not found")),
        "{err}"
    );

    // The objects really are below the prefix in the bucket.
    let raw = moto
        .s3()
        .head_object()
        .bucket(&bucket)
        .key("root/prefix/SX/other")
        .send()
        .await;
    assert!(raw.is_ok());
}

/// A saved log streamed from a local file: the same bytes come back.
#[tokio::test]
async fn an_object_is_written_from_a_file() {
    let moto = moto::shared();
    let bucket = moto.bucket("from-file").await;
    let s3 = store(moto, &bucket, "root");
    let dir = common::temp_dir("s3-from-file");
    let source = dir.join("child.log");
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&source, &body).unwrap();
    s3.write_from_file("S/logs/child.log", &source)
        .await
        .unwrap();
    assert_eq!(s3.read("S/logs/child.log").await.unwrap(), body);
    let missing = s3
        .write_from_file("S/logs/none.log", &dir.join("none"))
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("none"), "{missing}");
}

#[tokio::test]
async fn a_missing_bucket_is_named() {
    let moto = moto::shared();
    let s3 = store(moto, "no-such-bucket-here", "");
    let err = s3.probe().await.unwrap_err();
    assert_eq!(err.kind, StorageErrorKind::NoSuchBucket);
    assert!(
        err.to_string()
            .contains("s3://no-such-bucket-here: the bucket does not exist"),
        "{err}"
    );
}

async fn upload_dir(moto: &Moto, bucket: &str, prefix: &str, dir: &Path) {
    for file in common::files_below(dir) {
        moto.s3()
            .put_object()
            .bucket(bucket)
            .key(format!("{prefix}{file}"))
            .body(std::fs::read(dir.join(&file)).unwrap().into())
            .send()
            .await
            .unwrap();
    }
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/arcade-plan")
}

/// The example series with its three locations moved to `s3://bucket/...`.
fn s3_series(bucket: &str) -> String {
    std::fs::read_to_string(example().join("series.yaml"))
        .unwrap()
        .replace(
            "workingLocation: working",
            &format!("workingLocation: s3://{bucket}/work"),
        )
        .replace(
            "manifestLocation: .",
            &format!("manifestLocation: s3://{bucket}/config"),
        )
        .replace(
            "templateLocation: .",
            &format!("templateLocation: s3://{bucket}/config/"),
        )
}

fn plan_json(series: &Path, env: &[(&str, String)]) -> Value {
    let out = simseries(
        &[
            "plan",
            "-f",
            series.to_str().unwrap(),
            "-o",
            "json",
            "--date",
            "2024-06-01",
        ],
        env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn plan_on_s3_locations_matches_the_local_plan() {
    let moto = moto::shared();
    let bucket = moto.bucket("plan").await;
    let s3 = moto.s3();
    for file in ["manifest.csv", "template.xml"] {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("config/{file}"))
            .body(std::fs::read(example().join(file)).unwrap().into())
            .send()
            .await
            .unwrap();
    }
    upload_dir(moto, &bucket, "work/", &example().join("working")).await;
    let dir = temp_dir("s3-plan");
    std::fs::write(dir.join("series.yaml"), s3_series(&bucket)).unwrap();

    let mut remote = plan_json(&dir.join("series.yaml"), &moto.env());
    let mut local = plan_json(&example().join("series.yaml"), &[]);
    assert_eq!(remote["workingLocation"], format!("s3://{bucket}/work"));
    remote["workingLocation"] = Value::Null;
    local["workingLocation"] = Value::Null;
    assert_eq!(remote, local);
    assert_eq!(remote["missingInitSources"], serde_json::json!([]));

    // Planning wrote nothing to the bucket.
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(
        listed.key_count(),
        Some(4),
        "only the uploaded files are there"
    );
}

#[tokio::test]
async fn plan_from_a_listing_of_s3_outputs() {
    let moto = moto::shared();
    let bucket = moto.bucket("listing").await;
    let s3 = moto.s3();
    s3.put_object()
        .bucket(&bucket)
        .key("config/template.xml")
        .body(
            std::fs::read(example().join("template.xml"))
                .unwrap()
                .into(),
        )
        .send()
        .await
        .unwrap();
    upload_dir(moto, &bucket, "work/", &example().join("working")).await;
    for key in [
        "TUMOR_GROWTH/2024-05-01/outputs/TUMOR_GROWTH_CONTROL_0000.CELLS.tar.xz",
        "TUMOR_GROWTH/2024-05-01/outputs/TUMOR_GROWTH_CONTROL_0000.LOCATIONS.tar.xz",
        "TUMOR_GROWTH/2024-05-02/outputs/TUMOR_GROWTH_HYPOXIC_0003.CELLS.tar.xz",
        "TUMOR_GROWTH/2024-05-02/inputs/TUMOR_GROWTH_CONTROL_0001.CELLS.tar.xz",
    ] {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("work/{key}"))
            .body(b"x".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let dir = temp_dir("s3-listing");
    let yaml =
        s3_series(&bucket).replace("    groups:", "    manifestSource: listing\n    groups:");
    std::fs::write(dir.join("series.yaml"), yaml).unwrap();
    let doc = plan_json(&dir.join("series.yaml"), &moto.env());
    assert_eq!(doc["manifestSource"], "listing");
    assert_eq!(doc["totals"]["complete"], 1);
    assert_eq!(doc["totals"]["incomplete"], 1);
    assert_eq!(doc["totals"]["missing"], 10);
}

#[tokio::test]
async fn unreachable_or_missing_buckets_fail_clearly() {
    let moto = moto::shared();
    let dir = temp_dir("s3-missing");
    std::fs::write(
        dir.join("series.yaml"),
        s3_series("no-such-bucket-anywhere"),
    )
    .unwrap();
    let out = simseries(
        &["plan", "-f", dir.join("series.yaml").to_str().unwrap()],
        &moto.env(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("s3://no-such-bucket-anywhere/work: the bucket does not exist"),
        "{err}"
    );
    assert!(err.contains("spec.context.workingLocation"), "{err}");

    // Nothing listens on the endpoint.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut env = moto.env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")));
    let out = simseries(
        &["plan", "-f", dir.join("series.yaml").to_str().unwrap()],
        &env,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("the storage endpoint cannot be reached"),
        "{err}"
    );
}

/// Every key below `prefix` that `list_split` hands over, sorted, and how many it counted.
async fn split_listing(
    s3: &dyn Storage,
    prefix: &str,
    split_at: &[String],
    permits: usize,
) -> (Vec<String>, u64) {
    let keys = std::sync::Mutex::new(Vec::new());
    let sink = |page: Vec<String>| keys.lock().unwrap().extend(page);
    let limit = tokio::sync::Semaphore::new(permits);
    let count = s3
        .list_split(prefix, split_at, &limit, &sink)
        .await
        .unwrap();
    let mut keys = keys.into_inner().unwrap();
    keys.sort();
    (keys, count)
}

#[tokio::test]
async fn a_listing_split_into_ranges_equals_the_sequential_one() {
    let moto = moto::shared();
    let bucket = moto.bucket("split").await;
    let s3 = store(moto, &bucket, "root");
    let outputs = "S/2024-01-01/outputs/";
    // Two and a half pages of outputs, a subfolder, a name with a character of two bytes,
    // and neighbours that are not below the prefix.
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    for condition in 0..25 {
        for seed in 0..50 {
            for extension in ["CELLS.json", "STATS.json"] {
                objects.push((
                    format!("{outputs}S_C{condition}_{seed:04}.{extension}"),
                    b"x".to_vec(),
                ));
            }
        }
    }
    for key in [
        format!("{outputs}sub/S_C3_0001.CELLS.json"),
        format!("{outputs}S_Cé_0001.CELLS.json"),
        "S/2024-01-01/outputsX".to_string(),
        "S/2024-01-01/inputs/S_0.xml".to_string(),
        "S/2024-01-02/outputs/S_C0_0000.CELLS.json".to_string(),
    ] {
        objects.push((key, b"x".to_vec()));
    }
    s3.write_all(objects, 32).await.unwrap();
    let sequential = storage::list_all(&s3, outputs).await.unwrap();
    assert_eq!(sequential.len(), 2_502);

    let at = |name: &str| format!("{outputs}{name}");
    let splits: Vec<(&str, Vec<String>)> = vec![
        ("none", vec![]),
        (
            "run keys, unsorted, repeated, one equal to a key, one before the first page, one \
             outside the prefix",
            vec![
                at("S_C7_0025"),
                at("S_C20_0000"),
                at("S_C20_0000"),
                at("S_C21_0049.STATS.json"),
                at("S_C0_0001"),
                at("S_C9"),
                at("S_Cé"),
                at("sub/"),
                "S/2024-01-02/outputs/".to_string(),
                "T/".to_string(),
            ],
        ),
        (
            "one range a page",
            (0..25).map(|c| at(&format!("S_C{c}_0025"))).collect(),
        ),
    ];
    for (what, split_at) in splits {
        for permits in [1, 32] {
            let (keys, count) = split_listing(&s3, outputs, &split_at, permits).await;
            assert_eq!(
                count,
                sequential.len() as u64,
                "{what}, {permits} permit(s)"
            );
            assert_eq!(keys, sequential, "{what}, {permits} permit(s)");
        }
    }
}

#[tokio::test]
async fn folders_are_listed_alike_on_s3_and_in_a_local_folder() {
    let moto = moto::shared();
    let bucket = moto.bucket("folders").await;
    let s3 = store(moto, &bucket, "root");
    let dir = temp_dir("folders");
    let local = storage::LocalStorage::new(dir.join("w"));
    let keys = [
        "S/2024-01-01/outputs/a",
        "S/2024-01-01/inputs/b",
        "S/a-b/x",
        "S/a/x",
        "S/file",
        "S/simseries/status.json",
        "SX/2024-01-01/outputs/c",
    ];
    for key in keys {
        s3.write(key, b"x".to_vec()).await.unwrap();
        local.write(key, b"x".to_vec()).await.unwrap();
    }
    let expected = ["S/2024-01-01/", "S/a-b/", "S/a/", "S/simseries/"];
    assert_eq!(s3.list_folders("S/").await.unwrap(), expected);
    assert_eq!(local.list_folders("S/").await.unwrap(), expected);
    assert_eq!(
        s3.list_folders("S/a").await.unwrap(),
        local.list_folders("S/a").await.unwrap()
    );
    assert!(local.list_folders("nothing/").await.unwrap().is_empty());
    assert!(s3.list_folders("nothing/").await.unwrap().is_empty());
}
