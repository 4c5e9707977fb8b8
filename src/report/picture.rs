//! The completeness map drawn: an SVG with a title on every stretch of runs (small series, and
//! `--format svg`), or a PNG of one pixel per cell (large series, and `--format png`).

use std::collections::HashMap;
use std::fmt::Write;

use quick_xml::escape::escape;

use crate::report::grid::{Cell, Grid, Shrunk};

/// At most this many cells in an SVG: past it, a title per stretch of runs would make the
/// page too large to open; the map is shrunk (or, in the HTML report, drawn as a PNG).
pub const SVG_MAX_CELLS: usize = 20_000;

/// At most this many pixels in a PNG (one per cell): a 1,000 x 1,000 series is drawn whole.
pub const PNG_MAX_CELLS: usize = 4_000_000;

/// Up to this many cells, each run is drawn as its own square (its `rect` counted by the
/// browser test); past it, each row's stretches of one state are one rectangle.
pub const SEPARATE_MAX_CELLS: usize = 2_000;

/// The side a small map is enlarged to, in pixels, so a 10 x 10 series is not a speck.
const MIN_SIDE: usize = 600;

/// Hover texts of single runs, by condition row and seed column: why a failed run failed.
pub type Details = HashMap<(usize, usize), String>;

/// What one shrunk row stands for: a condition, or the first and last of several.
fn row_label(grid: &Grid, shrunk: &Shrunk, row: usize) -> String {
    let first = row * shrunk.rows_per_cell;
    let last = ((row + 1) * shrunk.rows_per_cell).min(grid.rows.len()) - 1;
    if first == last {
        grid.rows[first].condition.clone()
    } else {
        format!(
            "{}–{}",
            grid.rows[first].condition, grid.rows[last].condition
        )
    }
}

fn seed_label(grid: &Grid, shrunk: &Shrunk, first: usize, last: usize) -> String {
    let first = grid.seeds[first * shrunk.columns_per_cell];
    let last = grid.seeds[((last + 1) * shrunk.columns_per_cell).min(grid.seeds.len()) - 1];
    if first == last {
        format!("seed {first}")
    } else {
        format!("seeds {first}–{last}")
    }
}

/// An SVG of the map in at most [`SVG_MAX_CELLS`] cells: each row's stretches of one state are
/// one rectangle with a title (`C0001 seeds 0–9: complete`), a failed run its own with its
/// details; condition labels on the left when each row is one condition.
pub fn svg(grid: &Grid, title: &str, details: &Details) -> String {
    let shrunk = grid.shrink(SVG_MAX_CELLS);
    let cell = (MIN_SIDE / shrunk.width.max(shrunk.height).max(1)).clamp(2, 24);
    let labelled = shrunk.rows_per_cell == 1 && cell >= 8;
    // A small map shows every run as its own square, a gap between them.
    let separate = shrunk.width * shrunk.height <= SEPARATE_MAX_CELLS && cell >= 8;
    let gap = usize::from(separate);
    let label_width = if labelled {
        8 * grid
            .rows
            .iter()
            .map(|r| r.condition.len())
            .max()
            .unwrap_or(0)
            + 12
    } else {
        0
    };
    // Seeds across, above the map, when each column is one seed and there is room to write it.
    let header = if labelled && shrunk.columns_per_cell == 1 && shrunk.width <= 64 {
        cell.min(14) + 4
    } else {
        0
    };
    let (width, height) = (
        label_width + shrunk.width * cell,
        header + shrunk.height * cell,
    );
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-labelledby="map-title map-desc"><title id="map-title">{}</title><desc id="map-desc">{}</desc><g shape-rendering="crispEdges" font-family="sans-serif" font-size="{}">"#,
        escape(title),
        escape(describe(grid)),
        cell.min(12)
    );
    if header > 0 {
        for (column, seed) in grid.seeds.iter().enumerate() {
            let _ = write!(
                out,
                r##"<text x="{}" y="{}" fill="#333" text-anchor="middle">{seed}</text>"##,
                label_width + column * cell + cell / 2,
                header - 4
            );
        }
    }
    for row in 0..shrunk.height {
        let y = header + row * cell;
        let label = row_label(grid, &shrunk, row);
        // A line where a group begins, below the first, with the group's name on hover.
        let first = &grid.rows[row * shrunk.rows_per_cell];
        let previous = (row > 0).then(|| &grid.rows[row * shrunk.rows_per_cell - 1]);
        if previous.is_some_and(|p| p.group != first.group) {
            let _ = write!(
                out,
                r##"<line x1="0" y1="{y}" x2="{width}" y2="{y}" stroke="#222" stroke-width="1" data-group="{0}"><title>group {0}</title></line>"##,
                escape(&first.group)
            );
        }
        if labelled {
            let _ = write!(
                out,
                r##"<text x="0" y="{}" fill="#333">{}</text>"##,
                y + cell - cell / 4,
                escape(&label)
            );
        }
        let cells = &shrunk.cells[row * shrunk.width..(row + 1) * shrunk.width];
        let mut start = 0;
        while start < cells.len() {
            let state = cells[start];
            let detail = (shrunk.rows_per_cell == 1 && shrunk.columns_per_cell == 1)
                .then(|| details.get(&(row, start)))
                .flatten();
            let mut end = start + 1;
            if detail.is_none() && !separate {
                while end < cells.len() && cells[end] == state && details.get(&(row, end)).is_none()
                {
                    end += 1;
                }
            }
            let mut hover = format!(
                "{label} {}: {}",
                seed_label(grid, &shrunk, start, end - 1),
                state.label()
            );
            if let Some(detail) = detail {
                let _ = write!(hover, " ({detail})");
            }
            let _ = write!(
                out,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}" data-state="{}"><title>{}</title></rect>"#,
                label_width + start * cell + gap,
                y + gap,
                (end - start) * cell - gap,
                cell - gap,
                state.hex(),
                state.label(),
                escape(&hover)
            );
            start = end;
        }
    }
    out.push_str("</g></svg>");
    out
}

/// A PNG of the map in at most [`PNG_MAX_CELLS`] pixels, one per cell (enlarged for a small
/// series), with the five colours as its palette.
pub fn png(grid: &Grid) -> Vec<u8> {
    png_of(&grid.shrink(PNG_MAX_CELLS))
}

/// A PNG of a map already shrunk to its pixels.
pub fn png_of(shrunk: &Shrunk) -> Vec<u8> {
    let scale = (MIN_SIDE / shrunk.width.max(shrunk.height).max(1)).max(1);
    let (width, height) = (shrunk.width * scale, shrunk.height * scale);
    let mut pixels = Vec::with_capacity(width * height);
    for row in shrunk.cells.chunks(shrunk.width.max(1)) {
        let line: Vec<u8> = row
            .iter()
            .flat_map(|cell| std::iter::repeat_n(cell.index() as u8, scale))
            .collect();
        for _ in 0..scale {
            pixels.extend_from_slice(&line);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(
        Cell::ALL
            .iter()
            .flat_map(|c| c.colour())
            .collect::<Vec<u8>>(),
    );
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().expect("a PNG header into memory");
    writer
        .write_image_data(&pixels)
        .expect("a PNG of the size given into memory");
    writer.finish().expect("a PNG into memory");
    out
}

/// The text alternative of the map: the runs in each state.
pub fn describe(grid: &Grid) -> String {
    let counts = grid.counts();
    let parts: Vec<String> = Cell::ALL
        .iter()
        .zip(counts)
        .map(|(cell, n)| format!("{n} {}", cell.label()))
        .collect();
    format!(
        "{} conditions by {} seeds, {} runs: {}",
        grid.rows.len(),
        grid.seeds.len(),
        grid.runs(),
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::grid::GridRow;

    #[test]
    fn the_svg_marks_where_each_group_begins() {
        let group = |r: usize| match r {
            0..2 => "A",
            2..5 => "B",
            _ => "C",
        };
        let grid = Grid {
            seeds: vec![0, 1, 2],
            rows: (0..6)
                .map(|r| GridRow {
                    group: group(r).into(),
                    condition: format!("C{r}"),
                    cells: vec![Cell::Complete; 3],
                })
                .collect(),
            extensions: Vec::new(),
        };
        let svg = svg(&grid, "t", &Details::new());
        let groups: Vec<&str> = svg
            .match_indices("data-group=\"")
            .map(|(at, _)| &svg[at + 12..at + 13])
            .collect();
        assert_eq!(groups, ["B", "C"]);
    }
}
