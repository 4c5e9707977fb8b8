//! `simseries run` end to end on this machine: the quickstart's toy model as real processes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{edit_file, quickstart, quickstart_dated, quickstart_executions, text};
use serde_json::Value;

const DATE: &str = "2024-06-01";

fn command(dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_simseries"));
    command
        .arg("run")
        .arg("-f")
        .arg(dir.join("series.yaml"))
        .args(["--date", DATE])
        .args(extra)
        .env("SIMSERIES_CONTAINER_ENGINE", "none")
        .stdin(Stdio::null());
    command
}

fn run(dir: &Path, extra: &[&str]) -> Output {
    command(dir, extra).output().unwrap()
}

fn dated(dir: &Path) -> PathBuf {
    quickstart_dated(dir, DATE)
}

fn executions(dir: &Path) -> Vec<String> {
    quickstart_executions(dir, DATE)
}

fn status(dir: &Path) -> Value {
    let path = dir.join("working/QUICKSTART/simseries/status.json");
    serde_json::from_slice::<Value>(&std::fs::read(path).unwrap()).unwrap()["status"].clone()
}

fn condition(status: &Value, kind: &str) -> (String, String) {
    let c = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap();
    (
        c["status"].as_str().unwrap().into(),
        c["reason"].as_str().unwrap().into(),
    )
}

fn outputs(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dated(dir).join("outputs"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn the_quickstart_runs_to_completion_and_then_has_nothing_to_do() {
    let dir = quickstart("quickstart", &[]);
    let out = run(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("TOTAL               12/12 (100.0 %)  12/12 (100.0 %)  12/12 (100.0 %)"),
        "{stdout}"
    );
    assert!(stdout.contains("SLOW_GROWTH  4/4 (100.0 %)"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("pass 1 complete: every run has its outputs"),
        "{stderr}"
    );
    assert!(stderr.contains("logs saved under"), "{stderr}");
    assert_eq!(outputs(&dir).len(), 24, "two extensions per run");
    assert!(outputs(&dir).contains(&"QUICKSTART_NO_GROWTH_0003.STATS.json".to_string()));
    assert_eq!(executions(&dir).len(), 12);
    // The inputs keep the contract's names and the model saw them.
    assert!(dated(&dir).join("inputs/QUICKSTART_11.xml").is_file());
    let record: Value =
        serde_json::from_slice(&std::fs::read(dated(&dir).join("simseries/pass-1.json")).unwrap())
            .unwrap();
    let child = &record["groups"][0]["jobs"][0]["children"][5];
    assert_eq!(child["runs"][0], "QUICKSTART_FAST_GROWTH_0001");
    assert_eq!(child["outcome"]["state"], "SUCCEEDED");
    assert_eq!(
        child["log"],
        format!("QUICKSTART/{DATE}/logs/pass-1/QUICKSTART_5.log")
    );
    // The job scaffolding is cleaned; inputs, outputs, logs and the record stay.
    assert!(!dated(&dir).join("simseries/pass-1/children").exists());
    let s = status(&dir);
    assert_eq!(s["phase"], "Complete");
    assert_eq!(s["progress"], "12/12");
    assert_eq!(
        condition(&s, "Ready"),
        ("True".into(), "PassComplete".into())
    );

    // Again: the pass for this spec has run; nothing is planned or started.
    let out = run(&dir, &[]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("already ran this spec; nothing to do"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(executions(&dir).len(), 12);

    // --rerun starts pass 2, which finds nothing missing and submits nothing.
    let out = run(&dir, &["--rerun"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(executions(&dir).len(), 12);
    let s = status(&dir);
    assert_eq!(s["pass"]["number"], 2);
    assert_eq!(s["phase"], "Complete");
    assert!(s["pass"].get("groups").is_none(), "no jobs in pass 2");

    // Adding a seed runs just the three new runs.
    edit_file(
        &dir.join("series.yaml"),
        &[("seeds: [0, 1, 2, 3]", "seeds: [0, 1, 2, 3, 4]")],
    );
    let out = run(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runs = executions(&dir);
    assert_eq!(runs.len(), 15);
    assert_eq!(
        sorted(runs[12..].to_vec()),
        [
            "QUICKSTART_FAST_GROWTH_0004",
            "QUICKSTART_NO_GROWTH_0004",
            "QUICKSTART_SLOW_GROWTH_0004"
        ]
    );
    assert_eq!(status(&dir)["pass"]["number"], 3);
    // Pass 3's logs do not overwrite pass 1's.
    assert!(dated(&dir).join("logs/pass-1/QUICKSTART_11.log").is_file());
    assert!(dated(&dir).join("logs/pass-3/QUICKSTART_2.log").is_file());
}

#[test]
fn failed_runs_run_again_on_the_next_pass() {
    let dir = quickstart(
        "flaky",
        &[
            ("flaky_seeds: []", "flaky_seeds: []"),
            (
                "rate: 0.5\n      sleep: 1\n      fail_seeds: []\n      flaky_seeds: []",
                "rate: 0.5\n      sleep: 1\n      fail_seeds: []\n      flaky_seeds: [1, 2]",
            ),
        ],
    );
    let out = run(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAST_GROWTH  2/4 (50.0 %)"), "{stdout}");
    assert!(
        text(&out.stderr).contains("pass 1 Incomplete"),
        "{}",
        text(&out.stderr)
    );
    let s = status(&dir);
    assert_eq!(s["phase"], "Incomplete");
    assert_eq!(
        condition(&s, "Stalled"),
        ("True".into(), "RunsFailed".into())
    );
    assert_eq!(s["pass"]["groups"][0]["jobs"][0]["summary"]["failed"], 2);

    let out = run(&dir, &["--rerun"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runs = executions(&dir);
    assert_eq!(runs.len(), 14, "only the two failed runs ran again");
    assert_eq!(
        sorted(runs[12..].to_vec()),
        ["QUICKSTART_FAST_GROWTH_0001", "QUICKSTART_FAST_GROWTH_0002"]
    );
    assert_eq!(status(&dir)["phase"], "Complete");
}

#[test]
fn logs_are_saved_filtered_and_failed_runs_are_reported() {
    let dir = quickstart(
        "logs",
        &[
            ("logFilter: toy-model", "logFilter: ERROR"),
            (
                "rate: 0.0\n      sleep: 1\n      fail_seeds: []",
                "rate: 0.0\n      sleep: 1\n      fail_seeds: [3]",
            ),
        ],
    );
    let out = run(&dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let logs = dated(&dir).join("logs/pass-1");
    // NO_GROWTH seed 3 is input 11; its log keeps only the ERROR line.
    let failed = std::fs::read_to_string(logs.join("QUICKSTART_11.log")).unwrap();
    assert_eq!(
        failed,
        "toy-model: ERROR QUICKSTART_NO_GROWTH_0003: told to fail\n"
    );
    let fine = std::fs::read_to_string(logs.join("QUICKSTART_0.log")).unwrap();
    assert_eq!(fine, "", "no ERROR line in a successful run");
    let record: Value =
        serde_json::from_slice(&std::fs::read(dated(&dir).join("simseries/pass-1.json")).unwrap())
            .unwrap();
    let child = &record["groups"][0]["jobs"][0]["children"][11];
    assert_eq!(child["outcome"]["state"], "FAILED");
    assert_eq!(child["outcome"]["exitCode"], 3);
    // The status lists the 12 log keys? Not past 20; here it does.
    let keys = status(&dir)["pass"]["groups"][0]["logs"]["keys"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(keys, 12);
}

#[test]
fn stragglers_are_terminated_after_the_last_retry() {
    let dir = quickstart(
        "terminate",
        &[
            ("retries: 20", "retries: 4"),
            ("retryDelay: 5", "retryDelay: 3"),
            ("rate: 0.0\n      sleep: 1", "rate: 0.0\n      sleep: 120"),
        ],
    );
    let started = Instant::now();
    let out = run(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(100),
        "the slow runs were not waited for"
    );
    assert!(
        text(&out.stderr).contains("terminating 1 unfinished job(s) after the last poll"),
        "{}",
        text(&out.stderr)
    );
    let s = status(&dir);
    assert_eq!(s["phase"], "Incomplete");
    assert_eq!(s["attempts"], 4);
    let job = &s["pass"]["groups"][0]["jobs"][0];
    assert_eq!(job["terminated"], true);
    // The 8 fast runs have their outputs; the 4 slow ones were stopped.
    assert_eq!(outputs(&dir).len(), 16);
    let record: Value =
        serde_json::from_slice(&std::fs::read(dated(&dir).join("simseries/pass-1.json")).unwrap())
            .unwrap();
    let slow = &record["groups"][0]["jobs"][0]["children"][8];
    assert_eq!(slow["outcome"]["reason"], "terminated by simseries");
    // No process of the series is left.
    assert!(
        leftover_processes(&dir).is_empty(),
        "{:?}",
        leftover_processes(&dir)
    );
}

/// Processes whose environment points into `dir` (children of simseries).
fn leftover_processes(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| String::from_utf8_lossy(&env).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_run_resumes_without_running_anything_twice() {
    let dir = quickstart("resume", &[("retryDelay: 5", "retryDelay: 1")]);
    edit_file(
        &dir.join("series.yaml"),
        &[
            ("sleep: 1", "sleep: 2"),
            ("sleep: 1", "sleep: 2"),
            ("sleep: 1", "sleep: 2"),
        ],
    );
    let mut first = command(&dir, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first runs to start", || executions(&dir).len() >= 2);
    first.kill().unwrap(); // SIGKILL: no chance to clean up
    first.wait().unwrap();
    assert_eq!(status(&dir)["phase"], "Running");

    let out = run(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runs = executions(&dir);
    let mut unique = runs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 12, "{runs:?}");
    assert_eq!(runs.len(), 12, "a run started twice: {runs:?}");
    assert_eq!(status(&dir)["phase"], "Complete");
    assert_eq!(status(&dir)["pass"]["number"], 1, "the same pass went on");
}

#[test]
fn ctrl_c_stops_cleanly_and_the_next_run_finishes() {
    let dir = quickstart("interrupt", &[("retryDelay: 5", "retryDelay: 1")]);
    edit_file(&dir.join("series.yaml"), &[("sleep: 1", "sleep: 3")]);
    let child = command(&dir, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first runs to start", || !executions(&dir).is_empty());
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("interrupted"),
        "{}",
        text(&out.stderr)
    );
    let s = status(&dir);
    assert_eq!(
        s["phase"], "Running",
        "the status file is consistent: the pass is still on"
    );
    assert!(leftover_processes(&dir).is_empty(), "children were stopped");
    let finished_before = outputs(&dir).len();

    let out = run(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(outputs(&dir).len(), 24);
    assert!(finished_before <= 24);
    assert_eq!(status(&dir)["phase"], "Complete");
}

#[test]
fn a_missing_model_command_is_named_before_anything_is_written() {
    let dir = quickstart(
        "no-command",
        &[(
            "command: [sh, model/toy-model.sh]",
            "command: [no-such-model-binary]",
        )],
    );
    let out = run(&dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("spec.parameters.command: program \"no-such-model-binary\" not found"),
        "{err}"
    );
    assert!(!dir.join("working").exists(), "nothing written");

    let dir = quickstart(
        "bad-path",
        &[(
            "command: [sh, model/toy-model.sh]",
            "command: [model/missing.sh]",
        )],
    );
    let err = text(&run(&dir, &[]).stderr);
    assert!(err.contains("relative to"), "{err}");
}

#[test]
fn a_working_folder_that_cannot_be_written_is_named() {
    let dir = quickstart("unwritable", &[]);
    std::fs::write(dir.join("working"), "a file where the folder should be").unwrap();
    let out = run(&dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("spec.context.workingLocation"), "{err}");
}

#[test]
fn dry_run_delegates_to_plan() {
    let dir = quickstart("dry-run", &[]);
    let out = run(&dir, &["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("Runs: 12 total, 0 complete, 12 missing, 0 incomplete -> 12 input(s)"),
        "{}",
        text(&out.stdout)
    );
    assert!(!dir.join("working").exists());
}

#[test]
fn two_runs_of_one_series_do_not_overlap() {
    let dir = quickstart("lock", &[]);
    edit_file(&dir.join("series.yaml"), &[("sleep: 1", "sleep: 5")]);
    let mut first = command(&dir, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first run to start", || !executions(&dir).is_empty());
    let out = run(&dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("another `simseries run`"),
        "{}",
        text(&out.stderr)
    );
    let _ = Command::new("kill")
        .args(["-INT", &first.id().to_string()])
        .status();
    first.wait().unwrap();
}

// Hostile but fair use: each case below once ran work twice, panicked, hung or misled.

/// Exits 1 with a message holding every word of `words`, and writes nothing.
fn assert_refused_before_writing(dir: &Path, words: &[&str]) -> String {
    let out = run(dir, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for word in words {
        assert!(err.contains(word), "{word:?} not in: {err}");
    }
    assert!(!dated(dir).exists(), "nothing written: {err}");
    err
}

#[test]
fn two_runs_over_a_stale_lock_never_start_an_input_twice() {
    // The lock file of a run that died (and a PID that now belongs to someone else): both
    // runs start together; one works, the other waits its turn or finds the pass done.
    for trial in 0..5 {
        let dir = quickstart(
            &format!("stale-lock-{trial}"),
            &[("retryDelay: 5", "retryDelay: 1")],
        );
        edit_file(&dir.join("series.yaml"), &[("sleep: 1", "sleep: 0")]);
        let lock = dir.join("working/QUICKSTART/simseries/run.lock");
        std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
        std::fs::write(&lock, if trial % 2 == 0 { "1\n" } else { "4000000\n" }).unwrap();
        let runs: Vec<_> = (0..2)
            .map(|_| {
                command(&dir, &[])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outcomes: Vec<Output> = runs
            .into_iter()
            .map(|r| r.wait_with_output().unwrap())
            .collect();
        assert!(
            outcomes.iter().any(|o| o.status.success()),
            "trial {trial}: {}",
            text(&outcomes[0].stderr)
        );
        for out in &outcomes {
            let err = text(&out.stderr);
            assert!(
                out.status.success() || err.contains("another `simseries run`"),
                "trial {trial}: {err}"
            );
        }
        let runs = executions(&dir);
        assert_eq!(
            runs.len(),
            12,
            "trial {trial}: an input ran twice: {runs:?}"
        );
        assert!(lock.exists(), "the lock file is never removed");
    }
}

#[test]
fn a_lock_file_naming_a_live_process_that_holds_no_lock_does_not_block() {
    let dir = quickstart("pid-one", &[("retryDelay: 5", "retryDelay: 1")]);
    edit_file(&dir.join("series.yaml"), &[("sleep: 1", "sleep: 0")]);
    let lock = dir.join("working/QUICKSTART/simseries/run.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "1\n").unwrap();
    let out = run(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_retry_delay_of_centuries_is_refused_not_a_panic() {
    let dir = quickstart(
        "huge-delay",
        &[("retryDelay: 5", "retryDelay: 400000000000")],
    );
    assert_refused_before_writing(&dir, &["spec.parameters.retryDelay", "more than a week"]);
}

#[test]
fn a_runaway_template_stops_with_a_clear_error() {
    let dir = quickstart("runaway", &[]);
    std::fs::write(
        dir.join("template.xml"),
        "<run>{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}</run>",
    )
    .unwrap();
    let err = assert_refused_before_writing(&dir, &["template.xml", "too expensive"]);
    assert!(err.contains("TemplateTooExpensive"), "{err}");
}

#[test]
fn finished_runs_are_not_run_again_with_the_default_completeness_source() {
    // No `manifestSource`: the manifest (here empty) and the outputs both count.
    let dir = quickstart(
        "default-source",
        &[
            ("    manifestSource: listing\n", ""),
            ("retryDelay: 5", "retryDelay: 1"),
        ],
    );
    edit_file(&dir.join("series.yaml"), &[("sleep: 1", "sleep: 0")]);
    std::fs::write(
        dir.join("manifest.csv"),
        "KEY,EXTENSION,LOCATION,FULL_KEY\n",
    )
    .unwrap();
    assert!(run(&dir, &[]).status.success());
    assert_eq!(executions(&dir).len(), 12);
    edit_file(
        &dir.join("series.yaml"),
        &[("seeds: [0, 1, 2, 3]", "seeds: [0, 1, 2, 3, 4]")],
    );
    let out = run(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(executions(&dir).len(), 15, "only the three new runs ran");
    assert!(
        text(&out.stdout).contains("15/15 (100.0 %)"),
        "{}",
        text(&out.stdout)
    );

    // `file` alone: the plan and the table both read only the manifest, and agree.
    edit_file(
        &dir.join("series.yaml"),
        &[("    seeds:", "    manifestSource: file\n    seeds:")],
    );
    let out = run(&dir, &["--dry-run"]);
    assert!(
        text(&out.stdout).contains("15 missing"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn names_and_keys_cannot_reach_outside_their_location() {
    let dir = quickstart("escape-model", &[("model: toy", "model: toy/../../..")]);
    assert_refused_before_writing(&dir, &["spec.parameters.model"]);
    let dir = quickstart(
        "escape-template",
        &[("templateKey: template.xml", "templateKey: /etc/passwd")],
    );
    let err = assert_refused_before_writing(&dir, &["spec.series.templateKey", "absolute"]);
    assert!(!err.contains("root:"), "no file content in errors: {err}");
    let dir = quickstart(
        "escape-manifest",
        &[
            (
                "manifestKey: manifest.csv",
                "manifestKey: ../../../../etc/passwd",
            ),
            ("manifestSource: listing", "manifestSource: file"),
        ],
    );
    let err = assert_refused_before_writing(&dir, &["spec.series.manifestKey", "`..`"]);
    assert!(!err.contains("root:"), "no file content in errors: {err}");
}

#[test]
fn a_template_fixed_after_a_failed_start_runs_without_rerun() {
    let dir = quickstart("fixed-template", &[("retryDelay: 5", "retryDelay: 1")]);
    edit_file(&dir.join("series.yaml"), &[("sleep: 1", "sleep: 0")]);
    let good = std::fs::read_to_string(dir.join("template.xml")).unwrap();
    std::fs::write(
        dir.join("template.xml"),
        good.replace("{{ key }}", "{{ key }"),
    )
    .unwrap();
    let out = run(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(status(&dir)["phase"], "Failed");
    // Unchanged: the failure is reported again, nothing runs.
    let out = run(&dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(status(&dir)["pass"]["number"], 1);
    // Fixed: a new pass runs without --rerun.
    std::fs::write(dir.join("template.xml"), good).unwrap();
    let out = run(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(status(&dir)["phase"], "Complete");
    assert_eq!(status(&dir)["pass"]["number"], 2);
    assert_eq!(executions(&dir).len(), 12);
}

#[test]
fn children_adopted_after_a_kill_count_against_the_concurrency_bound() {
    // vcpus = cores: at most one child at a time. Each child records how many were running
    // when it started.
    let cores = std::thread::available_parallelism().unwrap().get();
    let dir = quickstart(
        "adopted-bound",
        &[
            ("vcpus: 1", &format!("vcpus: {cores}")),
            ("seeds: [0, 1, 2, 3]", "seeds: [0, 1]"),
            ("retryDelay: 5", "retryDelay: 1"),
            (
                "command: [sh, model/toy-model.sh]",
                "command: [sh, model/probe.sh]",
            ),
        ],
    );
    std::fs::write(
        dir.join("model/probe.sh"),
        r#"set -eu
w="$SIMSERIES_WORKING_DIR"
me="${w}running/${FILE_SET_NAME}_${JOB_ARRAY_INDEX}"
mkdir -p "${w}running"
touch "$me"
ls "${w}running" | wc -l >> "${w}concurrency.log"
sh model/toy-model.sh
sleep 1
rm "$me"
"#,
    )
    .unwrap();
    let mut first = command(&dir, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("a child to start", || !executions(&dir).is_empty());
    first.kill().unwrap();
    first.wait().unwrap();
    let out = run(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(executions(&dir).len(), 6);
    let counts = std::fs::read_to_string(dated(&dir).join("concurrency.log")).unwrap();
    let most = counts
        .lines()
        .map(|l| l.trim().parse::<u32>().unwrap())
        .max();
    assert_eq!(most, Some(1), "children at once: {counts}");
}

#[test]
fn a_misspelt_field_is_named_not_ignored() {
    let dir = quickstart(
        "typo",
        &[("retryDelay: 5", "retryDelay: 5\n    terminateJob: false")],
    );
    assert_refused_before_writing(&dir, &["unknown field spec.parameters.terminateJob"]);
}

#[test]
fn a_model_that_writes_no_outputs_leaves_the_pass_incomplete_until_it_does() {
    let dir = quickstart(
        "no-outputs",
        &[(
            "command: [sh, model/toy-model.sh]",
            "command: [sh, -c, 'true']",
        )],
    );
    let out = run(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let folder = dated(&dir).join("outputs");
    assert!(
        stderr.contains(&format!(
            "pass 1 Incomplete: every job succeeded, but 12 run(s) have no outputs (e.g. QUICKSTART_SLOW_GROWTH_0000); the model must write them under {}/",
            folder.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--rerun"), "{stderr}");
    // The last progress line of the jobs shows their final counts, not those of a poll ago.
    assert!(
        stderr.contains("ran: 12/12 inputs done, 0 failed, 0 running"),
        "{stderr}"
    );
    let first = status(&dir);
    assert_eq!(first["phase"], "Incomplete");
    assert_eq!(
        condition(&first, "Ready"),
        ("False".into(), "OutputsMissing".into())
    );
    assert_eq!(first["passProgress"], "12/12");

    // With the model fixed, a rerun runs them again and the series is complete.
    edit_file(
        &dir.join("series.yaml"),
        &[(
            "command: [sh, -c, 'true']",
            "command: [sh, model/toy-model.sh]",
        )],
    );
    let out = run(&dir, &["--rerun"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second = status(&dir);
    assert_eq!(second["phase"], "Complete");
    assert_eq!(
        condition(&second, "Ready"),
        ("True".into(), "PassComplete".into())
    );
}

#[test]
fn every_command_ends_quietly_when_its_reader_goes_away() {
    let dir = quickstart("closed-pipe", &[]);
    let file = dir.join("series.yaml");
    let file = file.to_str().unwrap();
    for args in [
        vec!["plan", "-f", file, "--date", DATE],
        vec!["plan", "-f", file, "--date", DATE, "-o", "json"],
        vec!["crd"],
        vec!["run", "-f", file, "--date", DATE],
        vec!["status", "-f", file],
        vec!["status", "-f", file, "-o", "json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_simseries"))
            .args(&args)
            .env("SIMSERIES_CONTAINER_ENGINE", "none")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the first line is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            matches!(out.status.code(), Some(0 | 141)),
            "{args:?}: {:?}\n{stderr}",
            out.status
        );
    }
}

#[test]
fn status_shows_a_local_series_and_its_failed_runs() {
    let dir = quickstart(
        "status",
        &[(
            "command: [sh, model/toy-model.sh]",
            "command: [sh, -c, 'exit 3']",
        )],
    );
    let status = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_simseries"))
            .args(["status", "-f"])
            .arg(dir.join("series.yaml"))
            .args(extra)
            .output()
            .unwrap()
    };
    // Before any run: no pass yet, nothing complete.
    let before = status(&[]);
    assert!(before.status.success(), "{}", text(&before.stderr));
    let shown = text(&before.stdout);
    assert!(shown.contains("Pass:   none yet"), "{shown}");
    assert!(shown.contains("SLOW_GROWTH  0/4 (0.0 %)"), "{shown}");

    let out = run(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let after = status(&[]);
    assert!(after.status.success(), "{}", text(&after.stderr));
    let shown = text(&after.stdout);
    for part in [
        "Ready:  False (RunsFailed)",
        "Inputs: 0/12 done, 12 failed, 0 running",
        "Failed or terminated runs:",
        "QUICKSTART/2024-06-01/inputs/QUICKSTART_0.xml",
        "QUICKSTART/2024-06-01/logs/pass-1/QUICKSTART_0.log",
    ] {
        assert!(shown.contains(part), "{part:?} not in:\n{shown}");
    }
    let json: Value = serde_json::from_slice(&status(&["-o", "json"]).stdout).unwrap();
    let failed = json["failedRuns"].as_array().unwrap();
    assert_eq!(failed.len(), 12, "{json}");
    assert_eq!(failed[0]["run"], "QUICKSTART_SLOW_GROWTH_0000");
    assert_eq!(failed[0]["condition"], "SLOW_GROWTH");
    assert_eq!(failed[0]["seed"], 0);
    assert_eq!(failed[0]["exitCode"], 3);
    assert_eq!(json["completeness"]["allComplete"], false);
    assert_eq!(json["status"]["phase"], "Incomplete");
    // --watch on a pass that has ended shows it once and returns.
    let watched = status(&["--watch"]);
    assert!(watched.status.success());
    assert_eq!(text(&watched.stdout), shown);
}
