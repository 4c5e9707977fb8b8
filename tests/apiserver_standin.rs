//! The stand-in API server (crates/kube-standin) against the real kubectl and kube-rs, with
//! simseries' own CRD: the flows the end-to-end tests rely on.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::SignedDuration;
use kube::Resource;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube_standin::{self as apiserver, StandIn};
use serde_json::{Value, json};
use simseries::model::spec::SimulationSeries;

const CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/simulationseries.yaml");
const QUICKSTART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/quickstart/series.yaml"
);
const PATH: &str = "/apis/simseries.io/v1alpha1/namespaces/default/simulationseries/quickstart";

fn text(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs kubectl, requires success, returns its standard output.
fn kubectl(server: &StandIn, args: &[&str]) -> String {
    let output = server.kubectl(args);
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        text(&output)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A server with the SimulationSeries CRD installed by `kubectl apply` and discoverable.
async fn with_crd() -> StandIn {
    let server = apiserver::start().await;
    let applied = kubectl(&server, &["apply", "-f", CRD]);
    assert!(
        applied.contains(
            "customresourcedefinition.apiextensions.k8s.io/simulationseries.simseries.io created"
        ),
        "{applied}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = kubectl(&server, &["api-resources", "--api-group=simseries.io"]);
        let row = listed.lines().find(|l| l.starts_with("simulationseries "));
        if let Some(row) = row {
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(
                cells,
                [
                    "simulationseries",
                    "simser",
                    "simseries.io/v1alpha1",
                    "true",
                    "SimulationSeries"
                ]
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "api-resources never listed simulationseries:\n{listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server
}

fn apply_quickstart(server: &StandIn) -> String {
    kubectl(server, &["apply", "-f", QUICKSTART])
}

fn quickstart_with(replace: &str, with: &str) -> String {
    let yaml = std::fs::read_to_string(QUICKSTART).unwrap();
    assert!(yaml.contains(replace));
    yaml.replace(replace, with)
}

fn status(progress: &str) -> Value {
    json!({
        "apiVersion": "simseries.io/v1alpha1",
        "kind": "SimulationSeries",
        "status": {
            "phase": "Complete",
            "progress": progress,
            "passProgress": "6/6",
            "inputs": {"total": 6, "done": 6, "failed": 1, "running": 0},
            "activeJobs": 0,
            "attempts": 2,
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "PassComplete",
                "message": "done",
                "lastTransitionTime": "2024-01-01T00:00:00Z"
            }]
        }
    })
}

async fn write_status(api: &Api<SimulationSeries>, progress: &str) -> SimulationSeries {
    api.patch_status(
        "quickstart",
        &PatchParams::apply("simseries").force(),
        &Patch::Apply(status(progress)),
    )
    .await
    .expect("server-side apply of the status")
}

fn generation(server: &StandIn) -> i64 {
    server.object(PATH).expect("the series exists")["metadata"]["generation"]
        .as_i64()
        .unwrap()
}

fn api_status(error: kube::Error) -> Box<kube::core::Status> {
    match error {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_and_kube_rs_share_a_series() {
    let server = with_crd().await;
    // Discovery lists the CRD's resource with its status subresource.
    let discovery: Value = serde_json::from_str(&kubectl(
        &server,
        &["get", "--raw", "/apis/simseries.io/v1alpha1"],
    ))
    .unwrap();
    let resources: Vec<&str> = discovery["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(resources, ["simulationseries", "simulationseries/status"]);
    assert_eq!(discovery["resources"][0]["shortNames"], json!(["simser"]));
    let version = kubectl(&server, &["version", "-o", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&version).unwrap()["serverVersion"]["minor"],
        json!("32")
    );

    let applied = apply_quickstart(&server);
    assert_eq!(
        applied.trim(),
        "simulationseries.simseries.io/quickstart created"
    );
    assert_eq!(generation(&server), 1);
    let stored = server.object(PATH).unwrap();
    // CRD defaults were applied on create.
    assert_eq!(stored["spec"]["parameters"]["cleanJobs"], json!(true));
    assert_eq!(stored["spec"]["series"]["inits"], json!([]));
    assert!(
        stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    let listed = kubectl(&server, &["get", "simulationseries"]);
    let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "PHASE", "RUNS", "PASS", "FAILED", "ATTEMPTS", "AGE"],
        "{listed}"
    );
    assert!(
        listed.lines().nth(1).unwrap().starts_with("quickstart "),
        "{listed}"
    );

    // `kubectl wait` started before the condition exists sees it arrive through its watch.
    let mut wait = server
        .kubectl_command(&[
            "wait",
            "--for=condition=Ready",
            "simulationseries/quickstart",
            "--timeout=30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        wait.try_wait().unwrap().is_none(),
        "kubectl wait returned before the condition existed"
    );

    let client = server.client().await;
    let api: Api<SimulationSeries> = Api::default_namespaced(client);
    let written = write_status(&api, "3/6").await;
    assert_eq!(
        written.status.as_ref().unwrap().progress.as_deref(),
        Some("3/6")
    );
    let waited = tokio::task::spawn_blocking(move || wait.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(waited.status.success(), "{}", text(&waited));
    assert!(
        String::from_utf8_lossy(&waited.stdout).contains("condition met"),
        "{}",
        text(&waited)
    );
    assert!(
        server.requests().iter().any(|(m, p)| m == "PATCH"
            && p.starts_with(&format!("{PATH}/status?"))
            && p.contains("fieldManager=simseries")
            && p.contains("force=true")),
        "{:?}",
        server.requests()
    );
    // The status write did not touch the generation.
    assert_eq!(generation(&server), 1);

    let listed = kubectl(&server, &["get", "simser"]);
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..6],
        ["quickstart", "Complete", "3/6", "6/6", "1", "2"],
        "{listed}"
    );
    assert!(row[6].ends_with('s'), "age column: {listed}");

    // Already met: returns at once.
    kubectl(
        &server,
        &[
            "wait",
            "--for=condition=Ready",
            "simulationseries/quickstart",
            "--timeout=30s",
        ],
    );

    // A second client-side apply with a changed spec is a merge patch: generation 2.
    let changed = quickstart_with("retries: 20", "retries: 21");
    let output = server.kubectl_with_stdin(&["apply", "-f", "-"], &changed);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "simulationseries.simseries.io/quickstart configured"
    );
    assert_eq!(generation(&server), 2);
    let stored = server.object(PATH).unwrap();
    assert_eq!(stored["spec"]["parameters"]["retries"], json!(21));
    assert_eq!(
        stored["status"]["phase"],
        json!("Complete"),
        "a spec change keeps the status"
    );

    // Applying the same again changes nothing, not even the resourceVersion.
    let rv = stored["metadata"]["resourceVersion"].clone();
    let output = server.kubectl_with_stdin(&["apply", "-f", "-"], &changed);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "simulationseries.simseries.io/quickstart unchanged"
    );
    assert_eq!(
        server.object(PATH).unwrap()["metadata"]["resourceVersion"],
        rv
    );

    write_status(&api, "4/6").await;
    assert_eq!(
        generation(&server),
        2,
        "a status write does not bump the generation"
    );

    let all = kubectl(&server, &["get", "simulationseries", "-A"]);
    let header: Vec<&str> = all.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "PHASE",
            "RUNS",
            "PASS",
            "FAILED",
            "ATTEMPTS",
            "AGE"
        ],
        "{all}"
    );
    let row: Vec<&str> = all.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..7],
        ["default", "quickstart", "Complete", "4/6", "6/6", "1", "2"],
        "{all}"
    );

    let yaml = kubectl(&server, &["get", "simser", "quickstart", "-o", "yaml"]);
    let object: Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(object["metadata"]["generation"], json!(2));
    assert_eq!(object["status"]["progress"], json!("4/6"));
    assert_eq!(object["status"]["conditions"][0]["type"], json!("Ready"));
    let progress = kubectl(
        &server,
        &[
            "get",
            "simser",
            "quickstart",
            "-o",
            "jsonpath={.status.progress}",
        ],
    );
    assert_eq!(progress, "4/6");

    // Server-side apply through kubectl: PATCH with application/apply-patch+yaml.
    let changed = quickstart_with("retries: 20", "retries: 22");
    let output = server.kubectl_with_stdin(&["apply", "--server-side", "-f", "-"], &changed);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "simulationseries.simseries.io/quickstart serverside-applied"
    );
    assert_eq!(generation(&server), 3);
    assert_eq!(
        server.object(PATH).unwrap()["spec"]["parameters"]["retries"],
        json!(22)
    );

    // kube-rs reads back what kubectl wrote.
    let series = api.get("quickstart").await.unwrap();
    assert_eq!(series.spec.parameters.retries, 22);
    assert_eq!(series.metadata.generation, Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_apply_creates_and_status_stays_on_its_subresource() {
    let server = with_crd().await;
    let api: Api<SimulationSeries> = Api::default_namespaced(server.client().await);
    // The status of a missing object cannot be applied.
    let missing = api
        .patch_status(
            "quickstart",
            &PatchParams::apply("simseries").force(),
            &Patch::Apply(status("1/6")),
        )
        .await;
    assert_eq!(api_status(missing.unwrap_err()).code, 404);

    // Applying the main resource creates it, without the status it carries.
    let mut series: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(QUICKSTART).unwrap()).unwrap();
    series["status"] = status("9/9")["status"].clone();
    let created = api
        .patch(
            "quickstart",
            &PatchParams::apply("simseries-test"),
            &Patch::Apply(&series),
        )
        .await
        .unwrap();
    assert!(created.status.is_none());
    assert_eq!(created.metadata.generation, Some(1));

    write_status(&api, "2/6").await;
    // Status sent to the main resource is ignored there.
    let patched = api
        .patch(
            "quickstart",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"progress": "0/0"}, "metadata": {"labels": {"a": "b"}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().progress.as_deref(), Some("2/6"));
    assert_eq!(patched.metadata.labels.unwrap()["a"], "b");
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "labels are metadata: no new generation"
    );

    // Only status changes through the subresource.
    let patched = api
        .patch_status(
            "quickstart",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"parameters": {"retries": 1}}, "status": {"attempts": 5}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.parameters.retries, 20);
    assert_eq!(patched.status.unwrap().attempts, 5);

    // Strategic merge patches are refused for custom resources, as by the real server.
    let output = server.kubectl(&[
        "patch",
        "simser",
        "quickstart",
        "-p",
        r#"{"metadata":{"labels":{"c":"d"}}}"#,
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("the body of the request was in an unknown format"),
        "{}",
        text(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fields_a_manager_stops_applying_are_removed() {
    let server = with_crd().await;
    apply_quickstart(&server);
    let api: Api<SimulationSeries> = Api::default_namespaced(server.client().await);
    let apply = |status: Value| {
        let api = api.clone();
        async move {
            api.patch_status(
                "quickstart",
                &PatchParams::apply("simseries").force(),
                &Patch::Apply(json!({"apiVersion": "simseries.io/v1alpha1", "kind": "SimulationSeries", "status": status})),
            )
            .await
            .unwrap()
        }
    };
    apply(json!({"phase": "Running", "attempts": 2, "pass": {"number": 1, "generation": 1, "date": "2024-01-01", "phase": "Running", "lastError": "Throttled: x", "consecutiveErrors": 2}})).await;
    // The next apply leaves out lastError and consecutiveErrors: they are gone, the rest stays.
    let after = apply(json!({"phase": "Running", "attempts": 3, "pass": {"number": 1, "generation": 1, "date": "2024-01-01", "phase": "Running"}})).await;
    let pass = after.status.unwrap().pass.unwrap();
    assert_eq!(pass.last_error, None);
    assert_eq!(pass.consecutive_errors, 0);
    let stored = server
        .object("/apis/simseries.io/v1alpha1/namespaces/default/simulationseries/quickstart")
        .unwrap();
    assert!(
        stored["status"]["pass"].get("lastError").is_none(),
        "{}",
        stored["status"]
    );
    assert_eq!(stored["status"]["attempts"], 3);
    // Another manager's fields are not this manager's to remove.
    let merged = api
        .patch_status(
            "quickstart",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"progress": "1/2"}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.status.unwrap().progress.as_deref(), Some("1/2"));
    let again = apply(json!({"phase": "Complete", "attempts": 3})).await;
    assert_eq!(
        again.status.as_ref().unwrap().progress.as_deref(),
        Some("1/2")
    );
    assert!(
        again.status.unwrap().pass.is_none(),
        "pass was applied before and is not now"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_patch_tests_a_missing_field_as_null() {
    // kube-rs's finalizer helper adds the first finalizer with [test null, add].
    let server = with_crd().await;
    apply_quickstart(&server);
    let api: Api<SimulationSeries> = Api::default_namespaced(server.client().await);
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["simseries.io/cleanup"]},
    ]))
    .unwrap();
    let patched = api
        .patch(
            "quickstart",
            &PatchParams::default(),
            &Patch::Json::<()>(patch.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.finalizers.unwrap(),
        ["simseries.io/cleanup"]
    );
    // Now the field exists: the same test fails, as on the real server.
    let error = api
        .patch(
            "quickstart",
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(error).code, 422);
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_see_changes_bookmarks_resumes_and_expiry() {
    let server = with_crd().await;
    let client = server.client().await;
    let all: Api<SimulationSeries> = Api::all(client.clone());

    // kube-rs' watcher (list, then watch with bookmarks) across all namespaces.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let watching = tokio::spawn(
        watcher(all.clone(), watcher::Config::default()).try_for_each(move |event| {
            let seen_tx = seen_tx.clone();
            async move {
                let _ = seen_tx.send(match event {
                    watcher::Event::Apply(s) | watcher::Event::InitApply(s) => {
                        format!("apply {}", s.metadata.name.unwrap())
                    }
                    watcher::Event::Delete(s) => format!("delete {}", s.metadata.name.unwrap()),
                    watcher::Event::Init => "init".into(),
                    watcher::Event::InitDone => "init-done".into(),
                });
                Ok(())
            }
        }),
    );
    // A raw watch from "now", with bookmarks.
    let mut raw = all
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .unwrap()
        .boxed();

    assert_eq!(seen.recv().await.unwrap(), "init");
    assert_eq!(seen.recv().await.unwrap(), "init-done");

    apply_quickstart(&server);
    let api: Api<SimulationSeries> = Api::default_namespaced(client.clone());
    write_status(&api, "1/6").await;
    kubectl(&server, &["delete", "simser", "quickstart"]);

    let mut events = Vec::new();
    while events.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .expect("watcher events")
            .unwrap()
        {
            e if e.starts_with("init") => {}
            e => events.push(e),
        }
    }
    assert_eq!(
        events,
        ["apply quickstart", "apply quickstart", "delete quickstart"]
    );
    watching.abort();

    let mut kinds = Vec::new();
    let mut rvs = Vec::new();
    while !kinds.contains(&"DELETED") || !kinds.contains(&"BOOKMARK") {
        let event = tokio::time::timeout(Duration::from_secs(10), raw.next())
            .await
            .expect("raw watch events")
            .unwrap()
            .unwrap();
        kinds.push(match event {
            WatchEvent::Added(s) => {
                rvs.push(s.metadata.resource_version.unwrap());
                "ADDED"
            }
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(b) => {
                assert!(b.metadata.resource_version.parse::<u64>().is_ok());
                "BOOKMARK"
            }
            WatchEvent::Error(e) => panic!("{e:?}"),
        });
    }
    let changes: Vec<&str> = kinds.iter().copied().filter(|k| *k != "BOOKMARK").collect();
    assert_eq!(changes, ["ADDED", "MODIFIED", "DELETED"]);

    // A bookmark follows the initial replay at once (well before the periodic ones); with
    // `sendInitialEvents` it is marked as the end of the initial events.
    apply_quickstart(&server);
    for params in [
        WatchParams::default(),
        WatchParams::default().initial_events(),
    ] {
        let mut stream = all.watch(&params, "0").await.unwrap().boxed();
        let first = stream.next().await.unwrap().unwrap();
        assert!(matches!(first, WatchEvent::Added(_)), "{first:?}");
        let second = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
        match second
            .expect("a bookmark right after the replay")
            .unwrap()
            .unwrap()
        {
            WatchEvent::Bookmark(b) => assert_eq!(
                b.metadata
                    .annotations
                    .contains_key("k8s.io/initial-events-end"),
                params.send_initial_events
            ),
            other => panic!("{other:?}"),
        }
    }
    kubectl(&server, &["delete", "simser", "quickstart"]);

    // Resuming after the ADDED event replays what followed it.
    let mut resumed = all
        .watch(&WatchParams::default().timeout(5), &rvs[0])
        .await
        .unwrap()
        .boxed();
    let first = resumed.next().await.unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Modified(_)), "{first:?}");
    assert!(matches!(
        resumed.next().await.unwrap().unwrap(),
        WatchEvent::Deleted(_)
    ));

    // After a compaction the same resume is refused with 410 Expired.
    server.compact();
    let mut expired = all
        .watch(&WatchParams::default().timeout(5), &rvs[0])
        .await
        .unwrap()
        .boxed();
    match expired.next().await.unwrap().unwrap() {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected 410, got {other:?}"),
    }

    // A namespaced watch with a field selector only sees its object; `timeoutSeconds` ends it.
    apply_quickstart(&server);
    let other = quickstart_with("name: quickstart", "name: other");
    server.kubectl_with_stdin(&["apply", "-f", "-"], &other);
    let params = WatchParams::default()
        .fields("metadata.name=other")
        .timeout(1);
    let events: Vec<_> = api
        .watch(&params, "0")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let names: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(s) => s.metadata.name.clone(),
            WatchEvent::Bookmark(_) => None,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["other"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_select_page_stream_and_print_tables() {
    let server = with_crd().await;
    let client = server.client().await;
    let api: Api<SimulationSeries> = Api::default_namespaced(client.clone());
    let template: SimulationSeries =
        serde_yaml_ng::from_str(&std::fs::read_to_string(QUICKSTART).unwrap()).unwrap();
    for (name, tier) in [("a", Some("gold")), ("b", Some("silver")), ("c", None)] {
        let mut series = template.clone();
        series.metadata.name = Some(name.into());
        series.metadata.labels = tier.map(|t| [("tier".to_string(), t.to_string())].into());
        api.create(&PostParams::default(), &series).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<SimulationSeries>| -> Vec<String> {
        list.items
            .into_iter()
            .map(|s| s.metadata.name.unwrap())
            .collect()
    };
    for (selector, expected) in [
        ("tier", vec!["a", "b"]),
        ("tier in (gold)", vec!["a"]),
        ("!tier", vec!["c"]),
        ("tier!=gold", vec!["b", "c"]),
        ("tier=gold,tier notin (silver)", vec!["a"]),
    ] {
        let listed = api
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        assert_eq!(names(listed), expected, "{selector}");
    }
    let listed = api
        .list(&ListParams::default().fields("metadata.name!=a"))
        .await
        .unwrap();
    assert_eq!(names(listed), ["b", "c"]);

    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.clone().expect("a continue token");
    assert_eq!(first.metadata.remaining_item_count, Some(1));
    assert_eq!(names(first), ["a", "b"]);
    let rest = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert!(rest.metadata.continue_.is_none());
    assert_eq!(names(rest), ["c"]);
    // Pages of a selection: as the API server, no remaining count with a selector.
    let first = api
        .list(&ListParams::default().labels("tier").limit(1))
        .await
        .unwrap();
    let token = first.metadata.continue_.clone().expect("a continue token");
    assert_eq!(first.metadata.remaining_item_count, None);
    assert_eq!(names(first), ["a"]);
    let rest = api
        .list(
            &ListParams::default()
                .labels("tier")
                .limit(1)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert!(rest.metadata.continue_.is_none(), "c does not match");
    assert_eq!(names(rest), ["b"]);

    // Streaming lists (sendInitialEvents) and metadata-only watches.
    let mut streamed = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    loop {
        match streamed.try_next().await.unwrap().unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(s) => initial.push(s.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(initial, ["a", "b", "c"]);
    assert!(
        server
            .requests()
            .iter()
            .any(|(_, p)| p.contains("sendInitialEvents=true"))
    );
    let metadata_api: Api<PartialObjectMeta<SimulationSeries>> =
        Api::default_namespaced(client.clone());
    let mut metadata = watcher(metadata_api, watcher::Config::default()).boxed();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        if let watcher::Event::InitApply(m) = metadata.try_next().await.unwrap().unwrap() {
            assert_eq!(m.types.unwrap().kind, "PartialObjectMetadata");
            seen.push(m.metadata.name.unwrap());
        }
    }
    assert_eq!(seen, ["a", "b", "c"]);

    // The Table kubectl gets: Name plus the printer columns, typed cells, null when missing.
    api.patch_status(
        "a",
        &PatchParams::apply("simseries").force(),
        &Patch::Apply(status("3/6")),
    )
    .await
    .unwrap();
    let request =
        http::Request::get("/apis/simseries.io/v1alpha1/namespaces/default/simulationseries")
            .header(
                "Accept",
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            )
            .body(Vec::new())
            .unwrap();
    let table: Value = serde_json::from_str(&client.request_text(request).await.unwrap()).unwrap();
    assert_eq!(table["kind"], json!("Table"));
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Name", "Phase", "Runs", "Pass", "Failed", "Attempts", "Active", "vCPU-h", "Age"
        ]
    );
    let priorities: Vec<i64> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["priority"].as_i64().unwrap())
        .collect();
    assert_eq!(
        priorities,
        [0, 0, 0, 0, 0, 0, 1, 1, 0],
        "Active and vCPU-h only with -o wide"
    );
    let cells = &table["rows"][0]["cells"];
    assert_eq!(
        cells.as_array().unwrap()[..7],
        [
            json!("a"),
            json!("Complete"),
            json!("3/6"),
            json!("6/6"),
            json!(1),
            json!(2),
            json!(0)
        ]
    );
    assert_eq!(table["rows"][1]["cells"][1], Value::Null);
    assert_eq!(
        table["rows"][0]["object"]["kind"],
        json!("PartialObjectMetadata")
    );
    assert!(table["metadata"]["resourceVersion"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_reads_the_crd_schema() {
    let server = with_crd().await;
    let spec = kubectl(&server, &["explain", "simulationseries.spec"]);
    let header: Vec<&str> = spec.lines().take(3).collect();
    assert_eq!(
        header,
        [
            "GROUP:      simseries.io",
            "KIND:       SimulationSeries",
            "VERSION:    v1alpha1"
        ],
        "{spec}"
    );
    assert!(
        spec.contains("A parameter sweep of a containerized simulation model"),
        "{spec}"
    );
    for field in [
        "context\t<Object> -required-",
        "parameters\t<Object> -required-",
        "series\t<Object> -required-",
    ] {
        assert!(spec.contains(field), "{field} in {spec}");
    }
    let context = kubectl(&server, &["explain", "simser.spec.context"]);
    assert!(
        context.contains("workingLocation\t<string> -required-"),
        "{context}"
    );
    assert!(
        context.contains("Root of the working location"),
        "{context}"
    );
    let conditions = kubectl(
        &server,
        &["explain", "simulationseries.spec.series.conditions"],
    );
    assert!(
        conditions.contains("FIELD: conditions <[]Object>"),
        "{conditions}"
    );
    assert!(
        conditions.contains("Unique key of the condition"),
        "{conditions}"
    );
    let recursive = kubectl(
        &server,
        &["explain", "simulationseries.spec", "--recursive"],
    );
    assert!(recursive.contains("workingLocation"), "{recursive}");
    let metadata = kubectl(
        &server,
        &["explain", "simulationseries.metadata.finalizers"],
    );
    assert!(
        metadata.contains("Must be empty before the object is deleted"),
        "{metadata}"
    );
    // Built-ins are explained from their upstream schemas.
    let lease = kubectl(&server, &["explain", "lease.spec.holderIdentity"]);
    assert!(
        lease.contains("holderIdentity contains the identity of the holder"),
        "{lease}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn recorder_events_show_in_describe() {
    let server = with_crd().await;
    apply_quickstart(&server);
    let client = server.client().await;
    let api: Api<SimulationSeries> = Api::default_namespaced(client.clone());
    let series = api.get("quickstart").await.unwrap();
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "simseries".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "PassStarted".into(),
        note: Some("pass 1 started".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = series.object_ref(&());
    recorder.publish(&event, &reference).await.unwrap();
    // The same event again is a merge patch that counts it in a series.
    recorder.publish(&event, &reference).await.unwrap();

    let stored = server.events();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["series"]["count"], json!(2));
    assert_eq!(
        stored[0]["regarding"]["uid"],
        json!(series.metadata.uid.unwrap())
    );

    let described = kubectl(&server, &["describe", "simser", "quickstart"]);
    let events = described
        .split("Events:")
        .nth(1)
        .unwrap_or_else(|| panic!("{described}"));
    let row = events
        .lines()
        .find(|l| l.contains("PassStarted"))
        .unwrap_or_else(|| panic!("{described}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[0], "Normal", "{row}");
    assert!(
        row.contains("simseries") && row.ends_with("pass 1 started"),
        "{row}"
    );
    assert!(
        server.requests().iter().any(|(m, p)| m == "GET"
            && p.starts_with("/api/v1/namespaces/default/events?")
            && p.contains("involvedObject.name%3Dquickstart")),
        "{:?}",
        server.requests()
    );

    let listed = kubectl(&server, &["get", "events"]);
    let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{listed}"
    );
    assert!(listed.contains("simulationseries/quickstart"), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn finalizers_hold_deletion_until_removed() {
    let server = with_crd().await;
    apply_quickstart(&server);
    let api: Api<SimulationSeries> = Api::default_namespaced(server.client().await);

    let patch = r#"[{"op":"add","path":"/metadata/finalizers","value":["simseries.io/cleanup"]}]"#;
    kubectl(
        &server,
        &["patch", "simser", "quickstart", "--type=json", "-p", patch],
    );
    assert_eq!(
        server.object(PATH).unwrap()["metadata"]["finalizers"],
        json!(["simseries.io/cleanup"])
    );
    assert_eq!(generation(&server), 1, "finalizers are metadata");

    let deleted = kubectl(&server, &["delete", "simser", "quickstart", "--wait=false"]);
    assert_eq!(
        deleted.trim(),
        "simulationseries.simseries.io \"quickstart\" deleted"
    );
    let marked = server.object(PATH).expect("held by its finalizer");
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], json!(0));
    assert_eq!(
        generation(&server),
        2,
        "marking for deletion bumps the generation"
    );

    // A waiting `kubectl delete` returns once the finalizer is gone.
    let mut waiting = server
        .kubectl_command(&["delete", "simser", "quickstart", "--timeout=30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "kubectl delete returned while the finalizer held the object"
    );

    // New finalizers cannot be added to an object being deleted.
    let refused = api
        .patch(
            "quickstart",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["simseries.io/cleanup", "x.io/y"]}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(refused).code, 422);

    let last = api
        .patch(
            "quickstart",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert_eq!(last.metadata.name.as_deref(), Some("quickstart"));
    assert!(server.object(PATH).is_none());
    let waited = tokio::task::spawn_blocking(move || waiting.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(waited.status.success(), "{}", text(&waited));
    let error = api_status(api.get("quickstart").await.unwrap_err());
    assert_eq!((error.code, error.reason.as_str()), (404, "NotFound"));
    assert_eq!(
        error.message,
        "simulationseries.simseries.io \"quickstart\" not found"
    );

    // Without finalizers a plain (waiting) `kubectl delete` returns at once.
    apply_quickstart(&server);
    let started = Instant::now();
    let deleted = kubectl(
        &server,
        &["delete", "simser", "quickstart", "--timeout=20s"],
    );
    assert!(deleted.contains("deleted"), "{deleted}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(server.object(PATH).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_have_optimistic_concurrency() {
    let server = std::sync::Arc::new(apiserver::start().await);
    let leases: Api<Lease> = Api::default_namespaced(server.client().await);
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "simseries-leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let stale = created.clone();
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.metadata.generation, None);

    let error = api_status(
        leases
            .create(&PostParams::default(), &lease)
            .await
            .unwrap_err(),
    );
    assert_eq!((error.code, error.reason.as_str()), (409, "AlreadyExists"));

    let mut renewed = created.clone();
    renewed.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let renewed = leases
        .replace("simseries-leader", &PostParams::default(), &renewed)
        .await
        .unwrap();
    assert_ne!(
        renewed.metadata.resource_version,
        stale.metadata.resource_version
    );

    let error = api_status(
        leases
            .replace("simseries-leader", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((error.code, error.reason.as_str()), (409, "Conflict"));
    assert!(
        error.message.contains("the object has been modified"),
        "{}",
        error.message
    );

    // kubectl from a blocking task works too.
    let blocking = server.clone();
    let listed = tokio::task::spawn_blocking(move || kubectl(&blocking, &["get", "leases"]))
        .await
        .unwrap();
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..2], ["simseries-leader", "b"], "{listed}");

    // Leases (like the other built-ins) answer an immediate delete with a success Status.
    let deleted = leases
        .delete("simseries-leader", &DeleteParams::default())
        .await
        .unwrap();
    assert!(deleted.is_right());
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_crd_or_namespace_deletes_its_content() {
    let server = with_crd().await;
    // kubectl's typed client posts this Namespace as protobuf.
    let created = kubectl(&server, &["create", "namespace", "team"]);
    assert_eq!(created.trim(), "namespace/team created");
    let namespace = server.object("/api/v1/namespaces/team").unwrap();
    assert_eq!(
        namespace["metadata"]["labels"]["kubernetes.io/metadata.name"],
        json!("team")
    );
    assert_eq!(namespace["status"]["phase"], json!("Active"));

    let in_team = quickstart_with("name: quickstart", "name: quickstart\n  namespace: team");
    let output = server.kubectl_with_stdin(&["apply", "-f", "-"], &in_team);
    assert!(output.status.success(), "{}", text(&output));
    apply_quickstart(&server);
    let team_path = "/apis/simseries.io/v1alpha1/namespaces/team/simulationseries/quickstart";
    let patch = r#"{"metadata":{"finalizers":["simseries.io/cleanup"]}}"#;
    kubectl(
        &server,
        &[
            "patch",
            "simser",
            "quickstart",
            "-n",
            "team",
            "--type=merge",
            "-p",
            patch,
        ],
    );

    // The namespace waits for its content, which waits for its finalizer.
    kubectl(&server, &["delete", "namespace", "team", "--wait=false"]);
    let namespace = server
        .object("/api/v1/namespaces/team")
        .expect("held by its content");
    assert_eq!(namespace["status"]["phase"], json!("Terminating"));
    assert!(server.object(team_path).unwrap()["metadata"]["deletionTimestamp"].is_string());
    let refused = server.kubectl_with_stdin(
        &["apply", "-f", "-"],
        &in_team.replace("name: quickstart\n", "name: late\n"),
    );
    assert!(
        text(&refused).contains("is being terminated"),
        "{}",
        text(&refused)
    );

    let api: Api<SimulationSeries> = Api::namespaced(server.client().await, "team");
    let unblock = json!({"metadata": {"finalizers": null}});
    api.patch(
        "quickstart",
        &PatchParams::default(),
        &Patch::Merge(unblock),
    )
    .await
    .unwrap();
    assert!(server.object(team_path).is_none());
    assert!(server.object("/api/v1/namespaces/team").is_none());
    assert!(
        server.object(PATH).is_some(),
        "other namespaces keep their content"
    );

    let refused = server.kubectl(&["delete", "namespace", "default"]);
    assert!(
        !refused.status.success() && text(&refused).contains("Forbidden"),
        "{}",
        text(&refused)
    );

    // A missing namespace is created on the fly (the real server would answer 404).
    let elsewhere: Api<SimulationSeries> = Api::namespaced(server.client().await, "elsewhere");
    let series: SimulationSeries =
        serde_yaml_ng::from_str(&std::fs::read_to_string(QUICKSTART).unwrap()).unwrap();
    elsewhere
        .create(&PostParams::default(), &series)
        .await
        .unwrap();
    assert!(server.object("/api/v1/namespaces/elsewhere").is_some());

    kubectl(&server, &["delete", "-f", CRD, "--timeout=20s"]);
    assert!(server.object(PATH).is_none());
    assert!(
        server
            .object("/apis/simseries.io/v1alpha1/namespaces/elsewhere/simulationseries/quickstart")
            .is_none()
    );
    let listed = kubectl(&server, &["api-resources", "--api-group=simseries.io"]);
    assert!(!listed.contains("simulationseries"), "{listed}");
}

/// On a current-thread runtime kubectl must run on a blocking thread, so the server (on the
/// runtime's only thread) can answer it.
#[tokio::test]
async fn current_thread_runtimes_run_kubectl_via_spawn_blocking() {
    let server = std::sync::Arc::new(apiserver::start().await);
    let blocking = server.clone();
    let listed = tokio::task::spawn_blocking(move || kubectl(&blocking, &["get", "namespaces"]))
        .await
        .unwrap();
    assert!(
        listed.lines().any(|l| l.starts_with("default ")),
        "{listed}"
    );
}

#[test]
fn ages_read_like_kubectl() {
    let age = |s| apiserver::meta::human_duration(SignedDuration::from_secs(s));
    assert_eq!(age(5), "5s");
    assert_eq!(age(119), "119s");
    assert_eq!(age(125), "2m5s");
    assert_eq!(age(600), "10m");
    assert_eq!(age(3 * 3600 + 60), "3h1m");
    assert_eq!(age(30 * 3600), "30h");
    assert_eq!(age(50 * 3600), "2d2h");
    assert_eq!(age(-5), "<invalid>");
}
