//! A run: one failover, failback or drill execution, and the context every step receives.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::{Direction, Plan};

/// A run id; also the Step Functions execution name (`[A-Za-z0-9_-]`, ≤ 80 chars).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl RunId {
    /// Checks the execution-name alphabet, so a run id is safe in S3 keys and URLs too.
    pub fn parse(s: &str) -> Result<RunId, String> {
        if s.is_empty() || s.len() > 80 {
            return Err(format!("run id must be 1–80 characters, got {}", s.len()));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("run id may only hold letters, digits, '-' and '_'".to_string());
        }
        Ok(RunId(s.to_string()))
    }

    /// A fresh id for an operator- or schedule-started run.
    pub fn generate(kind: RunKind, now: DateTime<Utc>) -> RunId {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        RunId(format!(
            "{}-{}-{suffix}",
            kind.as_str(),
            now.format("%Y%m%dT%H%M%SZ")
        ))
    }
}

/// What kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A real failover to DR.
    Failover,
    /// A real return to the primary.
    Failback,
    /// A full drill (failover path, on drill DNS unless the plan opts in).
    Drill,
    /// A non-disruptive readiness drill: RPO, drift, one DR warehouse up, validation, down.
    Readiness,
}

impl RunKind {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Failover => "failover",
            RunKind::Failback => "failback",
            RunKind::Drill => "drill",
            RunKind::Readiness => "readiness",
        }
    }
}

/// What started the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerSource {
    /// An AWS Health event via EventBridge.
    HealthEvent,
    /// An operator (CLI or console).
    Operator,
    /// EventBridge Scheduler (drills).
    Schedule,
}

/// The trigger with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// Source.
    pub source: TriggerSource,
    /// Human-readable summary (event type, region, description).
    pub summary: String,
    /// When the disaster was declared (the RTO clock starts here).
    pub declared_at: DateTime<Utc>,
    /// Health event ARN, when the trigger is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_arn: Option<String>,
    /// When the incident began, as its source says (the Health event's `startTime`, the first
    /// failed probe): the RTO users felt starts here, detection time included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_started_at: Option<DateTime<Utc>>,
}

/// The context every step receives as `$.run` of the execution state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunContext {
    /// Run id (= execution name).
    pub run_id: RunId,
    /// Kind of run.
    pub kind: RunKind,
    /// Which way production moves.
    pub direction: Direction,
    /// The validated plan.
    pub plan: Plan,
    /// What started it.
    pub trigger: Trigger,
    /// Operator override of the fence gate on schedule activation, with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    /// Seconds between readiness polls (start-up, activation gate).
    #[serde(default = "default_poll")]
    pub poll_seconds: u32,
    /// For a failback: the failover run whose fence records say what was active at the
    /// primary, to restore exactly that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<RunId>,
    /// An operator's acceptance of blocking configuration drift, given when starting the run
    /// (`lifeboat failover --accept-drift REASON`): the drift is still listed, in the evidence
    /// and the report, but does not refuse the run. Objects the plan starts missing at the
    /// target still do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_drift: Option<DriftAcceptance>,
}

/// Who accepted blocking drift, why, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftAcceptance {
    /// The caller's identity (STS ARN).
    pub by: String,
    /// Why (one line).
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

fn default_poll() -> u32 {
    5
}

impl RunContext {
    /// Whether the plan lets this run skip the approval wait.
    pub fn preapproved(&self) -> bool {
        match self.kind {
            RunKind::Drill => self.plan.approval.drill_preapproved,
            RunKind::Readiness => !self.plan.approval.readiness_requires_approval,
            RunKind::Failover | RunKind::Failback => false,
        }
    }

    /// The idempotency token of a run-once job of this run (≤ 64 chars, stable across
    /// retries and resumes: an activation that starts it twice starts it once).
    pub fn idempotency_token(&self, job: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{}/{job}", self.run_id).as_bytes());
        format!("lifeboat-{}", &hex::encode(digest)[..48])
    }
}

/// Which site serves production, recorded by every completed failover/failback (`run-ledger`);
/// read by whatever must not treat the fenced site as the live one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActiveSite {
    /// The active site.
    pub active: crate::plan::SiteRole,
    /// Since when.
    pub since: DateTime<Utc>,
    /// The run that made it active.
    pub run_id: String,
}
