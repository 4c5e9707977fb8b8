//! The model: the `SimulationSeries` resource as users write it (spec, spec file, CRD), its
//! validation, the status it resumes from, the naming contract of keys and folders, and the
//! types the decision and its adapters exchange. It imports nothing else of simseries.

pub mod bounds;
pub mod crd;
pub mod layout;
pub mod location;
pub mod logfilter;
pub mod name_limits;
pub mod outcome;
pub mod record;
pub mod spec;
pub mod specfile;
pub mod status;
pub mod usage;
pub mod validate;
