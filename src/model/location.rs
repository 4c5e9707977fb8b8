//! Locations: a local folder or `s3://bucket[/prefix]`.

use std::fmt;
use std::path::{Path, PathBuf};

/// The root of a set of files. Keys below it are `/`-separated and relative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{value:?} is not a valid location: {reason}")]
pub struct LocationError {
    pub value: String,
    pub reason: String,
}

impl Location {
    /// Parses a location as written in a spec. A relative local folder is resolved against
    /// `base` (the folder of the spec file), as docker compose and kustomize do.
    pub fn parse(value: &str, base: Option<&Path>) -> Result<Location, LocationError> {
        let error = |reason: &str| LocationError {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if value.trim().is_empty() {
            return Err(error("it is empty; give a folder or s3://bucket[/prefix]"));
        }
        if let Some(rest) = value.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if !valid_bucket_name(bucket) {
                return Err(error(
                    "the bucket name must be 3 to 63 lowercase letters, digits, '.' or '-'",
                ));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|part| part == "." || part == "..") {
                return Err(error("the prefix must not contain '.' or '..' parts"));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if value.contains("://") {
            return Err(error(
                "only local folders and s3:// locations are supported",
            ));
        }
        let path = Path::new(value);
        let path = match base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_path_buf(),
        };
        // Drops `.` parts, so `manifestLocation: .` reads as the spec's folder in messages.
        Ok(Location::Local(path.components().collect()))
    }

    pub fn is_s3(&self) -> bool {
        matches!(self, Location::S3 { .. })
    }

    /// The full address of `key` below this location, for messages and the container contract.
    pub fn url_of(&self, key: &str) -> String {
        match self {
            Location::Local(root) => root.join(key).display().to_string(),
            Location::S3 { bucket, prefix } => {
                if prefix.is_empty() {
                    format!("s3://{bucket}/{key}")
                } else {
                    format!("s3://{bucket}/{prefix}/{key}")
                }
            }
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(root) => write!(f, "{}", root.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations_keep_bucket_and_prefix() {
        let loc = Location::parse("s3://my-bucket/some/prefix/", None).unwrap();
        assert_eq!(
            loc,
            Location::S3 {
                bucket: "my-bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(loc.url_of("A/x.xml"), "s3://my-bucket/some/prefix/A/x.xml");
        let bare = Location::parse("s3://my-bucket", None).unwrap();
        assert_eq!(bare.url_of("A/"), "s3://my-bucket/A/");
        assert_eq!(bare.to_string(), "s3://my-bucket");
    }

    #[test]
    fn relative_local_folders_resolve_against_the_spec_folder() {
        let loc = Location::parse("working", Some(Path::new("/tmp/series"))).unwrap();
        assert_eq!(loc, Location::Local(PathBuf::from("/tmp/series/working")));
        let dot = Location::parse(".", Some(Path::new("/tmp/series"))).unwrap();
        assert_eq!(dot, Location::Local(PathBuf::from("/tmp/series")));
        let abs = Location::parse("/data", Some(Path::new("/tmp/series"))).unwrap();
        assert_eq!(abs, Location::Local(PathBuf::from("/data")));
    }

    #[test]
    fn bad_locations_say_why() {
        for bad in [
            "",
            "s3://",
            "s3://UPPER",
            "s3://b",
            "http://x/y",
            "s3://bucket/../x",
        ] {
            let err = Location::parse(bad, None).unwrap_err();
            assert!(!err.reason.is_empty(), "{bad}");
        }
    }
}
