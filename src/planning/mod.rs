//! Planning: which runs of a series are missing (manifest or output listing), how they group
//! into inputs and array jobs, and the inputs rendered from the template as the original
//! workflow renders them.

pub mod inputs;
pub mod listing;
pub mod manifest;
pub mod plan;
pub mod prepare;
pub mod pyfmt;
pub mod template;
