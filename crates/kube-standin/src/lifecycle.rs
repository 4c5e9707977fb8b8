//! The registry semantics of writes, shared by every verb: what the server sets on create,
//! what an update may and may not change (status subresource, system metadata, generation),
//! graceful deletion with finalizers, and the namespace and CRD cleanup that the real server's
//! controllers do in the background (done here synchronously, right after the write).

use serde_json::{Value, json};

use super::crd;
use super::errors::{ApiError, ApiResult, Subject};
use super::meta;
use super::registry::{self, Flavor, ResourceDef};
use super::store::{Key, Txn};

/// The part of an update a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
    /// `namespaces/{name}/finalize`: only `spec.finalizers` changes.
    Finalize,
}

/// How the new object was produced; decides the resourceVersion rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Put,
    Patch,
}

pub fn key(def: &ResourceDef, namespace: Option<&str>, name: &str) -> Key {
    Key {
        storage: def.storage.clone(),
        namespace: if def.namespaced {
            namespace.unwrap_or_default().into()
        } else {
            String::new()
        },
        name: name.into(),
    }
}

pub fn with_subject<T>(def: &ResourceDef, name: &str, f: impl FnOnce(&Subject) -> T) -> T {
    let qualified = def.qualified();
    f(&Subject {
        qualified: &qualified,
        group: &def.group,
        resource: &def.plural,
        name,
    })
}

fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object["metadata"][field].as_str().unwrap_or_default()
}

fn has_finalizers(storage: &str, object: &Value) -> bool {
    let listed = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty());
    listed(&object["metadata"]["finalizers"])
        || (storage == registry::NAMESPACE_STORAGE && listed(&object["spec"]["finalizers"]))
}

/// POST (and server-side apply of a missing object). Returns the stored object's view.
pub fn create(
    txn: &mut Txn,
    def: &ResourceDef,
    namespace: Option<&str>,
    view: Value,
) -> ApiResult<Value> {
    let mut object = def.to_stored(view);
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    let mut name = meta_str(&object, "name").to_string();
    if name.is_empty() {
        let prefix = meta_str(&object, "generateName");
        if prefix.is_empty() {
            return Err(with_subject(def, "", |s| {
                ApiError::invalid(
                    s,
                    &def.qualified_kind(),
                    "metadata.name: Required value: name or generateName is required",
                )
            }));
        }
        name = format!("{prefix}{}", meta::name_suffix());
    }
    let body_namespace = meta_str(&object, "namespace").to_string();
    if def.namespaced {
        let ns = namespace.unwrap_or_default();
        if !body_namespace.is_empty() && body_namespace != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        ensure_namespace(txn, ns)?;
    }
    if let Some(custom) = def.custom()
        && custom.terminating
    {
        return Err(ApiError::method_not_allowed(
            "create not allowed while custom resource definition is terminating",
        ));
    }
    let key = key(def, namespace, &name);
    if txn.get(&key).is_some() {
        return Err(with_subject(def, &name, ApiError::already_exists));
    }

    let metadata = object["metadata"].as_object_mut().unwrap();
    metadata.insert("name".into(), json!(name));
    if def.namespaced {
        metadata.insert("namespace".into(), json!(key.namespace));
    } else {
        metadata.remove("namespace");
    }
    metadata.insert("uid".into(), json!(meta::uid()));
    metadata.insert("creationTimestamp".into(), json!(meta::now()));
    for server_owned in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "resourceVersion",
        "managedFields",
        "selfLink",
    ] {
        metadata.remove(server_owned);
    }
    if def.has_generation() {
        metadata.insert("generation".into(), json!(1));
    } else {
        metadata.remove("generation");
    }
    object["apiVersion"] = json!(def.api_version());
    object["kind"] = json!(def.kind);

    match &def.flavor {
        Flavor::Custom(custom) => {
            if def.status_subresource {
                // With the status subresource, status can only be written through it.
                object.as_object_mut().unwrap().remove("status");
            }
            if let Some(schema) = &custom.schema {
                super::defaults::apply(&mut object, schema);
            }
        }
        Flavor::Crd => {
            crd::validate_and_default(&mut object).map_err(|m| {
                with_subject(def, &name, |s| {
                    ApiError::invalid(s, &def.qualified_kind(), &m)
                })
            })?;
            crd::accept(&mut object, None);
        }
        Flavor::Namespace => {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
        Flavor::Lease | Flavor::Event | Flavor::CoreEvent => {}
    }
    let stored = txn.put(key, object);
    settle(txn);
    Ok(def.to_view(&stored))
}

/// Namespaced writes land in an existing, active namespace. A missing namespace is created on
/// the fly (the real server answers 404 instead) so tests need not create one first.
fn ensure_namespace(txn: &mut Txn, namespace: &str) -> ApiResult<()> {
    let key = Key {
        storage: registry::NAMESPACE_STORAGE.into(),
        namespace: String::new(),
        name: namespace.into(),
    };
    match txn.get(&key) {
        None => {
            txn.create_namespace(namespace);
            Ok(())
        }
        Some(ns) if !ns["metadata"]["deletionTimestamp"].is_null() => {
            Err(ApiError::forbidden(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            )))
        }
        Some(_) => Ok(()),
    }
}

/// PUT and PATCH of an existing object. `change` turns the current view into the requested
/// one. Returns the view of what is stored afterwards (or, when the update removed the last
/// finalizer of an object being deleted, of what was deleted).
pub fn update(
    txn: &mut Txn,
    def: &ResourceDef,
    namespace: Option<&str>,
    name: &str,
    part: Part,
    verb: Verb,
    change: impl FnOnce(Value) -> ApiResult<Value>,
) -> ApiResult<Value> {
    let key = key(def, namespace, name);
    let current = txn
        .get(&key)
        .cloned()
        .ok_or_else(|| with_subject(def, name, ApiError::not_found))?;
    let current_rv = meta_str(&current, "resourceVersion").to_string();
    let mut requested = change(def.to_view(&current))?;
    if !requested.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    if !requested["metadata"].is_object() {
        requested["metadata"] = json!({});
    }

    let requested_name = meta_str(&requested, "name");
    if !requested_name.is_empty() && requested_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({requested_name}) does not match the name on the URL ({name})"
        )));
    }
    let requested_namespace = meta_str(&requested, "namespace");
    if def.namespaced && !requested_namespace.is_empty() && requested_namespace != key.namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let requested_rv = meta_str(&requested, "resourceVersion");
    if requested_rv.is_empty() {
        if verb == Verb::Put && def.requires_resource_version_on_update() {
            return Err(with_subject(def, name, |s| {
                ApiError::invalid(
                    s,
                    &def.qualified_kind(),
                    "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                )
            }));
        }
    } else if requested_rv != current_rv {
        return Err(with_subject(def, name, ApiError::stale));
    }
    if let Some(kind) = requested["kind"].as_str()
        && kind != def.kind
        && def.is_custom()
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match {}",
            def.kind
        )));
    }

    let requested = def.to_stored(requested);
    let mut next = match part {
        Part::Main => {
            let mut next = requested;
            if def.status_subresource {
                // The status subresource owns `.status`: changes to it here are dropped.
                copy_field(&mut next, &current, "status");
            }
            if def.flavor == Flavor::Namespace {
                copy_field(&mut next, &current, "spec");
            }
            next
        }
        Part::Status => {
            // Only `.status` is taken from a status write; metadata included, the rest stays.
            let mut next = current.clone();
            copy_field(&mut next, &requested, "status");
            next
        }
        Part::Finalize => {
            let mut next = current.clone();
            next["spec"]["finalizers"] = requested["spec"]["finalizers"].clone();
            next
        }
    };

    // System metadata is the server's: clients cannot change it.
    for owned in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        let value = current["metadata"].get(owned).cloned();
        let metadata = next["metadata"].as_object_mut().unwrap();
        match value {
            Some(v) => metadata.insert(owned.into(), v),
            None => metadata.remove(owned),
        };
    }
    let metadata = next["metadata"].as_object_mut().unwrap();
    metadata.insert("name".into(), json!(name));
    if def.namespaced {
        metadata.insert("namespace".into(), json!(key.namespace));
    }
    metadata.insert("resourceVersion".into(), json!(current_rv));
    metadata.remove("managedFields");
    metadata.remove("selfLink");
    next["apiVersion"] = current["apiVersion"].clone();
    next["kind"] = current["kind"].clone();

    let deleting = !current["metadata"]["deletionTimestamp"].is_null();
    if deleting {
        let old: Vec<Value> = current["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let added: Vec<String> = next["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| !old.contains(f))
            .filter_map(|f| f.as_str().map(|s| format!("{s:?}")))
            .collect();
        if !added.is_empty() {
            return Err(with_subject(def, name, |s| {
                ApiError::invalid(
                    s,
                    &def.qualified_kind(),
                    &format!(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                        added.join(", ")
                    ),
                )
            }));
        }
    }

    match &def.flavor {
        Flavor::Custom(custom) => {
            if let Some(schema) = &custom.schema {
                super::defaults::apply(&mut next, schema);
            }
        }
        Flavor::Crd => {
            crd::validate_and_default(&mut next).map_err(|m| {
                with_subject(def, name, |s| {
                    ApiError::invalid(s, &def.qualified_kind(), &m)
                })
            })?;
            crd::accept(&mut next, Some(&current["status"]));
        }
        _ => {}
    }

    if def.has_generation() && spec_part(def, &next) != spec_part(def, &current) {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(0);
        next["metadata"]["generation"] = json!(generation + 1);
    }

    if deleting && !has_finalizers(&key.storage, &next) {
        // The real server deletes instead of writing the update; what it returns (and
        // watches see as DELETED) is the last stored state.
        let removed = txn.remove(&key).expect("the object exists under the lock");
        settle(txn);
        return Ok(def.to_view(&removed));
    }
    if next == current {
        // A no-op write is not written: no new resourceVersion, no watch event.
        return Ok(def.to_view(&current));
    }
    let stored = txn.put(key, next);
    settle(txn);
    Ok(def.to_view(&stored))
}

fn copy_field(to: &mut Value, from: &Value, field: &str) {
    let object = to.as_object_mut().unwrap();
    match from.get(field) {
        Some(v) => object.insert(field.into(), v.clone()),
        None => object.remove(field),
    };
}

/// What `metadata.generation` tracks: for custom resources everything but metadata (and
/// status, when it is a subresource); for CRDs the spec.
fn spec_part(def: &ResourceDef, object: &Value) -> Value {
    match def.flavor {
        Flavor::Crd => object["spec"].clone(),
        _ => {
            let mut rest = object.clone();
            let fields = rest.as_object_mut().unwrap();
            fields.remove("metadata");
            if def.status_subresource {
                fields.remove("status");
            }
            rest
        }
    }
}

/// The DeleteOptions a DELETE may carry.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl DeleteOptions {
    pub fn from_body(body: &Value) -> Self {
        let pre = &body["preconditions"];
        Self {
            uid: pre["uid"].as_str().map(String::from),
            resource_version: pre["resourceVersion"].as_str().map(String::from),
        }
    }
}

/// DELETE of one object: with finalizers it is only marked (deletionTimestamp), otherwise
/// removed. Returns what the real server returns: the object, or a success `Status` for stores
/// that do not return deleted objects.
pub fn delete(
    txn: &mut Txn,
    def: &ResourceDef,
    namespace: Option<&str>,
    name: &str,
    options: &DeleteOptions,
) -> ApiResult<Value> {
    let key = key(def, namespace, name);
    let mut current = txn
        .get(&key)
        .cloned()
        .ok_or_else(|| with_subject(def, name, ApiError::not_found))?;
    let uid = meta_str(&current, "uid").to_string();
    if let Some(want) = options.uid.as_deref().filter(|u| *u != uid) {
        return Err(with_subject(def, name, |s| {
            ApiError::conflict(
                s,
                &format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            )
        }));
    }
    let rv = meta_str(&current, "resourceVersion").to_string();
    if let Some(want) = options.resource_version.as_deref().filter(|r| *r != rv) {
        return Err(with_subject(def, name, |s| {
            ApiError::conflict(
                s,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
                ),
            )
        }));
    }
    let not_yet_deleting = current["metadata"]["deletionTimestamp"].is_null();
    match def.flavor {
        Flavor::Namespace => {
            if ["default", "kube-system", "kube-public"].contains(&name) {
                return Err(ApiError::forbidden(format!(
                    "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                )));
            }
            current["status"]["phase"] = json!("Terminating");
        }
        Flavor::Crd if not_yet_deleting => {
            let list = current["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !list.contains(&json!(crd::CLEANUP_FINALIZER)) {
                let mut list = list;
                list.push(json!(crd::CLEANUP_FINALIZER));
                current["metadata"]["finalizers"] = json!(list);
            }
            current["metadata"]["deletionTimestamp"] = json!(meta::now());
            let status = current["status"].clone();
            crd::accept(&mut current, Some(&status));
        }
        _ => {}
    }
    let (object, outcome) = mark_or_remove(txn, &key, current);
    settle(txn);
    if outcome == Outcome::Removed && !def.returns_deleted_object() {
        return Ok(json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": def.group, "kind": def.plural, "uid": uid},
        }));
    }
    Ok(def.to_view(&object))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Marked,
    Removed,
}

/// Deletes a stored object (given in the state to keep if it stays): marks it when it has
/// finalizers, removes it otherwise. Returns the resulting object and what happened.
fn mark_or_remove(txn: &mut Txn, key: &Key, mut object: Value) -> (Value, Outcome) {
    if has_finalizers(&key.storage, &object) {
        if object["metadata"]["deletionTimestamp"].is_null() {
            object["metadata"]["deletionTimestamp"] = json!(meta::now());
            // Resources without graceful deletion get their generation bumped when marked.
            if let Some(generation) = object["metadata"]["generation"].as_i64().filter(|g| *g > 0) {
                object["metadata"]["generation"] = json!(generation + 1);
            }
        }
        object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if Some(&object) == txn.get(key) {
            return (object, Outcome::Unchanged);
        }
        return (txn.put(key.clone(), object), Outcome::Marked);
    }
    (
        txn.remove(key).expect("the object exists under the lock"),
        Outcome::Removed,
    )
}

/// The background controllers' work, done at once: a terminating namespace has its content
/// deleted and goes once empty; a terminating CRD has its custom resources deleted and goes
/// once none is left. Objects with finalizers keep both waiting, as in a real cluster.
pub fn settle(txn: &mut Txn) {
    if txn.dry_run {
        // Nothing was written, so there is nothing to follow up on (and no progress to make).
        return;
    }
    loop {
        let mut changed = false;
        for (ns_key, namespace) in txn.list(registry::NAMESPACE_STORAGE, None) {
            if namespace["metadata"]["deletionTimestamp"].is_null() {
                continue;
            }
            let content: Vec<(Key, Value)> = txn
                .inner
                .objects
                .iter()
                .filter(|(k, _)| {
                    k.namespace == ns_key.name && k.storage != registry::NAMESPACE_STORAGE
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (key, object) in &content {
                if object["metadata"]["deletionTimestamp"].is_null() {
                    changed |= mark_or_remove(txn, key, object.clone()).1 != Outcome::Unchanged;
                }
            }
            if content.is_empty() {
                let mut namespace = namespace.clone();
                namespace["spec"]["finalizers"] = json!([]);
                changed |= mark_or_remove(txn, &ns_key, namespace).1 != Outcome::Unchanged;
            }
        }
        for (crd_key, crd_object) in txn.list(registry::CRD_STORAGE, None) {
            let cleanup = json!(crd::CLEANUP_FINALIZER);
            let pending = crd_object["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.contains(&cleanup));
            if crd_object["metadata"]["deletionTimestamp"].is_null() || !pending {
                continue;
            }
            let spec = &crd_object["spec"];
            let storage = registry::custom_storage(
                spec["group"].as_str().unwrap_or_default(),
                spec["names"]["plural"].as_str().unwrap_or_default(),
            );
            let content = txn.list(&storage, None);
            for (key, object) in &content {
                if object["metadata"]["deletionTimestamp"].is_null() {
                    changed |= mark_or_remove(txn, key, object.clone()).1 != Outcome::Unchanged;
                }
            }
            if content.is_empty() {
                let mut crd_object = crd_object.clone();
                let finalizers = crd_object["metadata"]["finalizers"].as_array_mut().unwrap();
                finalizers.retain(|f| *f != cleanup);
                changed |= mark_or_remove(txn, &crd_key, crd_object).1 != Outcome::Unchanged;
            }
        }
        if !changed {
            break;
        }
    }
}
