//! Client-side rate limiting per endpoint family.
//!
//! Databricks limits requests per workspace and per endpoint family; the limiter keeps each
//! family just under its published rate so a sweep of thousands of objects provokes few 429s.
//! Family names match the emulator's request log (`tests/emulator`).

use std::{collections::HashMap, num::NonZeroU32, sync::Arc};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Endpoint families, each with its own published rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `jobs/update`, `jobs/delete`: 10 req/s.
    JobsUpdate,
    /// `jobs/get`, `jobs/list`, `jobs/reset`, `jobs/run-now`, `jobs/create`: 20 req/s.
    JobsRead,
    /// `jobs/runs/get`, `jobs/runs/list`: 100 req/s.
    RunsRead,
    /// `jobs/runs/cancel`, `jobs/runs/cancel-all`.
    RunsWrite,
    /// Clusters API.
    Clusters,
    /// Instance pools API.
    Pools,
    /// SQL warehouses API.
    Warehouses,
    /// Pipelines API.
    Pipelines,
    /// Permissions API.
    Permissions,
    /// SCIM: 255 req/min.
    Scim,
    /// SQL statement execution.
    Sql,
    /// Anything else.
    Other,
}

impl Family {
    /// All families, for building limiters and reports.
    pub const ALL: [Family; 12] = [
        Family::JobsUpdate,
        Family::JobsRead,
        Family::RunsRead,
        Family::RunsWrite,
        Family::Clusters,
        Family::Pools,
        Family::Warehouses,
        Family::Pipelines,
        Family::Permissions,
        Family::Scim,
        Family::Sql,
        Family::Other,
    ];

    /// The wire name used in the emulator's request log and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::JobsUpdate => "jobs_update",
            Family::JobsRead => "jobs_read",
            Family::RunsRead => "runs_read",
            Family::RunsWrite => "runs_write",
            Family::Clusters => "clusters",
            Family::Pools => "pools",
            Family::Warehouses => "warehouses",
            Family::Pipelines => "pipelines",
            Family::Permissions => "permissions",
            Family::Scim => "scim",
            Family::Sql => "sql",
            Family::Other => "other",
        }
    }

    /// The published (or assumed, 15/s) limit in requests per second.
    pub fn default_rate(self) -> f64 {
        match self {
            Family::JobsUpdate => 10.0,
            Family::JobsRead => 20.0,
            Family::RunsRead => 100.0,
            Family::Scim => 255.0 / 60.0,
            _ => 15.0,
        }
    }
}

/// Per-family request rates, in requests per second.
#[derive(Debug, Clone)]
pub struct RateLimits(pub HashMap<Family, f64>);

impl Default for RateLimits {
    fn default() -> Self {
        Self(Family::ALL.iter().map(|f| (*f, f.default_rate())).collect())
    }
}

impl RateLimits {
    /// The rate for a family.
    pub fn rate(&self, family: Family) -> f64 {
        self.0
            .get(&family)
            .copied()
            .unwrap_or_else(|| family.default_rate())
    }
}

/// One smooth limiter per family (no bursts: a burst is exactly what earns a 429).
#[derive(Clone)]
pub struct FamilyLimiter {
    limiters: Arc<HashMap<Family, DefaultDirectRateLimiter>>,
}

impl std::fmt::Debug for FamilyLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilyLimiter").finish_non_exhaustive()
    }
}

impl FamilyLimiter {
    /// Builds limiters from rates; a rate of 0 or less means unlimited.
    pub fn new(limits: &RateLimits) -> Self {
        let limiters = Family::ALL
            .iter()
            .filter_map(|family| {
                let rate = limits.rate(*family);
                if rate <= 0.0 {
                    return None;
                }
                let period = std::time::Duration::from_secs_f64(1.0 / rate);
                let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::MIN);
                Some((*family, RateLimiter::direct(quota)))
            })
            .collect();
        Self {
            limiters: Arc::new(limiters),
        }
    }

    /// Waits until the family may send one more request.
    pub async fn acquire(&self, family: Family) {
        if let Some(limiter) = self.limiters.get(&family) {
            limiter.until_ready().await;
        }
    }
}
