//! Which milestone a step's output marks: the table the dispatcher consults after every step
//! (the events themselves, and how they are published, are [`crate::events`]).

use serde_json::{json, Value};

use super::Step;
use crate::events::Milestone;

/// Pure: the milestone a step's successful output marks, with its own detail fields — the table
/// the dispatcher consults after every step (`action` is the payload's `action`, for the steps
/// that have several).
pub fn milestone_of(
    step: Step,
    action: Option<&str>,
    output: &Value,
) -> Option<(Milestone, Value)> {
    let field = |k: &str| output.get(k).cloned().unwrap_or(Value::Null);
    let flag = |k: &str| output.get(k).and_then(Value::as_bool) == Some(true);
    match (step, action) {
        (Step::RunLedger, Some("begin")) if output.get("already_handled").is_some() => Some((
            Milestone::TriggerAlreadyHandled,
            json!({"handled_by": field("already_handled")}),
        )),
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
    let changes: Vec<crate::switch::ParameterChange> = output
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milestones_of_step_outputs() {
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
}
