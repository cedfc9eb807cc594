//! Lifeboat's lifecycle on EventBridge, so other systems (ARC, ChatOps, ticketing) can subscribe
//! as they do to ARC's execution events: `source` `lifeboat` on the account's default bus, one
//! `detail-type` per milestone (see [`Milestone::detail_type`]), a detail that always carries
//! `run_id`, `plan`, `kind`, `direction` and `at`, plus the milestone's own fields.
//!
//! Publishing is best effort: a failed `PutEvents` is logged and never fails the step — a run
//! must not stop because a subscriber's bus is unavailable.

use chrono::Utc;
use serde_json::{json, Value};
use tracing::warn;

use crate::{kernel::Deps, run::RunContext};

/// `source` of every Lifeboat event.
pub const SOURCE: &str = "lifeboat";

/// The milestones published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    /// The run took the plan's lock (detail: `trigger`).
    RunStarted,
    /// A human is asked (detail: `stage`, `expires_at`, `required_approvals`).
    ApprovalRequested,
    /// The request is settled and delivered (detail: `stage`, `decision`, `approvers`,
    /// `channel`).
    ApprovalDecided,
    /// Replication into the replicas is denied and confirmed (detail: `buckets`).
    DataFenceSet,
    /// Every resource of the source is confirmed fenced (detail: `site`, `resources`,
    /// `attempts`).
    FenceConfirmed,
    /// Replication lag measured before anything moves (detail: `worst_rpo_seconds`,
    /// `acceptable`, `objective_seconds`, `buckets`, `tables`).
    RpoMeasured,
    /// Pools, clusters and warehouses of the target are up (detail: `elapsed_seconds`,
    /// `actions`).
    DrStarted,
    /// Every job handed over is live at the target (detail: `activated`, `gated`).
    ActivationComplete,
    /// The alias points at the target (detail: `record_name`, `previous`, `current`).
    DnsSwitched,
    /// The validation queries ran at the target (detail: `passed`, `checks`, `failed`).
    ValidationFinished,
    /// The run ended successfully (detail: `outcome`, `report_key`, `rto_seconds`).
    RunFinished,
    /// The run ended without success (detail: `outcome`, `error`, `report_key`).
    RunFailed,
    /// The fence watch that outlived a run ended (detail: `confirmed_at`, `stopped`).
    FenceWatchResult,
    /// A trigger found another run holding the plan's lock and ended there, touching nothing
    /// (detail: `handled_by`).
    TriggerAlreadyHandled,
}

impl Milestone {
    /// The event's `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Milestone::RunStarted => "Lifeboat Run Started",
            Milestone::ApprovalRequested => "Lifeboat Approval Requested",
            Milestone::ApprovalDecided => "Lifeboat Approval Decided",
            Milestone::DataFenceSet => "Lifeboat Data Fence Set",
            Milestone::FenceConfirmed => "Lifeboat Fence Confirmed",
            Milestone::RpoMeasured => "Lifeboat RPO Measured",
            Milestone::DrStarted => "Lifeboat DR Started",
            Milestone::ActivationComplete => "Lifeboat Activation Complete",
            Milestone::DnsSwitched => "Lifeboat DNS Switched",
            Milestone::ValidationFinished => "Lifeboat Validation Finished",
            Milestone::RunFinished => "Lifeboat Run Finished",
            Milestone::RunFailed => "Lifeboat Run Failed",
            Milestone::FenceWatchResult => "Lifeboat Fence Watch Result",
            Milestone::TriggerAlreadyHandled => "Lifeboat Trigger Already Handled",
        }
    }

    /// Every milestone (a run publishes the ones its path reaches; see the README's table for
    /// the order of a failover).
    pub const ALL: [Milestone; 14] = [
        Milestone::RunStarted,
        Milestone::ApprovalRequested,
        Milestone::ApprovalDecided,
        Milestone::RpoMeasured,
        Milestone::DataFenceSet,
        Milestone::FenceConfirmed,
        Milestone::DrStarted,
        Milestone::ActivationComplete,
        Milestone::DnsSwitched,
        Milestone::ValidationFinished,
        Milestone::RunFinished,
        Milestone::RunFailed,
        Milestone::FenceWatchResult,
        Milestone::TriggerAlreadyHandled,
    ];

    /// The milestone a `detail-type` names (`None` for anything Lifeboat does not publish).
    pub fn from_detail_type(detail_type: &str) -> Option<Milestone> {
        Milestone::ALL
            .into_iter()
            .find(|m| m.detail_type() == detail_type)
    }
}

/// The HTML report of a run in the S3 console (the reader's own credentials decide whether it
/// opens), from its `report.json` key in the ledger.
pub fn report_console_url(deps: &Deps, report_key: &str) -> String {
    let html = report_key.replace("report.json", "report.html");
    let region = deps
        .aws
        .s3
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    format!(
        "https://s3.console.aws.amazon.com/s3/object/{}?region={region}&prefix={html}",
        deps.ledger.bucket()
    )
}

/// Pure: the event detail — the common fields, then the milestone's (which cannot override
/// them).
pub fn detail(run: &RunContext, extra: Value) -> Value {
    let (_, to) = run.direction.roles();
    let target_url = &run.plan.site(to).workspace_url;
    let mut d = match extra {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for (k, v) in [
        ("run_id", json!(run.run_id.0)),
        ("plan", json!(run.plan.name)),
        ("kind", json!(run.kind.as_str())),
        ("direction", json!(run.direction)),
        ("at", json!(Utc::now())),
        ("target_workspace_url", json!(target_url)),
        ("rto_minutes", json!(run.plan.objectives.rto_minutes)),
    ] {
        d.insert(k.to_string(), v);
    }
    Value::Object(d)
}

/// Publishes a milestone of a run (best effort).
pub async fn publish(deps: &Deps, run: &RunContext, milestone: Milestone, extra: Value) {
    publish_detail(deps, milestone, detail(run, extra)).await
}

/// Publishes a milestone with a ready detail (best effort).
pub async fn publish_detail(deps: &Deps, milestone: Milestone, detail: Value) {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(SOURCE)
        .detail_type(milestone.detail_type())
        .detail(detail.to_string())
        .event_bus_name("default")
        .build();
    match deps.aws.events.put_events().entries(entry).send().await {
        Ok(out) if out.failed_entry_count() > 0 => {
            warn!(
                milestone = milestone.detail_type(),
                "event not accepted by EventBridge"
            )
        }
        Ok(_) => {}
        Err(e) => warn!(
            milestone = milestone.detail_type(),
            error = %crate::aws::sdk_error_message(&e),
            "event not published"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_types_are_distinct_and_named() {
        let mut names: Vec<&str> = Milestone::ALL.iter().map(|m| m.detail_type()).collect();
        assert!(names.iter().all(|n| n.starts_with("Lifeboat ")));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Milestone::ALL.len());
        for m in Milestone::ALL {
            assert_eq!(Milestone::from_detail_type(m.detail_type()), Some(m));
        }
        assert_eq!(Milestone::from_detail_type("AWS Health Event"), None);
    }
}
