//! simseries: declarative parameter sweeps of containerized simulation models.

pub mod act;
pub mod aws;
pub mod controller;
pub mod crd;
pub mod executor;
pub mod faults;
pub mod inputs;
pub mod layout;
pub mod location;
pub mod logfilter;
pub mod manifest;
pub mod plan;
pub mod prepare;
pub mod pyfmt;
pub mod reconcile;
pub mod record;
pub mod report;
pub mod runner;
pub mod spec;
pub mod specfile;
pub mod status;
pub mod storage;
pub mod template;
pub mod validate;
