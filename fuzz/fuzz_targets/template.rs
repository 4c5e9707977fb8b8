//! The template renderer on arbitrary template text: no panic, no hang (fuel), bounded output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simseries::planning::template::{MAX_INPUT_BYTES, Template, check_xml, json_value};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::parse("fuzz.xml", source) else {
        return;
    };
    let context = json_value(&serde_json::json!({
        "key": "A", "seed": 3, "rate": 0.5, "n": 2, "flag": true, "big": 1e16,
        "conditions": [{"key": "A", "start_seed": 0, "end_seed": 3}],
    }));
    if let Ok(text) = template.render(&context) {
        assert!(text.len() <= MAX_INPUT_BYTES);
        let _ = check_xml(&text);
    }
});
