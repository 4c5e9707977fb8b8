//! The stored state: objects keyed by (storage, namespace, name), one global resourceVersion
//! counter (etcd's revision), a bounded history of changes for watch resumption, and a
//! broadcast channel feeding live watches.
//!
//! Every write happens while holding the one lock, and broadcasts its change before the lock
//! is released, so a watch that subscribes under the lock sees every later change exactly
//! once and in resourceVersion order.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::registry::{self, ResourceDef};

/// How many changes are kept for watches that resume from a resourceVersion; older ones are
/// "compacted" and resuming before them answers 410 Gone.
const HISTORY: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub storage: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One write, as watches see it. `previous` lets selector-filtered watches turn a change that
/// moves an object into or out of their selection into ADDED or DELETED, as the real server
/// does.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub key: Key,
    pub kind: ChangeKind,
    pub object: Value,
    pub previous: Option<Value>,
}

pub struct Inner {
    pub rv: u64,
    pub objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    /// Changes up to this resourceVersion are no longer in `history`.
    pub compacted: u64,
    /// Method, path with query, and user agent of every request.
    pub requests: Vec<(String, String, String)>,
    /// The resources served, kept until a CRD changes: every request needs them, and reading
    /// them from the CRDs' JSON each time made the server's cost grow with its CRDs' schemas.
    resources: Option<Arc<Vec<ResourceDef>>>,
}

pub struct Store {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Arc<Change>>,
}

/// The lock held for one request's reads and writes.
pub struct Txn<'a> {
    pub inner: MutexGuard<'a, Inner>,
    changes: &'a broadcast::Sender<Arc<Change>>,
    /// `dryRun=All`: validate and compute everything, store nothing.
    pub dry_run: bool,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Self {
        let store = Self {
            inner: Mutex::new(Inner {
                rv: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 0,
                requests: Vec::new(),
                resources: None,
            }),
            changes: broadcast::channel(HISTORY).0,
        };
        let mut txn = store.txn(false);
        // The namespaces a fresh cluster has.
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            txn.create_namespace(ns);
        }
        drop(txn);
        store
    }

    pub fn txn(&self, dry_run: bool) -> Txn<'_> {
        Txn {
            inner: self.inner.lock().unwrap_or_else(|e| e.into_inner()),
            changes: &self.changes,
            dry_run,
        }
    }

    pub fn log_request(&self, method: &str, path: &str, agent: &str) {
        self.txn(false)
            .inner
            .requests
            .push((method.into(), path.into(), agent.into()));
    }

    pub fn requests(&self) -> Vec<(String, String, String)> {
        self.txn(false).inner.requests.clone()
    }

    /// Drops all retained history, like an etcd compaction: watches resuming from any earlier
    /// resourceVersion then get 410 Gone.
    pub fn compact(&self) {
        let mut txn = self.txn(false);
        txn.inner.compacted = txn.inner.rv;
        txn.inner.history.clear();
    }
}

/// Where a new watch starts: the objects to replay as ADDED, or the stored changes after a
/// resourceVersion.
pub enum Start {
    Snapshot(Vec<Value>),
    After(Vec<Arc<Change>>),
}

impl Txn<'_> {
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.inner.objects.get(key)
    }

    pub fn rv(&self) -> u64 {
        self.inner.rv
    }

    /// Objects of one storage, optionally of one namespace, in key order (as etcd lists).
    /// Keys order by storage, then namespace: a range, not a scan of every object (every
    /// request reads the CRDs, and a store may hold tens of thousands of objects).
    pub fn list(&self, storage: &str, namespace: Option<&str>) -> Vec<(Key, Value)> {
        self.range(storage, namespace)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// [`Txn::list`] without copies, for a reader that takes only some (a page).
    pub fn range<'a>(
        &'a self,
        storage: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        let first = Key {
            storage: storage.to_string(),
            namespace: namespace.unwrap_or_default().to_string(),
            name: String::new(),
        };
        self.inner.objects.range(first..).take_while(move |(k, _)| {
            k.storage == storage && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }

    /// Stores `object` (creating or replacing) under a new resourceVersion.
    pub fn put(&mut self, key: Key, mut object: Value) -> Value {
        let rv = self.inner.rv + 1;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if self.dry_run {
            return object;
        }
        self.inner.rv = rv;
        self.forget_resources_of(&key);
        let previous = self.inner.objects.insert(key.clone(), object.clone());
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.record(Change {
            rv,
            key,
            kind,
            object: object.clone(),
            previous,
        });
        object
    }

    /// Removes an object; what is returned (and sent to watches) is its last state, at the
    /// resourceVersion of the deletion, as etcd reports deletes.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut object = self.inner.objects.get(key)?.clone();
        let rv = self.inner.rv + 1;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if self.dry_run {
            return Some(object);
        }
        self.inner.rv = rv;
        self.forget_resources_of(key);
        let previous = self.inner.objects.remove(key);
        self.record(Change {
            rv,
            key: key.clone(),
            kind: ChangeKind::Deleted,
            object: object.clone(),
            previous,
        });
        Some(object)
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        if self.inner.history.len() == HISTORY
            && let Some(dropped) = self.inner.history.pop_front()
        {
            self.inner.compacted = dropped.rv;
        }
        self.inner.history.push_back(change.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(change);
    }

    /// Starts a watch: its starting point plus a receiver of every later change. `since` is
    /// `None` for "now, replaying current objects" and `Some(rv)` to resume after `rv`.
    pub fn watch(
        &self,
        storage: &str,
        since: Option<u64>,
    ) -> Result<(Start, u64, broadcast::Receiver<Arc<Change>>), u64> {
        let receiver = self.changes.subscribe();
        let start = match since {
            None => Start::Snapshot(
                self.list(storage, None)
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
            ),
            Some(rv) if rv < self.inner.compacted => return Err(self.inner.compacted),
            Some(rv) => Start::After(
                self.inner
                    .history
                    .iter()
                    .filter(|c| c.rv > rv && c.key.storage == storage)
                    .cloned()
                    .collect(),
            ),
        };
        Ok((start, self.inner.rv, receiver))
    }

    /// Every resource currently served: the built-ins and those of stored CRDs.
    pub fn resources(&mut self) -> Arc<Vec<ResourceDef>> {
        if let Some(defs) = &self.inner.resources {
            return defs.clone();
        }
        let mut defs = registry::builtins();
        for (_, crd) in self.list(registry::CRD_STORAGE, None) {
            defs.extend(registry::from_crd(&crd));
        }
        let defs = Arc::new(defs);
        self.inner.resources = Some(defs.clone());
        defs
    }

    /// A change to a CRD changes the resources served.
    fn forget_resources_of(&mut self, key: &Key) {
        if key.storage == registry::CRD_STORAGE {
            self.inner.resources = None;
        }
    }

    pub fn create_namespace(&mut self, name: &str) -> Value {
        let key = Key {
            storage: registry::NAMESPACE_STORAGE.into(),
            namespace: String::new(),
            name: name.into(),
        };
        let namespace = json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": super::meta::uid(),
                "creationTimestamp": super::meta::now(),
                "labels": {"kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        self.put(key, namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(storage: &str, namespace: &str, name: &str) -> Key {
        Key {
            storage: storage.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_list_holds_exactly_its_storage_and_namespace_in_key_order() {
        let store = Store::new();
        let mut txn = store.txn(false);
        for storage in ["a", "b", "bb", "c"] {
            for namespace in ["", "ns1", "ns2"] {
                for name in ["y", "x"] {
                    txn.put(key(storage, namespace, name), json!({"metadata": {}}));
                }
            }
        }
        let names = |list: Vec<(Key, Value)>| -> Vec<String> {
            list.into_iter()
                .map(|(k, _)| format!("{}/{}/{}", k.storage, k.namespace, k.name))
                .collect()
        };
        assert_eq!(
            names(txn.list("b", None)),
            ["b//x", "b//y", "b/ns1/x", "b/ns1/y", "b/ns2/x", "b/ns2/y"]
        );
        assert_eq!(names(txn.list("b", Some("ns1"))), ["b/ns1/x", "b/ns1/y"]);
        assert_eq!(names(txn.list("b", Some(""))), ["b//x", "b//y"]);
        assert!(txn.list("ab", None).is_empty());
        assert!(txn.list("c", Some("ns3")).is_empty());
    }

    #[test]
    fn the_resources_served_follow_the_crds_stored() {
        let store = Store::new();
        let mut txn = store.txn(false);
        let served = |txn: &mut Txn<'_>| -> Vec<String> {
            txn.resources()
                .iter()
                .filter(|d| d.group == "example.io")
                .map(|d| format!("{}/{}", d.plural, d.version))
                .collect()
        };
        let crd = |versions: Value| {
            json!({
                "metadata": {"name": "widgets.example.io"},
                "spec": {"group": "example.io", "scope": "Namespaced",
                         "names": {"plural": "widgets", "kind": "Widget"}, "versions": versions},
            })
        };
        let key = key(registry::CRD_STORAGE, "", "widgets.example.io");
        assert!(served(&mut txn).is_empty());
        txn.put(key.clone(), crd(json!([{"name": "v1", "served": true}])));
        assert_eq!(served(&mut txn), ["widgets/v1"]);
        txn.put(
            key.clone(),
            crd(json!([{"name": "v1", "served": true}, {"name": "v2", "served": true}])),
        );
        assert_eq!(served(&mut txn), ["widgets/v1", "widgets/v2"]);
        txn.remove(&key);
        assert!(served(&mut txn).is_empty());
    }
}
