//! A stateful stand-in for kube-apiserver, run in-process by the end-to-end tests, that the
//! real `kubectl` and kube-rs both talk to over plain HTTP on `127.0.0.1`.
//!
//! ```ignore
//! let server = kube_standin::start().await;               // on a multi-thread runtime
//! server.kubectl(&["apply", "-f", "crds/simulationseries.yaml"]);
//! let client = server.client().await;                      // a kube::Client for it
//! ```
//!
//! # Emulated
//!
//! - Discovery, legacy form (`/api`, `/api/v1`, `/apis`, `/apis/{group}[/{version}]`) and
//!   `/version`. kubectl falls back to it from aggregated discovery. Built in: `v1` namespaces
//!   and events, `apiextensions.k8s.io/v1` CRDs, `coordination.k8s.io/v1` leases,
//!   `events.k8s.io/v1` events. Every served version of a CRD created through the API
//!   appears at once, with its `status` subresource, verbs, short names, categories and scope.
//! - CRUD: get, list, create, replace (PUT), delete, deletecollection, for namespaced and
//!   cluster-scoped resources, with `Status` failure bodies (`NotFound`, `AlreadyExists`,
//!   `Conflict`, `Invalid`, `BadRequest`, `MethodNotAllowed`, `UnsupportedMediaType`).
//!   Create sets `uid`, `creationTimestamp`, `resourceVersion`, and `generation: 1` for custom
//!   resources and CRDs (the kinds whose real strategies set it); `generateName` works.
//!   `dryRun=All` computes the answer without storing it.
//! - One global `resourceVersion` counter (a string), bumped on every write; a PUT or patch
//!   carrying a stale `metadata.resourceVersion` gets 409 Conflict, and a PUT without one is
//!   refused (422) for custom resources and CRDs, as their real strategies refuse
//!   unconditional updates. A write that changes nothing is not written (no new
//!   resourceVersion, no watch event). DELETE honours `preconditions` (uid, resourceVersion).
//! - `metadata.generation` increments when anything but metadata (and status, with the status
//!   subresource) changes, and once when a deletion timestamp is first set. System metadata
//!   (uid, creationTimestamp, deletionTimestamp, generation) cannot be changed by clients.
//! - Patches: `merge-patch+json` (RFC 7386), `json-patch+json` (RFC 6902), and
//!   `strategic-merge-patch+json` for built-ins (a merge patch honouring `$patch` and
//!   `$deleteFromPrimitiveList`, without list merge keys); for custom resources it is refused
//!   with 415, as by the real server. `apply-patch+yaml` (server-side apply, JSON or YAML)
//!   creates a missing object and otherwise merges the applied fields into it: objects merge
//!   recursively, lists and scalars replace, `metadata.finalizers` is a set. `fieldManager`
//!   is required; `force` is accepted.
//! - Status subresource (`.../{name}/status`, GET/PUT/PATCH/apply): only `.status` changes
//!   there, and `.status` sent to the main resource is ignored, as is status on create.
//! - Finalizers: deleting an object with finalizers sets `deletionTimestamp` and
//!   `deletionGracePeriodSeconds: 0` (MODIFIED); removing the last finalizer then deletes it
//!   (DELETED, carrying the last stored state); new finalizers cannot be added meanwhile.
//!   Without finalizers DELETE removes at once and answers the object (custom resources) or a
//!   success `Status` (built-ins). `kubectl delete` (which waits) works.
//! - Namespaces: `default`, `kube-system`, `kube-public`, `kube-node-lease` exist from the
//!   start (the first three cannot be deleted). Deleting a namespace deletes its content, then
//!   the namespace once empty; creating in a terminating namespace is forbidden.
//! - CRDs: checked for the essentials (group, names, scope, one storage version, name =
//!   `plural.group`), defaulted (`singular`, `listKind`, conversion `None`), given an
//!   accepted status (`NamesAccepted`, `Established`, `acceptedNames`, `storedVersions`).
//!   Deleting a CRD deletes its custom resources, then the CRD. Versions convert with
//!   strategy `None` (only `apiVersion` changes).
//! - Defaulting from the CRD schema's `default`s, on write and read (structural, top-down;
//!   non-nullable `null`s are defaulted too).
//! - Watch (`?watch=1|true`) on collections, namespaced and across namespaces: without
//!   `resourceVersion` (or "0") ADDED for every existing object first; after a given
//!   resourceVersion the retained changes since then (the last 10,000 writes), else a 410
//!   `Expired` ERROR event; `sendInitialEvents=true` with the `k8s.io/initial-events-end`
//!   bookmark; `allowWatchBookmarks=true` (a BOOKMARK after the initial events, then every
//!   second); `timeoutSeconds`; `labelSelector` and `fieldSelector`, an object moving into or
//!   out of the selection reading as ADDED or DELETED. [`StandIn::compact`] drops the history.
//! - Lists: `labelSelector` (full grammar), `fieldSelector` (`=`, `==`, `!=` on any field
//!   path), `limit`/`continue`, `metadata.resourceVersion`.
//! - Tables for `kubectl get` (`as=Table`, meta.k8s.io v1 and v1beta1, `includeObject`):
//!   `Name` plus the CRD version's `additionalPrinterColumns` evaluated like the real table
//!   convertor (simple JSONPaths, typed cells, `null` when missing, and `date` columns
//!   rendered as ages by the server, as the real one does); built-ins get their real printers'
//!   main columns. Also `as=PartialObjectMetadata[List]`, for lists, gets and watches.
//! - OpenAPI v3 (`/openapi/v3` with hashed URLs, one document per group/version) for
//!   `kubectl explain` and for kubectl's check that the server does field validation;
//!   custom resource schemas are built from the CRD as the real server builds them.
//! - Events: `events.k8s.io/v1` and `core/v1` are two views of the same stored Events, with
//!   the real conversion between them (`regarding`↔`involvedObject`, `note`↔`message`,
//!   `reportingController`↔`reportingComponent`, `deprecated*`↔`source`/`firstTimestamp`/
//!   `lastTimestamp`/`count`), so `kubectl describe` shows events a kube-rs `Recorder` wrote.
//! - Leases: CRUD with optimistic concurrency, as leader election needs.
//!
//! # Not emulated
//!
//! - Server-side apply field ownership is approximated: each manager's last applied fields
//!   (leaf paths; lists are atomic) are remembered per object and subresource, and fields it
//!   stops applying are removed (with the maps it alone reached into), as the real server
//!   does. There are no `managedFields` in objects, no conflicts between managers, and fields
//!   set by merge or JSON patches or PUT have no owner (so an applying manager does not see
//!   them as someone else's).
//! - Schema validation and pruning of unknown fields: objects are stored as sent.
//!   `fieldValidation=Strict` is accepted and ignored, so unknown fields are not reported.
//! - Namespaces are created on the fly when an object is created in a missing one (the real
//!   server answers 404).
//! - Authentication, authorization, admission (webhooks, quotas, CEL rules), TLS,
//!   aggregated discovery, OpenAPI v2 (`/openapi/v2` is 404; kubectl does without it).
//! - Protobuf: responses are always JSON (clients asking for protobuf also accept JSON);
//!   protobuf request bodies are decoded only for Namespaces (name, generateName, labels,
//!   annotations, finalizers), which is what `kubectl create namespace` sends.
//! - Deletion propagation policies and garbage collection through `ownerReferences`;
//!   `gracePeriodSeconds`; event TTLs.
//! - Lists always show current state: `resourceVersion`/`resourceVersionMatch` on a list are
//!   ignored, and later pages of a paged list are not a snapshot of the first one.
//! - Conversion webhooks, scale subresources, `selectableFields`, other built-in resources.
//!
//! # Runtime
//!
//! The server runs as a task spawned on the caller's Tokio runtime. [`StandIn::kubectl`]
//! blocks the calling thread until kubectl exits; on a multi-thread runtime it does so through
//! `tokio::task::block_in_place`, so tests simply call it from
//! `#[tokio::test(flavor = "multi_thread")]`. On a current-thread runtime the server cannot
//! answer while the thread is blocked, so there call it via `tokio::task::spawn_blocking`.

mod crd;
mod crud;
mod defaults;
mod discovery;
mod errors;
mod events;
mod http;
mod lifecycle;
pub mod meta;
mod openapi;
mod patch;
mod protobuf;
mod registry;
mod selectors;
mod store;
mod table;
mod watch;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use serde_json::Value;

pub use store::Store;

/// Shared by every request handler.
pub struct App {
    pub store: Store,
    /// `127.0.0.1:PORT`, advertised in `/api`.
    pub address: String,
    /// Fields each manager last applied, per object (uid) and subresource, so that a field a
    /// manager stops applying is removed, as server-side apply does.
    pub applied:
        std::sync::Mutex<std::collections::HashMap<(String, String, String), patch::FieldSet>>,
}

/// A running stand-in server and the kubeconfig that points at it.
pub struct StandIn {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// A kubeconfig for `url` (no TLS, no credentials), current namespace `default`.
    pub kubeconfig: PathBuf,
    /// The server's state.
    pub app: Arc<App>,
    dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

/// Binds `127.0.0.1:0` and serves on a task of the current Tokio runtime.
pub async fn start() -> StandIn {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1:0");
    let address = listener.local_addr().unwrap().to_string();
    let app = Arc::new(App {
        store: Store::new(),
        address: address.clone(),
        applied: Default::default(),
    });
    let router = axum::Router::new()
        .fallback(http::handle)
        .with_state(app.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the stand-in API server runs");
    });
    let url = format!("http://{address}");
    let dir = temp_dir();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: {url}
contexts:
- name: standin
  context:
    cluster: standin
    user: standin
    namespace: default
current-context: standin
users:
- name: standin
  user: {{}}
"
        ),
    )
    .unwrap();
    StandIn {
        url,
        kubeconfig,
        app,
        dir,
        task,
    }
}

impl StandIn {
    /// Runs `/usr/bin/kubectl` against this server and waits for it (see the module docs on
    /// runtimes). kubectl's discovery and OpenAPI caches live in this server's own folder.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_stdin(args, "")
    }

    /// A kubectl command set up for this server, to run in the background (e.g. a
    /// `kubectl wait` started before the change it waits for).
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("/usr/bin/kubectl");
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("cache"));
        command
    }

    /// [`StandIn::kubectl`] with `input` on kubectl's standard input (`-f -`).
    pub fn kubectl_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let run = || {
            let mut child = self
                .kubectl_command(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("kubectl runs");
            {
                use std::io::Write;
                let mut stdin = child.stdin.take().unwrap();
                stdin
                    .write_all(input.as_bytes())
                    .expect("writing kubectl's input");
            }
            child.wait_with_output().expect("kubectl finishes")
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }

    /// A kube-rs client configured from this server's kubeconfig.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("reading the kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("a client config from the kubeconfig");
        kube::Client::try_from(config).expect("a kube client")
    }

    /// The stored object at an API path, e.g.
    /// `/apis/simseries.io/v1alpha1/namespaces/default/simulationseries/x`, as that
    /// group/version shows it.
    pub fn object(&self, api_path: &str) -> Option<Value> {
        let segments: Vec<&str> = api_path.split('/').filter(|s| !s.is_empty()).collect();
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return None,
        };
        let (namespace, plural, name) = match rest {
            ["namespaces", ns, plural, name] => (*ns, *plural, *name),
            [plural, name] => ("", *plural, *name),
            _ => return None,
        };
        let mut txn = self.app.store.txn(false);
        let def = txn
            .resources()
            .iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)?
            .clone();
        let stored = txn.get(&lifecycle::key(&def, Some(namespace), name))?;
        Some(def.to_view(stored))
    }

    /// Every stored Event, in its `events.k8s.io/v1` shape.
    pub fn events(&self) -> Vec<Value> {
        self.app
            .store
            .txn(false)
            .list("events", None)
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Every request so far: method and path with query.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.app
            .store
            .requests()
            .into_iter()
            .map(|(method, path, _)| (method, path))
            .collect()
    }

    /// Every request so far: method, path with query, and user agent.
    pub fn requests_with_agents(&self) -> Vec<(String, String, String)> {
        self.app.store.requests()
    }

    /// Forgets the watch history, like an etcd compaction: resuming a watch from an earlier
    /// resourceVersion then answers 410 Gone.
    pub fn compact(&self) {
        self.app.store.compact();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh folder for one server's kubeconfig and kubectl cache.
fn temp_dir() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kube-standin-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}
