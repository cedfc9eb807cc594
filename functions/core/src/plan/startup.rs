//! `[startup]`: what is started at the target once the source is fenced — warm pools, clusters,
//! warehouses, concurrency overrides, jobs run once — and how long it may take.

use serde::{Deserialize, Serialize};

use super::{invalid, PlanError};

/// What to start at the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Startup {
    /// Pools to warm, by name.
    #[serde(default)]
    pub pools: Vec<PoolWarmup>,
    /// All-purpose clusters to start, by name.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// SQL warehouses to start, by name.
    #[serde(default)]
    pub warehouses: Vec<String>,
    /// `max_concurrent_runs` overrides, by job name.
    #[serde(default)]
    pub concurrency: Vec<ConcurrencyOverride>,
    /// Jobs to run once at the target (with an idempotency token), once the source is fenced.
    #[serde(default)]
    pub run_once: Vec<String>,
    /// Seconds to wait for everything to be ready.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_seconds: u32,
    /// Seconds between readiness polls (start-up, schedule gate).
    #[serde(default = "default_poll")]
    pub poll_seconds: u32,
}

fn default_poll() -> u32 {
    5
}

impl Default for Startup {
    fn default() -> Self {
        Self {
            pools: Vec::new(),
            clusters: Vec::new(),
            warehouses: Vec::new(),
            concurrency: Vec::new(),
            run_once: Vec::new(),
            ready_timeout_seconds: default_ready_timeout(),
            poll_seconds: default_poll(),
        }
    }
}

fn default_ready_timeout() -> u32 {
    600
}

/// A pool and its warm size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolWarmup {
    /// Pool name.
    pub name: String,
    /// `min_idle_instances` at the target.
    pub min_idle: u32,
}

/// A job concurrency override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyOverride {
    /// Job name.
    pub job: String,
    /// New `max_concurrent_runs` (1–1000).
    pub max_concurrent_runs: u32,
}

impl Startup {
    /// Checks the pool sizes and concurrency overrides. (`Plan::validate` checks the poll
    /// interval later, with [`Startup::validate_poll`]: the first error reported stays the same.)
    pub(super) fn validate_targets(&self) -> Result<(), PlanError> {
        for (i, p) in self.pools.iter().enumerate() {
            if p.min_idle > 1000 {
                return Err(invalid(
                    format!("startup.pools[{i}].min_idle"),
                    "at most 1000",
                ));
            }
        }
        for (i, c) in self.concurrency.iter().enumerate() {
            if !(1..=1000).contains(&c.max_concurrent_runs) {
                return Err(invalid(
                    format!("startup.concurrency[{i}].max_concurrent_runs"),
                    "must be 1–1000",
                ));
            }
        }
        Ok(())
    }

    /// Checks the readiness poll interval.
    pub(super) fn validate_poll(&self) -> Result<(), PlanError> {
        if self.poll_seconds == 0 || self.poll_seconds > 300 {
            return Err(invalid("startup.poll_seconds", "must be 1–300"));
        }
        Ok(())
    }
}
