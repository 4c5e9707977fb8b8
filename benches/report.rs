//! The report of a 1,000,000-run series (1,000 conditions x 1,000 seeds): how long `simseries
//! report` takes to draw the map and write the page, and how large the page is, for three
//! patterns of states (all complete; holes in blocks, as a sweep has them; every run at random,
//! the worst case for the PNG's compression). Run with `cargo bench --bench report`.

use std::time::Instant;

use simseries::model::status::SimulationSeriesStatus;
use simseries::report::grid::{Cell, Grid, GridRow};
use simseries::report::page::{PageInput, html};

fn grid(mut cell: impl FnMut(usize, usize) -> Cell) -> Grid {
    Grid {
        seeds: (0..1000).collect(),
        rows: (0..1000)
            .map(|r| GridRow {
                group: if r < 500 { "A" } else { "B" }.into(),
                condition: format!("C{r:04}"),
                cells: (0..1000).map(|s| cell(r, s)).collect(),
            })
            .collect(),
        extensions: vec![("CELLS.tar.xz".into(), 0), ("LOCATIONS.tar.xz".into(), 0)],
    }
}

fn main() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let patterns: [(&str, Grid); 3] = [
        ("all complete", grid(|_, _| Cell::Complete)),
        (
            "holes in blocks",
            grid(|r, s| match (r / 100, s / 250) {
                (3, 1) => Cell::Missing,
                (7, _) if s % 97 == 0 => Cell::Failed,
                (9, 3) => Cell::Running,
                _ if (r + s) % 211 == 0 => Cell::Incomplete,
                _ => Cell::Complete,
            }),
        ),
        (
            "random",
            grid(|_, _| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                Cell::ALL[(state % 5) as usize]
            }),
        ),
    ];
    let status = SimulationSeriesStatus::default();
    println!("| 1,000,000 runs | page | seconds (median of 5) |");
    println!("|---|---|---|");
    for (name, grid) in &patterns {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..5 {
            let start = Instant::now();
            let page = html(
                grid,
                &Default::default(),
                &PageInput {
                    title: "bench",
                    status: &status,
                    failed: &[],
                    status_json: "{}",
                    generated_at: "now",
                    history: &[],
                },
            );
            times.push(start.elapsed().as_secs_f64());
            size = page.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.2} MB | {:.2} s |",
            size as f64 / 1e6,
            times[2]
        );
    }
}
