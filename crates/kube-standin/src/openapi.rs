//! OpenAPI v3, one document per group/version, as `kubectl explain` and `kubectl apply`
//! read it.
//!
//! `kubectl explain` finds a kind's schema in `components.schemas` by its
//! `x-kubernetes-group-version-kind`. kubectl's field validation looks for a PATCH operation
//! of the kind (also tagged with `x-kubernetes-group-version-kind`) that lists the
//! `fieldValidation` query parameter: finding it, kubectl leaves validation to the server
//! (`?fieldValidation=Strict`), which this server accepts but does not act on.
//!
//! Custom resource schemas are built as the apiextensions server builds them: the CRD's
//! `openAPIV3Schema` plus `apiVersion`, `kind` and a `metadata` reference to `ObjectMeta`.
//! Built-in schemas come from k8s-openapi's own (generated from the upstream OpenAPI).

use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, ObjectMeta, Status};
use serde_json::{Map, Value, json};

use super::registry::{Flavor, ResourceDef};

const REF: &str = "#/components/schemas/";

/// The document path of a group/version, as listed in `/openapi/v3`.
fn doc_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash_of(doc: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    doc.to_string().hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

/// `GET /openapi/v3`: every group/version with a URL whose `hash` changes with its content, so
/// kubectl's cache notices a changed CRD.
pub fn root(defs: &[ResourceDef]) -> Value {
    let mut gvs: Vec<(String, String)> = defs
        .iter()
        .map(|d| (d.group.clone(), d.version.clone()))
        .collect();
    gvs.sort();
    gvs.dedup();
    let mut paths = Map::new();
    for (group, version) in gvs {
        let path = doc_path(&group, &version);
        let doc = document(defs, &path).expect("every served group/version has a document");
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash_of(&doc))}),
        );
    }
    json!({"paths": paths})
}

/// The schema name the real server uses: reversed group, version, kind.
fn schema_name(def: &ResourceDef, kind: &str) -> String {
    match &def.flavor {
        Flavor::Custom(_) => {
            let reversed: Vec<&str> = def.group.split('.').rev().collect();
            format!("{}.{}.{kind}", reversed.join("."), def.version)
        }
        Flavor::Namespace => format!("io.k8s.api.core.v1.{kind}"),
        Flavor::CoreEvent => format!("io.k8s.api.core.v1.{kind}"),
        Flavor::Lease => format!("io.k8s.api.coordination.v1.{kind}"),
        Flavor::Event => format!("io.k8s.api.events.v1.{kind}"),
        Flavor::Crd => format!("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.{kind}"),
    }
}

fn gvk(def: &ResourceDef, kind: &str) -> Value {
    json!({"group": def.group, "kind": kind, "version": def.version})
}

/// `GET /openapi/v3/{path}`.
pub fn document(defs: &[ResourceDef], path: &str) -> Option<Value> {
    let in_doc: Vec<&ResourceDef> = defs
        .iter()
        .filter(|d| doc_path(&d.group, &d.version) == path)
        .collect();
    if in_doc.is_empty() {
        return None;
    }
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    // Generating a type's schema registers it (and what it refers to) as a definition.
    let _ = generator.subschema_for::<ObjectMeta>();
    let _ = generator.subschema_for::<ListMeta>();
    let _ = generator.subschema_for::<Status>();
    let _ = generator.subschema_for::<DeleteOptions>();
    for def in &in_doc {
        let _ = match def.flavor {
            Flavor::Namespace => generator.subschema_for::<Namespace>(),
            Flavor::CoreEvent => generator.subschema_for::<CoreEvent>(),
            Flavor::Lease => generator.subschema_for::<Lease>(),
            Flavor::Event => generator.subschema_for::<Event>(),
            Flavor::Crd => generator.subschema_for::<CustomResourceDefinition>(),
            Flavor::Custom(_) => continue,
        };
    }
    let mut schemas = generator.take_definitions(true);
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
        json!({"description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.", "type": "object"}),
    );

    let mut paths = Map::new();
    for def in &in_doc {
        let name = schema_name(def, &def.kind);
        let list_name = schema_name(def, &def.list_kind);
        let mut schema = match &def.flavor {
            Flavor::Custom(custom) => custom_schema(custom.schema.clone()),
            _ => schemas
                .get(&name)
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"})),
        };
        schema["x-kubernetes-group-version-kind"] = json!([gvk(def, &def.kind)]);
        schemas.insert(name.clone(), schema);
        schemas.insert(
            list_name.clone(),
            json!({
                "description": format!("{} is a list of {}", def.list_kind, def.kind),
                "type": "object",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string", "description": API_VERSION_DOC},
                    "kind": {"type": "string", "description": KIND_DOC},
                    "items": {"type": "array", "items": {"$ref": format!("{REF}{name}")}},
                    "metadata": {"allOf": [{"$ref": format!("{REF}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")}]},
                },
                "x-kubernetes-group-version-kind": [gvk(def, &def.list_kind)],
            }),
        );
        for (path, item) in paths_of(def, &name, &list_name) {
            paths.insert(path, item);
        }
    }
    let title = if in_doc.iter().any(|d| d.is_custom()) {
        "Kubernetes CRD Swagger"
    } else {
        "Kubernetes"
    };
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": title, "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

fn custom_schema(crd_schema: Option<Value>) -> Value {
    let mut schema = crd_schema
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    let properties = schema["properties"].as_object_mut().unwrap();
    properties.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": API_VERSION_DOC}),
    );
    properties.insert(
        "kind".into(),
        json!({"type": "string", "description": KIND_DOC}),
    );
    properties.insert(
        "metadata".into(),
        json!({
            "allOf": [{"$ref": format!("{REF}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")}],
            "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        }),
    );
    schema
}

fn query(name: &str, kind: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": kind, "uniqueItems": true}})
}

fn write_parameters(with_force: bool) -> Vec<Value> {
    let mut params = vec![
        query(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted.",
        ),
        query(
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        query(
            "fieldValidation",
            "string",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
        ),
    ];
    if with_force {
        params.push(query(
            "force",
            "boolean",
            "Force is going to \"force\" Apply requests.",
        ));
    }
    params
}

fn read_parameters(list: bool) -> Vec<Value> {
    let mut params = vec![query(
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    )];
    if list {
        for (name, kind) in [
            ("allowWatchBookmarks", "boolean"),
            ("continue", "string"),
            ("fieldSelector", "string"),
            ("labelSelector", "string"),
            ("limit", "integer"),
            ("resourceVersionMatch", "string"),
            ("sendInitialEvents", "boolean"),
            ("timeoutSeconds", "integer"),
            ("watch", "boolean"),
        ] {
            params.push(query(name, kind, name));
        }
    }
    params
}

fn body(schema: &str, media: &[&str]) -> Value {
    let content: Map<String, Value> = media
        .iter()
        .map(|m| {
            (
                m.to_string(),
                json!({"schema": {"$ref": format!("{REF}{schema}")}}),
            )
        })
        .collect();
    json!({"content": content, "required": true})
}

fn ok(schema: &str) -> Value {
    json!({
        "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("{REF}{schema}")}}}},
        "401": {"description": "Unauthorized"},
    })
}

fn paths_of(def: &ResourceDef, name: &str, list_name: &str) -> Vec<(String, Value)> {
    let base = if def.group.is_empty() {
        format!("/api/{}", def.version)
    } else {
        format!("/apis/{}/{}", def.group, def.version)
    };
    let scope = if def.namespaced {
        format!("{base}/namespaces/{{namespace}}")
    } else {
        base.clone()
    };
    let id_kind = format!(
        "{}{}",
        if def.namespaced { "Namespaced" } else { "" },
        def.kind
    );
    let op = |action: &str,
              verb: &str,
              description: String,
              parameters: Vec<Value>,
              request: Option<Value>,
              response: &str| {
        let mut op = json!({
            "description": description,
            "operationId": format!("{verb}{id_kind}"),
            "parameters": parameters,
            "responses": ok(response),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk(def, &def.kind),
        });
        if let Some(request) = request {
            op["requestBody"] = request;
        }
        op
    };
    let patch_media = if def.is_custom() {
        vec![
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
    } else {
        vec![
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ]
    };
    let patch_body = body("io.k8s.apimachinery.pkg.apis.meta.v1.Patch", &patch_media);
    let object_body = body(name, &["application/json"]);
    let kind = &def.kind;
    let mut paths = vec![
        (
            format!("{scope}/{}", def.plural),
            json!({
                "get": op("list", "list", format!("list or watch objects of kind {kind}"), read_parameters(true), None, list_name),
                "post": op("post", "create", format!("create a {kind}"), write_parameters(false), Some(object_body.clone()), name),
                "delete": op("deletecollection", "deleteCollection", format!("delete collection of {kind}"), vec![], None, "io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
            }),
        ),
        (
            format!("{scope}/{}/{{name}}", def.plural),
            json!({
                "get": op("get", "read", format!("read the specified {kind}"), read_parameters(false), None, name),
                "put": op("put", "replace", format!("replace the specified {kind}"), write_parameters(false), Some(object_body.clone()), name),
                "patch": op("patch", "patch", format!("partially update the specified {kind}"), write_parameters(true), Some(patch_body.clone()), name),
                "delete": op("delete", "delete", format!("delete a {kind}"), vec![], Some(body("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", &["application/json"])), "io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
            }),
        ),
    ];
    if def.status_subresource {
        paths.push((
            format!("{scope}/{}/{{name}}/status", def.plural),
            json!({
                "get": op("get", "read", format!("read status of the specified {kind}"), read_parameters(false), None, name),
                "put": op("put", "replace", format!("replace status of the specified {kind}"), write_parameters(false), Some(object_body), name),
                "patch": op("patch", "patch", format!("partially update status of the specified {kind}"), write_parameters(true), Some(patch_body), name),
            }),
        ));
    }
    if def.namespaced {
        paths.push((
            format!("{base}/{}", def.plural),
            json!({"get": op("list", "list", format!("list or watch objects of kind {kind}"), read_parameters(true), None, list_name)}),
        ));
    }
    paths
}
