//! Which runs already have outputs: the manifest CSV and the listing of the working location,
//! read into one completeness table.
//!
//! A run is *missing* if no row has its KEY and *incomplete* if some extension in
//! `series.extensions` has no row. Rows of other series, and extensions the series does not
//! list, are ignored. The table is a bitmask per (condition, seed), so a manifest of millions of
//! rows is read without allocating per row.

use std::collections::HashMap;
use std::fmt;

use crate::model::validate::ValidSeries;

/// Columns a manifest must have.
pub const COLUMNS: [&str; 4] = ["KEY", "EXTENSION", "LOCATION", "FULL_KEY"];
/// Set when any output of a run was seen, so a series without extensions still tells "missing".
const SEEN: u64 = 1 << 63;

/// A manifest that cannot be read as the contract says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// Where the manifest is (`s3://…` or a path).
    pub location: String,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "manifest {}", self.location)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Completeness of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Complete,
    /// Some but not every extension is there.
    Incomplete,
    Missing,
}

/// Output extensions seen per (condition, seed) of one series.
#[derive(Debug, Clone)]
pub struct Completeness {
    prefix: Vec<u8>,
    conditions: HashMap<Vec<u8>, usize>,
    /// Slot of each seed value in `masks` rows, `u32::MAX` for seeds not in the series.
    seed_slot: Vec<u32>,
    seeds: usize,
    extensions: Vec<Vec<u8>>,
    masks: Vec<u64>,
    full: u64,
}

impl Completeness {
    /// An empty table for the conditions and seeds of `series`.
    pub fn new(series: &ValidSeries<'_>) -> Self {
        let spec = &series.spec.series;
        let mut seed_slot = vec![u32::MAX; crate::model::spec::MAX_SEED as usize + 1];
        for (slot, seed) in series.seeds.iter().enumerate() {
            seed_slot[*seed as usize] = slot as u32;
        }
        let extensions: Vec<Vec<u8>> = spec
            .extensions
            .iter()
            .map(|e| e.as_bytes().to_vec())
            .collect();
        let full = SEEN | ((1u64 << extensions.len()) - 1);
        Completeness {
            prefix: format!("{}_", spec.name).into_bytes(),
            conditions: spec
                .conditions
                .iter()
                .enumerate()
                .map(|(i, c)| (c.key.as_bytes().to_vec(), i))
                .collect(),
            seed_slot,
            seeds: series.seeds.len(),
            extensions,
            masks: vec![0; spec.conditions.len() * series.seeds.len()],
            full,
        }
    }

    /// Records that the output `{key}.{extension}` exists.
    pub fn record(&mut self, key: &[u8], extension: &[u8]) {
        // KEY = {name}_{condition}_{seed:04}: the seed is always the last four digits.
        let Some(rest) = key.strip_prefix(self.prefix.as_slice()) else {
            return;
        };
        if rest.len() < 6 || rest[rest.len() - 5] != b'_' {
            return;
        }
        let (condition, seed) = (&rest[..rest.len() - 5], &rest[rest.len() - 4..]);
        if !seed.iter().all(u8::is_ascii_digit) {
            return;
        }
        let seed = seed
            .iter()
            .fold(0usize, |n, d| n * 10 + (d - b'0') as usize);
        let slot = self.seed_slot[seed];
        if slot == u32::MAX {
            return;
        }
        let Some(&condition) = self.conditions.get(condition) else {
            return;
        };
        let bit = self
            .extensions
            .iter()
            .position(|e| e.as_slice() == extension)
            .map_or(0, |i| 1u64 << i);
        self.masks[condition * self.seeds + slot as usize] |= SEEN | bit;
    }

    /// Records every row of a manifest CSV. Returns the number of rows read.
    pub fn load_csv(&mut self, bytes: &[u8], source: &str) -> Result<u64, ManifestError> {
        let error = |line: Option<u64>, message: String| ManifestError {
            location: source.to_string(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(bytes);
        let headers = reader
            .byte_headers()
            .map_err(|e| error(Some(1), format!("cannot read the header: {e}")))?
            .clone();
        let column = |name: &str| {
            headers.iter().position(|h| {
                let h = h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h);
                h.trim_ascii() == name.as_bytes()
            })
        };
        let missing: Vec<&str> = COLUMNS
            .iter()
            .copied()
            .filter(|c| column(c).is_none())
            .collect();
        if !missing.is_empty() {
            // The header's own text is not echoed: errors never carry file contents.
            return Err(error(
                Some(1),
                format!(
                    "missing column(s) {} among its {} column(s); the header must name KEY,EXTENSION,LOCATION,FULL_KEY",
                    missing.join(", "),
                    headers.len()
                ),
            ));
        }
        let (key, extension) = (column("KEY").unwrap(), column("EXTENSION").unwrap());
        let mut record = csv::ByteRecord::new();
        let mut rows = 0u64;
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    rows += 1;
                    self.record(&record[key], &record[extension]);
                }
                Err(e) => {
                    let line = e.position().map(|p| p.line());
                    let message = match e.kind() {
                        csv::ErrorKind::UnequalLengths {
                            expected_len, len, ..
                        } => {
                            format!("{len} fields where the header has {expected_len}")
                        }
                        _ => e.to_string(),
                    };
                    return Err(error(line, message));
                }
            }
        }
        Ok(rows)
    }

    /// Records a file found by listing the working location: only files under
    /// `{name}/{date}/outputs/` count, named `KEY.EXTENSION` as in the manifest.
    pub fn record_object(&mut self, object_key: &str) {
        let mut parts = object_key.split('/');
        let (Some(_series), Some(_date), Some("outputs")) =
            (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let Some(file) = object_key.rsplit('/').next() else {
            return;
        };
        if let Some((key, extension)) = file.split_once('.') {
            self.record(key.as_bytes(), extension.as_bytes());
        }
    }

    pub fn state(&self, condition: usize, slot: usize) -> RunState {
        let mask = self.masks[condition * self.seeds + slot];
        if mask & SEEN == 0 {
            RunState::Missing
        } else if mask & self.full == self.full {
            RunState::Complete
        } else {
            RunState::Incomplete
        }
    }

    /// Extensions present for one run, in the order of `series.extensions`.
    pub fn has_extension(&self, condition: usize, slot: usize, extension: usize) -> bool {
        self.masks[condition * self.seeds + slot] & (1 << extension) != 0
    }
}
