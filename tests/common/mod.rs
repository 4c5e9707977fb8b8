//! Helpers shared by the integration tests.
#![allow(dead_code)]

use simseries::model::spec::SimulationSeries;

/// A small valid series in YAML; tests edit it with `str::replace`.
pub const SERIES: &str = "
apiVersion: simseries.io/v1alpha1
kind: SimulationSeries
metadata: {name: s}
spec:
  context: {workingLocation: working, manifestLocation: ., templateLocation: ., vcpus: 1, memory: 512}
  series:
    name: S
    manifestKey: manifest.csv
    templateKey: template.xml
    seeds: [0, 1, 2, 3]
    conditions:
    - {key: A, group: G, rate: 1.0}
    - {key: B, group: G, rate: 0.5}
    - {key: C, group: H, rate: 2.0}
    extensions: [CELLS.tar.xz, LOCATIONS.tar.xz]
    inits:
    - {name: INIT, key: K, group: G, seeds: [1, 2], extensions: [CELLS.json]}
    groups: {G: '', H: ''}
  parameters: {model: ARCADE, retries: 1, retryDelay: 5, seedsPerJob: 2}
";

pub fn series(yaml: &str) -> SimulationSeries {
    simseries::model::specfile::parse(yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// A manifest with a complete row pair for each run key given.
pub fn manifest(complete: &[&str], partial: &[&str]) -> String {
    let mut csv = String::from("KEY,EXTENSION,LOCATION,FULL_KEY\n");
    for key in complete {
        for ext in ["CELLS.tar.xz", "LOCATIONS.tar.xz"] {
            csv.push_str(&format!("{key},{ext},s3://b,x/{key}.{ext}\n"));
        }
    }
    for key in partial {
        csv.push_str(&format!("{key},CELLS.tar.xz,s3://b,x/{key}.CELLS.tar.xz\n"));
    }
    csv
}

pub mod batch;
pub mod fixtures;
pub mod moto;

use std::path::{Path, PathBuf};

/// A fresh temporary folder for one test, removed with everything in it when the guard drops:
/// at the end of the test, and when it fails (a panic unwinds through it).
/// `SIMSERIES_KEEP_TEST_DIRS=1` keeps them, to look at what a failing test left.
pub fn temp_dir(name: &str) -> TestDir {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("simseries-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TestDir(dir)
}

/// A test's temporary folder (see [`temp_dir`]); it derefs to its path.
#[derive(Debug)]
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TestDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::env::var_os("SIMSERIES_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of examples/quickstart (without its working folder) with edits to its series file.
pub fn quickstart(name: &str, edits: &[(&str, &str)]) -> TestDir {
    let dir = temp_dir(name);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    copy_dir(&example, &dir);
    let _ = std::fs::remove_dir_all(dir.join("working"));
    edit_file(&dir.join("series.yaml"), edits);
    dir
}

/// The dated folder of a quickstart copy run with `--date {date}`.
pub fn quickstart_dated(dir: &Path, date: &str) -> PathBuf {
    dir.join("working/QUICKSTART").join(date)
}

/// The runs the quickstart's model started in that folder, one line per start (the model
/// appends to `executions.log`).
pub fn quickstart_executions(dir: &Path, date: &str) -> Vec<String> {
    std::fs::read_to_string(quickstart_dated(dir, date).join("executions.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Replaces the first occurrence of each `from` in the file, which must contain it.
pub fn edit_file(path: &Path, edits: &[(&str, &str)]) {
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?} not in {}", path.display());
        text = text.replacen(from, to, 1);
    }
    std::fs::write(path, text).unwrap();
}

/// Files below `dir`, as sorted relative paths.
pub fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The status `simseries report` embeds in its page (`<script id="status-json">`).
pub fn embedded_status(page: &str) -> serde_json::Value {
    let embedded = page
        .split("id=\"status-json\">")
        .nth(1)
        .expect("the page embeds its status");
    serde_json::from_str(&embedded[..embedded.find("</script>").unwrap()]).unwrap()
}

/// Runs the simseries binary.
pub fn simseries(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_simseries"));
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the simseries binary runs")
}
pub mod aws_run;
pub mod cluster_series;
pub mod fake_batch;
pub mod fault_proxy;
pub mod node;
pub mod privileges;

/// `127.0.0.1:PORT` with a port nobody listens on yet (for a server the test starts).
pub fn free_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// The whole answer (status line, headers, body) to `GET path` at `address`; empty when
/// nothing answers.
pub fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return String::new();
    };
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// A URL query value decoded (`%2F` and the like; `+` as a space).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
