//! simseries: declarative parameter sweeps of containerized simulation models.
//!
//! The layers, from the bottom up (a layer imports only the layers below it; `tests/layers.rs`
//! checks this):
//!
//! - [`model`]: the series as users write it, its status and the types the layers exchange.
//! - [`storage`]: where files live (a local folder or S3), behind one trait.
//! - [`planning`]: which runs are missing, and their inputs rendered from the template.
//! - [`executor`]: where array jobs run (local processes or AWS Batch), behind one trait.
//! - [`pass`]: the pure decision of the next step of a pass, the actor that performs a step,
//!   and the one loop that drives them.
//! - [`cli`] and [`controller`]: the two drivers, `simseries run` on this machine and the
//!   Kubernetes controller.

pub mod aws;
pub mod cli;
pub mod controller;
pub mod executor;
pub mod faults;
pub mod model;
pub mod pass;
pub mod planning;
pub mod report;
pub mod storage;
