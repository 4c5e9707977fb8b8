//! Crash points at the step boundaries of a pass, for the tests that kill a driver there and
//! restart it.
//!
//! They are compiled to nothing unless the `failpoints` feature is on (the tests turn it on).
//! With it, `FAILPOINTS="after-submit=return"` makes the process die at that point at once,
//! without running destructors, as `kill -9` would; `FAILPOINTS="storage-write=3*off->return"`
//! dies at the fourth write. Both drivers (the local runner and the controller) pass through
//! the same points, since both act through [`crate::pass::act::Actor`].

/// Exit code of a process that died at a crash point.
pub const CRASH_EXIT_CODE: i32 = 86;

/// Every crash point, in the order a pass reaches them.
pub const POINTS: &[&str] = &[
    // The driver wrote the status announcing the next action, and has not acted yet.
    "after-status-write",
    // Each action has had its effect; its outcome is not in the status yet.
    "after-plan",
    "after-write-inputs",
    "after-copy-inits",
    "after-register",
    "after-submit",
    "after-poll",
    "after-terminate",
    "after-collect-logs",
    "after-clean",
    "after-recount",
    // In the middle of an action: after an object was written (inputs, logs, records).
    "storage-write",
];

/// Dies here if the test configured `name`.
pub fn crash_point(name: &str) {
    let _ = name;
    fail::fail_point!(name, |_| crash(name));
}

#[cfg(feature = "failpoints")]
fn crash(name: &str) {
    eprintln!("simseries: crash point {name}");
    std::process::exit(CRASH_EXIT_CODE)
}

/// Reads `FAILPOINTS` (tests only); keep the guard for the life of the process.
#[cfg(feature = "failpoints")]
pub fn setup() -> Option<fail::FailScenario<'static>> {
    Some(fail::FailScenario::setup())
}

#[cfg(not(feature = "failpoints"))]
pub fn setup() -> Option<()> {
    None
}
