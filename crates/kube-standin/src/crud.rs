//! The resource verbs: get, list (with selectors and paging), create, replace, the four
//! patch types, delete and deletecollection. Each runs under the store's lock from start to
//! finish, so concurrent requests see each other's writes whole or not at all.

use serde_json::{Value, json};

use super::App;
use super::errors::{ApiError, ApiResult};
use super::lifecycle::{self, DeleteOptions, Part, Verb, with_subject};
use super::patch;
use super::registry::ResourceDef;
use super::selectors::Selectors;
use super::table::{self, Include};

/// The object or collection a request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    pub def: ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub part: Part,
}

impl Target {
    fn ns(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// The representation the client asked for in `Accept`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wants {
    Object,
    Metadata,
    Table(String),
}

/// Query parameters, percent-decoded, in order.
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Self(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

fn selectors(query: &Query) -> ApiResult<Selectors> {
    Selectors::parse(query.get("labelSelector"), query.get("fieldSelector"))
}

pub fn get(app: &App, target: &Target, wants: &Wants, query: &Query) -> ApiResult<Value> {
    let txn = app.store.txn(false);
    let key = lifecycle::key(&target.def, target.ns(), target.name());
    let stored = txn
        .get(&key)
        .ok_or_else(|| with_subject(&target.def, target.name(), ApiError::not_found))?;
    let object = target.def.to_view(stored);
    Ok(match wants {
        Wants::Object => object,
        Wants::Metadata => table::partial_metadata(&object),
        Wants::Table(api_version) => {
            let rv = object["metadata"]["resourceVersion"].clone();
            table::table(
                &target.def,
                &[object],
                json!({"resourceVersion": rv}),
                Include::parse(query.get("includeObject")),
                api_version,
            )
        }
    })
}

/// LIST. `limit`/`continue` page through the objects in key order; unlike the real server,
/// later pages show the current state rather than a snapshot at the first page's version.
pub fn list(app: &App, target: &Target, wants: &Wants, query: &Query) -> ApiResult<Value> {
    let selectors = selectors(query)?;
    let txn = app.store.txn(false);
    let mut rv = txn.rv().to_string();
    let after = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let decoded =
                unhex(token).ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
            let (token_rv, key) = decoded
                .split_once('\n')
                .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
            rv = token_rv.to_string();
            Some(key.to_string())
        }
        None => None,
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    // One page is copied, not the whole storage: a reflector pages through tens of thousands
    // of objects 500 at a time.
    let mut items: Vec<(String, Value)> = Vec::new();
    let mut remaining = 0usize;
    for (k, v) in txn.range(&target.def.storage, target.ns()) {
        let key = format!("{}\n{}", k.namespace, k.name);
        if after.as_ref().is_some_and(|a| key <= *a) {
            continue;
        }
        if limit.is_some_and(|l| items.len() == l) {
            // Past the page: count what is left, as the API server does only without
            // selectors; with them, knowing that one more matches is enough.
            if selectors.is_empty() {
                remaining += 1;
            } else if selectors.matches(&target.def.to_view(v)) {
                remaining += 1;
                break;
            }
            continue;
        }
        let view = target.def.to_view(v);
        if selectors.matches(&view) {
            items.push((key, view));
        }
    }
    drop(txn);
    let mut metadata = json!({"resourceVersion": rv});
    if remaining > 0
        && let Some((last, _)) = items.last()
    {
        metadata["continue"] = json!(hex(&format!("{rv}\n{last}")));
        if selectors.is_empty() {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    let mut objects: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
    Ok(match wants {
        Wants::Table(api_version) => table::table(
            &target.def,
            &objects,
            metadata,
            Include::parse(query.get("includeObject")),
            api_version,
        ),
        Wants::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": objects.iter().map(table::partial_metadata).collect::<Vec<_>>(),
        }),
        Wants::Object => {
            if !target.def.is_custom() {
                // Typed lists of built-ins carry no apiVersion/kind on their items.
                for o in &mut objects {
                    let fields = o.as_object_mut().unwrap();
                    fields.remove("apiVersion");
                    fields.remove("kind");
                }
            }
            json!({
                "kind": target.def.list_kind,
                "apiVersion": target.def.api_version(),
                "metadata": metadata,
                "items": objects,
            })
        }
    })
}

/// Checks (custom resources) or fills in (built-ins, whose typed decoding defaults them) the
/// body's apiVersion and kind.
fn check_type(def: &ResourceDef, body: &mut Value) -> ApiResult<()> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let api_version = def.api_version();
    for (field, expected) in [
        ("apiVersion", api_version.as_str()),
        ("kind", def.kind.as_str()),
    ] {
        match body[field].as_str() {
            None | Some("") if def.is_custom() => {
                return Err(ApiError::bad_request(format!(
                    "Object '{}' is missing in '{body}'",
                    if field == "kind" {
                        "Kind"
                    } else {
                        "apiVersion"
                    }
                )));
            }
            None | Some("") => body[field] = json!(expected),
            Some(given) if given != expected => {
                return Err(ApiError::bad_request(format!(
                    "the {} in the data ({given}) does not match the expected {} ({expected})",
                    if field == "kind" {
                        "kind"
                    } else {
                        "API version"
                    },
                    if field == "kind" {
                        "kind"
                    } else {
                        "API version"
                    },
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

pub fn create(
    app: &App,
    target: &Target,
    mut body: Value,
    query: &Query,
) -> ApiResult<(u16, Value)> {
    check_type(&target.def, &mut body)?;
    let mut txn = app.store.txn(query.dry_run());
    let created = lifecycle::create(&mut txn, &target.def, target.ns(), body)?;
    Ok((201, created))
}

pub fn replace(
    app: &App,
    target: &Target,
    mut body: Value,
    query: &Query,
) -> ApiResult<(u16, Value)> {
    check_type(&target.def, &mut body)?;
    let mut txn = app.store.txn(query.dry_run());
    let updated = lifecycle::update(
        &mut txn,
        &target.def,
        target.ns(),
        target.name(),
        target.part,
        Verb::Put,
        |_| Ok(body),
    )?;
    Ok((200, updated))
}

pub fn patch(
    app: &App,
    target: &Target,
    content_type: &str,
    body: &[u8],
    query: &Query,
) -> ApiResult<(u16, Value)> {
    let custom = target.def.is_custom();
    let accepted = if custom {
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    } else {
        "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
    };
    let json_body = || {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
    };
    let def = &target.def;
    let mut txn = app.store.txn(query.dry_run());
    let (ns, name, part) = (target.ns(), target.name(), target.part);
    let updated = match content_type {
        "application/merge-patch+json" => {
            let p = json_body()?;
            lifecycle::update(&mut txn, def, ns, name, part, Verb::Patch, |mut v| {
                patch::merge(&mut v, &p);
                Ok(v)
            })?
        }
        "application/json-patch+json" => {
            let p = json_body()?;
            lifecycle::update(&mut txn, def, ns, name, part, Verb::Patch, |mut v| {
                patch::json_patch(&mut v, &p)?;
                Ok(v)
            })?
        }
        // The real server has no strategic merge information for custom resources.
        "application/strategic-merge-patch+json" if !custom => {
            let p = json_body()?;
            lifecycle::update(&mut txn, def, ns, name, part, Verb::Patch, |mut v| {
                patch::strategic(&mut v, &p);
                Ok(v)
            })?
        }
        "application/apply-patch+yaml" => {
            let applied: Value = serde_json::from_slice(body)
                .or_else(|_| serde_yaml_ng::from_slice(body))
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            if query.get("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            for field in ["apiVersion", "kind"] {
                if applied[field].as_str().is_none_or(str::is_empty) {
                    return Err(ApiError::bad_request(format!(
                        "invalid object type: {field} must be set"
                    )));
                }
            }
            let manager = query.get("fieldManager").unwrap_or_default().to_string();
            let owned_now = patch::applied_fields(&applied, part == Part::Status);
            let remember = |uid: &str| {
                if !query.dry_run() {
                    let key = (uid.to_string(), manager.clone(), format!("{part:?}"));
                    app.applied.lock().unwrap().insert(key, owned_now.clone());
                }
            };
            let existing_uid = txn.get(&lifecycle::key(def, ns, name)).map(|v| {
                v["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            });
            if existing_uid.is_none() && part == Part::Main {
                let mut applied = applied;
                check_type(def, &mut applied)?;
                if applied["metadata"]["name"]
                    .as_str()
                    .is_none_or(str::is_empty)
                {
                    applied["metadata"]["name"] = json!(name);
                }
                let created = lifecycle::create(&mut txn, def, ns, applied)?;
                remember(created["metadata"]["uid"].as_str().unwrap_or_default());
                return Ok((201, created));
            }
            // A missing object fails in `update` with the real server's NotFound.
            let uid = existing_uid.unwrap_or_default();
            // Fields this manager applied last time and not now are removed, unless another
            // manager applied them too.
            let (previous, kept) = {
                let applied = app.applied.lock().unwrap();
                let mut kept = owned_now.clone();
                for ((owner_uid, owner, _), fields) in applied.iter() {
                    if *owner_uid == uid && *owner != manager {
                        kept.extend(fields.iter().cloned());
                    }
                }
                let previous = applied
                    .get(&(uid.clone(), manager.clone(), format!("{part:?}")))
                    .cloned()
                    .unwrap_or_default();
                (previous, kept)
            };
            let updated =
                lifecycle::update(&mut txn, def, ns, name, part, Verb::Patch, |mut v| {
                    patch::apply(&mut v, &applied);
                    for path in previous.difference(&owned_now) {
                        patch::remove_field(&mut v, path, &kept);
                    }
                    Ok(v)
                })?;
            remember(&uid);
            updated
        }
        _ => return Err(ApiError::unsupported_media_type(accepted)),
    };
    Ok((200, updated))
}

pub fn delete(app: &App, target: &Target, body: &[u8], query: &Query) -> ApiResult<(u16, Value)> {
    let options = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        DeleteOptions::from_body(&value)
    };
    let mut txn = app.store.txn(query.dry_run());
    let result = lifecycle::delete(&mut txn, &target.def, target.ns(), target.name(), &options)?;
    Ok((200, result))
}

pub fn delete_collection(app: &App, target: &Target, query: &Query) -> ApiResult<(u16, Value)> {
    let selectors = selectors(query)?;
    let mut txn = app.store.txn(query.dry_run());
    let names: Vec<(Option<String>, String)> = txn
        .list(&target.def.storage, target.ns())
        .into_iter()
        .filter(|(_, v)| selectors.matches(&target.def.to_view(v)))
        .map(|(k, _)| ((!k.namespace.is_empty()).then_some(k.namespace), k.name))
        .collect();
    let mut items = Vec::new();
    for (ns, name) in names {
        let result = lifecycle::delete(
            &mut txn,
            &target.def,
            ns.as_deref(),
            &name,
            &DeleteOptions::default(),
        )?;
        items.push(result);
    }
    Ok((
        200,
        json!({
            "kind": target.def.list_kind,
            "apiVersion": target.def.api_version(),
            "metadata": {"resourceVersion": txn.rv().to_string()},
            "items": items,
        }),
    ))
}
