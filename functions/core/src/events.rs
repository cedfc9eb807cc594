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
        }
    }

    /// Every milestone (a run publishes the ones its path reaches; see the README's table for
    /// the order of a failover).
    pub const ALL: [Milestone; 13] = [
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
    ];

    /// The milestone a `detail-type` names (`None` for anything Lifeboat does not publish).
    pub fn from_detail_type(detail_type: &str) -> Option<Milestone> {
        Milestone::ALL
            .into_iter()
            .find(|m| m.detail_type() == detail_type)
    }
}

/// Pure: the milestone a step's successful output marks, with its own detail fields — the table
/// the dispatcher consults after every step (`action` is the payload's `action`, for the steps
/// that have several).
pub fn milestone_of(
    step: crate::steps::Step,
    action: Option<&str>,
    output: &Value,
) -> Option<(Milestone, Value)> {
    use crate::steps::Step;
    let field = |k: &str| output.get(k).cloned().unwrap_or(Value::Null);
    let flag = |k: &str| output.get(k).and_then(Value::as_bool) == Some(true);
    match (step, action) {
        (Step::RunLedger, Some("begin")) => Some((Milestone::RunStarted, json!({}))),
        (Step::RunLedger, Some("finish")) => Some((
            if flag("succeeded") {
                Milestone::RunFinished
            } else {
                Milestone::RunFailed
            },
            json!({"outcome": field("outcome"), "report_key": field("report_key")}),
        )),
        (Step::RunLedger, Some("fence_watch_done")) => {
            Some((Milestone::FenceWatchResult, json!({})))
        }
        (Step::RequestApproval, Some("verify")) if flag("approved") => Some((
            Milestone::ApprovalDecided,
            json!({"decision": "approve", "approvers": field("approvers"),
                   "channel": field("channel"), "verified": field("verified")}),
        )),
        (Step::RequestApproval, None) if output.get("expires_at").is_some() => Some((
            Milestone::ApprovalRequested,
            json!({"expires_at": field("expires_at")}),
        )),
        (Step::DataFence, _) if flag("confirmed") && field("action") == json!("set") => Some((
            Milestone::DataFenceSet,
            json!({"buckets": field("buckets")}),
        )),
        (Step::ShutdownSweep, _) if flag("complete") => Some((
            Milestone::FenceConfirmed,
            json!({"site": field("site"), "resources": field("confirmed"),
                   "attempts": field("attempt")}),
        )),
        (Step::ActivateSchedules, _) if flag("activated") => Some((
            Milestone::ActivationComplete,
            json!({"unpaused": field("unpaused"), "already_live": field("already_live"),
                   "missing": field("missing")}),
        )),
        // An abort's restore is told by the run's end (which site runs production).
        (Step::DnsSwitch, _) if flag("restored") => None,
        (Step::DnsSwitch, _) => Some((
            Milestone::DnsSwitched,
            json!({"record_name": field("record_name"), "previous": field("previous"),
                   "current": field("current"), "warehouses": switched_warehouses(output)}),
        )),
        (Step::ReplicationCheck, _) if output.get("acceptable").is_some() => Some((
            Milestone::RpoMeasured,
            json!({"worst_rpo_seconds": field("worst_rpo_seconds"),
                   "acceptable": field("acceptable"),
                   "buckets": output.get("buckets").and_then(Value::as_array).map_or(0, Vec::len),
                   "tables": output.get("tables").and_then(Value::as_array).map_or(0, Vec::len)}),
        )),
        (Step::DrStartup, _) if flag("ready") => Some((
            Milestone::DrStarted,
            json!({"elapsed_seconds": field("elapsed_seconds"),
                   "actions": output.get("actions").and_then(Value::as_array).map_or(0, Vec::len)}),
        )),
        // The client-path check after the switch is told by the switch's milestone (and,
        // failing, by the pause it causes).
        (Step::ValidateWorkspace, _) if output.get("through_clients") == Some(&json!(true)) => None,
        (Step::ValidateWorkspace, _) if output.get("passed").is_some() => {
            let checks = output.get("checks").and_then(Value::as_array);
            let failed: Vec<Value> = checks
                .into_iter()
                .flatten()
                .filter(|c| c.get("ok").and_then(Value::as_bool) == Some(false))
                .filter_map(|c| c.get("name").cloned())
                .collect();
            Some((
                Milestone::ValidationFinished,
                json!({"passed": field("passed"), "checks": checks.map_or(0, Vec::len),
                       "failed": failed}),
            ))
        }
        _ => None,
    }
}

/// Pure: `[{warehouse, http_path}]` — the HTTP path clients now use for each warehouse a
/// switched client setting names (from its HTTP path, JDBC URL or ODBC string), once each.
fn switched_warehouses(output: &Value) -> Vec<Value> {
    let changes: Vec<crate::steps::dns_switch::ParameterChange> = output
        .get("parameters")
        .cloned()
        .and_then(|p| serde_json::from_value(p).ok())
        .unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    changes
        .iter()
        .filter_map(|c| {
            let kind = c.kind?;
            let warehouse = c.warehouse.clone()?;
            let path = crate::clients::read_setting(kind, &c.current).http_path?;
            seen.insert(warehouse.clone())
                .then(|| json!({"warehouse": warehouse, "http_path": path}))
        })
        .collect()
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
    fn milestones_of_step_outputs() {
        use crate::steps::Step;
        let rows: Vec<(Step, Option<&str>, Value, Option<Milestone>)> = vec![
            (
                Step::RunLedger,
                Some("begin"),
                json!({}),
                Some(Milestone::RunStarted),
            ),
            (
                Step::RunLedger,
                Some("finish"),
                json!({"succeeded": true}),
                Some(Milestone::RunFinished),
            ),
            (
                Step::RunLedger,
                Some("finish"),
                json!({"succeeded": false}),
                Some(Milestone::RunFailed),
            ),
            (Step::RunLedger, Some("start_fence_watch"), json!({}), None),
            (
                Step::RequestApproval,
                None,
                json!({"expires_at": "t"}),
                Some(Milestone::ApprovalRequested),
            ),
            (
                Step::RequestApproval,
                Some("verify"),
                json!({"approved": true}),
                Some(Milestone::ApprovalDecided),
            ),
            (
                Step::RequestApproval,
                Some("verify"),
                json!({"approved": false}),
                None,
            ),
            (
                Step::DataFence,
                None,
                json!({"action": "set", "confirmed": true}),
                Some(Milestone::DataFenceSet),
            ),
            (
                Step::DataFence,
                None,
                json!({"action": "set", "confirmed": false}),
                None,
            ),
            (
                Step::DataFence,
                None,
                json!({"action": "remove", "confirmed": true}),
                None,
            ),
            (Step::ShutdownSweep, None, json!({"complete": false}), None),
            (
                Step::ShutdownSweep,
                None,
                json!({"complete": true}),
                Some(Milestone::FenceConfirmed),
            ),
            (
                Step::ActivateSchedules,
                None,
                json!({"activated": false, "waiting": true}),
                None,
            ),
            (
                Step::ActivateSchedules,
                None,
                json!({"activated": true}),
                Some(Milestone::ActivationComplete),
            ),
            (
                Step::DnsSwitch,
                None,
                json!({"current": "x"}),
                Some(Milestone::DnsSwitched),
            ),
            (Step::Notify, None, json!({}), None),
            (
                Step::ReplicationCheck,
                None,
                json!({"acceptable": false, "worst_rpo_seconds": 900.0}),
                Some(Milestone::RpoMeasured),
            ),
            (Step::DrStartup, None, json!({"ready": false}), None),
            (
                Step::DrStartup,
                None,
                json!({"ready": true}),
                Some(Milestone::DrStarted),
            ),
            (
                Step::ValidateWorkspace,
                None,
                json!({"passed": false, "checks": []}),
                Some(Milestone::ValidationFinished),
            ),
        ];
        for (step, action, out, want) in rows {
            assert_eq!(
                milestone_of(step, action, &out).map(|m| m.0),
                want,
                "{step:?} {action:?} {out}"
            );
        }
    }

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
