//! simseries: declarative parameter sweeps of containerized simulation models.

pub mod crd;
pub mod inputs;
pub mod layout;
pub mod location;
pub mod logfilter;
pub mod manifest;
pub mod plan;
pub mod prepare;
pub mod pyfmt;
pub mod reconcile;
pub mod report;
pub mod spec;
pub mod specfile;
pub mod status;
pub mod storage;
pub mod template;
pub mod validate;
