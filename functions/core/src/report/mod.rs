//! The run report: what happened, when, and how it measured against the objectives. Built by
//! `run-ledger finish` ([`build`]) from the step records in the ledger and the execution's
//! typed results ([`crate::state::Results`]); stored as JSON, Markdown ([`markdown`]) and a
//! self-contained page ([`html`]) next to the run. Its sections: RTO by phase ([`phases`]),
//! the verdicts ([`crate::verdict`]), approval, intervention, lessons.

pub mod build;
pub mod html;
pub mod markdown;
pub mod phases;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    fence::{handoff::ActivationOutput, SweepOutput},
    kernel::StepRecord,
    managed_dr::ManagedFailoverOutput,
    replication::ReplicationOutput,
    switch::DnsSwitchOutput,
    validation::ValidationOutput,
};
use phases::Phase;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything done and verified.
    Succeeded,
    /// Target serving, but something needs an operator (unconfirmed fence, gated schedules).
    SucceededWithWarnings,
    /// A readiness drill passed: the DR site can take over (nothing was moved).
    ReadinessVerified,
    /// The approver said no; nothing was touched.
    Rejected,
    /// Nobody answered in time; nothing was touched.
    ApprovalTimedOut,
    /// RPO over objective and the plan says stop.
    StoppedRpoBreach,
    /// A precondition failed (lock, failback without failover, data sources).
    Refused,
    /// A step failed.
    Failed,
    /// An operator aborted after a failed step: DR fenced again, the source restored.
    Aborted,
}

impl Outcome {
    /// Whether production now runs at the target.
    pub fn moved_production(self) -> bool {
        matches!(self, Outcome::Succeeded | Outcome::SucceededWithWarnings)
    }

    /// Success for exit codes and alarms.
    pub fn is_success(self) -> bool {
        self.moved_production() || self == Outcome::ReadinessVerified
    }
}

/// RTO measured from the recorded timestamps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RtoFigures {
    /// Declaration (trigger) → target validated and serving, seconds.
    pub from_declaration_seconds: Option<f64>,
    /// Approval → target validated and serving, seconds.
    pub from_approval_seconds: Option<f64>,
    /// Objective, seconds.
    pub objective_seconds: f64,
    /// Whether the objective was met (from declaration).
    pub met: Option<bool>,
    /// Incident start (the Health event's `startTime`, the first failed probe) → serving: the
    /// RTO users felt, detection time included.
    #[serde(default)]
    pub from_incident_seconds: Option<f64>,
}

/// The report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub run_id: String,
    pub kind: String,
    pub direction: String,
    pub plan: String,
    pub outcome: Outcome,
    pub trigger: crate::run::Trigger,
    pub approval: Option<ApprovalSummary>,
    pub steps: Vec<StepRecord>,
    pub rto: RtoFigures,
    pub rpo: Option<ReplicationOutput>,
    pub fence: Option<SweepOutput>,
    /// Every resource action of the fence, from the ledger (prior → desired, confirmed).
    #[serde(default)]
    pub fence_actions: Vec<crate::fence::ResourceRecord>,
    pub activation: Option<ActivationOutput>,
    pub validation: Option<ValidationOutput>,
    pub dns: Option<DnsSwitchOutput>,
    /// The move verified as clients make it (the switched name, the parameters they read).
    #[serde(default)]
    pub client_check: Option<ValidationOutput>,
    /// The Databricks Managed DR failover group, when the plan names one.
    #[serde(default)]
    pub managed_dr: Option<ManagedFailoverOutput>,
    /// The group put back at the source by an abort, when this run had moved it.
    #[serde(default)]
    pub managed_dr_restore: Option<ManagedFailoverOutput>,
    pub error: Option<Value>,
    pub lessons_learned: Vec<String>,
    pub generated_at: DateTime<Utc>,
    /// Never both active / none left behind, from the ledger.
    #[serde(default)]
    pub verdict: crate::verdict::Verdicts,
    /// The data fence (replication into the replicas denied), if the run set one.
    #[serde(default)]
    pub data_fence: Option<crate::fence::data::DataFenceRecord>,
    /// The operator override of the activation gate, if any.
    #[serde(default)]
    pub gate_override: Option<crate::fence::gate::GateOverride>,
    /// The fence addendum: when a fence that outlived the run was confirmed.
    #[serde(default)]
    pub fence_watch: Option<crate::fence::watch::FenceWatchRecord>,
    /// Pauses for a human after a failed step: where each site stood, what was chosen.
    #[serde(default)]
    pub intervention: Option<InterventionSummary>,
    /// RTO per phase (empty when the run reached none).
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// What people were told, and on which channels it failed (announcements recorded before
    /// the report was written; the end-of-run one follows it).
    #[serde(default)]
    pub announcements: Vec<crate::announce::AnnouncementRecord>,
    /// When the report was amended after the run (the fence watch confirmed the old site
    /// fenced): the verdicts and the fence are final then. The earlier version stays in the
    /// ledger bucket's object versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amended_at: Option<DateTime<Utc>>,
}

/// A run's intervention history (the record without its task token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterventionSummary {
    /// Last failed state.
    pub failed_state: String,
    /// Its error.
    pub error: String,
    /// Both sites at the last pause.
    pub sites: Vec<crate::intervention::SiteState>,
    /// Still waiting for a decision.
    pub pending: bool,
    /// Every decision.
    pub history: Vec<crate::intervention::InterventionDecision>,
}

/// Who decided, when, how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalSummary {
    pub decision: String,
    pub approver: String,
    pub channel: String,
    pub decided_at: DateTime<Utc>,
    pub comment: Option<String>,
}

/// The report and its Markdown rendering.
pub struct Built {
    /// Structured report.
    pub report: Report,
    /// Markdown.
    pub markdown: String,
}
