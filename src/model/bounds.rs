//! The bounds of a spec, in one place for the two that enforce them: the CRD's schema and CEL
//! rules (the API server refuses a series past them before the controller sees it) and
//! [`crate::model::validate`] (the command line's specs and anything the schema cannot say).

/// Extension bits in the completeness table; one more bit marks "some output seen".
pub const MAX_EXTENSIONS: usize = 63;
/// The longest wait between polls: a week. Longer waits are mistakes (minutes typed as
/// milliseconds) and would overflow clock arithmetic.
pub const MAX_RETRY_DELAY_SECONDS: u64 = 7 * 24 * 3600;
/// AWS Batch tries a job at most 10 times.
pub const MAX_SPOT_RETRIES: u32 = 9;
/// AWS Batch's shortest attempt timeout.
pub const MIN_TIMEOUT_SECONDS: u64 = 60;
/// AWS Batch's largest scheduling priority.
pub const MAX_SCHEDULING_PRIORITY: u32 = 9999;
/// The highest price of a vCPU-hour taken: far above any AWS price, low enough to catch a
/// price per month or per year typed by mistake.
pub const MAX_VCPU_HOUR_PRICE: f64 = 100.0;
/// The most polls of a pass.
pub const MAX_RETRIES: u32 = 100_000;
/// The most runs (conditions x seeds) a series may plan: ten times the largest series
/// measured (`cargo bench --bench plan`), so planning stays within seconds and memory bounded.
pub const MAX_RUNS: u64 = 10_000_000;
/// The longest list of seeds (there are 10,000 distinct seeds).
pub const MAX_SEEDS: usize = 10_000;
/// The most conditions and the most inits.
pub const MAX_CONDITIONS: usize = 1_000_000;
pub const MAX_INITS: usize = 100_000;
/// CloudWatch Logs' own bound on a filter pattern.
pub const MAX_LOG_FILTER_CHARS: usize = 1024;
