//! The two Event APIs are views of one stored object (the server keeps one internal Event
//! type). Events are stored in their `events.k8s.io/v1` shape; `core/v1` reads and writes go
//! through the field renames below, which are the real conversion functions' renames. kubectl
//! describe reads `core/v1` Events and itself falls back from `source.component` to
//! `reportingComponent`, and from `firstTimestamp` to `eventTime`, so nothing else is needed.

use serde_json::{Map, Value, json};

/// (events.k8s.io/v1 field, core/v1 field) for the fields whose names differ.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(object: &Value, api_version: &str, to_core: bool) -> Value {
    let Some(fields) = object.as_object() else {
        return object.clone();
    };
    let mut out = Map::new();
    for (key, value) in fields {
        let renamed = RENAMES.iter().find_map(|(events, core)| {
            let (from, to) = if to_core {
                (events, core)
            } else {
                (core, events)
            };
            (key == from).then_some(*to)
        });
        out.insert(renamed.unwrap_or(key).to_string(), value.clone());
    }
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    Value::Object(out)
}

/// Stored (`events.k8s.io/v1`) → `core/v1`.
pub fn to_core(stored: &Value) -> Value {
    let mut core = rename(stored, "v1", true);
    let fields = core.as_object_mut().unwrap();
    // core/v1 serializes these without `omitempty`, so the real server always shows them.
    for (key, empty) in [
        ("involvedObject", json!({})),
        ("source", json!({})),
        ("firstTimestamp", Value::Null),
        ("lastTimestamp", Value::Null),
        ("eventTime", Value::Null),
        ("reportingComponent", json!("")),
        ("reportingInstance", json!("")),
    ] {
        fields.entry(key).or_insert(empty);
    }
    core
}

/// `core/v1` → stored (`events.k8s.io/v1`).
pub fn from_core(core: Value) -> Value {
    let mut stored = rename(&core, "events.k8s.io/v1", false);
    let fields = stored.as_object_mut().unwrap();
    // Drop the empty placeholders core/v1 adds, so the events.k8s.io view stays clean.
    fields.retain(|_, v| !(v.is_null() || *v == json!("") || *v == json!({})));
    stored
}
