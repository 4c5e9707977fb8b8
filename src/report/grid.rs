//! The completeness map of a series: every planned run, conditions down and seeds across, in
//! one of five states, from the completeness table and the record of the current (or last)
//! pass; and the map shrunk to a bounded number of cells for a picture of a large series.

use serde::Serialize;

use crate::model::record::PassRecord;
use crate::model::status::JobState;
use crate::model::validate::ValidSeries;
use crate::planning::manifest::{Completeness, RunState};

/// What became of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Cell {
    /// Every output extension is there.
    Complete,
    /// Some but not every extension is there.
    Incomplete,
    /// Its input is running in the current pass.
    Running,
    /// Its input failed or was terminated in the current (or last) pass.
    Failed,
    /// No output, and nothing running.
    Missing,
}

impl Cell {
    /// Every state, in the legend's order.
    pub const ALL: [Cell; 5] = [
        Cell::Complete,
        Cell::Incomplete,
        Cell::Running,
        Cell::Failed,
        Cell::Missing,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Cell::Complete => "complete",
            Cell::Incomplete => "incomplete",
            Cell::Running => "running",
            Cell::Failed => "failed",
            Cell::Missing => "missing",
        }
    }

    /// The Okabe-Ito colours, chosen to stay apart for readers with any common colour vision
    /// deficiency (the tests check them under simulated protanopia, deuteranopia and
    /// tritanopia); missing is a grey, the background of a sweep that has not run.
    pub fn colour(self) -> [u8; 3] {
        match self {
            Cell::Complete => [0x00, 0x72, 0xB2],   // blue
            Cell::Incomplete => [0x56, 0xB4, 0xE9], // sky blue
            Cell::Running => [0xF0, 0xE4, 0x42],    // yellow
            Cell::Failed => [0xD5, 0x5E, 0x00],     // vermillion
            Cell::Missing => [0xBB, 0xBB, 0xBB],    // grey
        }
    }

    /// `#rrggbb`.
    pub fn hex(self) -> String {
        let [r, g, b] = self.colour();
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// How much a shrunk cell standing for several runs shows this state: the worst wins, so
    /// a hole is never hidden by complete runs beside it.
    fn severity(self) -> u8 {
        match self {
            Cell::Complete => 0,
            Cell::Incomplete => 1,
            Cell::Running => 2,
            Cell::Missing => 3,
            Cell::Failed => 4,
        }
    }

    /// Its place in [`Cell::ALL`]: the legend's order, the PNG's palette index.
    pub fn index(self) -> usize {
        Cell::ALL.iter().position(|c| *c == self).expect("in ALL")
    }

    /// Runs in each state, in the order of [`Cell::ALL`].
    pub fn count<'a>(cells: impl IntoIterator<Item = &'a Cell>) -> [u64; 5] {
        let mut counts = [0u64; 5];
        for cell in cells {
            counts[cell.index()] += 1;
        }
        counts
    }
}

/// One condition's runs, one cell per seed in ascending seed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridRow {
    pub group: String,
    pub condition: String,
    pub cells: Vec<Cell>,
}

/// The planned runs: the conditions of the planned groups in group order, by the seeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grid {
    pub seeds: Vec<u32>,
    pub rows: Vec<GridRow>,
    /// Each output extension with the number of planned runs that have it.
    pub extensions: Vec<(String, u64)>,
}

/// The runs of the current (or last) pass that did not end well: failed, and, while the pass
/// goes on, those whose input has not finished.
pub struct PassRuns<'a> {
    pub record: &'a PassRecord,
    /// The pass is still going: an unfinished child is running, not missing.
    pub active: bool,
}

impl Grid {
    pub fn new(series: &ValidSeries<'_>, table: &Completeness, pass: Option<PassRuns<'_>>) -> Grid {
        let seeds = series.seeds.len();
        let conditions = series.spec.series.conditions.len();
        // What the pass says of a run that has not every output.
        let mut overlay: Vec<Option<Cell>> = vec![None; conditions * seeds];
        if let Some(pass) = pass {
            for child in pass.record.children() {
                let state = child.outcome.as_ref().and_then(|o| o.state);
                let cell = match state {
                    Some(JobState::Failed) => Cell::Failed,
                    Some(JobState::Succeeded) => continue,
                    _ if pass.active => Cell::Running,
                    _ => continue,
                };
                for run in &child.runs {
                    if let Some((condition, slot)) = table.locate(run) {
                        overlay[condition * seeds + slot] = Some(cell);
                    }
                }
            }
        }
        let rows = series
            .groups
            .iter()
            .filter(|g| !g.skipped)
            .flat_map(|group| group.conditions.iter().map(move |&c| (group, c)))
            .map(|(group, condition)| GridRow {
                group: group.name.clone(),
                condition: series.spec.series.conditions[condition].key.clone(),
                cells: (0..seeds)
                    .map(|slot| {
                        match (
                            table.state(condition, slot),
                            overlay[condition * seeds + slot],
                        ) {
                            (RunState::Complete, _) => Cell::Complete,
                            (_, Some(cell)) => cell,
                            (RunState::Incomplete, None) => Cell::Incomplete,
                            (RunState::Missing, None) => Cell::Missing,
                        }
                    })
                    .collect(),
            })
            .collect();
        let planned: Vec<usize> = series
            .groups
            .iter()
            .filter(|g| !g.skipped)
            .flat_map(|g| g.conditions.iter().copied())
            .collect();
        let extensions = series
            .spec
            .series
            .extensions
            .iter()
            .enumerate()
            .map(|(e, name)| {
                let with = planned
                    .iter()
                    .map(|&c| (0..seeds).filter(|&s| table.has_extension(c, s, e)).count() as u64)
                    .sum();
                (name.clone(), with)
            })
            .collect();
        Grid {
            seeds: series.seeds.clone(),
            rows,
            extensions,
        }
    }

    /// Runs in each state, in the order of [`Cell::ALL`].
    pub fn counts(&self) -> [u64; 5] {
        Cell::count(self.rows.iter().flat_map(|r| &r.cells))
    }

    pub fn runs(&self) -> u64 {
        self.rows.len() as u64 * self.seeds.len() as u64
    }

    /// The map in at most `max_cells` cells: consecutive conditions (and, when one row is
    /// already too wide, consecutive seeds) share a cell, which shows the worst of its runs.
    pub fn shrink(&self, max_cells: usize) -> Shrunk {
        let (rows, columns) = (self.rows.len().max(1), self.seeds.len().max(1));
        let columns_per_cell = columns.div_ceil(max_cells.max(1)).max(1);
        let width = columns.div_ceil(columns_per_cell);
        let rows_per_cell = rows.div_ceil((max_cells / width).max(1));
        let height = rows.div_ceil(rows_per_cell);
        let mut cells = vec![Cell::Complete; width * height];
        for (r, row) in self.rows.iter().enumerate() {
            for (c, cell) in row.cells.iter().enumerate() {
                let at = &mut cells[(r / rows_per_cell) * width + c / columns_per_cell];
                if cell.severity() > at.severity() {
                    *at = *cell;
                }
            }
        }
        Shrunk {
            width,
            height,
            rows_per_cell,
            columns_per_cell,
            cells,
        }
    }
}

/// A map of `width` x `height` cells, row by row, each standing for up to `rows_per_cell`
/// conditions by `columns_per_cell` seeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shrunk {
    pub width: usize,
    pub height: usize,
    pub rows_per_cell: usize,
    pub columns_per_cell: usize,
    pub cells: Vec<Cell>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::ChildOutcome;
    use crate::model::record::ChildRecord;
    use crate::model::specfile;
    use crate::model::validate::validate;

    const SERIES: &str = "apiVersion: simseries.io/v1alpha1\nkind: SimulationSeries\nmetadata: {name: s}\nspec:\n  context: {workingLocation: w, manifestLocation: ., templateLocation: ., vcpus: 1, memory: 1}\n  series: {name: S, manifestKey: m.csv, templateKey: t.xml, seeds: [0, 1, 2, 3], conditions: [{key: A}, {key: B}], extensions: [X, Y]}\n  parameters: {model: toy, retries: 1, retryDelay: 1}\n";

    fn child(runs: &[&str], state: Option<JobState>) -> ChildRecord {
        ChildRecord {
            index: 0,
            input: "S/2024-06-01/inputs/S_0.xml".into(),
            runs: runs.iter().map(|r| r.to_string()).collect(),
            outcome: state.map(|s| ChildOutcome::bare(0, Some(s), None)),
            log: None,
        }
    }

    #[test]
    fn each_run_shows_its_outputs_then_what_the_pass_says_of_it() {
        let spec = specfile::parse(SERIES).unwrap().spec;
        let series = validate(&spec).unwrap();
        let mut table = Completeness::new(&series);
        for object in [
            "S_A_0000.X",
            "S_A_0000.Y",
            "S_A_0001.X",
            "S_A_0002.X",
            "S_A_0002.Y",
        ] {
            table.record_object(&format!("S/2024-06-01/outputs/{object}"));
        }
        let record = PassRecord::of_children(
            1,
            vec![
                // Complete wins over a failed child (an earlier attempt's outputs).
                child(&["S_A_0002"], Some(JobState::Failed)),
                child(&["S_A_0001", "S_B_0000"], Some(JobState::Failed)),
                child(&["S_B_0001"], Some(JobState::Running)),
                child(&["S_B_0002"], Some(JobState::Succeeded)),
            ],
        );
        let cells = |active| {
            let grid = Grid::new(
                &series,
                &table,
                Some(PassRuns {
                    record: &record,
                    active,
                }),
            );
            grid.rows
                .iter()
                .map(|r| r.cells.clone())
                .collect::<Vec<_>>()
        };
        use Cell::*;
        assert_eq!(
            cells(true),
            [
                vec![Complete, Failed, Complete, Missing],
                vec![Failed, Running, Missing, Missing]
            ]
        );
        // A finished pass has nothing running: its unfinished children are missing.
        assert_eq!(cells(false)[1], vec![Failed, Missing, Missing, Missing]);
        let grid = Grid::new(&series, &table, None);
        assert_eq!(
            grid.rows[0].cells,
            vec![Complete, Incomplete, Complete, Missing]
        );
        assert_eq!(grid.counts(), [2, 1, 0, 0, 5]);
        assert_eq!(
            grid.extensions,
            [("X".to_string(), 3), ("Y".to_string(), 2)]
        );
    }

    fn grid_of(rows: usize, seeds: usize, mut cell: impl FnMut(usize, usize) -> Cell) -> Grid {
        Grid {
            seeds: (0..seeds as u32).collect(),
            rows: (0..rows)
                .map(|r| GridRow {
                    group: "_".into(),
                    condition: format!("C{r:05}"),
                    cells: (0..seeds).map(|s| cell(r, s)).collect(),
                })
                .collect(),
            extensions: Vec::new(),
        }
    }

    #[test]
    fn a_shrunk_map_stays_within_its_cells_and_shows_the_worst_of_each() {
        let grid = grid_of(1000, 300, |r, s| match (r, s) {
            (517, 3) => Cell::Failed,
            (900, _) => Cell::Missing,
            _ => Cell::Complete,
        });
        let shrunk = grid.shrink(10_000);
        assert!(shrunk.width * shrunk.height <= 10_000);
        assert_eq!(shrunk.width, 300);
        let per = shrunk.rows_per_cell;
        assert_eq!(per, 31);
        let at = |row: usize, column: usize| shrunk.cells[row * shrunk.width + column];
        assert_eq!(at(517 / per, 3), Cell::Failed);
        assert_eq!(at(517 / per, 4), Cell::Complete);
        assert_eq!(at(900 / per, 299), Cell::Missing);
        assert_eq!(at(0, 0), Cell::Complete);
        // Too wide for one row: seeds share cells too.
        let wide = grid_of(2, 50_000, |_, s| {
            if s == 49_999 {
                Cell::Failed
            } else {
                Cell::Complete
            }
        });
        let shrunk = wide.shrink(1_000);
        assert!(shrunk.width * shrunk.height <= 1_000, "{shrunk:?}");
        assert_eq!(*shrunk.cells.last().unwrap(), Cell::Failed);
        // Small enough: one cell per run.
        assert_eq!(
            grid_of(3, 4, |_, _| Cell::Missing).shrink(12).cells.len(),
            12
        );
    }

    /// sRGB to CIELAB (D65).
    fn lab([r, g, b]: [f64; 3]) -> [f64; 3] {
        let [x, y, z] = [
            0.4124 * r + 0.3576 * g + 0.1805 * b,
            0.2126 * r + 0.7152 * g + 0.0722 * b,
            0.0193 * r + 0.1192 * g + 0.9505 * b,
        ];
        let f = |t: f64| {
            if t > 0.008856 {
                t.cbrt()
            } else {
                7.787 * t + 16.0 / 116.0
            }
        };
        let (fx, fy, fz) = (f(x / 0.9505), f(y), f(z / 1.089));
        [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
    }

    fn linear(channel: u8) -> f64 {
        let c = f64::from(channel) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }

    #[test]
    fn the_colours_stay_apart_for_colour_blind_readers() {
        // Machado, Oliveira and Fernandes (2009), severity 1, on linear RGB.
        let vision: [(&str, [[f64; 3]; 3]); 4] = [
            (
                "typical",
                [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            ),
            (
                "protanopia",
                [
                    [0.152286, 1.052583, -0.204868],
                    [0.114503, 0.786281, 0.099216],
                    [-0.003882, -0.048116, 1.051998],
                ],
            ),
            (
                "deuteranopia",
                [
                    [0.367322, 0.860646, -0.227968],
                    [0.280085, 0.672501, 0.047413],
                    [-0.011820, 0.042940, 0.968881],
                ],
            ),
            (
                "tritanopia",
                [
                    [1.255528, -0.076749, -0.178779],
                    [-0.078411, 0.930809, 0.147602],
                    [0.004733, 0.691367, 0.303900],
                ],
            ),
        ];
        for (name, m) in vision {
            let seen: Vec<(Cell, [f64; 3])> = Cell::ALL
                .iter()
                .map(|cell| {
                    let c = cell.colour().map(linear);
                    let row = |i: usize| {
                        (m[i][0] * c[0] + m[i][1] * c[1] + m[i][2] * c[2]).clamp(0.0, 1.0)
                    };
                    (*cell, lab([row(0), row(1), row(2)]))
                })
                .collect();
            for (i, (a, la)) in seen.iter().enumerate() {
                for (b, lb) in &seen[i + 1..] {
                    let distance = la
                        .iter()
                        .zip(lb)
                        .map(|(x, y)| (x - y).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    // CIE76 distance 20: clearly different patches side by side.
                    assert!(
                        distance >= 20.0,
                        "{name}: {a:?} and {b:?} are {distance:.1} apart"
                    );
                }
            }
        }
    }
}
