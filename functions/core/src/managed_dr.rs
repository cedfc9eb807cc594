//! The Databricks Managed DR failover group as a run sees it: where it stands after each look,
//! what the `managed-failover` step did to it, and its stable URL — the record the report, the
//! run state and the step share.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::databricks::disaster_recovery::{FailoverGroupState, FailoverType};

/// Where the group stands after this invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagedFailoverStatus {
    /// The plan names no failover group.
    NotConfigured,
    /// Restore: this run never asked the group to move; nothing to put back.
    Unchanged,
    /// The group is `ACTIVE` in the goal region (and its stable URL routes there).
    Active,
    /// Not there yet: look again after a wait.
    Pending,
}

/// What the stable URL routes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StableUrlCheck {
    /// The URL clients keep.
    pub url: Option<String>,
    /// The workspace it routes to now.
    pub routes_to: Option<String>,
    /// The workspace it must route to.
    pub expected: String,
}

/// Output (`$.results.managed_dr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedFailoverOutput {
    /// Where the group stands.
    pub status: ManagedFailoverStatus,
    /// Nothing left to wait for: the state machine moves on.
    pub done: bool,
    /// Still not done after `managed_dr.failover_timeout_seconds`: a human decides.
    pub timed_out: bool,
    /// The group's resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The effective primary region when the run first looked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_before: Option<String>,
    /// The effective primary region now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_now: Option<String>,
    /// Where the group must end up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal_region: Option<String>,
    /// The group's state now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<FailoverGroupState>,
    /// How the last failover this run asked for treats the old primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_type: Option<FailoverType>,
    /// Failovers this run asked for.
    pub attempts: u32,
    /// Failovers refused for a stale etag and asked again after reading the group.
    pub stale_etag_retries: u32,
    /// The group's replication point (its RPO source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_point: Option<DateTime<Utc>>,
    /// The stable URL, when the plan names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_url: Option<StableUrlCheck>,
    /// What this invocation did or saw, for the report.
    pub actions: Vec<String>,
    /// Seconds since the run first looked at the group.
    pub elapsed_seconds: f64,
}

impl ManagedFailoverOutput {
    pub(crate) fn finished(status: ManagedFailoverStatus) -> Self {
        Self {
            status,
            done: true,
            timed_out: false,
            group: None,
            region_before: None,
            region_now: None,
            goal_region: None,
            state: None,
            failover_type: None,
            attempts: 0,
            stale_etag_retries: 0,
            replication_point: None,
            stable_url: None,
            actions: Vec::new(),
            elapsed_seconds: 0.0,
        }
    }
}
