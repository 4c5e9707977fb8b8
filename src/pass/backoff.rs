//! Waits that double after each failure, up to a cap: after a failed call, before a pass that
//! failed to start is tried again, after a failed reconcile.

use std::time::Duration;

/// `base` doubled after each failure, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// After failed calls (throttling, network) and failed reconciles: 5 s doubling up to 5 min.
    pub const CALLS: Backoff = Backoff {
        base: Duration::from_secs(5),
        max: Duration::from_secs(300),
    };

    /// Before a pass that failed to start is tried again: 1 min doubling up to 1 h.
    pub const RESTARTS: Backoff = Backoff {
        base: Duration::from_secs(60),
        max: Duration::from_secs(3600),
    };

    /// The wait after `failures` failures in a row (the first waits `base`).
    pub fn after(self, failures: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_never_overflows() {
        let waits: Vec<u64> = (0..=8).map(|n| Backoff::CALLS.after(n).as_secs()).collect();
        assert_eq!(waits, [5, 5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(Backoff::RESTARTS.after(u32::MAX), Duration::from_secs(3600));
    }
}
