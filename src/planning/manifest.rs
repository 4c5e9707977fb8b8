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

/// A manifest body from this size on is read on every core ([`Completeness::load_csv`]).
const PARALLEL_FROM_BYTES: usize = 4 << 20;

/// `body` cut into about `shares` contiguous pieces, each ending after a newline (or at the end).
fn line_shares(body: &[u8], shares: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(shares);
    let mut rest = body;
    let size = body.len().div_ceil(shares.max(1));
    while !rest.is_empty() {
        let cut = match rest
            .get(size..)
            .and_then(|after| after.iter().position(|b| *b == b'\n'))
        {
            Some(newline) => size + newline + 1,
            None => rest.len(),
        };
        let (piece, after) = rest.split_at(cut);
        pieces.push(piece);
        rest = after;
    }
    pieces
}

/// What one reader of a share found: its rows, and the (cell, extension) of each row of the
/// series.
type ShareRows = (u64, Vec<(u32, Option<u8>)>);

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
        if let Some((cell, extension)) = self.cell(key, extension) {
            self.mark(cell, extension);
        }
    }

    /// The run an output `{key}.{extension}` belongs to (its index in `masks`) and the index of
    /// its extension in the series (`None` for one the series does not list); `None` for an
    /// output of another series, condition or seed.
    fn cell(&self, key: &[u8], extension: &[u8]) -> Option<(u32, Option<u8>)> {
        // KEY = {name}_{condition}_{seed:04}: the seed is always the last four digits.
        let rest = key.strip_prefix(self.prefix.as_slice())?;
        if rest.len() < 6 || rest[rest.len() - 5] != b'_' {
            return None;
        }
        let (condition, seed) = (&rest[..rest.len() - 5], &rest[rest.len() - 4..]);
        if !seed.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let seed = seed
            .iter()
            .fold(0usize, |n, d| n * 10 + (d - b'0') as usize);
        let slot = self.seed_slot[seed];
        if slot == u32::MAX {
            return None;
        }
        let condition = *self.conditions.get(condition)?;
        let extension = self
            .extensions
            .iter()
            .position(|e| e.as_slice() == extension)
            .map(|i| i as u8);
        // At most MAX_RUNS cells, well within u32.
        Some(((condition * self.seeds + slot as usize) as u32, extension))
    }

    fn mark(&mut self, cell: u32, extension: Option<u8>) {
        let bit = extension.map_or(0, |i| 1u64 << i);
        self.masks[cell as usize] |= SEEN | bit;
    }

    /// Records every row of a manifest CSV. Returns the number of rows read.
    pub fn load_csv(&mut self, bytes: &[u8], source: &str) -> Result<u64, ManifestError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.load_csv_on(bytes, source, cores)
    }

    /// [`Self::load_csv`] with up to `cores` readers.
    fn load_csv_on(
        &mut self,
        bytes: &[u8],
        source: &str,
        cores: usize,
    ) -> Result<u64, ManifestError> {
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
        let body = reader.position().byte() as usize;
        let columns = headers.len();
        if let Some(rows) = self.load_rows_in_shares(&bytes[body..], columns, key, extension, cores)
        {
            return Ok(rows);
        }
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

    /// The rows after the header, read on every core when that gives the same table: a large
    /// manifest without quotes, so that each line is one row, its fields split at the commas,
    /// and a share can start at any line. `None` when it cannot (or a row is malformed): then the rows are read in order,
    /// which names the first bad row's line.
    fn load_rows_in_shares(
        &mut self,
        body: &[u8],
        columns: usize,
        key: usize,
        extension: usize,
        cores: usize,
    ) -> Option<u64> {
        // Below a few MB a thread costs more than it saves.
        if cores == 1 || body.len() < PARALLEL_FROM_BYTES || body.contains(&b'"') {
            return None;
        }
        let shares = line_shares(body, cores);
        let table = &*self;
        let read: Vec<Option<ShareRows>> = std::thread::scope(|scope| {
            let readers: Vec<_> = shares
                .iter()
                .map(|share| {
                    scope.spawn(move || {
                        let (mut rows, mut cells) = (0u64, Vec::new());
                        let mut fields = Vec::with_capacity(columns);
                        for line in share.split(|b| *b == b'\n') {
                            // A CSV reader skips blank lines and ends a line at "\r\n"; any
                            // other "\r" ends a row too, which only the full reader follows.
                            let line = line.strip_suffix(b"\r").unwrap_or(line);
                            if line.is_empty() {
                                continue;
                            }
                            if line.contains(&b'\r') {
                                return None;
                            }
                            fields.clear();
                            fields.extend(line.split(|b| *b == b','));
                            if fields.len() != columns {
                                return None;
                            }
                            rows += 1;
                            cells.extend(table.cell(fields[key], fields[extension]));
                        }
                        Some((rows, cells))
                    })
                })
                .collect();
            readers
                .into_iter()
                .map(|r| r.join().expect("a manifest reader does not panic"))
                .collect()
        });
        let read: Vec<ShareRows> = read.into_iter().collect::<Option<_>>()?;
        let mut rows = 0;
        for (share_rows, cells) in read {
            rows += share_rows;
            for (cell, extension) in cells {
                self.mark(cell, extension);
            }
        }
        Some(rows)
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

    /// The state of the run named by `run_key` (`{name}_{condition}_{seed:04}`); `None` for a
    /// run that is not in the series.
    pub fn run_state(&self, run_key: &str) -> Option<RunState> {
        let (condition, slot) = self.locate(run_key)?;
        Some(self.state(condition, slot))
    }

    /// The condition and seed slot of the run named by `run_key`; `None` for a run that is not
    /// in the series.
    pub fn locate(&self, run_key: &str) -> Option<(usize, usize)> {
        let (cell, _) = self.cell(run_key.as_bytes(), b"")?;
        let cell = cell as usize;
        Some((cell / self.seeds, cell % self.seeds))
    }

    /// Extensions present for one run, in the order of `series.extensions`.
    pub fn has_extension(&self, condition: usize, slot: usize, extension: usize) -> bool {
        self.masks[condition * self.seeds + slot] & (1 << extension) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate::validate;

    const SERIES: &str = "
apiVersion: simseries.io/v1alpha1
kind: SimulationSeries
metadata: {name: s}
spec:
  context: {workingLocation: w, manifestLocation: m, templateLocation: t, vcpus: 1, memory: 512}
  series:
    name: S
    manifestKey: manifest.csv
    templateKey: template.xml
    seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    conditions: [{key: A}, {key: B}, {key: C}]
    extensions: [CELLS.tar.xz, LOCATIONS.json]
  parameters: {model: ARCADE, retries: 1, retryDelay: 5}
";

    /// A manifest past [`PARALLEL_FROM_BYTES`]: rows of the series (some runs with one
    /// extension, some with both, some with none), of other series and extensions, CRLF and LF
    /// line ends.
    fn large_manifest() -> String {
        let mut csv = String::from("KEY,EXTENSION,LOCATION,FULL_KEY\n");
        let mut i = 0u64;
        while csv.len() <= PARALLEL_FROM_BYTES * 2 {
            i += 1;
            let (condition, seed) = (["A", "B", "C", "D"][(i % 4) as usize], (i * 7) % 13);
            let extension = ["CELLS.tar.xz", "LOCATIONS.json", "OTHER.csv"][(i % 3) as usize];
            let end = if i.is_multiple_of(5) { "\r\n" } else { "\n" };
            if i.is_multiple_of(17) {
                csv.push_str(&format!("T_A_{seed:04},CELLS.tar.xz,s3://b,k{end}"));
            } else if seed < 10 && !(condition == "B" && seed == 3) {
                csv.push_str(&format!(
                    "S_{condition}_{seed:04},{extension},s3://b,k{i}{end}"
                ));
            }
        }
        csv
    }

    fn table() -> Completeness {
        let resource = crate::model::specfile::parse(SERIES).unwrap();
        let series = validate(&resource.spec).unwrap();
        Completeness::new(&series)
    }

    #[test]
    fn reading_on_several_cores_gives_the_table_and_count_of_reading_in_order() {
        let csv = large_manifest();
        let (mut in_order, mut in_shares) = (table(), table());
        let rows = in_order.load_csv_on(csv.as_bytes(), "m.csv", 1).unwrap();
        assert_eq!(in_shares.load_csv_on(csv.as_bytes(), "m.csv", 3), Ok(rows));
        assert_eq!(rows as usize, csv.lines().count() - 1);
        assert_eq!(in_order.masks, in_shares.masks);
        // The table says something: B's seed 3 has no row, A's seed 0 has both extensions.
        assert_eq!(in_shares.state(1, 3), RunState::Missing);
        assert_eq!(in_shares.state(0, 0), RunState::Complete);
    }

    #[test]
    fn blank_lines_are_skipped_on_every_core_and_a_lone_carriage_return_is_read_in_order() {
        let plain = large_manifest();
        let blank = plain.replacen("\n", "\n\n\r\n", 40);
        let lone_return =
            format!("{plain}S_C_0008,LOCATIONS.json,s3://b,k\rS_C_0007,OTHER.csv,s3://b,k\n");
        for (csv, on_every_core) in [(blank, true), (lone_return, false)] {
            let (mut in_order, mut in_shares) = (table(), table());
            let rows = in_order.load_csv_on(csv.as_bytes(), "m.csv", 1).unwrap();
            let body = &csv.as_bytes()[csv.find('\n').unwrap() + 1..];
            let shares = in_shares.load_rows_in_shares(body, 4, 0, 1, 3);
            assert_eq!(shares.is_some(), on_every_core);
            if on_every_core {
                assert_eq!(shares, Some(rows));
                assert_eq!(in_order.masks, in_shares.masks);
            }
        }
    }

    #[test]
    fn a_ragged_row_of_a_large_manifest_is_named_by_its_line() {
        let mut csv = large_manifest();
        let line = csv.lines().count() + 1;
        csv.push_str("S_A_0001,CELLS.tar.xz\n");
        csv.push_str("S_A_0002,CELLS.tar.xz,s3://b,k\n");
        for cores in [1, 3] {
            let err = table()
                .load_csv_on(csv.as_bytes(), "m.csv", cores)
                .unwrap_err();
            assert_eq!(err.line, Some(line as u64), "{err}");
            assert!(
                err.message.contains("2 fields where the header has 4"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_quoted_manifest_is_read_in_order_with_its_quotes() {
        let mut csv = large_manifest();
        csv.push_str("\"S_C_0009\",\"LOCATIONS.json\",\"s3://b\",\"a,\nb\"\n");
        let (mut in_order, mut in_shares) = (table(), table());
        let rows = in_order.load_csv_on(csv.as_bytes(), "m.csv", 1).unwrap();
        assert_eq!(in_shares.load_csv_on(csv.as_bytes(), "m.csv", 3), Ok(rows));
        assert_eq!(in_order.masks, in_shares.masks);
        assert!(in_shares.has_extension(2, 9, 1));
    }

    #[test]
    fn shares_end_at_line_ends_and_cover_the_body() {
        let body = b"a,1\nbb,2\nccc,3\r\ndddd,4\ne,5";
        for shares in 1..=8 {
            let pieces = line_shares(body, shares);
            assert_eq!(pieces.concat(), body.to_vec(), "{shares}");
            assert!(pieces.len() <= shares, "{shares}: {pieces:?}");
            for piece in &pieces[..pieces.len() - 1] {
                assert_eq!(piece.last(), Some(&b'\n'), "{shares}");
            }
        }
        assert!(line_shares(b"", 2).is_empty());
    }
}
