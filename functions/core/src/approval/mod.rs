//! The human in the loop (invariant 4, "a human decides"): what is asked ([`ApprovalStage`]),
//! what is answered ([`Decision`]), and the record that holds the request, its votes and its
//! audit (`runs/<id>/approval.json`, the only place the task token is kept).
//!
//! - [`evidence`]: what the approver is shown, gathered before the first write;
//! - [`votes`]: the vote machine — pure rules (who counts, what settles, what is refused), with
//!   their tables beside them;
//! - [`decide`]: a vote recorded, then delivered to Step Functions, refusals logged apart;
//! - [`link`]: the signed, single-use, expiring e-mail links.
//!
//! The `request-approval` step asks; the `approval-callback` step and the CLI decide through
//! [`decide::decide`].

pub mod decide;
pub mod evidence;
pub mod link;
pub mod votes;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ledger::keys, run::RunId};

use evidence::Evidence;

/// The approver name of links when the plan lists no approvers.
pub const ON_CALL: &str = "on-call";

/// Which decision is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStage {
    /// May the failover start at all?
    #[default]
    Failover,
    /// RPO is over its objective: may the target be activated anyway (accepting data loss)?
    RpoBreach,
    /// A step failed after the first write: retry, continue or abort? (see
    /// [`crate::intervention`]).
    Intervention,
}

/// `approve` or `reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Proceed.
    Approve,
    /// Stop; touch nothing.
    Reject,
}

impl Decision {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// A recorded decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub decision: Decision,
    /// The approver as the plan names them (normalised e-mail or listed ARN).
    pub approver: String,
    pub channel: String,
    pub comment: Option<String>,
    pub decided_at: DateTime<Utc>,
    /// The verified identity behind `approver` when it differs (an STS ARN mapped to an e-mail
    /// approver, a session of a listed role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// Where a settled decision stands with Step Functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Recorded; SendTaskSuccess/Failure under way (or the sender died: stale after a minute).
    Pending,
    /// Step Functions took it.
    Delivered,
    /// Step Functions refused or could not be reached: the vote may be sent again.
    Failed,
}

/// The delivery of the settled decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub state: DeliveryState,
    /// When the state was last set.
    pub at: DateTime<Utc>,
    /// Deliveries tried.
    pub attempts: u32,
    /// Step Functions' answer when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One attempt to decide, accepted or not (the audit trail).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub channel: String,
    pub who: String,
    pub decision: Option<Decision>,
    pub accepted: bool,
    pub reason: String,
}

/// `runs/<id>/approval.json`: the only place the task token is kept.
#[derive(Clone, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub run_id: String,
    pub task_token: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub evidence: Evidence,
    pub decision: Option<DecisionRecord>,
    /// Distinct approvers needed (the plan's two-person rule).
    #[serde(default = "one")]
    pub required_approvals: u32,
    /// Approvals so far.
    #[serde(default)]
    pub approvals: Vec<DecisionRecord>,
    /// Accepted votes and deliveries (bounded by the approvers; refusals are logged apart).
    #[serde(default)]
    pub audit: Vec<AuditEntry>,
    /// The plan's approvers at request time (who may vote).
    #[serde(default)]
    pub eligible: Vec<String>,
    /// The plan's principal mapping at request time.
    #[serde(default)]
    pub principals: std::collections::BTreeMap<String, Vec<String>>,
    /// Delivery of the settled decision to Step Functions.
    #[serde(default)]
    pub delivery: Option<Delivery>,
    /// The run's plan, kind and direction (for the lifecycle events a decision publishes).
    #[serde(default)]
    pub plan: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub direction: Option<crate::plan::Direction>,
}

impl std::fmt::Debug for ApprovalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalRecord")
            .field("run_id", &self.run_id)
            .field("task_token", &"***")
            .field("decision", &self.decision)
            .finish_non_exhaustive()
    }
}

fn one() -> u32 {
    1
}

/// The stage as ledger keys and messages name it.
pub fn stage_name(stage: ApprovalStage) -> &'static str {
    match stage {
        ApprovalStage::Failover => "failover",
        ApprovalStage::RpoBreach => "rpo-breach",
        ApprovalStage::Intervention => "intervention",
    }
}

/// Ledger key of a run's approval record for a stage.
pub fn approval_key(run_id: &RunId, stage: ApprovalStage) -> String {
    match stage {
        ApprovalStage::Failover => keys::approval(run_id),
        ApprovalStage::RpoBreach => keys::approval_rpo_breach(run_id),
        ApprovalStage::Intervention => keys::intervention(run_id),
    }
}

/// Longest comment a decision may carry: it travels in the Step Functions task output (256 KiB
/// for the whole state) and in pages and mails.
pub const MAX_COMMENT: usize = 2000;

/// Most refused attempts kept per run and stage: the refusal log is append-only and bounded,
/// so a flood of attempts cannot grow the ledger without limit.
pub const MAX_REFUSALS_LOGGED: usize = 200;
