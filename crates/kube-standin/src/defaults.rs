//! Structural defaulting from a CRD's `openAPIV3Schema`, as the real server does on create,
//! update and read: an absent field with a `default` gets it, and so does a `null` in a field
//! that is not `nullable` (the real server prunes such nulls before defaulting). Defaults are
//! applied top-down, so a defaulted object gets its own properties' defaults too.

use serde_json::Value;

pub fn apply(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(fields) => {
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    let nullable = property["nullable"].as_bool().unwrap_or(false);
                    let missing = match fields.get(name) {
                        None => true,
                        Some(Value::Null) => !nullable,
                        Some(_) => false,
                    };
                    if missing && let Some(default) = property.get("default") {
                        fields.insert(name.clone(), default.clone());
                    }
                    if let Some(child) = fields.get_mut(name) {
                        apply(child, property);
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let known = schema["properties"].as_object();
                for (name, child) in fields.iter_mut() {
                    if known.is_none_or(|k| !k.contains_key(name)) {
                        apply(child, additional);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply(item, item_schema);
                }
            }
        }
        _ => {}
    }
}
