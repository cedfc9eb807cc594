//! `[shutdown]`: how a site is fenced — what the sweep leaves alone, what happens to active job
//! runs, and how long an unreachable site is retried.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{invalid, PlanError};

/// How to fence a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {
    /// Resources carrying any of these tags are left alone.
    #[serde(default)]
    pub exclude_tags: BTreeMap<String, String>,
    /// Resources with these exact names are left alone.
    #[serde(default)]
    pub exclude_names: Vec<String>,
    /// What to do with active job runs.
    #[serde(default)]
    pub active_runs: ActiveRunPolicy,
    /// Seconds between fence attempts at an unreachable or unconfirmed site.
    #[serde(default = "default_retry_interval")]
    pub retry_interval_seconds: u32,
    /// Fence attempts before giving up (the failover continues; unconfirmed items stay
    /// recorded and schedules at the target stay gated).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            exclude_tags: BTreeMap::new(),
            exclude_names: Vec::new(),
            active_runs: ActiveRunPolicy::default(),
            retry_interval_seconds: default_retry_interval(),
            max_attempts: default_max_attempts(),
        }
    }
}

fn default_retry_interval() -> u32 {
    30
}
fn default_max_attempts() -> u32 {
    20
}

/// Active run policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActiveRunPolicy {
    /// Cancel active runs (default: a run writing data in both regions is the risk).
    #[default]
    Cancel,
    /// Let them finish; only stop new ones.
    LetFinish,
}

impl Shutdown {
    /// Checks that fencing is retried at all, and not in a busy loop.
    pub(super) fn validate(&self) -> Result<(), PlanError> {
        if self.retry_interval_seconds == 0 {
            return Err(invalid(
                "shutdown.retry_interval_seconds",
                "must be at least 1",
            ));
        }
        if self.max_attempts == 0 {
            return Err(invalid("shutdown.max_attempts", "must be at least 1"));
        }
        Ok(())
    }
}
