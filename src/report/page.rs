//! The one-file HTML report: no script, font or image from elsewhere, so it opens from a
//! laptop's disk or an S3 link. The page is a minijinja template with HTML escaping on; the map
//! is inline SVG for a small series and a PNG data URI for a large one.

use base64::Engine;
use minijinja::{Environment, context};
use serde::Serialize;

use crate::model::status::SimulationSeriesStatus;
use crate::planning::template::json_value;
use crate::report::grid::{Cell, Grid};
use crate::report::history::{self, PassLine};
use crate::report::picture::{self, Details, SVG_MAX_CELLS};

/// At most this many bars of conditions: past it, consecutive conditions share a bar.
pub const MAX_BARS: usize = 500;

const TEMPLATE: &str = include_str!("report.html");

/// A run whose input failed or was terminated, as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FailedRow {
    pub condition: String,
    pub seed: u32,
    pub input: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub log: Option<String>,
    /// A link to the log when it is a file on this machine.
    pub log_href: Option<String>,
}

/// What the page shows besides the map.
pub struct PageInput<'a> {
    /// `NAME (namespace NS)` or the series file.
    pub title: &'a str,
    pub status: &'a SimulationSeriesStatus,
    pub failed: &'a [FailedRow],
    /// `simseries status -o json` of the same reading, embedded for tools (and the tests).
    pub status_json: &'a str,
    /// When the page was made, RFC 3339.
    pub generated_at: &'a str,
    /// Every pass whose record was found, oldest first.
    pub history: &'a [PassLine],
}

/// One bar: a condition (or several), its runs in each state.
#[derive(Debug, Serialize)]
struct Bar {
    label: String,
    group: String,
    runs: u64,
    segments: Vec<Segment>,
}

#[derive(Debug, Serialize)]
struct Segment {
    state: &'static str,
    colour: String,
    count: u64,
    percent: f64,
}

/// Each state's share of `runs`, in the legend's order.
fn segments(counts: [u64; 5], runs: u64) -> Vec<Segment> {
    Cell::ALL
        .iter()
        .zip(counts)
        .map(|(cell, count)| Segment {
            state: cell.label(),
            colour: cell.hex(),
            count,
            percent: percent(count, runs),
        })
        .collect()
}

fn percent(n: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (n as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

/// The conditions' bars, consecutive conditions sharing one past [`MAX_BARS`].
fn bars(grid: &Grid) -> Vec<Bar> {
    let per_bar = grid.rows.len().div_ceil(MAX_BARS).max(1);
    grid.rows
        .chunks(per_bar)
        .map(|rows| {
            let counts = Cell::count(rows.iter().flat_map(|r| &r.cells));
            let runs = counts.iter().sum();
            let (first, last) = (&rows[0], &rows[rows.len() - 1]);
            Bar {
                label: if rows.len() == 1 {
                    first.condition.clone()
                } else {
                    format!("{}–{}", first.condition, last.condition)
                },
                group: if first.group == last.group {
                    first.group.clone()
                } else {
                    format!("{}–{}", first.group, last.group)
                },
                runs,
                // A bar draws only the states it has.
                segments: segments(counts, runs)
                    .into_iter()
                    .filter(|s| s.count > 0)
                    .collect(),
            }
        })
        .collect()
}

/// The page.
pub fn html(grid: &Grid, details: &Details, input: &PageInput<'_>) -> String {
    let counts = grid.counts();
    let runs = grid.runs();
    let legend = segments(counts, runs);
    let description = picture::describe(grid);
    let (svg, png) = if grid.runs() as usize <= SVG_MAX_CELLS {
        let title = format!("Completeness of {}", input.title);
        (Some(picture::svg(grid, &title, details)), None)
    } else {
        let shrunk = grid.shrink(picture::PNG_MAX_CELLS);
        let data = base64::engine::general_purpose::STANDARD.encode(picture::png_of(&shrunk));
        (
            None,
            Some(context! { data, width => shrunk.width, rows_per_pixel => shrunk.rows_per_cell }),
        )
    };
    let extensions: Vec<_> = grid
        .extensions
        .iter()
        .map(|(name, with)| context! { name, with, percent => percent(*with, runs) })
        .collect();
    let ready = input.status.conditions.iter().find(|c| c.type_ == "Ready");
    let pass = input.status.pass.as_ref().map(|pass| {
        let duration = match (&pass.started_at, &pass.finished_at) {
            (Some(start), Some(end)) => Some(history::describe_duration(
                end.0.as_second() - start.0.as_second(),
            )),
            _ => None,
        };
        let inputs = pass.input_counts();
        context! {
            number => pass.number,
            phase => format!("{:?}", pass.phase),
            date => pass.date.map(|d| d.to_string()),
            started => pass.started_at.as_ref().map(|t| t.0.to_string()),
            finished => pass.finished_at.as_ref().map(|t| t.0.to_string()),
            duration,
            polls => pass.attempts,
            inputs_total => inputs.total,
            inputs_done => inputs.done,
            inputs_failed => inputs.failed,
            inputs_running => inputs.running,
            usage => pass.usage.as_ref().map(|u| u.describe()),
            retried => pass.usage.as_ref().map(|u| u.retried_children),
            attempts => pass.usage.as_ref().map(|u| u.attempts),
            cost => pass.usage.as_ref().and_then(|u| u.estimated_cost),
        }
    });
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)
        .expect("the report template parses");
    env.get_template("report.html")
        .expect("added above")
        .render(context! {
            title => input.title,
            generated_at => input.generated_at,
            ready => ready.map(|r| context! { status => &r.status, reason => &r.reason, message => &r.message }),
            runs,
            conditions => grid.rows.len(),
            seeds => grid.seeds.len(),
            legend => as_value(&legend),
            description,
            svg => svg.map(minijinja::Value::from_safe_string),
            png,
            extensions,
            bars => as_value(&bars(grid)),
            pass,
            failed => as_value(input.failed),
            history => as_value(input.history),
            status_json => minijinja::Value::from_safe_string(script_safe(input.status_json)),
        })
        .expect("the report template renders its own context")
}

/// A value of the page's own types as the template sees it.
fn as_value<T: Serialize + ?Sized>(value: &T) -> minijinja::Value {
    json_value(&serde_json::to_value(value).expect("the page's types serialize"))
}

/// JSON that cannot end the `<script>` element it sits in: `<`, `>` and `&` as `\u` escapes,
/// which a JSON reader turns back into the same characters.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::grid::GridRow;

    #[test]
    fn the_page_of_a_million_runs_stays_under_two_megabytes() {
        // The worst case for compression: states scattered as a real sweep would never be.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            Cell::ALL[(state % 5) as usize]
        };
        let grid = Grid {
            seeds: (0..1000).collect(),
            rows: (0..1000)
                .map(|r| GridRow {
                    group: "_".into(),
                    condition: format!("C{r:04}"),
                    cells: (0..1000).map(|_| next()).collect(),
                })
                .collect(),
            extensions: Vec::new(),
        };
        assert_eq!(grid.runs(), 1_000_000);
        let status = SimulationSeriesStatus::default();
        let page = html(
            &grid,
            &Details::new(),
            &PageInput {
                title: "big",
                status: &status,
                failed: &[],
                status_json: "{}",
                generated_at: "now",
                history: &[],
            },
        );
        assert!(page.len() < 2_000_000, "{} bytes", page.len());
        assert!(page.contains("data:image/png;base64,"));
        // Conditions share bars past MAX_BARS.
        assert_eq!(page.matches("<tr class=\"condition\"").count(), MAX_BARS);
    }

    #[test]
    fn the_embedded_status_cannot_end_its_script_element() {
        let json = r#"{"reason":"</script><b>&"}"#;
        let safe = script_safe(json);
        assert!(!safe.contains("</script>") && !safe.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["reason"], "</script><b>&");
    }
}
