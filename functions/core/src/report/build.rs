//! Building the report of a run at its end (`run-ledger finish`): the step records, the fence,
//! activation, approval and intervention records from the ledger, the typed results of the
//! execution, and the outcome decided from them.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::phases::phases;
use super::{ApprovalSummary, Built, InterventionSummary, Outcome, Report, RtoFigures};
use crate::{
    approval::ApprovalRecord,
    fence::{handoff::ActivationOutput, SweepOutput},
    kernel::{Deps, StepError, StepRecord},
    ledger::keys,
    managed_dr::{ManagedFailoverOutput, ManagedFailoverStatus},
    run::RunContext,
    state::Results,
    validation::ValidationOutput,
};

/// An approval given with SendTaskSuccess directly: `{"approver": ..., "channel": ..., "comment": ...}`
/// in the task output, as the README asks operators to send.
fn approval_from_task_output(results: &Results) -> Option<ApprovalSummary> {
    let out = results.approval.as_ref().filter(|v| v.is_object())?;
    let text = |k: &str| out.get(k).and_then(Value::as_str).map(str::to_string);
    // Only an explicit `"approved": true` is an approval (the state machine checks the same).
    let approved = out.get("approved").and_then(Value::as_bool) == Some(true);
    Some(ApprovalSummary {
        decision: if approved {
            "approve"
        } else {
            "not an approval"
        }
        .into(),
        approver: text("approver").unwrap_or_else(|| {
            "unknown (decided outside Lifeboat; see CloudTrail SendTaskSuccess)".into()
        }),
        channel: text("channel").unwrap_or_else(|| "console/api".into()),
        decided_at: text("decided_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(Utc::now),
        comment: text("comment"),
    })
}

/// The run's verdicts from the ledger — the source's fence record, or its last configuration
/// snapshot when the sweep never reached it — and the gate override they account for.
pub async fn verdicts_of(
    deps: &Deps,
    run: &RunContext,
) -> Result<
    (
        crate::verdict::Verdicts,
        Option<crate::fence::gate::GateOverride>,
    ),
    StepError,
> {
    let (source_role, _) = run.direction.roles();
    let source_fence = deps
        .ledger
        .get::<crate::fence::FenceRecord>(&keys::fence(&run.run_id, source_role))
        .await?
        .map(|v| v.value);
    let activation_record = deps
        .ledger
        .get::<crate::fence::handoff::ActivationRecord>(&keys::activation(&run.run_id, false))
        .await?
        .map(|v| v.value);
    let gate_override = deps
        .ledger
        .get::<crate::fence::gate::GateOverride>(&keys::gate_override(&run.run_id))
        .await?
        .map(|v| v.value);
    let reached = source_fence
        .as_ref()
        .is_some_and(|f| f.inventoried_at.is_some() || !f.resources.is_empty());
    let snapshot = if reached {
        None
    } else {
        deps.ledger
            .get::<crate::drift::snapshot::SnapshotHead>(&keys::snapshot(
                &run.plan.name,
                source_role,
            ))
            .await?
            .map(|v| v.value)
    };
    let verdict = crate::verdict::verdicts(
        source_fence.as_ref(),
        activation_record.as_ref(),
        gate_override.as_ref(),
        snapshot.as_ref(),
    );
    Ok((verdict, gate_override))
}

/// Decides the outcome from the results and the caught error (pure).
pub fn decide_outcome(
    error: Option<&Value>,
    sweep: Option<&SweepOutput>,
    activation: Option<&ActivationOutput>,
    validation: Option<&ValidationOutput>,
    clients_moved: bool,
    client_check: Option<&ValidationOutput>,
    readiness_only: bool,
) -> Outcome {
    if let Some(error) = error {
        let name = error.get("Error").and_then(Value::as_str).unwrap_or("");
        return match name {
            "ApprovalRejected" => Outcome::Rejected,
            "States.Timeout" | "ApprovalTimedOut" => Outcome::ApprovalTimedOut,
            "RpoBreached" => Outcome::StoppedRpoBreach,
            // Refused before the first write: nothing was touched.
            "LockHeld" | "Refused" | "DataSourcesUnavailable" | "ConfigDrift" | "CheckFailed" => {
                Outcome::Refused
            }
            "AbortedByOperator" => Outcome::Aborted,
            _ => Outcome::Failed,
        };
    }
    let validated = validation.is_some_and(|v| v.passed);
    if readiness_only {
        return if validated {
            Outcome::ReadinessVerified
        } else {
            Outcome::Failed
        };
    }
    // Clients moved: production runs at the target, whatever an operator accepted on the way
    // (a validation failure they chose to continue past is a warning, not a success).
    if !clients_moved {
        return Outcome::Failed;
    }
    let fenced = sweep.is_some_and(|s| s.complete);
    let activated = activation.is_some_and(|a| a.activated && a.missing.is_empty());
    // A move nobody verified through the clients (an operator continued past it) is a warning.
    let clients_verified = client_check.is_some_and(|c| c.passed);
    if fenced && activated && validated && clients_verified {
        Outcome::Succeeded
    } else {
        Outcome::SucceededWithWarnings
    }
}

/// Builds the report of a run from the ledger and the execution's results.
pub async fn build(
    deps: &Deps,
    run: &RunContext,
    results: &Results,
    error: Option<&Value>,
) -> Result<Built, StepError> {
    let mut steps = Vec::new();
    for key in deps.ledger.list(&keys::steps_prefix(&run.run_id)).await? {
        if let Some(r) = deps.ledger.get::<StepRecord>(&key).await? {
            steps.push(r.value);
        }
    }
    steps.sort_by_key(|s| s.started_at);
    let recorded = deps
        .ledger
        .get::<ApprovalRecord>(&crate::approval::approval_key(
            &run.run_id,
            Default::default(),
        ))
        .await?
        .and_then(|a| a.value.decision)
        .map(|d| ApprovalSummary {
            decision: d.decision.as_str().to_string(),
            approver: d.approver,
            channel: d.channel,
            decided_at: d.decided_at,
            comment: d.comment,
        });
    // Approved outside Lifeboat (Step Functions console, `aws stepfunctions
    // send-task-success`): the task output is all there is; CloudTrail has the caller.
    let approval = recorded.or_else(|| approval_from_task_output(results));
    let sweep: Option<SweepOutput> = results.sweep().cloned();
    let fence_actions = match sweep.as_ref().and_then(|s| s.site) {
        Some(site) => deps
            .ledger
            .get::<crate::fence::FenceRecord>(&keys::fence(&run.run_id, site))
            .await?
            .map(|r| r.value.resources.into_values().collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let activation: Option<ActivationOutput> = results.activation().cloned();
    let (verdict, gate_override) = verdicts_of(deps, run).await?;
    let data_fence = deps
        .ledger
        .get::<crate::fence::data::DataFenceRecord>(&keys::data_fence(&run.run_id))
        .await?
        .map(|v| v.value);
    let fence_watch = deps
        .ledger
        .get::<crate::fence::watch::FenceWatchRecord>(&keys::fence_watch(&run.run_id))
        .await?
        .map(|v| v.value);
    let intervention = deps
        .ledger
        .get::<crate::intervention::InterventionRecord>(&keys::intervention(&run.run_id))
        .await?
        .map(|v| InterventionSummary {
            failed_state: v.value.failed_state,
            error: v.value.error,
            sites: v.value.sites,
            pending: v.value.task_token.is_some(),
            history: v.value.history,
        });
    let validation: Option<ValidationOutput> = results.validation().cloned();
    let dns = results.dns().cloned();
    let client_check: Option<ValidationOutput> = results.client_check().cloned();
    let configured = |o: &ManagedFailoverOutput| {
        !matches!(
            o.status,
            ManagedFailoverStatus::NotConfigured | ManagedFailoverStatus::Unchanged
        )
    };
    let managed_dr = results.managed_dr().filter(|m| configured(m)).cloned();
    let managed_dr_restore = results
        .abort_managed_dr()
        .filter(|m| configured(m))
        .cloned();
    let rpo = results.replication().cloned();
    let outcome = decide_outcome(
        error,
        sweep.as_ref(),
        activation.as_ref(),
        validation.as_ref(),
        // The DNS switch ran, or (no `[dns]`) the failover group moved its stable URL.
        dns.is_some()
            || (run.plan.dns.is_none()
                && managed_dr
                    .as_ref()
                    .is_some_and(|m| m.done && m.stable_url.is_some())),
        client_check.as_ref(),
        run.kind == crate::run::RunKind::Readiness,
    );
    // Continued past a failover group that did not move: production runs, with a warning.
    // A plan with a group whose step never answered (it failed, then an operator continued)
    // did not move it either.
    let group_not_moved =
        run.plan.managed_dr.is_some() && managed_dr.as_ref().is_none_or(|m| !m.done);
    let outcome = if outcome == Outcome::Succeeded && group_not_moved {
        Outcome::SucceededWithWarnings
    } else {
        outcome
    };
    // Serving means clients moved, the target validated *and* its schedules live: with
    // activation pipelined behind the fence, the last activation is usually the last step.
    let served_at = steps
        .iter()
        .filter(|s| {
            s.ok && matches!(
                s.step.as_str(),
                "dns-switch"
                    | "validate-workspace"
                    | "activate-schedules"
                    | crate::kernel::VERIFY_CLIENTS
            )
        })
        .map(|s| s.ended_at)
        .max()
        .filter(|_| outcome.moved_production());
    let approved_at = approval
        .as_ref()
        .filter(|a| a.decision == "approve")
        .map(|a| a.decided_at);
    let objective_seconds = f64::from(run.plan.objectives.rto_minutes) * 60.0;
    let secs =
        |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_milliseconds() as f64 / 1000.0;
    let from_declaration = served_at.map(|t| secs(run.trigger.declared_at, t));
    let rto = RtoFigures {
        from_declaration_seconds: from_declaration,
        from_approval_seconds: served_at.zip(approved_at).map(|(t, a)| secs(a, t)),
        objective_seconds,
        met: from_declaration.map(|s| s <= objective_seconds),
        from_incident_seconds: served_at
            .zip(run.trigger.incident_started_at)
            .map(|(t, a)| secs(a, t)),
    };
    let phases = phases(
        &steps,
        run.trigger.declared_at,
        run.trigger.incident_started_at,
        approval.as_ref().map(|a| a.decided_at),
        served_at,
    );
    let mut announcements = Vec::new();
    for key in deps
        .ledger
        .list(&keys::announcements_prefix(&run.run_id))
        .await?
    {
        if let Some(r) = deps
            .ledger
            .get::<crate::announce::AnnouncementRecord>(&key)
            .await?
        {
            announcements.push(r.value);
        }
    }
    announcements.sort_by_key(|a| a.at);
    let report = Report {
        run_id: run.run_id.0.clone(),
        kind: run.kind.as_str().to_string(),
        direction: format!("{:?}", run.direction).to_lowercase(),
        plan: run.plan.name.clone(),
        outcome,
        trigger: run.trigger.clone(),
        approval,
        steps,
        rto,
        rpo,
        fence: sweep,
        fence_actions,
        activation,
        validation,
        dns,
        client_check,
        managed_dr,
        managed_dr_restore,
        error: error.cloned(),
        lessons_learned: Vec::new(),
        generated_at: Utc::now(),
        verdict,
        data_fence,
        gate_override,
        fence_watch,
        intervention,
        phases,
        announcements,
        amended_at: None,
    };
    let mut report = report;
    report.lessons_learned = lessons(&report, group_not_moved);
    let markdown = super::markdown::render_markdown(&report);
    Ok(Built { report, markdown })
}

/// Amends a finished run's report once its fence watch ended: the fence record and verdicts as
/// they are now (the returning old site confirmed fenced), the watch's record, the lessons
/// again. `None` when the run has written no report yet (its own end will include all this).
pub async fn amend(deps: &Deps, run: &RunContext) -> Result<Option<Built>, StepError> {
    let key = keys::report(&run.run_id, crate::ledger::keys::ReportFormat::Json);
    let Some(existing) = deps.ledger.get::<Report>(&key).await? else {
        return Ok(None);
    };
    let mut report = existing.value;
    let (verdict, gate_override) = verdicts_of(deps, run).await?;
    report.verdict = verdict;
    report.gate_override = gate_override;
    let (source_role, _) = run.direction.roles();
    if let Some(f) = deps
        .ledger
        .get::<crate::fence::FenceRecord>(&keys::fence(&run.run_id, source_role))
        .await?
    {
        report.fence_actions = f.value.resources.into_values().collect();
    }
    report.fence_watch = deps
        .ledger
        .get::<crate::fence::watch::FenceWatchRecord>(&keys::fence_watch(&run.run_id))
        .await?
        .map(|v| v.value);
    report.amended_at = Some(Utc::now());
    let group_not_moved =
        run.plan.managed_dr.is_some() && report.managed_dr.as_ref().is_none_or(|m| !m.done);
    report.lessons_learned = lessons(&report, group_not_moved);
    let markdown = super::markdown::render_markdown(&report);
    Ok(Some(Built { report, markdown }))
}

/// Pure: what the run teaches, from its report (`group_not_moved`: the plan names a failover
/// group that did not reach the target).
pub fn lessons(report: &Report, group_not_moved: bool) -> Vec<String> {
    let mut lessons = Vec::new();
    let failed_channels: std::collections::BTreeSet<&str> = report
        .announcements
        .iter()
        .flat_map(|a| &a.deliveries)
        .filter(|d| !d.ok)
        .map(|d| d.channel.as_str())
        .collect();
    if !failed_channels.is_empty() {
        lessons.push(format!(
            "Some announcements did not reach {}: check those webhooks (secret, URL, the channel's app) before the next run.",
            failed_channels.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(s) = &report.fence {
        if !s.complete {
            lessons.push(format!(
                "The fence of the old site was not confirmed ({} resources outstanding): verify them by hand before resuming schedules.",
                s.remaining
            ));
        }
    }
    if let Some(a) = &report.activation {
        if !a.activated {
            lessons.push(format!(
                "Job schedules at the target stayed gated: once the data fence is confirmed, open the gate with `lifeboat override --run {} --reason <why>` (audited), or let the fence watch confirm the old site.",
                report.run_id
            ));
        }
    }
    if !report.verdict.none_left_behind {
        lessons.push(format!(
            "{} activation(s) live at the source before the run are live at neither site: fix them at the target (see the verdict) and keep the DR configuration in sync.",
            report.verdict.left_behind.len()
        ));
    }
    if group_not_moved && report.outcome.moved_production() {
        lessons.push(
            "The Managed DR failover group was not ACTIVE in the target's region when the run ended: check it in the account console; until it is, the target's replicated catalogs may be read-only."
                .into(),
        );
    }
    if report.managed_dr_restore.as_ref().is_some_and(|m| !m.done) {
        lessons.push(
            "The abort could not put the Managed DR failover group back in the source's region: fail it back from the account console before restoring the source by hand."
                .into(),
        );
    }
    if report.rto.met == Some(false) {
        lessons.push(
            "The RTO objective was missed: review the step timeline for the slowest step.".into(),
        );
    }
    if report.rpo.as_ref().is_some_and(|r| !r.acceptable) {
        lessons
            .push("RPO exceeded its objective: check the replication of the named buckets.".into());
    }
    lessons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::DnsSwitchOutput;

    #[test]
    fn outcomes_from_results_and_errors() {
        let sweep = |complete: bool| -> SweepOutput {
            serde_json::from_value(serde_json::json!({"site": "primary", "attempt": 1,
                "complete": complete, "gave_up": false, "reachable": true, "confirmed": 3,
                "remaining": 0, "actions": 3, "excluded": 0}))
            .unwrap()
        };
        let activation = |missing: &[&str]| -> ActivationOutput {
            serde_json::from_value(serde_json::json!({"activated": true, "waiting": false,
                "gate": {"gate": "open", "reason": "fenced"}, "unpaused": 4,
                "missing": missing, "summary": ""}))
            .unwrap()
        };
        let checks = |passed: bool| ValidationOutput {
            checks: Vec::new(),
            passed,
            through_clients: false,
        };
        let dns = DnsSwitchOutput {
            record_name: "db.example".into(),
            previous: Some("a".into()),
            current: "b".into(),
            change_status: "INSYNC".into(),
            parameters: Vec::new(),
            restored: false,
        };
        let err = |name: &str| serde_json::json!({"Error": name, "Cause": "x"});
        let (ok_sweep, ok_act, pass, fail) =
            (sweep(true), activation(&[]), checks(true), checks(false));
        type Row<'a> = (
            &'a str,
            Option<Value>,
            Option<&'a SweepOutput>,
            Option<&'a ActivationOutput>,
            Option<&'a ValidationOutput>,
            Option<&'a DnsSwitchOutput>,
            Option<&'a ValidationOutput>,
            bool,
            Outcome,
        );
        let (half_sweep, missing_job) = (sweep(false), activation(&["Nightly"]));
        let rows: Vec<Row> = vec![
            (
                "all done and verified",
                None,
                Some(&ok_sweep),
                Some(&ok_act),
                Some(&pass),
                Some(&dns),
                Some(&pass),
                false,
                Outcome::Succeeded,
            ),
            (
                "clients not verified (continued past)",
                None,
                Some(&ok_sweep),
                Some(&ok_act),
                Some(&pass),
                Some(&dns),
                Some(&fail),
                false,
                Outcome::SucceededWithWarnings,
            ),
            (
                "client check skipped",
                None,
                Some(&ok_sweep),
                Some(&ok_act),
                Some(&pass),
                Some(&dns),
                None,
                false,
                Outcome::SucceededWithWarnings,
            ),
            (
                "fence incomplete",
                None,
                Some(&half_sweep),
                Some(&ok_act),
                Some(&pass),
                Some(&dns),
                Some(&pass),
                false,
                Outcome::SucceededWithWarnings,
            ),
            (
                "a job left behind",
                None,
                Some(&ok_sweep),
                Some(&missing_job),
                Some(&pass),
                Some(&dns),
                Some(&pass),
                false,
                Outcome::SucceededWithWarnings,
            ),
            (
                "validation failed, continued",
                None,
                Some(&ok_sweep),
                Some(&ok_act),
                Some(&fail),
                Some(&dns),
                Some(&pass),
                false,
                Outcome::SucceededWithWarnings,
            ),
            (
                "clients never moved",
                None,
                Some(&ok_sweep),
                Some(&ok_act),
                Some(&pass),
                None,
                None,
                false,
                Outcome::Failed,
            ),
            (
                "rejected",
                Some(err("ApprovalRejected")),
                None,
                None,
                None,
                None,
                None,
                false,
                Outcome::Rejected,
            ),
            (
                "approval timed out",
                Some(err("States.Timeout")),
                None,
                None,
                None,
                None,
                None,
                false,
                Outcome::ApprovalTimedOut,
            ),
            (
                "rpo breach",
                Some(err("RpoBreached")),
                None,
                None,
                None,
                None,
                None,
                false,
                Outcome::StoppedRpoBreach,
            ),
            (
                "drift refused",
                Some(err("ConfigDrift")),
                None,
                None,
                None,
                None,
                None,
                false,
                Outcome::Refused,
            ),
            (
                "aborted",
                Some(err("AbortedByOperator")),
                Some(&ok_sweep),
                None,
                None,
                None,
                None,
                false,
                Outcome::Aborted,
            ),
            (
                "an error after moving",
                Some(err("ClientCheckFailed")),
                Some(&ok_sweep),
                Some(&ok_act),
                Some(&pass),
                Some(&dns),
                Some(&fail),
                false,
                Outcome::Failed,
            ),
            (
                "readiness verified",
                None,
                None,
                None,
                Some(&pass),
                None,
                None,
                true,
                Outcome::ReadinessVerified,
            ),
            (
                "readiness failed",
                None,
                None,
                None,
                Some(&fail),
                None,
                None,
                true,
                Outcome::Failed,
            ),
        ];
        for (name, error, sw, act, val, dns, clients, readiness, want) in rows {
            assert_eq!(
                decide_outcome(
                    error.as_ref(),
                    sw,
                    act,
                    val,
                    dns.is_some(),
                    clients,
                    readiness
                ),
                want,
                "{name}"
            );
        }
        // No DNS switch at all: clients moved with the Managed DR stable URL.
        assert_eq!(
            decide_outcome(
                None,
                Some(&ok_sweep),
                Some(&ok_act),
                Some(&pass),
                true,
                Some(&pass),
                false
            ),
            Outcome::Succeeded
        );
    }
}
