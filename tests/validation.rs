//! Bad specs: each problem is reported with the field and the fix.

mod common;

use common::{SERIES, series};
use simseries::model::validate::validate;

/// The problems `validate` reports for `yaml`, as "field: message" lines.
fn problems(yaml: &str) -> Vec<String> {
    let resource = series(yaml);
    match validate(&resource.spec) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.problems.iter().map(|e| e.to_string()).collect(),
    }
}

fn assert_problem(yaml: &str, field: &str, words: &[&str]) {
    let found = problems(yaml);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(&format!("{field}: ")) && words.iter().all(|w| p.contains(w))),
        "expected a problem at {field} mentioning {words:?}, got {found:#?}"
    );
}

#[test]
fn the_base_series_is_valid() {
    assert!(problems(SERIES).is_empty(), "{:?}", problems(SERIES));
}

#[test]
fn duplicate_condition_keys() {
    let yaml = SERIES.replace("{key: B, group: G", "{key: A, group: G");
    assert_problem(
        &yaml,
        "spec.series.conditions[1].key",
        &["duplicate", "\"A\"", "conditions[0]"],
    );
}

#[test]
fn a_condition_group_that_is_not_in_groups() {
    let yaml = SERIES.replace("{key: C, group: H", "{key: C, group: X");
    assert_problem(
        &yaml,
        "spec.series.conditions[2].group",
        &["\"X\"", "not in spec.series.groups", "G, H"],
    );
    let yaml = SERIES.replace("{key: C, group: H, ", "{key: C, ");
    assert_problem(
        &yaml,
        "spec.series.conditions[2].group",
        &["needs a `group`"],
    );
}

#[test]
fn an_init_whose_group_is_unknown() {
    let yaml = SERIES.replace(
        "{name: INIT, key: K, group: G",
        "{name: INIT, key: K, group: Q",
    );
    assert_problem(
        &yaml,
        "spec.series.inits[0].group",
        &["unknown group", "\"Q\""],
    );
}

#[test]
fn names_and_keys_with_dots_slashes_or_spaces() {
    for bad in ["S.1", "S/1", "'S 1'"] {
        let yaml = SERIES.replace("name: S\n", &format!("name: {bad}\n"));
        assert_problem(
            &yaml,
            "spec.series.name",
            &["letters, digits", "no `.`, `/` or spaces"],
        );
        let yaml = SERIES.replace("{key: A,", &format!("{{key: {bad},"));
        assert_problem(&yaml, "spec.series.conditions[0].key", &["condition key"]);
        let yaml = SERIES.replace(
            "groups: {G: '', H: ''}",
            &format!("groups: {{G: '', H: '', {bad}: ''}}"),
        );
        assert!(
            problems(&yaml).iter().any(|p| p.contains("group name")),
            "{bad}"
        );
    }
    let yaml = SERIES.replace("{name: INIT, key: K,", "{name: INIT, key: K.2,");
    assert_problem(&yaml, "spec.series.inits[0].key", &["init key"]);
    let yaml = SERIES.replace("[CELLS.tar.xz, LOCATIONS.tar.xz]", "[.CELLS.tar.xz, a/b]");
    assert_problem(
        &yaml,
        "spec.series.extensions[0]",
        &["without a leading dot"],
    );
    assert_problem(&yaml, "spec.series.extensions[1]", &["extension"]);
}

#[test]
fn seeds_outside_the_range_or_twice() {
    let yaml = SERIES.replace("seeds: [0, 1, 2, 3]", "seeds: [0, 10000, 2, 2]");
    assert_problem(&yaml, "spec.series.seeds[1]", &["10000", "0..=9999"]);
    assert_problem(&yaml, "spec.series.seeds[3]", &["twice"]);
    let yaml = SERIES.replace("seeds: [1, 2]", "seeds: [12345]");
    assert_problem(&yaml, "spec.series.inits[0].seeds[0]", &["0..=9999"]);
    // A negative seed does not even parse; the parser names the field.
    let err =
        simseries::model::specfile::parse(&SERIES.replace("seeds: [0, 1, 2, 3]", "seeds: [0, -1]"))
            .unwrap_err()
            .to_string();
    assert!(err.contains("spec.series.seeds[1]"), "{err}");
}

#[test]
fn groups_that_cannot_work() {
    let yaml = SERIES.replace("groups: {G: '', H: ''}", "groups: {_: '', G: '', H: ''}");
    assert_problem(&yaml, "spec.series.groups", &["cannot be combined"]);
    let yaml = SERIES.replace("groups: {G: '', H: ''}", "groups: {}");
    assert_problem(&yaml, "spec.series.groups", &["no groups"]);
    let yaml = SERIES.replace(
        "groups: {G: '', H: ''}",
        "groups: {G: '', H: '', G-part1: ''}",
    );
    assert_problem(&yaml, "spec.series.groups.G-part1", &["reserved"]);
}

#[test]
fn reserved_condition_fields_and_overlapping_inits() {
    let yaml = SERIES.replace(
        "{key: A, group: G, rate: 1.0}",
        "{key: A, group: G, rate: 1.0, start_seed: 3}",
    );
    assert_problem(&yaml, "spec.series.conditions[0].start_seed", &["rename"]);
    let yaml = SERIES.replace(
        "    groups:",
        "    - {name: INIT2, key: K, group: G, seeds: [2], extensions: [CELLS.json]}\n    groups:",
    );
    assert_problem(
        &yaml,
        "spec.series.inits[1]",
        &["seed 2", "CELLS.json", "inits[0]"],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = SERIES
        .replace("name: S\n", "name: S.1\n")
        .replace("seeds: [0, 1, 2, 3]", "seeds: [0, 10000]")
        .replace("{key: C, group: H", "{key: C, group: X");
    assert_eq!(problems(&yaml).len(), 3, "{:#?}", problems(&yaml));
}

#[test]
fn paths_from_the_spec_cannot_leave_their_location() {
    for (from, to, field) in [
        (
            "model: ARCADE",
            "model: toy/../../..",
            "spec.parameters.model",
        ),
        ("model: ARCADE", "model: ..", "spec.parameters.model"),
        (
            "templateKey: template.xml",
            "templateKey: /etc/passwd",
            "spec.series.templateKey",
        ),
        (
            "manifestKey: manifest.csv",
            "manifestKey: ../../etc/passwd",
            "spec.series.manifestKey",
        ),
    ] {
        let yaml = SERIES.replace(from, to);
        assert_problem(&yaml, field, &[]);
    }
    // Dots inside a model name are fine (`PhysiCell-1.2`); a key may name a subfolder.
    let yaml = SERIES
        .replace("model: ARCADE", "model: PhysiCell-1.2")
        .replace("templateKey: template.xml", "templateKey: t/template.xml");
    assert!(problems(&yaml).is_empty(), "{:?}", problems(&yaml));
}

#[test]
fn durations_and_sizes_are_bounded() {
    let yaml = SERIES.replace("retryDelay: 5", "retryDelay: 400000000000");
    assert_problem(
        &yaml,
        "spec.parameters.retryDelay",
        &["more than a week", "604800"],
    );
    let yaml = SERIES.replace("retries: 1", "retries: 4000000000");
    assert_problem(&yaml, "spec.parameters.retries", &["at most"]);
    let yaml = SERIES.replace("[CELLS.tar.xz, LOCATIONS.tar.xz]", "[]");
    assert_problem(&yaml, "spec.series.extensions", &["no extensions"]);
}

#[test]
fn a_million_duplicate_seeds_give_a_short_answer() {
    // One million entries, mostly duplicates: refused for its length, without checking (and
    // listing) each duplicate.
    let seeds = (0..1_000_000u32)
        .map(|i| (i % 10).to_string())
        .collect::<Vec<_>>()
        .join(",");
    let yaml = SERIES.replace("seeds: [0, 1, 2, 3]", &format!("seeds: [{seeds}]"));
    let resource = series(&yaml);
    let started = std::time::Instant::now();
    let errors = validate(&resource.spec).unwrap_err();
    assert!(
        errors.to_string().contains("1000000 seeds; at most 10000"),
        "{errors}"
    );
    assert!(errors.to_string().lines().count() < 25, "{errors}");
    // Not a timing assertion on speed, a guard against the quadratic check coming back: the
    // old code took minutes here.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn problem_lists_are_capped_with_a_count() {
    // 5,000 duplicate seeds within the length bound: 20 listed, the rest counted.
    let seeds = (0..5_000u32)
        .map(|i| (i % 2).to_string())
        .collect::<Vec<_>>()
        .join(",");
    let yaml = SERIES.replace("seeds: [0, 1, 2, 3]", &format!("seeds: [{seeds}]"));
    let errors = validate(&series(&yaml).spec).unwrap_err();
    assert_eq!(errors.problems.len(), 20);
    assert_eq!(errors.total(), 4_998);
    let text = errors.to_string();
    assert!(
        text.starts_with("the series spec has 4998 problems"),
        "{text}"
    );
    assert!(text.contains("… and 4978 more"), "{text}");
}

#[test]
fn conditions_times_seeds_is_bounded() {
    let conditions = (0..1_001)
        .map(|i| format!("{{key: C{i}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let seeds = (0..10_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let yaml = SERIES
        .replace("seeds: [0, 1, 2, 3]", &format!("seeds: [{seeds}]"))
        .replace(
            "    conditions:\n    - {key: A, group: G, rate: 1.0}\n    - {key: B, group: G, rate: 0.5}\n    - {key: C, group: H, rate: 2.0}\n",
            &format!("    conditions: [{conditions}]\n"),
        )
        .replace("    groups: {G: '', H: ''}\n", "")
        .replace("group: G, seeds: [1, 2]", "seeds: [1, 2]");
    assert_problem(&yaml, "spec.series", &["10010000 runs", "at most 10000000"]);
}

#[test]
fn aws_batch_options_are_bounded() {
    let yaml = SERIES.replace(
        "seedsPerJob: 2}",
        "seedsPerJob: 2, spotRetries: 10, timeoutSeconds: 59, schedulingPriority: 10000, vcpuHourPrice: -0.1}",
    );
    assert_problem(&yaml, "spec.parameters.spotRetries", &["0 to 9"]);
    assert_problem(
        &yaml,
        "spec.parameters.vcpuHourPrice",
        &["-0.1", "0 to 100"],
    );
    // A price per month typed for one per hour.
    let monthly = SERIES.replace("seedsPerJob: 2}", "seedsPerJob: 2, vcpuHourPrice: 31.0e3}");
    assert_problem(&monthly, "spec.parameters.vcpuHourPrice", &["0 to 100"]);
    // YAML's not-a-number is no price either.
    let nan = SERIES.replace("seedsPerJob: 2}", "seedsPerJob: 2, vcpuHourPrice: .nan}");
    assert_problem(&nan, "spec.parameters.vcpuHourPrice", &["NaN", "0 to 100"]);
    assert_problem(&yaml, "spec.parameters.timeoutSeconds", &["at least 60"]);
    assert_problem(&yaml, "spec.parameters.schedulingPriority", &["0 to 9999"]);
    let yaml = SERIES.replace("memory: 512}", "memory: 512, shareIdentifier: 'lab a'}");
    assert_problem(
        &yaml,
        "spec.context.shareIdentifier",
        &["letters, digits or `_`"],
    );
    let fine = SERIES.replace(
        "seedsPerJob: 2}",
        "seedsPerJob: 2, spotRetries: 9, timeoutSeconds: 60, schedulingPriority: 9999, vcpuHourPrice: 0.0425}",
    );
    let fine = fine.replace("memory: 512}", "memory: 512, propagateTags: true}");
    let spec = series(&fine).spec;
    assert!(simseries::model::validate::validate(&spec).is_ok());
}

#[test]
fn names_longer_than_a_file_name_are_refused_locally() {
    // "S_" + 250 + "_0000." + 16 (LOCATIONS.tar.xz) = 274 bytes.
    let key = "K".repeat(250);
    let yaml = SERIES.replace("{key: B, group: G", &format!("{{key: {key}, group: G"));
    assert_problem(
        &yaml,
        "spec.series.conditions[1].key",
        &[
            "S_KKK",
            "274 bytes",
            "at most 255",
            "shorten the condition key",
        ],
    );
    // The other conditions and the S3 limit are not touched by it.
    assert_eq!(problems(&yaml).len(), 1, "{:?}", problems(&yaml));
    let on_s3 = yaml.replace(
        "workingLocation: working",
        "workingLocation: s3://bucket/runs",
    );
    assert!(problems(&on_s3).is_empty(), "{:?}", problems(&on_s3));
    // 235 bytes of key make 259 with the 16-byte extension, 255 when CELLS.tar.xz (12) is the
    // longest.
    let key = "K".repeat(235);
    let yaml = SERIES.replace("{key: B, group: G", &format!("{{key: {key}, group: G"));
    assert_problem(&yaml, "spec.series.conditions[1].key", &["259 bytes"]);
    let fits = yaml.replace("LOCATIONS.tar.xz", "LOCS.tar.xz");
    assert!(problems(&fits).is_empty(), "{:?}", problems(&fits));
}

#[test]
fn group_and_init_names_that_make_long_files_are_refused() {
    let group = "G".repeat(252);
    let yaml = SERIES
        .replace("group: G,", &format!("group: {group},"))
        .replace(
            "groups: {G: '', H: ''}",
            &format!("groups: {{{group}: '', H: ''}}"),
        );
    // S_{group}_{index}.xml: 2 + 252 + 2 + 4 = 260 bytes.
    assert_problem(
        &yaml,
        &format!("spec.series.groups.{group}"),
        &[
            "the inputs of group",
            "260 bytes",
            "shorten the series name or the group's name",
        ],
    );
    assert_problem(
        &yaml,
        &format!("spec.series.groups.{group}"),
        &["the logs of group"],
    );
    assert_problem(
        &yaml,
        "spec.series.inits[0].extensions",
        &["the init copies"],
    );
    let init = "I".repeat(250);
    let yaml = SERIES.replace("{name: INIT, key: K", &format!("{{name: INIT, key: {init}"));
    assert_problem(
        &yaml,
        "spec.series.inits[0].key",
        &["INIT_III", "shorten the init's name or key"],
    );
}

#[test]
fn keys_longer_than_s3_takes_are_refused_on_s3() {
    // "p/" + "S/" + "2024-06-01/" + "outputs/" + "S_" + key + "_0000." + 16: 1,024 at 977.
    let at_limit = |key_bytes: usize| {
        SERIES
            .replace("workingLocation: working", "workingLocation: s3://bucket/p")
            .replace(
                "{key: B, group: G",
                &format!("{{key: {}, group: G", "K".repeat(key_bytes)),
            )
    };
    // Locally the 977-byte key is far past a file name, on S3 it just fits.
    assert!(
        problems(&at_limit(977)).is_empty(),
        "{:?}",
        problems(&at_limit(977))
    );
    assert_problem(
        &at_limit(978),
        "spec.series.conditions[1].key",
        &["1025 bytes", "S3 keys may have at most 1024"],
    );
}

#[test]
fn a_series_refused_for_a_long_name_writes_nothing() {
    let dir = common::temp_dir("long-name");
    std::fs::write(dir.join("template.xml"), "<x/>").unwrap();
    std::fs::write(
        dir.join("manifest.csv"),
        "KEY,EXTENSION,LOCATION,FULL_KEY\n",
    )
    .unwrap();
    let plan = |key: &str, out: &str| {
        let yaml = SERIES.replace("{key: B, group: G", &format!("{{key: {key}, group: G"));
        let spec = dir.join(format!("{out}.yaml"));
        std::fs::write(&spec, yaml).unwrap();
        let out = dir.join(out);
        let args = [
            "plan",
            "-f",
            spec.to_str().unwrap(),
            "--write-inputs",
            out.to_str().unwrap(),
        ];
        (common::simseries(&args, &[]), out)
    };
    // The same series with a short key writes its inputs there.
    let (fine, out) = plan("B", "short");
    assert!(
        fine.status.success(),
        "{}",
        String::from_utf8_lossy(&fine.stderr)
    );
    assert!(out.join("S").is_dir());
    let (refused, out) = plan(&"K".repeat(300), "long");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("spec.series.conditions[1].key"), "{stderr}");
    assert!(stderr.contains("at most 255"), "{stderr}");
    assert!(!out.exists(), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
