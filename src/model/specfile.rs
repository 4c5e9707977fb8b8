//! Reading a `SimulationSeries` from a YAML file: the same file `kubectl apply` takes.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::spec::SimulationSeries;

pub const API_VERSION: &str = "simseries.io/v1alpha1";
pub const KIND: &str = "SimulationSeries";
/// The largest series file read: far above any real series (a 1,000-condition series is tens
/// of KiB; the API server stores at most 1.5 MiB), small enough to parse in bounded memory.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// A series file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SpecFileError {
    pub path: String,
    pub message: String,
}

/// A series read from a file, with the folder its relative locations are resolved against.
#[derive(Debug, Clone)]
pub struct SeriesFile {
    pub path: PathBuf,
    pub folder: PathBuf,
    pub resource: SimulationSeries,
}

/// Reads the one `SimulationSeries` document of a YAML file.
pub fn read(path: &Path) -> Result<SeriesFile, SpecFileError> {
    let error = |message: String| SpecFileError {
        path: path.display().to_string(),
        message,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| error(format!("cannot read: {e}")))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(error(format!(
            "{size} bytes; a series file may have at most {MAX_FILE_BYTES} bytes"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
    let resource = parse(&text).map_err(|e| error(e.to_string()))?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let folder = absolute
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(SeriesFile {
        path: path.to_path_buf(),
        folder,
        resource,
    })
}

/// Why a YAML text holds no usable `SimulationSeries`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("document {document}: not valid YAML: {error}")]
    Yaml { document: usize, error: String },
    #[error(
        "document {document}: apiVersion is {found:?}; this version of simseries reads {API_VERSION}"
    )]
    ApiVersion { document: usize, found: String },
    #[error("document {document}: {path}: {error}")]
    Field {
        document: usize,
        path: String,
        error: String,
    },
    #[error(
        "document {document}: unknown field {first}{more}; check its spelling against `kubectl explain simulationseries` (or `simseries crd`)"
    )]
    UnknownField {
        document: usize,
        first: String,
        /// ` (and n more)`, or nothing.
        more: String,
    },
    #[error("no {KIND} found; the file needs `apiVersion: {API_VERSION}` and `kind: {KIND}`")]
    NoSeries,
    #[error("{0} {KIND} documents found; give a file with exactly one")]
    SeveralSeries(usize),
}

/// Parses YAML holding exactly one `SimulationSeries` (other kinds in the stream are skipped).
pub fn parse(text: &str) -> Result<SimulationSeries, ParseError> {
    let mut found = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml_ng::Value::deserialize(document).map_err(|e| ParseError::Yaml {
            document: index + 1,
            error: e.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        let kind = value.get("kind").and_then(|k| k.as_str());
        let api_version = value.get("apiVersion").and_then(|k| k.as_str());
        if kind != Some(KIND) {
            continue;
        }
        if api_version != Some(API_VERSION) {
            return Err(ParseError::ApiVersion {
                document: index + 1,
                found: api_version.unwrap_or("").to_string(),
            });
        }
        // A misspelt field (`terminateJob`) would otherwise be ignored and its default used.
        // Condition maps are free-form (template parameters), so they never report one.
        let mut unknown = Vec::new();
        let mut track = serde_path_to_error::Track::new();
        let resource: Result<SimulationSeries, _> = serde_ignored::deserialize(
            serde_path_to_error::Deserializer::new(value, &mut track),
            |path| {
                let path = path.to_string();
                // The resource type reads these two itself (checked above).
                if path != "apiVersion" && path != "kind" {
                    unknown.push(path);
                }
            },
        );
        let resource = resource.map_err(|e| ParseError::Field {
            document: index + 1,
            path: track.path().to_string(),
            error: e.to_string(),
        })?;
        if let Some(first) = unknown.first() {
            return Err(ParseError::UnknownField {
                document: index + 1,
                first: first.clone(),
                more: match unknown.len() {
                    1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                },
            });
        }
        found.push(resource);
    }
    match found.len() {
        1 => Ok(found.pop().expect("one resource")),
        0 => Err(ParseError::NoSeries),
        n => Err(ParseError::SeveralSeries(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
apiVersion: simseries.io/v1alpha1
kind: SimulationSeries
metadata: {name: s}
spec:
  context: {workingLocation: w, manifestLocation: m, templateLocation: t, vcpus: 1, memory: 512}
  series:
    name: S
    manifestKey: manifest.csv
    templateKey: template.xml
    seeds: [0, 1]
    conditions: [{key: A, rate: 1.0, n: 2, flag: true}]
    extensions: [CELLS.tar.xz]
  parameters: {model: ARCADE, retries: 1, retryDelay: 5}
";

    #[test]
    fn reads_defaults_and_keeps_number_types() {
        let s = parse(MINIMAL).unwrap();
        let p = &s.spec.parameters;
        assert_eq!(
            (p.seeds_per_job, p.terminate_jobs, p.save_logs, p.clean_jobs),
            (1, true, true, true)
        );
        assert_eq!(p.log_filter, "");
        assert!(s.spec.series.inits.is_empty());
        assert!(s.spec.series.groups.is_none());
        let params = &s.spec.series.conditions[0].parameters;
        assert!(params["rate"].is_f64());
        assert!(params["n"].is_i64());
        assert_eq!(params["flag"], serde_json::Value::Bool(true));
    }

    #[test]
    fn errors_name_the_field() {
        let bad = MINIMAL.replace("retries: 1", "retries: many");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains("spec.parameters.retries"), "{err}");
        let bad = MINIMAL.replace("vcpus: 1, ", "");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(
            err.contains("spec.context") && err.contains("vcpus"),
            "{err}"
        );
        let bad = MINIMAL.replace("seeds: [0, 1]", "seeds: [0, -1]");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains("spec.series.seeds[1]"), "{err}");
    }

    #[test]
    fn unknown_fields_are_named_but_condition_fields_are_free() {
        let typo = MINIMAL.replace("retryDelay: 5}", "retryDelay: 5, terminateJob: false}");
        let err = parse(&typo).unwrap_err().to_string();
        assert!(
            err.contains("unknown field spec.parameters.terminateJob"),
            "{err}"
        );
        let typo = MINIMAL.replace("vcpus: 1,", "vcpu: 1, vcpus: 1,");
        assert!(
            parse(&typo)
                .unwrap_err()
                .to_string()
                .contains("spec.context.vcpu")
        );
        // Template parameters of a condition are any fields.
        assert!(parse(&MINIMAL.replace("flag: true", "anything: 3")).is_ok());
    }

    #[test]
    fn other_kinds_are_skipped_and_versions_checked() {
        let multi =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n---\n{MINIMAL}");
        assert_eq!(parse(&multi).unwrap().spec.series.name, "S");
        let wrong = MINIMAL.replace("v1alpha1", "v2");
        assert!(
            parse(&wrong)
                .unwrap_err()
                .to_string()
                .contains("apiVersion")
        );
        assert!(
            parse("kind: Pod\n")
                .unwrap_err()
                .to_string()
                .contains("no SimulationSeries")
        );
        let twice = format!("{MINIMAL}\n---\n{MINIMAL}");
        assert!(
            parse(&twice)
                .unwrap_err()
                .to_string()
                .contains("exactly one")
        );
    }
}
