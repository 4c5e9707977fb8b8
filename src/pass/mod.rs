//! A pass of a series: [`decide`] (the pure state machine), the kstatus [`conditions`] it
//! derives, the [`transitions`] each driver renders, the [`act`]or that performs one step
//! through storage and an executor, [`drive`], the one decide → persist → act loop, and the
//! [`backoff`] of waits after failures.

pub mod act;
pub mod backoff;
pub mod conditions;
pub mod decide;
pub mod drive;
pub mod transitions;
