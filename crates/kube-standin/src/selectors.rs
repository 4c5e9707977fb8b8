//! `labelSelector` and `fieldSelector` query parameters.
//!
//! Label selectors support the whole set-based grammar. Field selectors accept `=`, `==` and
//! `!=` on any dotted field path (the real server allows only a few fields per type, e.g.
//! `metadata.name`, `metadata.namespace`, and `involvedObject.*` for events; this accepts
//! more rather than rejecting).

use serde_json::Value;

use super::errors::{ApiError, ApiResult};

#[derive(Debug, Clone, Default)]
pub struct Selectors {
    labels: Vec<LabelRequirement>,
    fields: Vec<FieldRequirement>,
}

#[derive(Debug, Clone)]
enum LabelRequirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

#[derive(Debug, Clone)]
struct FieldRequirement {
    path: String,
    equal: bool,
    value: String,
}

impl Selectors {
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> ApiResult<Self> {
        Ok(Self {
            labels: labels.map(parse_labels).transpose()?.unwrap_or_default(),
            fields: fields.map(parse_fields).transpose()?.unwrap_or_default(),
        })
    }

    /// Whether no requirement was given (every object matches).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |k: &str| labels.get(k).and_then(Value::as_str);
        self.labels.iter().all(|r| match r {
            LabelRequirement::In(k, vs) => label(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            LabelRequirement::NotIn(k, vs) => label(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
            LabelRequirement::Exists(k) => label(k).is_some(),
            LabelRequirement::DoesNotExist(k) => label(k).is_none(),
        }) && self
            .fields
            .iter()
            .all(|r| (field_value(object, &r.path) == r.value) == r.equal)
    }
}

/// A field as a selector compares it: missing fields read as "".
fn field_value(object: &Value, path: &str) -> String {
    let mut current = object;
    for part in path.split('.') {
        match current.get(part) {
            Some(v) => current = v,
            None => return String::new(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_labels(s: &str) -> ApiResult<Vec<LabelRequirement>> {
    let invalid = || {
        ApiError::bad_request(format!(
            "unable to parse requirement: invalid label selector: {s:?}"
        ))
    };
    split_top(s)
        .into_iter()
        .map(|part| {
            let set = |rest: &str| -> Option<Vec<String>> {
                let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
                Some(
                    inner
                        .split(',')
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .collect(),
                )
            };
            if let Some(key) = part.strip_prefix('!') {
                Ok(LabelRequirement::DoesNotExist(key.trim().into()))
            } else if let Some((k, v)) = part.split_once("!=") {
                Ok(LabelRequirement::NotIn(
                    k.trim().into(),
                    vec![v.trim().into()],
                ))
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Ok(LabelRequirement::In(k.trim().into(), vec![v.trim().into()]))
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Ok(LabelRequirement::NotIn(
                    k.trim().into(),
                    set(rest).ok_or_else(invalid)?,
                ))
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Ok(LabelRequirement::In(
                    k.trim().into(),
                    set(rest).ok_or_else(invalid)?,
                ))
            } else if part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                Ok(LabelRequirement::Exists(part.into()))
            } else {
                Err(invalid())
            }
        })
        .collect()
}

fn parse_fields(s: &str) -> ApiResult<Vec<FieldRequirement>> {
    split_top(s)
        .into_iter()
        .map(|part| {
            let (path, equal, value) = if let Some((p, v)) = part.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (p, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            Ok(FieldRequirement {
                path: path.trim().into(),
                equal,
                value: v_unescape(value.trim()),
            })
        })
        .collect()
}

/// Field selector values escape `\,` `\=` and `\\`.
fn v_unescape(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}
