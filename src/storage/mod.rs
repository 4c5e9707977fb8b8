//! One small storage interface over a location, with a local-folder and an S3 implementation.
//!
//! Keys are `/`-separated and relative to the location's root. Both implementations map their
//! failures onto [`StorageError`], whose message names the full address and what to check.

mod local;
mod s3;

use std::fmt;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use tokio::sync::Semaphore;

use crate::model::location::Location;

pub use local::LocalStorage;
pub use s3::{S3Options, S3Storage};

/// Writes and copies run this many at a time unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// What went wrong, in terms a user can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    NotFound,
    NoSuchBucket,
    AccessDenied,
    Unreachable,
    /// No AWS credentials could be found.
    NoCredentials,
    Throttled,
    /// The service failed (5xx): worth trying again.
    ServerError,
    Other,
}

impl StorageErrorKind {
    /// Throttling, 5xx and network failures pass; the rest needs someone to act.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            StorageErrorKind::Throttled
                | StorageErrorKind::Unreachable
                | StorageErrorKind::ServerError
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub struct StorageError {
    pub kind: StorageErrorKind,
    /// Full address of the object or prefix (`s3://bucket/key` or a path).
    pub url: String,
    pub detail: String,
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, url: impl Into<String>, detail: impl Into<String>) -> Self {
        StorageError {
            kind,
            url: url.into(),
            detail: detail.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == StorageErrorKind::NotFound
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            StorageErrorKind::NotFound => "not found",
            StorageErrorKind::NoSuchBucket => {
                "the bucket does not exist; check the bucket name of the location"
            }
            StorageErrorKind::AccessDenied if self.url.starts_with("s3://") => {
                "access denied; check the AWS credentials and the bucket policy"
            }
            StorageErrorKind::AccessDenied => {
                "permission denied; check that this user may read and write the folder"
            }
            StorageErrorKind::Unreachable => {
                "the storage endpoint cannot be reached; check the network, AWS_ENDPOINT_URL and the region"
            }
            StorageErrorKind::NoCredentials => {
                "no AWS credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with a role"
            }
            StorageErrorKind::Throttled => "the storage service throttled the request; try again",
            StorageErrorKind::ServerError => "the storage service failed; try again",
            StorageErrorKind::Other => "storage error",
        };
        write!(f, "{}: {what}", self.url)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// Read, write, list, copy and test objects below one location.
pub trait Storage: Send + Sync + fmt::Debug {
    /// The location this storage serves.
    fn location(&self) -> &Location;

    /// The whole object.
    fn read<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StorageResult<Vec<u8>>>;

    /// Creates or replaces the object (locally through a temporary file and a rename, so a
    /// reader never sees half a file).
    fn write<'a>(&'a self, key: &'a str, body: Vec<u8>) -> BoxFuture<'a, StorageResult<()>>;

    /// Creates or replaces the object with the content of the local file `source`, streamed:
    /// a log of gigabytes is never held in memory. (On S3 one PutObject: at most 5 GiB.)
    fn write_from_file<'a>(
        &'a self,
        key: &'a str,
        source: &'a std::path::Path,
    ) -> BoxFuture<'a, StorageResult<()>>;

    /// Writes every object, at most `concurrency` at a time; stops at the first error. Each
    /// object is written as [`Storage::write`] writes it; a store that can do many at a lower
    /// cost than one call each (a local folder) does so.
    fn write_all<'a>(
        &'a self,
        objects: Vec<(String, Vec<u8>)>,
        concurrency: usize,
    ) -> BoxFuture<'a, StorageResult<()>> {
        write_each(self, objects, concurrency).boxed()
    }

    /// Keys of the objects whose key starts with `prefix`, a page at a time.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, StorageResult<Vec<String>>>;

    /// Hands every key below `prefix` to `sink` once, a page at a time, and returns how many
    /// there were: the keys [`list_all`] gives, though not in its order. A store whose pages
    /// cost a round trip each (S3) lists the ranges between the `split_at` keys at once, each
    /// page request holding a permit of `limit`; the others list in one go. `split_at` only
    /// decides how the work is shared, never what is listed.
    fn list_split<'a>(
        &'a self,
        prefix: &'a str,
        split_at: &'a [String],
        limit: &'a Semaphore,
        sink: &'a (dyn Fn(Vec<String>) + Send + Sync),
    ) -> BoxFuture<'a, StorageResult<u64>> {
        let _ = split_at;
        async move {
            let _permit = limit.acquire().await;
            let mut pages = self.list(prefix);
            let mut count = 0u64;
            while let Some(page) = pages.try_next().await? {
                count += page.len() as u64;
                sink(page);
            }
            Ok(count)
        }
        .boxed()
    }

    /// The folders directly below `prefix` (a key ending in `/`): each as `{prefix}{name}/`,
    /// once, in order. Objects directly below `prefix` are not folders.
    fn list_folders<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StorageResult<Vec<String>>>;

    /// Copies an object inside the location (server-side on S3).
    fn copy<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, StorageResult<()>>;

    /// Whether the object exists.
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StorageResult<bool>>;

    /// Checks the location can be reached (the bucket exists and is readable); a local folder
    /// that does not exist yet is fine, since writing creates it.
    fn probe(&self) -> BoxFuture<'_, StorageResult<()>>;
}

/// Opens the storage of a location.
pub async fn open(location: &Location, s3: &S3Options) -> Arc<dyn Storage> {
    match location {
        Location::Local(root) => Arc::new(LocalStorage::new(root.clone())),
        Location::S3 { .. } => Arc::new(S3Storage::connect(location.clone(), s3).await),
    }
}

/// Every key below `prefix`, all pages.
pub async fn list_all<S: Storage + ?Sized>(
    storage: &S,
    prefix: &str,
) -> StorageResult<Vec<String>> {
    let pages: Vec<Vec<String>> = storage.list(prefix).try_collect().await?;
    Ok(pages.into_iter().flatten().collect())
}

/// Writes one object from a local file ([`Storage::write_from_file`]), through the crash point
/// every object write passes.
pub async fn write_from_file(
    storage: &dyn Storage,
    key: &str,
    source: &std::path::Path,
) -> StorageResult<()> {
    let written = storage.write_from_file(key, source).await;
    crate::faults::crash_point("storage-write");
    written
}

/// Writes every object with one [`Storage::write`] each, at most `concurrency` at a time.
async fn write_each<S: Storage + ?Sized>(
    storage: &S,
    objects: Vec<(String, Vec<u8>)>,
    concurrency: usize,
) -> StorageResult<()> {
    futures::stream::iter(objects)
        .map(|(key, body)| async move {
            let written = storage.write(&key, body).await;
            crate::faults::crash_point("storage-write");
            written
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}

/// Copies every `(from, to)` pair, at most `concurrency` at a time; stops at the first error.
pub async fn copy_all(
    storage: &dyn Storage,
    pairs: Vec<(String, String)>,
    concurrency: usize,
) -> StorageResult<()> {
    futures::stream::iter(pairs)
        .map(|(from, to)| async move {
            let copied = storage.copy(&from, &to).await;
            crate::faults::crash_point("storage-write");
            copied
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_speaks_of_aws_only_for_s3() {
        let local = StorageError::new(StorageErrorKind::AccessDenied, "/data/w/S/x", "");
        assert!(!local.to_string().contains("AWS"), "{local}");
        assert!(local.to_string().contains("permission denied"), "{local}");
        let s3 = StorageError::new(StorageErrorKind::AccessDenied, "s3://b/S/x", "");
        assert!(s3.to_string().contains("AWS credentials"), "{s3}");
    }
}
