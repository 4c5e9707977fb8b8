//! Spec decoding and validation on arbitrary YAML: no panic; a valid spec plans within its
//! bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simseries::planning::manifest::Completeness;
use simseries::model::validate::{MAX_RUNS, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(resource) = simseries::model::specfile::parse(text) else {
        return;
    };
    let Ok(series) = validate(&resource.spec) else {
        return;
    };
    let _ = simseries::planning::prepare::Locations::resolve(&resource.spec, None);
    let table = Completeness::new(&series);
    let plan = simseries::planning::plan::plan(&series, &table, "2024-06-01".parse().unwrap());
    assert!(plan.totals().runs <= MAX_RUNS);
});
