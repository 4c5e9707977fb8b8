//! Bad specs: each problem is reported with the field and the fix.

mod common;

use common::{SERIES, series};
use simseries::validate::validate;

/// The problems `validate` reports for `yaml`, as "field: message" lines.
fn problems(yaml: &str) -> Vec<String> {
    let resource = series(yaml);
    match validate(&resource.spec) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.iter().map(|e| e.to_string()).collect(),
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
    let err = simseries::specfile::parse(&SERIES.replace("seeds: [0, 1, 2, 3]", "seeds: [0, -1]"))
        .unwrap_err();
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
