//! `simseries report`: a sweep to look at. The completeness map of every planned run
//! ([`grid`]), drawn as SVG or PNG ([`picture`]), and the one-file HTML page around it with
//! the bars, the pass, the history of passes ([`history`]) and the failed runs ([`page`]). Pure: the command line reads the series
//! and hands the pieces in.

pub mod grid;
pub mod history;
pub mod page;
pub mod picture;
