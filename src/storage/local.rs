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
        let written = tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            write_atomically(&path, &body)
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(self.error(key, err)),
            Err(join) => Err(self.join_error(key, join)),
        }
    }

    fn join_error(&self, key: &str, join: tokio::task::JoinError) -> StorageError {
        StorageError::new(StorageErrorKind::Other, self.url(key), join.to_string())
    }
}

/// Writes `body` to a temporary file beside `path`, then renames it there: a reader (a model,
/// a restarted run) sees the whole file or none.
fn write_atomically(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let temp = temp_beside(path);
    let result = std::fs::write(&temp, body).and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// A temporary file name beside `path`, unique to this process and call.
fn temp_beside(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        ".{}.{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("object"),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The files of a batch that go into one folder: (file name, key, body).
type FolderFiles = Vec<(std::ffi::OsString, String, Vec<u8>)>;
type WriteResult = Result<(), (String, std::io::Error)>;

/// Writes one folder's files, whole or not at all as a reader sees them.
///
/// A folder that does not exist yet (a new dated folder's inputs, a pass's logs) is written
/// into a hidden staging folder beside it with plain writes, then renamed into place once: a
/// crash leaves only the staging folder, which listings skip and the next write of that folder
/// removes. That costs one rename per folder instead of a temporary file and a rename per
/// file, which on one directory is twice the time of the writes themselves (`cargo bench
/// --bench plan`). An existing folder gets each file atomically.
fn write_folder(root: &Path, folder: &Path, files: FolderFiles) -> WriteResult {
    let key_of_folder =
        |files: &FolderFiles| files.first().map(|f| f.1.clone()).unwrap_or_default();
    // The root itself is never staged: its staging folder would sit outside it.
    if folder == root {
        std::fs::create_dir_all(root).map_err(|e| (key_of_folder(&files), e))?;
        return write_each_atomically(folder, files);
    }
    match std::fs::symlink_metadata(folder) {
        Ok(_) => return write_each_atomically(folder, files),
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => return Err((key_of_folder(&files), err)),
    }
    let parent = folder.parent().unwrap_or(Path::new("."));
    let name = folder
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("folder")
        .to_string();
    std::fs::create_dir_all(parent).map_err(|e| (key_of_folder(&files), e))?;
    remove_stale_staging(parent, &name);
    let staging = parent.join(format!(
        ".{name}.{}-{}.staging",
        process_token(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let first_key = key_of_folder(&files);
    std::fs::create_dir(&staging).map_err(|e| (first_key.clone(), e))?;
    let names: Vec<(std::ffi::OsString, String)> = files
        .iter()
        .map(|(f, k, _)| (f.clone(), k.clone()))
        .collect();
    if let Err(failed) = write_shares(&staging, &files) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(failed);
    }
    match std::fs::rename(&staging, folder) {
        Ok(()) => Ok(()),
        // The folder appeared meanwhile (another write of the same new folder): each file
        // moves in on its own, still whole.
        Err(_) if folder.is_dir() => {
            let moved = names.into_iter().try_for_each(|(file, key)| {
                std::fs::rename(staging.join(&file), folder.join(&file)).map_err(|e| (key, e))
            });
            let _ = std::fs::remove_dir_all(&staging);
            moved
        }
        Err(err) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err((first_key, err))
        }
    }
}

/// Writers on one new folder: a second one still gains on these machines (`cargo bench
/// --bench plan` prints the minimal writer with one and with two), a third only waits.
const WRITERS_PER_FOLDER: usize = 2;

/// Plain writes of `files` into `folder`, by up to `WRITERS_PER_FOLDER` threads with
/// contiguous shares; the first error in order wins.
fn write_shares(folder: &Path, files: &FolderFiles) -> WriteResult {
    let share = files.len().div_ceil(WRITERS_PER_FOLDER).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(share)
            .map(|chunk| {
                scope.spawn(move || {
                    for (file, key, body) in chunk {
                        write_plain(&folder.join(file), body).map_err(|e| (key.clone(), e))?;
                        crate::faults::crash_point("storage-write");
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a writer thread does not panic"))
            .collect::<Vec<WriteResult>>()
            .into_iter()
            .collect::<WriteResult>()
    })
}

fn write_plain(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::File::create(path)?.write_all(body)
}

fn write_each_atomically(folder: &Path, files: FolderFiles) -> WriteResult {
    for (file, key, body) in files {
        write_atomically(&folder.join(file), &body).map_err(|e| (key, e))?;
        crate::faults::crash_point("storage-write");
    }
    Ok(())
}

/// Identifies this process's staging folders among those a crashed process left (a restarted
/// controller in a container has the same PID, 1, as the one that crashed).
fn process_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}-{nanos:x}", std::process::id())
    })
}

/// Removes the staging folders of `name` that another process left: one writer per series
/// at a time (the run lock, the leader's Lease) means they belong to a crashed one.
fn remove_stale_staging(parent: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let prefix = format!(".{name}.");
    let mine = format!(".{name}.{}-", process_token());
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.starts_with(&prefix) && is_staging(file_name) && !file_name.starts_with(&mine)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn is_staging(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".staging")
}

/// A batch grouped by folder, in the order each folder first appears.
fn by_folder(files: Vec<(PathBuf, String, Vec<u8>)>) -> Vec<(PathBuf, FolderFiles)> {
    let mut folders: Vec<(PathBuf, FolderFiles)> = Vec::new();
    let mut index: std::collections::HashMap<PathBuf, usize> = std::collections::HashMap::new();
    for (path, key, body) in files {
        let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let file = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let at = *index.entry(folder.clone()).or_insert_with(|| {
            folders.push((folder, Vec::new()));
            folders.len() - 1
        });
        folders[at].1.push((file, key, body));
    }
    folders
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

    /// One blocking writer, folder by folder (see `write_folder`): on one directory a second
    /// writer only waits for the first (`cargo bench --bench plan` measures both), and a task
    /// per file costs more than the write. Every key is checked before anything is written.
    fn write_all<'a>(
        &'a self,
        objects: Vec<(String, Vec<u8>)>,
        _concurrency: usize,
    ) -> BoxFuture<'a, StorageResult<()>> {
        async move {
            let files = objects
                .into_iter()
                .map(|(key, body)| Ok((self.path(&key)?, key, body)))
                .collect::<StorageResult<Vec<_>>>()?;
            let root = self.root.clone();
            let written = tokio::task::spawn_blocking(move || {
                by_folder(files)
                    .into_iter()
                    .try_for_each(|(folder, files)| write_folder(&root, &folder, files))
            })
            .await;
            match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err((key, err))) => Err(self.error(&key, err)),
                Err(join) => Err(self.join_error("", join)),
            }
        }
        .boxed()
    }

    fn write_from_file<'a>(
        &'a self,
        key: &'a str,
        source: &'a Path,
    ) -> BoxFuture<'a, StorageResult<()>> {
        async move {
            let path = self.path(key)?;
            let source = source.to_path_buf();
            let written = tokio::task::spawn_blocking(move || {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let temp = temp_beside(&path);
                let result =
                    std::fs::copy(&source, &temp).and_then(|_| std::fs::rename(&temp, &path));
                if result.is_err() {
                    let _ = std::fs::remove_file(&temp);
                }
                result
            })
            .await;
            match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(self.error(key, err)),
                Err(join) => Err(self.join_error(key, join)),
            }
        }
        .boxed()
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

    fn list_folders<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StorageResult<Vec<String>>> {
        async move {
            let (folder, start) = match prefix.rfind('/') {
                Some(i) => (&prefix[..=i], &prefix[i + 1..]),
                None => ("", prefix),
            };
            let path = self.path(folder.trim_end_matches('/'))?;
            let start = start.to_string();
            let listed = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
                let entries = match std::fs::read_dir(&path) {
                    Ok(entries) => entries,
                    Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(err) => return Err(err),
                };
                let mut names = Vec::new();
                for entry in entries {
                    let entry = entry?;
                    let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    if entry.file_type()?.is_dir() && name.starts_with(&start) && !is_staging(&name)
                    {
                        names.push(name);
                    }
                }
                Ok(names)
            })
            .await;
            let names = match listed {
                Ok(Ok(names)) => names,
                Ok(Err(err)) => return Err(self.error(prefix, err)),
                Err(join) => return Err(self.join_error(prefix, join)),
            };
            // Sorted with the `/`, as S3 sorts its common prefixes (`a-b/` before `a/`).
            let mut folders: Vec<String> = names
                .into_iter()
                .map(|name| format!("{folder}{name}/"))
                .collect();
            folders.sort_unstable();
            Ok(folders)
        }
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
                if is_staging(&name) {
                    continue;
                }
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
    use crate::storage::{copy_all, list_all};

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
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn a_file_is_written_whole_or_not_at_all() {
        let root = temp_root("from-file");
        let store = LocalStorage::new(root.join("w"));
        std::fs::create_dir_all(&root).unwrap();
        let source = root.join("big.log");
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&source, &body).unwrap();
        store
            .write_from_file("S/logs/a.log", &source)
            .await
            .unwrap();
        assert_eq!(store.read("S/logs/a.log").await.unwrap(), body);
        let missing = store
            .write_from_file("S/logs/b.log", &root.join("none"))
            .await
            .unwrap_err();
        assert_eq!(missing.kind, StorageErrorKind::NotFound, "{missing}");
        assert!(!store.exists("S/logs/b.log").await.unwrap());
        let names: Vec<_> = std::fs::read_dir(root.join("w/S/logs"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.log"], "no temporary file is left");
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn write_read_list_copy_exists() {
        let root = temp_root("basic");
        let store = LocalStorage::new(root.clone());
        store.probe().await.unwrap();
        store
            .write_all(
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

    #[tokio::test]
    async fn a_batch_is_written_whole_and_a_bad_key_writes_nothing() {
        let root = temp_root("batch");
        let store = LocalStorage::new(root.clone());
        let objects: Vec<(String, Vec<u8>)> = (0..1000)
            .map(|i| {
                (
                    format!("S/d/{}/S_{i}.xml", i % 7),
                    format!("<i n=\"{i}\"/>").into_bytes(),
                )
            })
            .collect();
        store.write_all(objects.clone(), 8).await.unwrap();
        for (key, body) in &objects {
            assert_eq!(&store.read(key).await.unwrap(), body, "{key}");
        }
        // Listings hide temporary files, so count what is on disk.
        fn files_on_disk(dir: &Path) -> usize {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .map(|path| {
                    if path.is_dir() {
                        files_on_disk(&path)
                    } else {
                        1
                    }
                })
                .sum()
        }
        assert_eq!(files_on_disk(&root), 1000, "no temporary file is left");

        let mut bad = vec![("T/a.xml".to_string(), b"a".to_vec())];
        bad.push(("../outside.xml".to_string(), b"x".to_vec()));
        let err = store.write_all(bad, 8).await.unwrap_err();
        assert!(err.to_string().contains("the key"), "{err}");
        assert!(
            !root.join("T").exists(),
            "checked before anything is written"
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_new_folder_appears_whole_and_a_crashed_staging_is_hidden_then_removed() {
        let root = temp_root("staging");
        let store = LocalStorage::new(root.clone());
        // What a process that died while staging `inputs/` left behind.
        let left = root.join("S/d/.inputs.1-dead-0.staging");
        std::fs::create_dir_all(&left).unwrap();
        std::fs::write(left.join("S_0.xml"), b"<half").unwrap();
        assert!(list_all(&store, "S/").await.unwrap().is_empty(), "hidden");

        let objects: Vec<(String, Vec<u8>)> = (0..50)
            .map(|i| {
                (
                    format!("S/d/inputs/S_{i}.xml"),
                    format!("<i n=\"{i}\"/>").into_bytes(),
                )
            })
            .collect();
        store.write_all(objects.clone(), 4).await.unwrap();
        assert_eq!(
            names_in(&root.join("S/d")),
            ["inputs"],
            "the leftover is gone"
        );
        assert_eq!(names_in(&root.join("S/d/inputs")).len(), 50);
        for (key, body) in &objects {
            assert_eq!(&store.read(key).await.unwrap(), body);
        }
        // A second write into the now existing folder replaces files in place.
        store
            .write_all(vec![("S/d/inputs/S_0.xml".into(), b"<new/>".to_vec())], 4)
            .await
            .unwrap();
        assert_eq!(store.read("S/d/inputs/S_0.xml").await.unwrap(), b"<new/>");
        assert_eq!(names_in(&root.join("S/d/inputs")).len(), 50);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn two_writes_of_one_new_folder_at_once_both_land() {
        let root = temp_root("race");
        let store = LocalStorage::new(root.clone());
        let batch = |from: usize| -> Vec<(String, Vec<u8>)> {
            (from..from + 500)
                .map(|i| (format!("S/d/logs/pass-1/S_{i}.log"), vec![b'x'; 64]))
                .collect()
        };
        let (a, b) = tokio::join!(store.write_all(batch(0), 1), store.write_all(batch(500), 1));
        a.unwrap();
        b.unwrap();
        assert_eq!(names_in(&root.join("S/d/logs/pass-1")).len(), 1000);
        assert_eq!(
            names_in(&root.join("S/d/logs")),
            ["pass-1"],
            "no staging left"
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn files_at_the_root_are_written_in_place() {
        let root = temp_root("root-files");
        let store = LocalStorage::new(root.join("work"));
        store
            .write_all(vec![("top.json".into(), b"{}".to_vec())], 1)
            .await
            .unwrap();
        assert_eq!(names_in(&root), ["work"], "nothing staged beside the root");
        assert_eq!(names_in(&root.join("work")), ["top.json"]);
        std::fs::remove_dir_all(root).unwrap();
    }
}
