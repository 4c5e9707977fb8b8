//! Watches: a chunked stream of newline-delimited `{"type": ..., "object": ...}` events.
//!
//! Where a watch starts follows the real server: with no `resourceVersion` (or "0") it first
//! replays every existing object as ADDED, with `sendInitialEvents=true` it does the same and
//! then marks the end of that replay with a BOOKMARK annotated `k8s.io/initial-events-end`,
//! and with a resourceVersion it sends the stored changes after it, or a 410 `Expired` ERROR
//! event when those changes are no longer retained. With `allowWatchBookmarks=true` a
//! BOOKMARK follows the initial replay and then comes every second, so clients can resume
//! from a recent resourceVersion.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::App;
use super::errors::ApiError;
use super::registry::ResourceDef;
use super::selectors::Selectors;
use super::store::{Change, ChangeKind, Start};
use super::table::{self, Include};

/// How watched objects are rendered, from the Accept header.
#[derive(Debug, Clone)]
pub enum Render {
    Object,
    Metadata,
    Table {
        include: Include,
        api_version: String,
    },
}

pub struct Request {
    pub def: ResourceDef,
    pub namespace: Option<String>,
    pub selectors: Selectors,
    pub resource_version: Option<String>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    pub render: Render,
}

const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

pub fn serve(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    let since = match request.resource_version.as_deref() {
        None | Some("") | Some("0") => None,
        Some(_) if request.send_initial_events => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let (tx, rx) = mpsc::channel::<String>(64);
    {
        let txn = app.store.txn(false);
        match txn.watch(&request.def.storage, since) {
            Ok((start, rv, changes)) => {
                tokio::spawn(run(app.clone(), request, start, rv, changes, tx));
            }
            Err(compacted) => {
                // The real server answers 200 and reports the expiry as the stream's only event.
                let status = ApiError::expired(format!(
                    "too old resource version: {} ({compacted})",
                    since.unwrap_or_default()
                ));
                let line = line(json!({"type": "ERROR", "object": status.status_body()}));
                tokio::spawn(async move {
                    let _ = tx.send(line).await;
                });
            }
        }
    }
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("cache-control", "no-cache, private")
        .body(Body::from_stream(body))
        .unwrap())
}

fn line(event: Value) -> String {
    let mut s = event.to_string();
    s.push('\n');
    s
}

struct Watcher {
    app: Arc<App>,
    request: Request,
    tx: mpsc::Sender<String>,
}

impl Watcher {
    fn in_scope(&self, object: &Value) -> bool {
        let namespace_ok = self
            .request
            .namespace
            .as_deref()
            .is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns));
        namespace_ok && self.request.selectors.matches(object)
    }

    fn render(&self, object: &Value) -> Value {
        match &self.request.render {
            Render::Object => object.clone(),
            Render::Metadata => table::partial_metadata(object),
            Render::Table {
                include,
                api_version,
            } => table::table(
                &self.request.def,
                std::slice::from_ref(object),
                json!({}),
                *include,
                api_version,
            ),
        }
    }

    async fn send(&self, kind: &str, object: &Value) -> bool {
        let event = json!({"type": kind, "object": self.render(object)});
        self.tx.send(line(event)).await.is_ok()
    }

    async fn bookmark(&self, rv: u64, initial_end: bool) -> bool {
        let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.request.def.kind, "apiVersion": self.request.def.api_version(), "metadata": metadata});
        self.tx
            .send(line(json!({"type": "BOOKMARK", "object": object})))
            .await
            .is_ok()
    }

    /// Sends one stored change if this watch sees it. Returns false once the client is gone.
    async fn deliver(&self, change: &Change) -> bool {
        if change.key.storage != self.request.def.storage {
            return true;
        }
        let object = self.request.def.to_view(&change.object);
        let now_in = self.in_scope(&object);
        let was_in = change
            .previous
            .as_ref()
            .is_some_and(|p| self.in_scope(&self.request.def.to_view(p)));
        // A change that moves an object into or out of a filtered watch's view reads as it
        // being added or deleted.
        let kind = match (change.kind, was_in, now_in) {
            (ChangeKind::Deleted, true, _) => ChangeKind::Deleted,
            (ChangeKind::Deleted, false, _) => return true,
            (_, true, true) => ChangeKind::Modified,
            (_, false, true) => ChangeKind::Added,
            (_, true, false) => ChangeKind::Deleted,
            (_, false, false) => return true,
        };
        self.send(kind.as_str(), &object).await
    }
}

async fn run(
    app: Arc<App>,
    request: Request,
    start: Start,
    start_rv: u64,
    mut changes: broadcast::Receiver<Arc<Change>>,
    tx: mpsc::Sender<String>,
) {
    let deadline = request.timeout.map(|t| tokio::time::Instant::now() + t);
    let watcher = Watcher { app, request, tx };
    // The newest resourceVersion this watch has fully processed (events it filtered out
    // included): a bookmark never claims more than that.
    let mut seen = start_rv;
    match start {
        Start::Snapshot(objects) => {
            for stored in &objects {
                let object = watcher.request.def.to_view(stored);
                if watcher.in_scope(&object) && !watcher.send("ADDED", &object).await {
                    return;
                }
            }
            if watcher.request.bookmarks
                && !watcher
                    .bookmark(seen, watcher.request.send_initial_events)
                    .await
            {
                return;
            }
        }
        Start::After(history) => {
            for change in &history {
                if !watcher.deliver(change).await {
                    return;
                }
            }
        }
    }
    let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
    ticker.reset();
    loop {
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = changes.recv() => match received {
                Ok(change) => {
                    if change.rv <= seen {
                        // Already replayed from history.
                        continue;
                    }
                    seen = change.rv;
                    if !watcher.deliver(&change).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let status = ApiError::expired("the watch fell behind; too old resource version");
                    let _ = watcher.tx.send(line(json!({"type": "ERROR", "object": status.status_body()}))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick(), if watcher.request.bookmarks => {
                // Every change up to the current resourceVersion was broadcast under the lock
                // before it was released, so after draining the channel all of them have been
                // processed and the bookmark is safe to resume from.
                let current = watcher.app.store.txn(false).rv();
                loop {
                    match changes.try_recv() {
                        Ok(change) => {
                            if change.rv > seen {
                                seen = change.rv;
                                if !watcher.deliver(&change).await {
                                    return;
                                }
                            }
                        }
                        Err(broadcast::error::TryRecvError::Empty) => break,
                        Err(_) => return,
                    }
                }
                seen = seen.max(current);
                if !watcher.bookmark(seen, false).await {
                    return;
                }
            }
            _ = timeout => return,
            _ = watcher.tx.closed() => return,
        }
    }
}
