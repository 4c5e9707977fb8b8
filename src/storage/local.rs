//! A local folder as storage.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

use super::{Storage, StorageError, StorageErrorKind, StorageResult};
use crate::model::location::Location;

/// Objects are files below `root`; a key's `/` are folder separators.
#[derive(Debug)]
pub struct LocalStorage {
    location: Location,
    root: PathBuf,
}

/// Distinguishes concurrent temporary files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Listings come back in pages of this many keys, like S3's.
const PAGE: usize = 1000;

impl LocalStorage {
    pub fn new(root: PathBuf) -> Self {
        LocalStorage {
            location: Location::Local(root.clone()),
            root,
        }
    }

    /// A folder that stands in for another location (an S3 prefix in tests): the objects live
    /// in `root`, addresses name `location`.
    pub fn standing_in_for(location: Location, root: PathBuf) -> Self {
        LocalStorage { location, root }
    }

    /// The file of `key`. Keys come from specs and listings: one that would leave the root
    /// (absolute, `..`) is refused rather than joined, since `join` of an absolute path
    /// replaces the root.
    fn path(&self, key: &str) -> StorageResult<PathBuf> {
        if !key.is_empty() {
            crate::model::layout::check_relative_key(key).map_err(|why| {
                StorageError::new(
                    StorageErrorKind::Other,
                    format!("{}/{key}", self.root.display()),
                    format!("the key {why}"),
                )
            })?;
        }
        Ok(self.root.join(key))
    }

    /// The address of `key` for messages.
    fn url(&self, key: &str) -> String {
        self.root
            .join(key.trim_start_matches('/'))
            .display()
            .to_string()
    }

    fn error(&self, key: &str, err: std::io::Error) -> StorageError {
        let kind = match err.kind() {
            ErrorKind::NotFound => StorageErrorKind::NotFound,
            ErrorKind::PermissionDenied => StorageErrorKind::AccessDenied,
            _ => StorageErrorKind::Other,
        };
        let detail = if kind == StorageErrorKind::NotFound {
            String::new()
        } else {
            err.to_string()
        };
        StorageError::new(kind, self.url(key), detail)
    }

    async fn write_file(&self, key: &str, body: Vec<u8>) -> StorageResult<()> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| self.error(key, e))?;
        }
        let temp = path.with_file_name(format!(
            ".{}.{}.{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("object"),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = async {
            tokio::fs::write(&temp, &body).await?;
            tokio::fs::rename(&temp, &path).await
        }
        .await;
        if let Err(err) = result {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(self.error(key, err));
        }
        Ok(())
    }
}

impl Storage for LocalStorage {
    fn location(&self) -> &Location {
        &self.location
    }

    fn read<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StorageResult<Vec<u8>>> {
        async move {
            tokio::fs::read(self.path(key)?)
                .await
                .map_err(|e| self.error(key, e))
        }
        .boxed()
    }

    fn write<'a>(&'a self, key: &'a str, body: Vec<u8>) -> BoxFuture<'a, StorageResult<()>> {
        self.write_file(key, body).boxed()
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, StorageResult<Vec<String>>> {
        let root = self.root.clone();
        let prefix_owned = prefix.to_string();
        let walk = tokio::task::spawn_blocking(move || walk_prefix(&root, &prefix_owned));
        async move {
            match walk.await {
                Ok(Ok(keys)) => keys
                    .chunks(PAGE)
                    .map(|page| Ok(page.to_vec()))
                    .collect::<Vec<_>>(),
                Ok(Err(err)) => vec![Err(self.error(prefix, err))],
                Err(join) => vec![Err(StorageError::new(
                    StorageErrorKind::Other,
                    self.url(prefix),
                    join.to_string(),
                ))],
            }
        }
        .map(futures::stream::iter)
        .flatten_stream()
        .boxed()
    }

    fn copy<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, StorageResult<()>> {
        async move {
            let body = self.read(from).await?;
            self.write_file(to, body).await
        }
        .boxed()
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StorageResult<bool>> {
        async move {
            match tokio::fs::metadata(self.path(key)?).await {
                Ok(meta) => Ok(meta.is_file()),
                Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
                Err(err) => Err(self.error(key, err)),
            }
        }
        .boxed()
    }

    fn probe(&self) -> BoxFuture<'_, StorageResult<()>> {
        async move {
            match tokio::fs::metadata(&self.root).await {
                Ok(meta) if meta.is_dir() => Ok(()),
                Ok(_) => Err(StorageError::new(
                    StorageErrorKind::Other,
                    self.root.display().to_string(),
                    "it is a file, not a folder",
                )),
                Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
                Err(err) => Err(self.error("", err)),
            }
        }
        .boxed()
    }
}

/// Keys of the files below `root` that start with `prefix`, sorted like an S3 listing.
fn walk_prefix(root: &Path, prefix: &str) -> std::io::Result<Vec<String>> {
    // Only the folder named by the prefix up to its last '/' can hold matching files.
    let folder = match prefix.rfind('/') {
        Some(i) => &prefix[..i],
        None => "",
    };
    let mut keys = Vec::new();
    let start = root.join(folder);
    match std::fs::metadata(&start) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Ok(keys),
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(keys),
        Err(err) => return Err(err),
    }
    let mut stack = vec![(start, folder.to_string())];
    while let Some((dir, key_prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let key = if key_prefix.is_empty() {
                name.clone()
            } else {
                format!("{key_prefix}/{name}")
            };
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                let dir_key = format!("{key}/");
                if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                    stack.push((entry.path(), key));
                }
            } else if key.starts_with(prefix) && !is_temporary(&name) {
                keys.push(key);
            }
        }
    }
    keys.sort_unstable();
    Ok(keys)
}

fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{copy_all, list_all, write_all};

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "simseries-local-{name}-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn keys_that_would_leave_the_root_are_refused() {
        let root = temp_root("escape");
        let store = LocalStorage::new(root.join("w"));
        for key in ["/etc/passwd", "../x", "S/../../x"] {
            let err = store.read(key).await.unwrap_err();
            assert!(err.to_string().contains("the key"), "{err}");
            assert!(store.write(key, b"x".to_vec()).await.is_err());
            assert!(store.exists(key).await.is_err());
        }
        assert!(!root.join("x").exists());
    }

    #[tokio::test]
    async fn write_read_list_copy_exists() {
        let root = temp_root("basic");
        let store = LocalStorage::new(root.clone());
        store.probe().await.unwrap();
        write_all(
            &store,
            vec![
                ("S/2024-01-01/inputs/S_0.xml".into(), b"<a/>".to_vec()),
                (
                    "S/2024-01-01/outputs/S_A_0000.CELLS.json".into(),
                    b"{}".to_vec(),
                ),
                ("SX/other.txt".into(), b"x".to_vec()),
            ],
            2,
        )
        .await
        .unwrap();
        assert_eq!(
            store.read("S/2024-01-01/inputs/S_0.xml").await.unwrap(),
            b"<a/>"
        );
        assert_eq!(
            list_all(&store, "S/").await.unwrap(),
            vec![
                "S/2024-01-01/inputs/S_0.xml".to_string(),
                "S/2024-01-01/outputs/S_A_0000.CELLS.json".to_string()
            ]
        );
        assert_eq!(list_all(&store, "S").await.unwrap().len(), 3);
        assert!(list_all(&store, "nothing/").await.unwrap().is_empty());
        copy_all(
            &store,
            vec![(
                "SX/other.txt".into(),
                "S/2024-01-01/inits/S_0000.txt".into(),
            )],
            4,
        )
        .await
        .unwrap();
        assert!(store.exists("S/2024-01-01/inits/S_0000.txt").await.unwrap());
        assert!(!store.exists("S/missing").await.unwrap());
        let err = store.read("S/missing").await.unwrap_err();
        assert!(err.is_not_found());
        assert!(err.to_string().contains("S/missing: not found"), "{err}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn a_file_in_place_of_the_root_is_reported() {
        let root = temp_root("file");
        std::fs::write(&root, b"not a folder").unwrap();
        let err = LocalStorage::new(root.clone()).probe().await.unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
        std::fs::remove_file(root).unwrap();
    }
}
