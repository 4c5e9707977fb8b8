//! The local container mode with a real engine: the quickstart's toy model as an image
//! (imported by scripts/container-engine.sh, which scripts/test.sh runs and which names the
//! engine and image in SIMSERIES_TEST_ENGINE and SIMSERIES_TEST_IMAGE). Without an engine the
//! tests say why on stderr (and scripts/test.sh says it in the CI log) and do nothing else.
//!
//! One test at a time: each runs containers, and they count the containers left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{edit_file, quickstart, quickstart_dated, quickstart_executions, text};
use serde_json::Value;
use simseries::executor::local::launcher::container_scope;

const DATE: &str = "2024-06-01";
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The engine and the toy model image, or why there are none.
fn engine() -> Option<(String, String)> {
    match (
        std::env::var("SIMSERIES_TEST_ENGINE"),
        std::env::var("SIMSERIES_TEST_IMAGE"),
    ) {
        (Ok(engine), Ok(image)) => Some((engine, image)),
        _ => {
            let why = std::env::var("SIMSERIES_TEST_ENGINE_SKIPPED").unwrap_or_else(|_| {
                "SIMSERIES_TEST_ENGINE is not set (run scripts/test.sh)".into()
            });
            eprintln!("SKIPPED: no container engine: {why}");
            None
        }
    }
}

/// A copy of the quickstart that runs `image`, with edits to its series file and template.
fn series(
    name: &str,
    image: &str,
    series_edits: &[(&str, &str)],
    template_edits: &[(&str, &str)],
) -> common::TestDir {
    let image_line = format!("image: {image}");
    let mut edits = series_edits.to_vec();
    edits.push(("command: [sh, model/toy-model.sh]", image_line.as_str()));
    let dir = quickstart(name, &edits);
    edit_file(&dir.join("template.xml"), template_edits);
    dir
}

fn command(dir: &Path, engine: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_simseries"));
    command
        .args(["run", "-f"])
        .arg(dir.join("series.yaml"))
        .args(["--date", DATE])
        .env("SIMSERIES_CONTAINER_ENGINE", engine)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn dated(dir: &Path) -> PathBuf {
    quickstart_dated(dir, DATE)
}

fn executions(dir: &Path) -> Vec<String> {
    quickstart_executions(dir, DATE)
}

/// Containers of this working folder that still exist, running or not.
fn containers_left(engine: &str, dir: &Path) -> Vec<String> {
    let scope = container_scope(&dir.join("working"));
    let out = Command::new(engine)
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    text(&out.stdout)
        .lines()
        .filter(|name| name.starts_with(&format!("simseries-{scope}-")))
        .map(str::to_string)
        .collect()
}

/// Waits (at most a minute) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: timed out"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Containers removed with `--rm` may take a moment to go.
fn no_containers_left(engine: &str, dir: &Path) {
    let start = Instant::now();
    loop {
        let left = containers_left(engine, dir);
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "containers left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn the_quickstart_runs_in_containers_and_its_model_sees_the_contract() {
    let Some((engine, image)) = engine() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = series(
        "containers-run",
        &image,
        &[],
        &[(" extensions=", " record=\"True\" extensions=")],
    );
    let out = finish(command(&dir, &engine).spawn().unwrap());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("pass 1 complete: every run has its outputs"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(executions(&dir).len(), 12);
    let outputs = std::fs::read_dir(dated(&dir).join("outputs"))
        .unwrap()
        .count();
    assert_eq!(outputs, 24, "two extensions per run");
    // What the model saw in its container: the contract's environment, the dated folder at
    // /mnt, and nothing of simseries' local paths.
    let seen =
        std::fs::read_to_string(dated(&dir).join("seen-QUICKSTART_FAST_GROWTH_0002.txt")).unwrap();
    for line in [
        "SIMULATION_TYPE=LOCAL",
        "FILE_SET_NAME=QUICKSTART",
        "JOB_ARRAY_INDEX=6",
        "--- /mnt/",
        "inputs",
        "outputs",
    ] {
        assert!(
            seen.lines().any(|l| l == line),
            "{line:?} not in what the model saw:\n{seen}"
        );
    }
    assert!(!seen.contains("SIMSERIES_"), "{seen}");
    no_containers_left(&engine, &dir);
}

#[test]
fn a_failing_container_fails_its_run_with_its_exit_code() {
    let Some((engine, image)) = engine() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = series(
        "containers-fail",
        &image,
        &[("fail_seeds: []", "fail_seeds: [1]")],
        &[],
    );
    let out = finish(command(&dir, &engine).spawn().unwrap());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let record: Value =
        serde_json::from_slice(&std::fs::read(dated(&dir).join("simseries/pass-1.json")).unwrap())
            .unwrap();
    let children = record["groups"][0]["jobs"][0]["children"]
        .as_array()
        .unwrap();
    let failed: Vec<&Value> = children
        .iter()
        .filter(|c| c["outcome"]["state"] == "FAILED")
        .collect();
    assert_eq!(failed.len(), 1, "{children:?}");
    assert_eq!(failed[0]["runs"][0], "QUICKSTART_SLOW_GROWTH_0001");
    assert_eq!(failed[0]["outcome"]["exitCode"], 3);
    let log = std::fs::read_to_string(dir.join("working").join(failed[0]["log"].as_str().unwrap()))
        .unwrap();
    assert!(log.contains("told to fail"), "{log}");
    no_containers_left(&engine, &dir);
}

#[test]
fn a_killed_run_restarts_without_starting_an_input_twice_and_leaves_no_container() {
    let Some((engine, image)) = engine() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = series("containers-kill", &image, &[("sleep: 1", "sleep: 4")], &[]);
    let mut first = command(&dir, &engine).spawn().unwrap();
    wait_until("a container started", || !executions(&dir).is_empty());
    first.kill().unwrap(); // SIGKILL: no clean-up of any kind
    let _ = first.wait();
    let second = finish(command(&dir, &engine).spawn().unwrap());
    assert!(second.status.success(), "{}", text(&second.stderr));
    let mut runs = executions(&dir);
    assert_eq!(runs.len(), 12, "each input started once: {runs:?}");
    runs.sort();
    runs.dedup();
    assert_eq!(runs.len(), 12, "no input started twice");
    no_containers_left(&engine, &dir);
}

#[test]
fn ctrl_c_stops_the_containers() {
    let Some((engine, image)) = engine() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = series(
        "containers-interrupt",
        &image,
        &[("sleep: 1", "sleep: 60")],
        &[],
    );
    let child = command(&dir, &engine).spawn().unwrap();
    wait_until("a container started", || {
        !executions(&dir).is_empty() && !containers_left(&engine, &dir).is_empty()
    });
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = finish(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    no_containers_left(&engine, &dir);
}

#[test]
fn a_missing_image_is_named_before_anything_runs() {
    let Some((engine, _image)) = engine() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = series(
        "containers-missing",
        "localhost/simseries-no-such-image:1",
        &[],
        &[],
    );
    let out = finish(command(&dir, &engine).spawn().unwrap());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "spec.parameters.image: localhost/simseries-no-such-image:1 is not among {engine}'s local images"
        )),
        "{stderr}"
    );
    assert!(
        !dir.join("working").join("QUICKSTART").join(DATE).exists(),
        "nothing was written"
    );
}
