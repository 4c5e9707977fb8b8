//! Request routing: discovery, OpenAPI and version endpoints, and the resource paths
//! `/api/v1/...` and `/apis/{group}/{version}/...`, namespaced or not, with `/status`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};
use serde_json::Value;

use super::App;
use super::crud::{self, Query, Target, Wants};
use super::discovery;
use super::errors::{ApiError, ApiResult};
use super::lifecycle::Part;
use super::openapi;
use super::protobuf;
use super::registry::ResourceDef;
use super::selectors::Selectors;
use super::table::Include;
use super::watch::{self, Render};

pub fn json_response(code: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// The representation asked for: the first acceptable media type in `Accept` wins, as in the
/// real server's negotiation. Discovery's aggregated form is never chosen.
fn wants(accept: &str) -> Wants {
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let mime = parts.next().unwrap_or_default();
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        if !matches!(mime, "application/json" | "*/*" | "application/*") {
            continue;
        }
        match (param("as"), param("g"), param("v")) {
            (None, _, _) => return Wants::Object,
            (Some("Table"), Some("meta.k8s.io"), Some(v @ ("v1" | "v1beta1"))) => {
                return Wants::Table(format!("meta.k8s.io/{v}"));
            }
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some("v1" | "v1beta1"),
            ) => {
                return Wants::Metadata;
            }
            _ => continue,
        }
    }
    Wants::Object
}

pub async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    app.store
        .log_request(parts.method.as_str(), &path_and_query, agent);
    let body = match to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("reading the body: {e}")).into_response(),
    };
    let header_str = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let request = Incoming {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query: Query::parse(parts.uri.query()),
        wants: wants(header_str(header::ACCEPT)),
        content_type: header_str(header::CONTENT_TYPE)
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        body: body.to_vec(),
    };
    match route(&app, request) {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

struct Incoming {
    method: Method,
    path: String,
    query: Query,
    wants: Wants,
    content_type: String,
    body: Vec<u8>,
}

fn route(app: &Arc<App>, request: Incoming) -> ApiResult<Response> {
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    let defs = app.store.txn(false).resources();
    let read_only = |response: Option<Value>| -> ApiResult<Response> {
        if request.method != Method::GET {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        response.map(|r| ok(&r)).ok_or_else(ApiError::no_route)
    };
    match segments.as_slice() {
        ["version"] => read_only(Some(discovery::version())),
        ["healthz" | "readyz" | "livez"] => Ok(Response::new(Body::from("ok"))),
        ["api"] => read_only(Some(discovery::core_versions(&app.address))),
        ["apis"] => read_only(Some(discovery::group_list(&defs))),
        ["openapi", "v3"] => read_only(Some(openapi::root(&defs))),
        ["openapi", "v3", rest @ ..] => read_only(openapi::document(&defs, &rest.join("/"))),
        ["api", "v1"] => read_only(discovery::resource_list(&defs, "", "v1")),
        ["apis", group] => read_only(discovery::group(&defs, group)),
        ["apis", group, version] => read_only(discovery::resource_list(&defs, group, version)),
        ["api", "v1", rest @ ..] => resource(app, &defs, "", "v1", rest, &request),
        ["apis", group, version, rest @ ..] => resource(app, &defs, group, version, rest, &request),
        _ => Err(ApiError::no_route()),
    }
}

/// Splits `[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]`.
fn target(defs: &[ResourceDef], group: &str, version: &str, rest: &[&str]) -> ApiResult<Target> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => {
            (Some(ns.to_string()), {
                let mut r = vec![*plural];
                r.extend_from_slice(tail);
                r
            })
        }
        other => (None, other.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(*sub)),
        _ => return Err(ApiError::no_route()),
    };
    let def = defs
        .iter()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
        .ok_or_else(ApiError::no_route)?
        .clone();
    if namespace.is_some() && !def.namespaced {
        return Err(ApiError::no_route());
    }
    if namespace.is_none() && def.namespaced && name.is_some() {
        return Err(ApiError::no_route());
    }
    let part = match sub {
        None => Part::Main,
        Some("status") if def.status_subresource => Part::Status,
        Some(s) if def.extra_subresources().contains(&s) => Part::Finalize,
        Some(_) => return Err(ApiError::no_route()),
    };
    Ok(Target {
        def,
        namespace,
        name,
        part,
    })
}

fn resource(
    app: &Arc<App>,
    defs: &[ResourceDef],
    group: &str,
    version: &str,
    rest: &[&str],
    request: &Incoming,
) -> ApiResult<Response> {
    let target = target(defs, group, version, rest)?;
    let query = &request.query;
    let respond =
        |(code, body): (u16, Value)| json_response(StatusCode::from_u16(code).unwrap(), &body);
    let parse_body = || -> ApiResult<Value> {
        if request.content_type == protobuf::MEDIA_TYPE {
            return protobuf::decode(&request.body);
        }
        serde_json::from_slice(&request.body)
            .or_else(|_| serde_yaml_ng::from_slice(&request.body))
            .map_err(|e| {
                ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
            })
    };
    let collection = target.name.is_none();
    if target.def.namespaced && target.namespace.is_none() && request.method != Method::GET {
        // Across all namespaces a namespaced resource can only be read.
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    match (request.method.clone(), collection) {
        (Method::GET, true) if query.flag("watch") => {
            let render = match &request.wants {
                Wants::Object => Render::Object,
                Wants::Metadata => Render::Metadata,
                Wants::Table(v) => Render::Table {
                    include: Include::parse(query.get("includeObject")),
                    api_version: v.clone(),
                },
            };
            watch::serve(
                app.clone(),
                watch::Request {
                    def: target.def.clone(),
                    namespace: target.namespace.clone(),
                    selectors: Selectors::parse(
                        query.get("labelSelector"),
                        query.get("fieldSelector"),
                    )?,
                    resource_version: query.get("resourceVersion").map(String::from),
                    send_initial_events: query.flag("sendInitialEvents"),
                    bookmarks: query.flag("allowWatchBookmarks"),
                    timeout: query
                        .get("timeoutSeconds")
                        .and_then(|t| t.parse().ok())
                        .map(Duration::from_secs),
                    render,
                },
            )
        }
        (Method::GET, true) => Ok(ok(&crud::list(app, &target, &request.wants, query)?)),
        (Method::GET, false) => Ok(ok(&crud::get(app, &target, &request.wants, query)?)),
        (Method::POST, true) => crud::create(app, &target, parse_body()?, query).map(respond),
        (Method::PUT, false) => crud::replace(app, &target, parse_body()?, query).map(respond),
        (Method::PATCH, false) => {
            crud::patch(app, &target, &request.content_type, &request.body, query).map(respond)
        }
        (Method::DELETE, false) => crud::delete(app, &target, &request.body, query).map(respond),
        (Method::DELETE, true) => crud::delete_collection(app, &target, query).map(respond),
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}
