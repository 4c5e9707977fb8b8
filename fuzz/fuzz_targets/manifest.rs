//! The manifest reader on arbitrary bytes: no panic, whatever the CSV holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simseries::planning::manifest::Completeness;
use simseries::model::validate::validate;

const SERIES: &str = "
apiVersion: simseries.io/v1alpha1
kind: SimulationSeries
metadata: {name: s}
spec:
  context: {workingLocation: w, manifestLocation: m, templateLocation: t, vcpus: 1, memory: 512}
  series:
    name: S
    manifestKey: manifest.csv
    templateKey: template.xml
    seeds: [0, 1, 2]
    conditions: [{key: A}, {key: B}]
    extensions: [CELLS.tar.xz, LOCATIONS.json]
  parameters: {model: ARCADE, retries: 1, retryDelay: 5}
";

fuzz_target!(|data: &[u8]| {
    let resource = simseries::model::specfile::parse(SERIES).expect("the fixed series parses");
    let series = validate(&resource.spec).expect("the fixed series is valid");
    let mut table = Completeness::new(&series);
    if table.load_csv(data, "fuzz/manifest.csv").is_ok() {
        // Whatever was read, the plan over it is consistent.
        let plan = simseries::planning::plan::plan(&series, &table, "2024-06-01".parse().unwrap());
        let totals = plan.totals();
        assert_eq!(totals.complete + totals.missing + totals.incomplete, totals.runs);
    }
});
