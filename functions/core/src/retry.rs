//! One retry policy for everything that retries: the Databricks client (a transient API
//! error), the ledger's conditional writes (a write that lost the race to another writer), the
//! announcement webhooks. Each caller keeps its own rule of *what* may be retried — only
//! idempotent calls, only transient errors, only a conflict that re-reading resolves — and this
//! type says how often and how long to wait. The AWS SDK clients keep the SDK's own retry
//! (`aws.rs`), which already follows the same shape (exponential backoff with jitter).

use std::time::Duration;

use rand::Rng;

/// How many attempts, and how long to wait before each next one: exponential from
/// `initial_backoff`, capped at `max_backoff`, plus up to `jitter` at random (so that writers
/// that collided once do not collide again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Cap of the exponential wait.
    pub max_backoff: Duration,
    /// Upper bound of the random jitter added to every wait.
    pub jitter: Duration,
}

impl Default for RetryPolicy {
    /// The Databricks client's: 8 attempts, 200 ms doubling to 5 s, 250 ms jitter (a 5xx storm
    /// of ~20 s is ridden out; a longer outage is the fence's to wait for).
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            jitter: Duration::from_millis(250),
        }
    }
}

impl RetryPolicy {
    /// A conditional ledger write that lost the race (412): re-read, re-apply, write again —
    /// soon, since the other writer (a vote, a delivery record) finished already.
    pub const LEDGER_CONFLICT: RetryPolicy = RetryPolicy {
        max_attempts: 20,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(400),
        jitter: Duration::from_millis(50),
    };

    /// A webhook of an announcement: a notification must never hold a run up for long.
    pub const WEBHOOK: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(2),
        jitter: Duration::ZERO,
    };

    /// Pure: the wait after attempt `attempt` (1-based) failed, without jitter.
    pub fn exponential(&self, attempt: u32) -> Duration {
        self.initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff)
    }

    /// A random jitter within the policy's bound.
    pub fn jitter(&self) -> Duration {
        let ms = self.jitter.as_millis() as u64;
        if ms == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(rand::rng().random_range(0..=ms))
        }
    }

    /// The wait after attempt `attempt` failed: [`Self::exponential`] plus jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.exponential(attempt) + self.jitter()
    }

    /// Whether attempt `attempt` (1-based) may be followed by another.
    pub fn may_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_attempts_end() {
        let p = RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            jitter: Duration::ZERO,
        };
        let table = [
            (1, 100, true),
            (2, 200, true),
            (3, 350, true),
            (4, 350, false),
            (40, 350, false),
        ];
        for (attempt, ms, again) in table {
            assert_eq!(
                p.exponential(attempt),
                Duration::from_millis(ms),
                "{attempt}"
            );
            assert_eq!(p.backoff(attempt), Duration::from_millis(ms), "{attempt}");
            assert_eq!(p.may_retry(attempt), again, "{attempt}");
        }
        let jittered = RetryPolicy {
            jitter: Duration::from_millis(30),
            ..p
        };
        for attempt in 1..10 {
            let w = jittered.backoff(attempt);
            assert!(w >= jittered.exponential(attempt));
            assert!(w <= jittered.exponential(attempt) + Duration::from_millis(30));
        }
    }
}
