//! `simseries report` on a local series, checked in a real browser: the quickstart with one run
//! told to fail (in two passes) and one output removed, its report loaded by headless Chromium (Debian's,
//! installed by `scripts/browser.sh`), its legend, cells and bars compared with `simseries
//! status -o json`, and a screenshot kept as target/test-artefacts/quickstart-report.png.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{quickstart, simseries, text};
use serde_json::Value;

/// The browser `scripts/test.sh` found, or why there is none.
fn browser() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("SIMSERIES_TEST_BROWSER") {
        return Some(PathBuf::from(path));
    }
    let why = std::env::var("SIMSERIES_TEST_BROWSER_SKIPPED")
        .unwrap_or_else(|_| "SIMSERIES_TEST_BROWSER is not set (run scripts/test.sh)".into());
    eprintln!("SKIPPED: no browser: {why}");
    None
}

/// Loads `page` in headless Chromium: its DOM after loading, what it logged, and a screenshot.
fn load(browser: &Path, page: &Path, screenshot: &Path) -> (String, String) {
    let profile = page.with_file_name("chromium-profile");
    let common_args = |command: &mut Command| {
        command
            .arg("--headless=new")
            .arg("--no-sandbox")
            .arg("--disable-gpu")
            .arg("--hide-scrollbars")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--enable-logging=stderr")
            .arg("--v=0");
    };
    let url = format!("file://{}", page.display());
    let mut dump = Command::new(browser);
    common_args(&mut dump);
    let dom = dump
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(dom.status.success(), "{}", text(&dom.stderr));
    let mut shot = Command::new(browser);
    common_args(&mut shot);
    let shot = shot
        .arg("--window-size=1100,1300")
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(shot.status.success(), "{}", text(&shot.stderr));
    (
        text(&dom.stdout),
        format!("{}{}", text(&dom.stderr), text(&shot.stderr)),
    )
}

/// The value of `attribute` on every element of the DOM that has it, in order.
fn attribute_values(dom: &str, attribute: &str) -> Vec<String> {
    let needle = format!("{attribute}=\"");
    dom.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &dom[at + needle.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

/// The RGB colours of a PNG's pixels, counted.
fn colours(png_path: &Path) -> std::collections::HashMap<[u8; 3], usize> {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    let mut out = std::collections::HashMap::new();
    for pixel in buffer[..info.buffer_size()].chunks(channels) {
        *out.entry([pixel[0], pixel[1], pixel[2]]).or_insert(0) += 1;
    }
    out
}

#[test]
fn the_report_of_a_local_series_renders_in_a_browser_with_the_numbers_of_status() {
    let dir = quickstart(
        "report",
        &[(
            "      fail_seeds: []\n      flaky_seeds: []\n    - key: NO_GROWTH",
            "      fail_seeds: [2]\n      flaky_seeds: []\n    - key: NO_GROWTH",
        )],
    );
    let series = dir.join("series.yaml");
    let series = series.to_str().unwrap();
    let run = simseries(&["run", "-f", series, "--date", "2024-06-01"], &[]);
    assert!(
        !run.status.success(),
        "one run was told to fail: {}",
        text(&run.stderr)
    );
    // A second pass runs the failed run again, which fails again.
    let rerun = simseries(
        &["run", "-f", series, "--date", "2024-06-01", "--rerun"],
        &[],
    );
    assert!(!rerun.status.success(), "{}", text(&rerun.stderr));
    // One run loses an output: incomplete.
    let outputs = common::quickstart_dated(&dir, "2024-06-01").join("outputs");
    std::fs::remove_file(outputs.join("QUICKSTART_SLOW_GROWTH_0001.STATS.json")).unwrap();

    let status = simseries(&["status", "-f", series, "-o", "json"], &[]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let page = dir.join("report.html");
    let made = simseries(
        &["report", "-f", series, "--out", page.to_str().unwrap()],
        &[],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    let svg = dir.join("map.svg");
    let png = dir.join("map.png");
    for (format, path) in [("svg", &svg), ("png", &png)] {
        let made = simseries(
            &[
                "report",
                "-f",
                series,
                "--format",
                format,
                "--out",
                path.to_str().unwrap(),
            ],
            &[],
        );
        assert!(made.status.success(), "{}", text(&made.stderr));
    }
    let nowhere = simseries(
        &[
            "report",
            "-f",
            series,
            "--out",
            dir.join("no/such/folder/r.html").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!nowhere.status.success());
    assert!(
        text(&nowhere.stderr).contains("cannot write") && text(&nowhere.stderr).contains("--out"),
        "{}",
        text(&nowhere.stderr)
    );
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));

    let Some(browser) = browser() else {
        return;
    };
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let screenshot = artefacts.join("quickstart-report.png");
    let (dom, log) = load(&browser, &page, &screenshot);
    // The page has no script of its own: anything on the console is a fault of the page.
    assert!(!log.contains("CONSOLE"), "{log}");

    // The counts of status: 12 runs; FAST_GROWTH's seed 2 failed, SLOW_GROWTH's seed 1 lacks
    // STATS.json.
    let rows = status["completeness"]["rows"].as_array().unwrap();
    let complete: u64 = rows.iter().map(|r| r["complete"].as_u64().unwrap()).sum();
    let failed = status["failedRuns"].as_array().unwrap().len() as u64;
    assert_eq!((complete, failed), (10, 1));
    let legend: Vec<(String, u64)> = attribute_values(&dom, "data-state")
        .into_iter()
        .zip(attribute_values(&dom, "data-count"))
        .map(|(state, count)| (state, count.parse().unwrap()))
        .take(5)
        .collect();
    let expected = [
        ("complete", complete),
        ("incomplete", 1),
        ("running", 0),
        ("failed", failed),
        ("missing", 0),
    ];
    assert_eq!(legend, expected.map(|(s, n)| (s.to_string(), n)));
    // One square per run in the map, in the states of the legend.
    let cells: Vec<String> = attribute_values(&dom, "data-state")
        .into_iter()
        .skip(5)
        .collect();
    assert_eq!(cells.len(), 12);
    for (state, count) in expected {
        assert_eq!(
            cells.iter().filter(|c| *c == state).count() as u64,
            count,
            "{state}"
        );
    }
    assert_eq!(dom.matches("<tr class=\"condition\"").count(), rows.len());
    assert_eq!(
        dom.matches("<tr class=\"failed-run\"").count() as u64,
        failed
    );
    // Both passes, from their records: 12 inputs then the failed one again.
    let passes: Vec<&str> = dom.split("<tr class=\"pass-line\">").skip(1).collect();
    assert_eq!(passes.len(), 2, "{dom}");
    let cells = |line: &str| -> Vec<String> {
        line.split("</td>")
            .take(5)
            .map(|c| c.rsplit('>').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(cells(passes[0]), ["1", "2024-06-01", "12", "11", "1"]);
    assert_eq!(cells(passes[1]), ["2", "2024-06-01", "1", "0", "1"]);
    // The failed run's hover text says why.
    assert!(dom.contains("FAST_GROWTH seed 2: failed (exit 3"), "{dom}");
    // The embedded status is the one `simseries status -o json` prints, for the same reading.
    let embedded = common::embedded_status(&dom);
    assert_eq!(embedded["completeness"], status["completeness"]);
    assert_eq!(embedded["failedRuns"], status["failedRuns"]);

    // The map was drawn: the screenshot holds the colours of complete, failed and incomplete.
    let seen = colours(&screenshot);
    for colour in [[0x00, 0x72, 0xB2], [0xD5, 0x5E, 0x00], [0x56, 0xB4, 0xE9]] {
        assert!(
            seen.get(&colour).copied().unwrap_or(0) > 100,
            "{colour:?} not drawn"
        );
    }
}
