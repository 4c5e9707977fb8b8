//! The controller's Kubernetes API traffic, request by request, against kube's mocked service
//! (tower-test): finalizer, status applies, events, the no-call case of a finished pass,
//! deletion. AWS is the scripted fake of tests/common/fake_batch.rs; storage is local.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::fake_batch::FakeBatch;
use common::fixtures::Fixture;
use common::temp_dir;
use http::{Method, Request, Response};
use kube::client::Body;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};
use simseries::controller::cloud::Cloud;
use simseries::controller::metrics::Metrics;
use simseries::controller::reconciler::{FINALIZER, Reconciler, error_policy, reconcile};
use simseries::controller::tenancy::Tenancy;
use simseries::executor::batch::api::BatchApi;
use simseries::model::location::Location;
use simseries::model::spec::SimulationSeries;
use simseries::planning::prepare::{Locations, Stores};
use simseries::storage::LocalStorage;
use tower_test::mock::{Handle, pair};

const PATH: &str = "/apis/simseries.io/v1alpha1/namespaces/default/simulationseries/test";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

/// S3 locations are folders under `root/{bucket}/{prefix}`; Batch is the fake.
struct TestCloud {
    root: PathBuf,
    fake: Arc<FakeBatch>,
}

impl Cloud for TestCloud {
    fn stores(&self, locations: &Locations) -> Stores {
        let local = |location: &Location| -> Arc<dyn simseries::storage::Storage> {
            let Location::S3 { bucket, prefix } = location else {
                panic!("the controller only uses S3 locations")
            };
            Arc::new(LocalStorage::standing_in_for(
                location.clone(),
                self.root.join(bucket).join(prefix),
            ))
        };
        Stores {
            working: local(&locations.working),
            manifest: local(&locations.manifest),
            template: local(&locations.template),
        }
    }

    fn batch(&self, _region: Option<&str>) -> Arc<dyn BatchApi> {
        self.fake.clone()
    }
}

/// The base series on S3 and AWS (the fake), polls a minute apart, completeness from a listing,
/// no init files, as object `default/test` at generation 1; `edit` changes its JSON.
fn object(edit: impl FnOnce(&mut Value)) -> SimulationSeries {
    let series = Fixture::base()
        .on_s3("bucket")
        .on_aws("tester", "q")
        .image("toy", "toy:1")
        .polls(1, 60)
        .listing()
        .without_inits()
        .resource();
    let mut value = serde_json::to_value(series).unwrap();
    value["metadata"] = json!({
        "name": "test", "namespace": "default", "uid": "1234-uid", "generation": 1,
        "resourceVersion": "7",
    });
    edit(&mut value);
    serde_json::from_value(value).unwrap()
}

fn with_finalizer(value: &mut Value) {
    value["metadata"]["finalizers"] = json!([FINALIZER]);
}

struct Setup {
    ctx: Arc<Reconciler>,
    fake: Arc<FakeBatch>,
    handle: Handle<Request<Body>, Response<Body>>,
    root: common::TestDir,
}

fn setup(name: &str) -> Setup {
    let (service, handle) = pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let root = temp_dir(name);
    std::fs::create_dir_all(root.join("bucket/config")).unwrap();
    std::fs::write(
        root.join("bucket/config/template.xml"),
        "<?xml version=\"1.0\"?>\n<run key=\"{{ key }}\" seed=\"{{ seed }}\" />\n",
    )
    .unwrap();
    let fake = Arc::new(FakeBatch::default());
    let cloud = Arc::new(TestCloud {
        root: root.clone(),
        fake: fake.clone(),
    });
    let reporter = Reporter {
        controller: "simseries".into(),
        instance: Some("test".into()),
    };
    let ctx = Arc::new(Reconciler::new(
        client,
        reporter,
        Arc::new(Metrics::default()),
        cloud,
        // The API traffic is the subject here; tenancy has tests of its own.
        Tenancy::AllowAll,
    ));
    Setup {
        ctx,
        fake,
        handle,
        root,
    }
}

/// A request as the test sees it.
struct Seen {
    method: Method,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

/// What the test sees of `request`.
async fn seen(request: Request<Body>) -> Seen {
    let (parts, body) = request.into_parts();
    let bytes = body.collect_bytes().await.unwrap();
    Seen {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        content_type: parts
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        body: if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        },
    }
}

/// Answers the next request with `answer(seen)` as JSON, and returns what was asked.
async fn next(
    handle: &mut Handle<Request<Body>, Response<Body>>,
    answer: impl FnOnce(&Seen) -> Value,
) -> Seen {
    let (request, send) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .expect("a request within 10 s")
        .expect("the service is open");
    let seen = seen(request).await;
    let response = answer(&seen);
    send.send_response(
        Response::builder()
            .status(200)
            .body(Body::from(serde_json::to_vec(&response).unwrap()))
            .unwrap(),
    );
    seen
}

/// The condition `kind` of the status a request applied.
fn condition(body: &Value, kind: &str) -> Value {
    body["status"]["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} condition in {body}"))
        .clone()
}

/// The object after a status apply: what the real server would answer.
fn with_status(base: &SimulationSeries, seen: &Seen) -> Value {
    let mut value = serde_json::to_value(base).unwrap();
    value["status"] = seen.body["status"].clone();
    value
}

/// Answers every request until `task` ends, as the API server would with the object `stored`:
/// a read of the status with it, a status apply with it after the apply, an event with itself;
/// anything else fails the test. `each` sees each request before its answer. Returns the
/// requests in order and the object as stored at the end.
async fn serve<T>(
    handle: &mut Handle<Request<Body>, Response<Body>>,
    task: &tokio::task::JoinHandle<T>,
    mut stored: Value,
    mut each: impl FnMut(&Seen),
) -> (Vec<Seen>, Value) {
    let status_path = format!("{PATH}/status");
    let mut all = Vec::new();
    while !task.is_finished() {
        let Ok(Some((request, send))) =
            tokio::time::timeout(Duration::from_millis(500), handle.next_request()).await
        else {
            continue;
        };
        let seen = seen(request).await;
        each(&seen);
        let answer = match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", p) if p == status_path => stored.clone(),
            ("PATCH", p) if p == status_path => {
                stored["status"] = seen.body["status"].clone();
                stored.clone()
            }
            ("POST", EVENTS) => seen.body.clone(),
            other => panic!("unexpected request {other:?}"),
        };
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap(),
        );
        all.push(seen);
    }
    (all, stored)
}

/// The phases of the status applies among `seen`, in order.
fn phases(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|s| s.method == Method::PATCH)
        .map(|s| s.body["status"]["phase"].as_str().unwrap().to_string())
        .collect()
}

/// The reasons of the events among `seen`, in order.
fn reasons(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|s| s.path == EVENTS)
        .map(|s| s.body["reason"].as_str().unwrap().to_string())
        .collect()
}

/// A series being deleted while its pass runs one job (of `size` inputs) on the fake.
async fn deleted_while_running(
    fake: &FakeBatch,
    size: u32,
    annotations: Value,
) -> SimulationSeries {
    use simseries::executor::batch::api::{BatchApi, SubmitRequest};
    let id = fake
        .submit_job(&SubmitRequest {
            job_name: "tester_S_G".into(),
            queue: "q".into(),
            definition: "arn:def:1".into(),
            array_size: (size > 1).then_some(size),
            environment: vec![],
            tags: Default::default(),
            share_identifier: None,
            scheduling_priority: None,
        })
        .await
        .unwrap();
    fake.set_all("RUNNING");
    object(|v| {
        with_finalizer(v);
        v["metadata"]["deletionTimestamp"] = json!("2024-06-01T00:00:00Z");
        v["metadata"]["annotations"] = annotations;
        v["status"] = json!({
            "phase": "Running",
            "pass": {"number": 1, "generation": 1, "date": "2024-06-01", "phase": "Running",
                     "groups": [{"group": "G", "groupKey": "S_G", "jobDefinition": "arn:def:1", "definitionOwned": true,
                                 "jobs": [{"name": "tester_S_G", "fileSetName": "S_G", "arraySize": size, "id": id, "state": "RUNNING"}]}]},
        });
    })
}

#[tokio::test]
async fn a_new_series_gets_the_finalizer_first() {
    let Setup {
        ctx,
        mut handle,
        fake,
        root: _root,
        ..
    } = setup("mock-finalizer");
    let series = object(|_| {});
    let task = tokio::spawn(reconcile(Arc::new(series.clone()), ctx));
    let seen = next(&mut handle, |_| {
        let mut value = serde_json::to_value(&series).unwrap();
        with_finalizer(&mut value);
        value
    })
    .await;
    assert_eq!(seen.method, Method::PATCH);
    assert_eq!(seen.path, PATH);
    assert_eq!(seen.content_type, "application/json-patch+json");
    assert_eq!(
        seen.body[1],
        json!({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]})
    );
    assert_eq!(task.await.unwrap().unwrap(), Requeue::await_change());
    assert_eq!(fake.state.lock().unwrap().calls.values().sum::<usize>(), 0);
}

#[tokio::test]
async fn a_finished_pass_makes_no_call_at_all() {
    let Setup {
        ctx,
        mut handle,
        fake,
        root: _root,
        ..
    } = setup("mock-finished");
    let series = object(|v| {
        with_finalizer(v);
        v["status"] = json!({
            "phase": "Complete",
            "observedGeneration": 1,
            "pass": {"number": 1, "generation": 1, "date": "2024-06-01", "phase": "Complete"},
        });
    });
    let requeue = tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(series), ctx))
        .await
        .expect("no request is waited for")
        .unwrap();
    assert_eq!(requeue, Requeue::await_change());
    let extra = tokio::time::timeout(Duration::from_millis(300), handle.next_request()).await;
    assert!(!matches!(extra, Ok(Some(_))), "no Kubernetes request");
    assert_eq!(
        fake.state.lock().unwrap().calls.values().sum::<usize>(),
        0,
        "no AWS call"
    );
}

#[tokio::test]
async fn an_invalid_spec_fails_the_pass_with_a_condition_and_an_event() {
    let Setup {
        ctx,
        mut handle,
        fake,
        root: _root,
        ..
    } = setup("mock-invalid");
    let series = object(|v| {
        with_finalizer(v);
        v["spec"]["context"]["workingLocation"] = json!("/data/local");
    });
    let task = tokio::spawn(reconcile(Arc::new(series.clone()), ctx));

    let read = next(&mut handle, |_| serde_json::to_value(&series).unwrap()).await;
    assert_eq!(
        (read.method.clone(), read.path.as_str()),
        (Method::GET, format!("{PATH}/status").as_str())
    );
    let planning = next(&mut handle, |s| with_status(&series, s)).await;
    assert_eq!(
        (planning.method.clone(), planning.path.as_str()),
        (Method::PATCH, format!("{PATH}/status").as_str())
    );
    assert_eq!(planning.content_type, "application/apply-patch+yaml");
    assert!(
        planning.query.contains("fieldManager=simseries") && planning.query.contains("force=true"),
        "{}",
        planning.query
    );
    assert_eq!(planning.body["status"]["phase"], "Planning");
    assert_eq!(planning.body["kind"], "SimulationSeries");

    let started = next(&mut handle, |s| s.body.clone()).await;
    assert_eq!(
        (started.method.clone(), started.path.as_str()),
        (Method::POST, EVENTS)
    );
    assert_eq!(started.body["reason"], "PassStarted");
    assert_eq!(started.body["regarding"]["name"], "test");
    assert_eq!(started.body["reportingController"], "simseries");

    let failed = next(&mut handle, |s| with_status(&series, s)).await;
    assert_eq!(failed.path, format!("{PATH}/status"));
    assert_eq!(failed.body["status"]["phase"], "Failed");
    let stalled = condition(&failed.body, "Stalled");
    assert_eq!(stalled["status"], "True");
    assert_eq!(stalled["reason"], "InvalidSpec");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap()
            .contains("spec.context.workingLocation: /data/local is not an s3:// location")
    );

    let warning = next(&mut handle, |s| s.body.clone()).await;
    assert_eq!(warning.path, EVENTS);
    assert_eq!(
        (
            warning.body["type"].as_str(),
            warning.body["reason"].as_str()
        ),
        (Some("Warning"), Some("InvalidSpec"))
    );

    assert_eq!(task.await.unwrap().unwrap(), Requeue::await_change());
    assert_eq!(fake.state.lock().unwrap().calls.values().sum::<usize>(), 0);
}

#[tokio::test]
async fn a_valid_series_writes_intent_then_submits_and_requeues_at_the_retry_delay() {
    let Setup {
        ctx,
        mut handle,
        fake,
        root,
    } = setup("mock-run");
    let series = object(with_finalizer);
    let task = tokio::spawn(reconcile(Arc::new(series.clone()), ctx));
    let mut submits_when_recorded = Vec::new();
    let stored = serde_json::to_value(&series).unwrap();
    let (seen, _) = serve(&mut handle, &task, stored, |seen| {
        if seen.method == Method::PATCH {
            // Every job with an ID in a status was submitted before; every job submitted had
            // its intent recorded before.
            let recorded = seen.body["status"]["pass"]["groups"]
                .as_array()
                .map_or(0, |g| {
                    g.iter()
                        .flat_map(|g| g["jobs"].as_array().unwrap().iter())
                        .filter(|j| j.get("id").is_some())
                        .count()
                });
            submits_when_recorded.push((recorded, fake.calls("SubmitJob")));
        }
    })
    .await;
    assert_eq!(
        (seen[0].method.clone(), seen[0].path.as_str()),
        (Method::GET, format!("{PATH}/status").as_str()),
        "the status is read before the first write"
    );
    let mut phases = phases(&seen);
    let reasons = reasons(&seen);
    let requeue = task.await.unwrap().unwrap();
    // The first poll is due retryDelay (60 s) after submission: requeued then, not sooner.
    let debug = format!("{requeue:?}");
    assert!(
        debug.contains("requeue_after: Some(59.") || debug.contains("requeue_after: Some(60"),
        "{debug}"
    );
    phases.dedup();
    assert_eq!(phases, ["Planning", "Submitting", "Running"]);
    assert_eq!(reasons, ["PassStarted", "Planned", "Submitted"]);
    assert_eq!(fake.calls("SubmitJob"), 2, "one array job per group");
    for (recorded, submitted) in &submits_when_recorded {
        assert!(
            recorded <= submitted,
            "an ID was recorded before its job was submitted"
        );
    }
    assert!(
        root.join("bucket/work/S").exists(),
        "inputs were written to the working location"
    );
}

/// The informer's cache can lag behind the controller's own status writes. A reconcile from
/// such a stale object reads the status first and goes on from there: it submits nothing again.
#[tokio::test]
async fn a_reconcile_from_a_stale_cache_goes_on_from_the_stored_status() {
    let Setup {
        ctx,
        mut handle,
        fake,
        root: _root,
        ..
    } = setup("mock-stale");
    let series = object(with_finalizer);
    let first = tokio::spawn(reconcile(Arc::new(series.clone()), ctx.clone()));
    let stored = serde_json::to_value(&series).unwrap();
    let (_, stored) = serve(&mut handle, &first, stored, |_| {}).await;
    first.await.unwrap().unwrap();
    assert_eq!(stored["status"]["phase"], "Running");
    let calls = fake.state.lock().unwrap().calls.clone();
    assert_eq!(calls["SubmitJob"], 2);

    // The cache has seen none of those writes: the object still has no status.
    let again = tokio::spawn(reconcile(Arc::new(series.clone()), ctx));
    let (seen, stored_after) = serve(&mut handle, &again, stored.clone(), |_| {}).await;
    let requeue = again.await.unwrap().unwrap();
    assert_eq!(
        fake.state.lock().unwrap().calls,
        calls,
        "no AWS call: the first poll is not due"
    );
    assert_eq!(
        (seen[0].method.clone(), seen[0].path.as_str()),
        (Method::GET, format!("{PATH}/status").as_str())
    );
    assert_eq!(seen.len(), 1, "nothing written: {:?}", reasons(&seen));
    assert_eq!(stored_after, stored);
    let debug = format!("{requeue:?}");
    assert!(debug.contains("requeue_after: Some(5"), "{debug}");
}

#[tokio::test]
async fn deleting_a_series_terminates_its_jobs_and_removes_the_finalizer() {
    for keep in [false, true] {
        let Setup {
            ctx,
            mut handle,
            fake,
            root: _root,
            ..
        } = setup("mock-delete");
        // A pass in flight: job-1 runs on the fake.
        let annotations = if keep {
            json!({"simseries.io/on-delete": "keep-jobs"})
        } else {
            json!({})
        };
        let series = deleted_while_running(&fake, 2, annotations).await;
        let task = tokio::spawn(reconcile(Arc::new(series.clone()), ctx));
        let event = next(&mut handle, |s| s.body.clone()).await;
        assert_eq!(event.path, EVENTS);
        assert_eq!(event.body["reason"], "CleanedUp");
        let note = event.body["note"].as_str().unwrap().to_string();
        let removal = next(&mut handle, |_| serde_json::to_value(&series).unwrap()).await;
        assert_eq!(
            (removal.method.clone(), removal.path.as_str()),
            (Method::PATCH, PATH)
        );
        assert_eq!(removal.body[1]["op"], "remove");
        assert_eq!(removal.body[1]["path"], "/metadata/finalizers/0");
        assert_eq!(task.await.unwrap().unwrap(), Requeue::await_change());
        assert_eq!(fake.calls("DeregisterJobDefinition"), 1);
        if keep {
            assert_eq!(fake.calls("TerminateJob"), 0);
            assert!(note.contains("1 running job(s) kept"), "{note}");
        } else {
            assert_eq!(fake.calls("TerminateJob"), 1);
            assert!(
                note.contains("1 job(s) terminated, 1 job definition(s) deregistered"),
                "{note}"
            );
        }
    }
}

#[tokio::test]
async fn a_failing_cleanup_keeps_the_finalizer_and_is_reported() {
    let Setup {
        ctx,
        mut handle,
        fake,
        root: _root,
        ..
    } = setup("mock-cleanup-fails");
    fake.state.lock().unwrap().fail_terminates = true;
    let series = deleted_while_running(&fake, 1, json!({})).await;
    let task = tokio::spawn(reconcile(Arc::new(series.clone()), ctx.clone()));
    // No finalizer removal: a Warning event and the error on the Reconciling condition.
    let event = next(&mut handle, |s| s.body.clone()).await;
    assert_eq!(event.path, EVENTS);
    assert_eq!(
        (event.body["type"].as_str(), event.body["reason"].as_str()),
        (Some("Warning"), Some("CleanupFailed"))
    );
    assert!(
        event.body["note"]
            .as_str()
            .unwrap()
            .contains("terminating jobs"),
        "{}",
        event.body
    );
    let status = next(&mut handle, |s| with_status(&series, s)).await;
    assert_eq!(status.path, format!("{PATH}/status"));
    let reconciling = condition(&status.body, "Reconciling");
    assert_eq!(reconciling["reason"], "CleanupFailed");
    assert!(
        reconciling["message"]
            .as_str()
            .unwrap()
            .starts_with("retrying after: cleanup of AWS resources failed")
    );
    let error = task.await.unwrap().unwrap_err();
    assert_eq!(error.reason(), "CleanupFailed");
    let extra = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    assert!(!matches!(extra, Ok(Some(_))), "the finalizer stays");
    assert_eq!(
        error_policy(Arc::new(series), &error, ctx),
        Requeue::requeue(Duration::from_secs(5))
    );
}

#[tokio::test]
async fn errors_back_off_exponentially() {
    let Setup {
        ctx, root: _root, ..
    } = setup("mock-backoff");
    let series = Arc::new(object(|_| {}));
    let error = simseries::controller::reconciler::Error::Cleanup("x".into());
    let waits: Vec<Requeue> = (0..8)
        .map(|_| error_policy(series.clone(), &error, ctx.clone()))
        .collect();
    let expected: Vec<Requeue> = [5, 10, 20, 40, 80, 160, 300, 300]
        .iter()
        .map(|s| Requeue::requeue(Duration::from_secs(*s)))
        .collect();
    assert_eq!(waits, expected);
    assert!(
        ctx.metrics
            .encode()
            .contains("simseries_reconcile_errors_total{reason=\"CleanupFailed\"} 8")
    );
}
