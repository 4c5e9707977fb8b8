//! The four patch flavours, each applied to the object as the client sees it (its view).

use serde_json::{Map, Value};

use super::errors::{ApiError, ApiResult};

/// RFC 7386 JSON merge patch: objects merge recursively, `null` removes, anything else
/// (arrays included) replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let fields = target.as_object_mut().unwrap();
    for (key, value) in patch_fields {
        if value.is_null() {
            fields.remove(key);
        } else {
            merge(fields.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// A strategic merge patch, for built-in types only, applied as a merge patch after honouring
/// the `$patch: replace|delete` and `$deleteFromPrimitiveList/` directives and dropping the
/// ordering hints (`$setElementOrder/`, `$retainKeys`). List merge keys are not honoured: a list
/// in the patch replaces the stored one.
pub fn strategic(target: &mut Value, patch: &Value) {
    let Value::Object(patch_fields) = patch else {
        *target = patch.clone();
        return;
    };
    match patch_fields.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch.clone();
            strip_directives(&mut replaced);
            *target = replaced;
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let fields = target.as_object_mut().unwrap();
    for (key, value) in patch_fields {
        if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(remove)) =
                (fields.get_mut(list), value.as_array())
            {
                items.retain(|item| !remove.contains(item));
            }
        } else if key.starts_with('$') {
            continue;
        } else if value.is_null() {
            fields.remove(key);
        } else {
            let child = fields.entry(key.clone()).or_insert(Value::Null);
            strategic(child, value);
            if child.is_null() {
                fields.remove(key);
            }
        }
    }
}

fn strip_directives(value: &mut Value) {
    if let Value::Object(fields) = value {
        fields.retain(|k, _| !k.starts_with('$'));
        fields.values_mut().for_each(strip_directives);
    }
}

/// Leaf paths of an applied configuration: what its field manager owns. Lists are atomic.
pub type FieldSet = std::collections::BTreeSet<Vec<String>>;

/// The fields `applied` sets, below `scope` (`status` for the status subresource) or, for the
/// main resource, everywhere but the identifying fields and `status`.
pub fn applied_fields(applied: &Value, status: bool) -> FieldSet {
    fn walk(value: &Value, path: &mut Vec<String>, out: &mut FieldSet) {
        match value {
            Value::Object(fields) if !fields.is_empty() => {
                for (key, child) in fields {
                    path.push(key.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        }
    }
    let mut out = FieldSet::new();
    if status {
        walk(
            &applied["status"],
            &mut vec!["status".to_string()],
            &mut out,
        );
    } else {
        walk(applied, &mut Vec::new(), &mut out);
        out.retain(|p| {
            let p: Vec<&str> = p.iter().map(String::as_str).collect();
            !matches!(
                p.as_slice(),
                ["apiVersion"]
                    | ["kind"]
                    | ["status", ..]
                    | ["metadata", "name"]
                    | ["metadata", "namespace"]
            )
        });
    }
    out
}

/// Removes the field at `path` (a field a manager applied before and applies no more), and
/// the highest map above it that no field in `kept` (what this manager applies now, and what
/// other managers applied) reaches into: the manager owned that map, and what is left in it
/// (defaults, say) goes with it, as with server-side apply.
pub fn remove_field(target: &mut Value, path: &[String], kept: &FieldSet) {
    let depth = (1..=path.len())
        .find(|&depth| !kept.iter().any(|p| p.starts_with(&path[..depth])))
        .unwrap_or(path.len());
    let (prefix, last) = (&path[..depth - 1], &path[depth - 1]);
    let mut node = target;
    for key in prefix {
        match node.get_mut(key) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Value::Object(fields) = node {
        fields.remove(last);
    }
}

/// Server-side apply, approximated: the applied configuration is merged into the live object
/// (objects merge recursively, lists and scalars replace, `null` is stored as given), except
/// that `metadata.finalizers` is a set and keeps the finalizers of others.
pub fn apply(target: &mut Value, applied: &Value) {
    apply_at(target, applied, &mut Vec::new());
}

fn apply_at(target: &mut Value, applied: &Value, path: &mut Vec<String>) {
    match (target.as_object_mut(), applied) {
        (Some(fields), Value::Object(applied_fields)) => {
            for (key, value) in applied_fields {
                path.push(key.clone());
                let child = fields.entry(key.clone()).or_insert(Value::Null);
                if path == &["metadata", "finalizers"] {
                    let mut union = child.as_array().cloned().unwrap_or_default();
                    for f in value.as_array().into_iter().flatten() {
                        if !union.contains(f) {
                            union.push(f.clone());
                        }
                    }
                    *child = Value::Array(union);
                } else if value.is_object() && child.is_object() {
                    apply_at(child, value, path);
                } else {
                    *child = value.clone();
                }
                path.pop();
            }
        }
        _ => *target = applied.clone(),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, operations: &Value) -> ApiResult<()> {
    let ops = operations.as_array().ok_or_else(|| {
        ApiError::bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    })?;
    for op in ops {
        let path = op["path"]
            .as_str()
            .ok_or_else(|| unprocessable("missing path"))?;
        match op["op"].as_str().unwrap_or_default() {
            "add" => add(target, path, value_of(op)?)?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(target, path, value_of(op)?)?;
            }
            "move" => {
                let from = op["from"]
                    .as_str()
                    .ok_or_else(|| unprocessable("missing from"))?;
                let value = remove(target, from)?;
                add(target, path, value)?;
            }
            "copy" => {
                let from = op["from"]
                    .as_str()
                    .ok_or_else(|| unprocessable("missing from"))?;
                let value = target.pointer(from).cloned().ok_or_else(|| missing(from))?;
                add(target, path, value)?;
            }
            "test" => {
                // As in the server's JSON patch library, a missing field tests equal to null
                // (kube-rs's finalizer helper relies on it).
                let expected = value_of(op)?;
                let actual = target.pointer(path).unwrap_or(&Value::Null);
                if *actual != expected {
                    return Err(unprocessable(format!(
                        "testing value {path} failed: test failed"
                    )));
                }
            }
            other => return Err(unprocessable(format!("Unexpected kind: {other}"))),
        }
    }
    Ok(())
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::unprocessable(message)
}

fn missing(path: &str) -> ApiError {
    unprocessable(format!("doc is missing path: \"{path}\": missing value"))
}

fn value_of(op: &Value) -> ApiResult<Value> {
    op.get("value")
        .cloned()
        .ok_or_else(|| unprocessable("missing value"))
}

/// Splits a JSON pointer into its parent pointer and unescaped last token.
fn split(path: &str) -> ApiResult<(&str, String)> {
    let at = path.rfind('/').ok_or_else(|| missing(path))?;
    Ok((
        &path[..at],
        path[at + 1..].replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(target: &mut Value, path: &str, value: Value) -> ApiResult<()> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, token) = split(path)?;
    match target.pointer_mut(parent) {
        Some(Value::Object(fields)) => {
            fields.insert(token, value);
        }
        Some(Value::Array(items)) => {
            let index = if token == "-" {
                items.len()
            } else {
                token.parse().map_err(|_| missing(path))?
            };
            if index > items.len() {
                return Err(missing(path));
            }
            items.insert(index, value);
        }
        _ => return Err(missing(path)),
    }
    Ok(())
}

fn remove(target: &mut Value, path: &str) -> ApiResult<Value> {
    let (parent, token) = split(path)?;
    let removed = match target.pointer_mut(parent) {
        Some(Value::Object(fields)) => fields.remove(&token),
        Some(Value::Array(items)) => token
            .parse::<usize>()
            .ok()
            .filter(|i| *i < items.len())
            .map(|i| items.remove(i)),
        _ => None,
    };
    removed.ok_or_else(|| missing(path))
}
