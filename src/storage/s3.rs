//! An S3 bucket (and optional prefix) as storage, on aws-sdk-s3.
//!
//! Credentials, region and endpoint come from aws-config, so `AWS_ENDPOINT_URL`, profiles and
//! IRSA work as with any AWS tool. S3-compatible servers usually need path-style addressing.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tokio::sync::Semaphore;

use super::{Storage, StorageError, StorageErrorKind, StorageResult};
use crate::model::location::Location;

/// How to reach S3.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key` (moto, MinIO).
    pub force_path_style: bool,
    /// Region to use when the environment names none (`AWS_REGION`, profile).
    pub fallback_region: Option<String>,
}

impl S3Options {
    /// A client from the environment's AWS configuration.
    pub async fn client(&self) -> Client {
        let shared = crate::aws::load_config().await;
        self.client_from(&shared)
    }

    /// A client from an AWS configuration loaded once (the controller shares one).
    pub fn client_from(&self, shared: &aws_config::SdkConfig) -> Client {
        let region = shared
            .region()
            .cloned()
            .or_else(|| self.fallback_region.clone().map(Region::new))
            .unwrap_or_else(|| Region::from_static("us-east-1"));
        let config = aws_sdk_s3::config::Builder::from(shared)
            .region(region)
            .force_path_style(self.force_path_style)
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(crate::aws::attempt_timeout(Duration::from_secs(
                        120,
                    )))
                    .build(),
            )
            .build();
        Client::from_conf(config)
    }
}

#[derive(Debug)]
pub struct S3Storage {
    location: Location,
    bucket: String,
    prefix: String,
    client: Client,
}

impl S3Storage {
    pub async fn connect(location: Location, options: &S3Options) -> Self {
        Self::with_client(location, options.client().await)
    }

    /// # Panics
    /// If `location` is not an S3 location.
    pub fn with_client(location: Location, client: Client) -> Self {
        let Location::S3 { bucket, prefix } = &location else {
            panic!("S3Storage needs an s3:// location, got {location}");
        };
        S3Storage {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            location,
            client,
        }
    }

    fn object_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn relative_key<'k>(&self, object_key: &'k str) -> &'k str {
        if self.prefix.is_empty() {
            object_key
        } else {
            object_key
                .strip_prefix(&self.prefix)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or(object_key)
        }
    }

    /// One ListObjectsV2 page of the keys below `prefix`: after the continuation `token` or,
    /// on a first page, after `start_after`. With `delimiter`, the common prefixes instead of
    /// the keys below them.
    async fn list_page(
        &self,
        prefix: &str,
        from: PageFrom<'_>,
        delimiter: Option<&str>,
    ) -> StorageResult<Page> {
        let (token, start_after) = match from {
            PageFrom::Start => (None, None),
            PageFrom::Token(token) => (Some(token.to_string()), None),
            PageFrom::After(key) => (None, Some(self.object_key(key))),
        };
        let output = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.object_key(prefix))
            .set_continuation_token(token)
            .set_start_after(start_after)
            .set_delimiter(delimiter.map(str::to_string))
            .send()
            .await
            .map_err(|e| sdk_error(self.location.url_of(prefix), e))?;
        let relative = |key: &str| self.relative_key(key).to_string();
        let keys = output
            .contents()
            .iter()
            .filter_map(|object| object.key())
            .map(relative)
            .collect();
        let folders = output
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .map(relative)
            .collect();
        let next = if output.is_truncated().unwrap_or(false) {
            output.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(Page {
            keys,
            folders,
            next,
        })
    }

    /// Hands the keys in `(after, until]` (to the end without `until`) to `sink`, a page
    /// request at a time under `limit`, and returns how many. Every key in the range shares
    /// the prefix that `after` and `until` share, so the request names that narrower prefix.
    async fn list_range(
        &self,
        prefix: &str,
        after: &str,
        until: Option<&str>,
        limit: &Semaphore,
        sink: &(dyn Fn(Vec<String>) + Send + Sync),
    ) -> StorageResult<u64> {
        let narrow = match until {
            Some(until) => common_prefix(after, until),
            None => prefix,
        };
        let mut count = 0u64;
        let mut token: Option<String> = None;
        loop {
            let from = token
                .as_deref()
                .map_or(PageFrom::After(after), PageFrom::Token);
            let page = {
                let _permit = limit.acquire().await;
                self.list_page(narrow, from, None).await?
            };
            let in_range = page
                .keys
                .iter()
                .take_while(|key| until.is_none_or(|until| key.as_str() <= until))
                .count();
            let past_the_end = in_range < page.keys.len();
            let mut keys = page.keys;
            keys.truncate(in_range);
            count += keys.len() as u64;
            sink(keys);
            match page.next {
                Some(next) if !past_the_end => token = Some(next),
                _ => return Ok(count),
            }
        }
    }
}

/// Where a listing page starts.
#[derive(Clone, Copy)]
enum PageFrom<'a> {
    Start,
    Token(&'a str),
    After(&'a str),
}

struct Page {
    keys: Vec<String>,
    /// The common prefixes, when the request named a delimiter.
    folders: Vec<String>,
    next: Option<String>,
}

/// The longest common prefix of two keys, on a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            break;
        }
        end = i + x.len_utf8();
    }
    &a[..end]
}

impl Storage for S3Storage {
    fn location(&self) -> &Location {
        &self.location
    }

    fn read<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StorageResult<Vec<u8>>> {
        async move {
            let url = self.location.url_of(key);
            let output = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(self.object_key(key))
                .send()
                .await
                .map_err(|e| sdk_error(url.clone(), e))?;
            let body = output.body.collect().await.map_err(|e| {
                StorageError::new(StorageErrorKind::Unreachable, url, e.to_string())
            })?;
            Ok(body.into_bytes().to_vec())
        }
        .boxed()
    }

    fn write<'a>(&'a self, key: &'a str, body: Vec<u8>) -> BoxFuture<'a, StorageResult<()>> {
        async move {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(self.object_key(key))
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| sdk_error(self.location.url_of(key), e))?;
            Ok(())
        }
        .boxed()
    }

    fn write_from_file<'a>(
        &'a self,
        key: &'a str,
        source: &'a std::path::Path,
    ) -> BoxFuture<'a, StorageResult<()>> {
        async move {
            let url = self.location.url_of(key);
            let body = ByteStream::from_path(source).await.map_err(|e| {
                StorageError::new(
                    StorageErrorKind::Other,
                    url.clone(),
                    format!("reading {}: {e}", source.display()),
                )
            })?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(self.object_key(key))
                .body(body)
                .send()
                .await
                .map_err(|e| sdk_error(url, e))?;
            Ok(())
        }
        .boxed()
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, StorageResult<Vec<String>>> {
        // State: Some(token) while pages remain; the first page has no token.
        futures::stream::unfold(Some(None::<String>), move |state| async move {
            let token = state?;
            let from = token.as_deref().map_or(PageFrom::Start, PageFrom::Token);
            match self.list_page(prefix, from, None).await {
                Ok(Page { keys, next, .. }) => Some((Ok(keys), next.map(Some))),
                Err(err) => Some((Err(err), None)),
            }
        })
        .boxed()
    }

    /// A first page as the sequential listing makes it; when there is more, the rest is cut at
    /// the `split_at` keys past that page into ranges listed at once.
    fn list_split<'a>(
        &'a self,
        prefix: &'a str,
        split_at: &'a [String],
        limit: &'a Semaphore,
        sink: &'a (dyn Fn(Vec<String>) + Send + Sync),
    ) -> BoxFuture<'a, StorageResult<u64>> {
        async move {
            let first = {
                let _permit = limit.acquire().await;
                self.list_page(prefix, PageFrom::Start, None).await?
            };
            let last = first.keys.last().cloned();
            let mut count = first.keys.len() as u64;
            sink(first.keys);
            let (Some(_), Some(last)) = (first.next, last) else {
                return Ok(count);
            };
            let mut bounds: Vec<&str> = split_at
                .iter()
                .map(String::as_str)
                .filter(|b| b.starts_with(prefix) && *b > last.as_str())
                .collect();
            bounds.sort_unstable();
            bounds.dedup();
            let starts = std::iter::once(last.as_str()).chain(bounds.iter().copied());
            let ends = bounds.iter().copied().map(Some).chain([None]);
            let ranges: Vec<_> = starts
                .zip(ends)
                .map(|(after, until)| self.list_range(prefix, after, until, limit, sink))
                .collect();
            // Every range is started; the permits bound the requests in flight.
            for listed in futures::future::try_join_all(ranges).await? {
                count += listed;
            }
            Ok(count)
        }
        .boxed()
    }

    fn list_folders<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StorageResult<Vec<String>>> {
        async move {
            let mut folders = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let from = token.as_deref().map_or(PageFrom::Start, PageFrom::Token);
                let page = self.list_page(prefix, from, Some("/")).await?;
                folders.extend(page.folders);
                match page.next {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
            folders.sort_unstable();
            Ok(folders)
        }
        .boxed()
    }

    fn copy<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, StorageResult<()>> {
        async move {
            let source = format!("{}/{}", self.bucket, encode_key(&self.object_key(from)));
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(self.object_key(to))
                .copy_source(source)
                .send()
                .await
                .map_err(|e| sdk_error(self.location.url_of(from), e))?;
            Ok(())
        }
        .boxed()
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StorageResult<bool>> {
        async move {
            match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(self.object_key(key))
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(err) => {
                    let err = sdk_error(self.location.url_of(key), err);
                    if err.is_not_found() {
                        Ok(false)
                    } else {
                        Err(err)
                    }
                }
            }
        }
        .boxed()
    }

    fn probe(&self) -> BoxFuture<'_, StorageResult<()>> {
        async move {
            self.client
                .head_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map_err(|e| {
                    let mut err = sdk_error(self.location.to_string(), e);
                    // HeadBucket answers 404 without a body: the bucket itself is missing.
                    if err.kind == StorageErrorKind::NotFound {
                        err.kind = StorageErrorKind::NoSuchBucket;
                    }
                    err
                })?;
            Ok(())
        }
        .boxed()
    }
}

/// Maps an SDK failure onto what the user can act on.
fn sdk_error<E>(
    url: String,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = DisplayErrorContext(&err).to_string();
    let kind = match &err {
        SdkError::DispatchFailure(_) if text.contains("loading credentials") => {
            StorageErrorKind::NoCredentials
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            StorageErrorKind::Unreachable
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match (service.err().code(), status) {
                (Some("NoSuchBucket"), _) => StorageErrorKind::NoSuchBucket,
                (Some("NoSuchKey" | "NotFound"), _) | (_, 404) => StorageErrorKind::NotFound,
                (Some("AccessDenied" | "Forbidden" | "InvalidAccessKeyId"), _) | (_, 403) => {
                    StorageErrorKind::AccessDenied
                }
                (Some("SlowDown" | "Throttling" | "ThrottlingException"), _) | (_, 429 | 503) => {
                    StorageErrorKind::Throttled
                }
                (_, 500..=599) => StorageErrorKind::ServerError,
                _ => StorageErrorKind::Other,
            }
        }
        _ => StorageErrorKind::Other,
    };
    let detail = match kind {
        StorageErrorKind::NotFound | StorageErrorKind::NoCredentials => String::new(),
        _ => text,
    };
    StorageError::new(kind, url, detail)
}

/// Percent-encodes a key for `x-amz-copy-source`, keeping `/` and unreserved characters.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode_key;

    #[test]
    fn copy_sources_are_percent_encoded() {
        assert_eq!(encode_key("a/b c+d.json"), "a/b%20c%2Bd.json");
        assert_eq!(encode_key("S/2024-01-01/x_0.xml"), "S/2024-01-01/x_0.xml");
    }
}
