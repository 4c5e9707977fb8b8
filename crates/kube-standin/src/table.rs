//! Server-side printing: `kubectl get` asks for `meta.k8s.io/v1` Tables
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`) and prints the cells it gets.
//!
//! For custom resources the columns are `Name` plus the CRD version's
//! `additionalPrinterColumns`, evaluated like the apiextensions table convertor: `string`
//! columns print any value as text, other types keep only values of their type, missing values
//! are `null`, and `date` columns are turned into ages ("5m") by the server, not by kubectl.
//! Built-ins get their real printers' main columns (namespaces: Status; leases: Holder;
//! events: Last Seen, Type, Reason, Object, Message) or, for CRDs, the default `Created At`.

use serde_json::{Value, json};

use super::events;
use super::meta;
use super::registry::{Flavor, ResourceDef};

/// What a row's `object` carries (`includeObject`): the default is the object's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// A `PartialObjectMetadata` for an object: what metadata-only clients and table rows get.
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"].clone(),
    })
}

struct Column {
    definition: Value,
    cell: Box<dyn Fn(&Value) -> Value>,
}

fn column(
    name: &str,
    kind: &str,
    format: &str,
    description: &str,
    priority: i64,
    cell: impl Fn(&Value) -> Value + 'static,
) -> Column {
    Column {
        definition: json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority}),
        cell: Box::new(cell),
    }
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

fn name_column() -> Column {
    column("Name", "string", "name", NAME_DESCRIPTION, 0, |o| {
        o["metadata"]["name"].clone()
    })
}

fn age_column() -> Column {
    column(
        "Age",
        "string",
        "",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
        0,
        |o| age_of(&o["metadata"]["creationTimestamp"]),
    )
}

fn age_of(timestamp: &Value) -> Value {
    match timestamp.as_str() {
        Some(t) => json!(meta::age(t)),
        None => json!("<unknown>"),
    }
}

/// Evaluates a printer column's JSONPath. Only simple paths (`.a.b`, `.a[0].b`, `.a['b.c']`)
/// are supported, which is what CRDs use in practice.
pub fn json_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut current = object;
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            current = current.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let index = r[..end].trim();
            current = match index.strip_prefix(['\'', '"']) {
                Some(quoted) => current.get(quoted.trim_end_matches(['\'', '"']))?,
                None => current.get(index.parse::<usize>().ok()?)?,
            };
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(current)
}

/// A CRD printer column's cell, as `cellForJSONValue` computes it.
fn custom_cell(value: Option<&Value>, kind: &str) -> Value {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match kind {
        "string" => match value {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
        "integer" => value
            .as_i64()
            .or_else(|| value.as_f64().map(|f| f as i64))
            .map(Value::from)
            .unwrap_or(Value::Null),
        "number" => value.as_f64().map(Value::from).unwrap_or(Value::Null),
        "boolean" => value.as_bool().map(Value::from).unwrap_or(Value::Null),
        "date" => match value.as_str() {
            Some(t) if t.parse::<k8s_openapi::jiff::Timestamp>().is_ok() => json!(meta::age(t)),
            Some(_) => json!("<invalid>"),
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

fn columns(def: &ResourceDef) -> Vec<Column> {
    match &def.flavor {
        Flavor::Custom(custom) => {
            let mut cols = vec![name_column()];
            if custom.printer_columns.is_empty() {
                // A CRD without printer columns gets Name and Age.
                cols.push(age_column());
            }
            for c in &custom.printer_columns {
                let path = c["jsonPath"].as_str().unwrap_or_default().to_string();
                let kind = c["type"].as_str().unwrap_or("string").to_string();
                let description =
                    c["description"]
                        .as_str()
                        .map(String::from)
                        .unwrap_or_else(|| {
                            format!(
                                "Custom resource definition column (in JSONPath format): {path}"
                            )
                        });
                let name = c["name"].as_str().unwrap_or_default();
                let format = c["format"].as_str().unwrap_or_default();
                let priority = c["priority"].as_i64().unwrap_or(0);
                let cell_kind = kind.clone();
                cols.push(column(
                    name,
                    &kind,
                    format,
                    &description,
                    priority,
                    move |o| custom_cell(json_path(o, &path), &cell_kind),
                ));
            }
            cols
        }
        Flavor::Namespace => vec![
            name_column(),
            column(
                "Status",
                "string",
                "",
                "The status of the namespace",
                0,
                |o| o["status"]["phase"].clone(),
            ),
            age_column(),
        ],
        Flavor::Lease => vec![
            name_column(),
            column("Holder", "string", "", "The holder of the lease", 0, |o| {
                o["spec"]["holderIdentity"]
                    .as_str()
                    .map(Value::from)
                    .unwrap_or(json!("<none>"))
            }),
            age_column(),
        ],
        Flavor::Event | Flavor::CoreEvent => event_columns(),
        Flavor::Crd => vec![
            name_column(),
            column(
                "Created At",
                "date",
                "",
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
                0,
                |o| o["metadata"]["creationTimestamp"].clone(),
            ),
        ],
    }
}

/// The event printer's columns, computed on the core/v1 shape.
fn event_columns() -> Vec<Column> {
    let core = |o: &Value| {
        if o["apiVersion"] == "v1" {
            o.clone()
        } else {
            events::to_core(o)
        }
    };
    vec![
        column(
            "Last Seen",
            "string",
            "",
            "Time when last event occurred",
            0,
            move |o| {
                let e = core(o);
                if e["series"]["lastObservedTime"].is_string() {
                    age_of(&e["series"]["lastObservedTime"])
                } else if e["lastTimestamp"].is_string() {
                    age_of(&e["lastTimestamp"])
                } else {
                    age_of(&e["eventTime"])
                }
            },
        ),
        column(
            "Type",
            "string",
            "",
            "Type of this event (Normal, Warning), new types could be added in the future.",
            0,
            move |o| core(o)["type"].clone(),
        ),
        column(
            "Reason",
            "string",
            "",
            "Reason is why the action was taken. It is human-readable.",
            0,
            move |o| core(o)["reason"].clone(),
        ),
        column(
            "Object",
            "string",
            "",
            "The object this Event is about.",
            0,
            move |o| {
                let target = &core(o)["involvedObject"];
                let kind = target["kind"].as_str().unwrap_or_default().to_lowercase();
                match target["name"].as_str().filter(|n| !n.is_empty()) {
                    Some(name) => json!(format!("{kind}/{name}")),
                    None => json!(kind),
                }
            },
        ),
        column(
            "Message",
            "string",
            "",
            "A human-readable description of the status of this operation.",
            0,
            move |o| json!(core(o)["message"].as_str().unwrap_or_default().trim()),
        ),
    ]
}

/// A Table of `objects` (views); `list_metadata` becomes the table's metadata.
pub fn table(
    def: &ResourceDef,
    objects: &[Value],
    list_metadata: Value,
    include: Include,
    api_version: &str,
) -> Value {
    let cols = columns(def);
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = cols.iter().map(|c| (c.cell)(o)).collect();
            let mut row = json!({"cells": cells});
            match include {
                Include::None => {}
                Include::Metadata => row["object"] = partial_metadata(o),
                Include::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": list_metadata,
        "columnDefinitions": cols.iter().map(|c| c.definition.clone()).collect::<Vec<_>>(),
        "rows": rows,
    })
}
