//! The run report: what happened, when, and how it measured against the objectives. Built by
//! `run-ledger finish` from the step records in the ledger and the execution's results;
//! stored as JSON and Markdown next to the run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ledger::keys;
use crate::{
    approval::ApprovalRecord,
    fence::{handoff::ActivationOutput, SweepOutput},
    kernel::{Deps, StepError, StepRecord},
    managed_dr::{ManagedFailoverOutput, ManagedFailoverStatus},
    replication::{ReplicationOutput, RpoKind},
    run::RunContext,
    switch::DnsSwitchOutput,
    validation::ValidationOutput,
};

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

/// One phase of the recovery: where the time went, from the ledger's step records and the
/// incident's own timestamps. Phases of parallel branches overlap; `share` is of the total
/// (incident start, else declaration → serving).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// `detection`, `pre-checks`, `decision`, `data fence`, `fence`, `start-up`, `activation`,
    /// `client switch`, `validation`.
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub seconds: f64,
    /// Fraction of the total.
    pub share: f64,
}

/// Pure: the run's time by phase. Step-based phases span their steps (first start → last
/// end); detection runs from the incident's start to the declaration; the decision from the
/// approval request to the decision. `total_end` is when the target served (else the last
/// step's end); shares are of incident start (else declaration) → `total_end`.
pub fn phases(
    steps: &[StepRecord],
    declared_at: DateTime<Utc>,
    incident_started_at: Option<DateTime<Utc>>,
    decided_at: Option<DateTime<Utc>>,
    total_end: Option<DateTime<Utc>>,
) -> Vec<Phase> {
    let secs =
        |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_milliseconds().max(0) as f64 / 1000.0;
    let span = |names: &[&str]| {
        let mine: Vec<&StepRecord> = steps
            .iter()
            .filter(|s| names.contains(&s.step.as_str()))
            .collect();
        Some((
            mine.iter().map(|s| s.started_at).min()?,
            mine.iter().map(|s| s.ended_at).max()?,
        ))
    };
    let mut raw: Vec<(&str, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    if let Some(start) = incident_started_at.filter(|t| *t < declared_at) {
        raw.push(("detection", start, declared_at));
    }
    if let Some((a, b)) = span(&["dr-config-check", "replication-check", "data-sources-check"]) {
        raw.push(("pre-checks", a, b));
    }
    let requested = steps
        .iter()
        .filter(|s| s.step == "request-approval")
        .map(|s| s.started_at)
        .min();
    if let (Some(a), Some(b)) = (requested, decided_at) {
        raw.push(("decision", a, b));
    }
    for (name, steps_of) in [
        ("data fence", &["data-fence"][..]),
        ("fence", &["shutdown-sweep"][..]),
        ("start-up", &["dr-startup"][..]),
        ("activation", &["activate-schedules"][..]),
        ("client switch", &["dns-switch"][..]),
        ("validation", &["validate-workspace"][..]),
        ("client check", &[crate::kernel::VERIFY_CLIENTS][..]),
    ] {
        if let Some((a, b)) = span(steps_of) {
            // The fence starts when the decision does (its first sweep may wait on nothing).
            let a = match (name, decided_at) {
                ("fence", Some(d)) if d < a => d,
                _ => a,
            };
            raw.push((name, a, b));
        }
    }
    let origin = incident_started_at
        .filter(|t| *t < declared_at)
        .unwrap_or(declared_at);
    let end = total_end.or_else(|| steps.iter().map(|s| s.ended_at).max());
    let total = end.map(|e| secs(origin, e)).filter(|t| *t > 0.0);
    raw.into_iter()
        .map(|(name, start, end)| {
            let seconds = secs(start, end);
            Phase {
                name: name.to_string(),
                start,
                end,
                seconds,
                share: total.map(|t| (seconds / t).min(1.0)).unwrap_or(0.0),
            }
        })
        .collect()
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

/// A step's output from the execution results: top level, or inside the Parallel state's
/// `failover` selection.
fn pick<T: serde::de::DeserializeOwned>(results: &Value, key: &str) -> Option<T> {
    // Top level, or inside a Parallel state's output (`failover`, `failback`: one results
    // object per branch, as an array or named `fence`/`handover`/`startup`), first match wins.
    fn find<'a>(v: &'a Value, key: &str, depth: u8) -> Option<&'a Value> {
        if let Some(found) = v.get(key).filter(|v| !v.is_null()) {
            return Some(found);
        }
        if depth == 0 {
            return None;
        }
        let children: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) => ["failover", "failback", "fence", "handover", "startup"]
                .iter()
                .filter_map(|k| v.get(*k))
                .collect(),
            _ => Vec::new(),
        };
        children.into_iter().find_map(|c| find(c, key, depth - 1))
    }
    find(results, key, 3).and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// An approval given with SendTaskSuccess directly: `{"approver": ..., "channel": ..., "comment": ...}`
/// in the task output, as the README asks operators to send.
fn approval_from_task_output(results: &Value) -> Option<ApprovalSummary> {
    let out = results.get("approval").filter(|v| v.is_object())?;
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
    results: &Value,
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
    let sweep: Option<SweepOutput> = pick(results, "sweep");
    let fence_actions = match sweep.as_ref().and_then(|s| s.site) {
        Some(site) => deps
            .ledger
            .get::<crate::fence::FenceRecord>(&keys::fence(&run.run_id, site))
            .await?
            .map(|r| r.value.resources.into_values().collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let activation: Option<ActivationOutput> = pick(results, "activation");
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
    let verdict = crate::verdict::verdicts(
        source_fence.as_ref(),
        activation_record.as_ref(),
        gate_override.as_ref(),
    );
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
    let validation: Option<ValidationOutput> = pick(results, "validation");
    let dns: Option<DnsSwitchOutput> = pick(results, "dns");
    let client_check: Option<ValidationOutput> = pick(results, "client_check");
    let configured = |o: &ManagedFailoverOutput| {
        !matches!(
            o.status,
            ManagedFailoverStatus::NotConfigured | ManagedFailoverStatus::Unchanged
        )
    };
    let managed_dr: Option<ManagedFailoverOutput> = pick(results, "managed_dr").filter(configured);
    let managed_dr_restore: Option<ManagedFailoverOutput> =
        pick(results, "abort_managed_dr").filter(configured);
    let rpo: Option<ReplicationOutput> = pick(results, "replication");
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
    let mut lessons = Vec::new();
    let failed_channels: std::collections::BTreeSet<&str> = announcements
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
    if let Some(s) = &sweep {
        if !s.complete {
            lessons.push(format!(
                "The fence of the old site was not confirmed ({} resources outstanding): verify them by hand before resuming schedules.",
                s.remaining
            ));
        }
    }
    if let Some(a) = &activation {
        if !a.activated {
            lessons.push(format!(
                "Job schedules at the target stayed gated: once the data fence is confirmed, open the gate with `lifeboat override --run {} --reason <why>` (audited), or let the fence watch confirm the old site.",
                run.run_id
            ));
        }
    }
    if !verdict.none_left_behind {
        lessons.push(format!(
            "{} activation(s) live at the source before the run are live at neither site: fix them at the target (see the verdict) and keep the DR configuration in sync.",
            verdict.left_behind.len()
        ));
    }
    if group_not_moved && outcome.moved_production() {
        lessons.push(
            "The Managed DR failover group was not ACTIVE in the target's region when the run ended: check it in the account console; until it is, the target's replicated catalogs may be read-only."
                .into(),
        );
    }
    if managed_dr_restore.as_ref().is_some_and(|m| !m.done) {
        lessons.push(
            "The abort could not put the Managed DR failover group back in the source's region: fail it back from the account console before restoring the source by hand."
                .into(),
        );
    }
    if rto.met == Some(false) {
        lessons.push(
            "The RTO objective was missed: review the step timeline for the slowest step.".into(),
        );
    }
    if rpo.as_ref().is_some_and(|r| !r.acceptable) {
        lessons
            .push("RPO exceeded its objective: check the replication of the named buckets.".into());
    }
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
        lessons_learned: lessons,
        generated_at: Utc::now(),
        verdict,
        data_fence,
        gate_override,
        fence_watch,
        intervention,
        phases,
        announcements,
    };
    let markdown = render_markdown(&report);
    Ok(Built { report, markdown })
}

/// Pure: what people were told, and every delivery that failed.
fn render_announcements(md: &mut String, records: &[crate::announce::AnnouncementRecord]) {
    use std::fmt::Write as _;
    if records.is_empty() {
        return;
    }
    let failed: Vec<(
        &crate::announce::AnnouncementRecord,
        &crate::announce::channels::Delivery,
    )> = records
        .iter()
        .flat_map(|r| r.deliveries.iter().filter(|d| !d.ok).map(move |d| (r, d)))
        .collect();
    let channels: usize = records
        .iter()
        .map(|r| r.deliveries.len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        md,
        "\n## Announcements\n\n{} milestone(s) told on {} channel(s); {}.",
        records.len(),
        channels,
        if failed.is_empty() {
            "every delivery succeeded".to_string()
        } else {
            format!("{} delivery(ies) failed", failed.len())
        }
    );
    if !failed.is_empty() {
        let _ = writeln!(
            md,
            "\n| milestone | channel | attempts | error |\n|---|---|---|---|"
        );
        for (r, d) in failed {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                md_cell(&r.milestone),
                md_cell(&d.channel),
                d.attempts,
                md_cell(d.error.as_deref().unwrap_or(""))
            );
        }
    }
}

/// A Markdown table cell: no `|` and no line break can break the row.
/// A heading (and its introduction), then one row per check.
fn render_checks(md: &mut String, heading: &str, checks: &[crate::validation::Check]) {
    use std::fmt::Write as _;
    let _ = writeln!(md, "\n{heading}\n| check | ok | detail |\n|---|---|---|");
    for c in checks {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            md_cell(&c.name),
            if c.ok { "yes" } else { "NO" },
            md_cell(&c.detail)
        );
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "/").replace(['\n', '\r'], " ")
}

/// Rows of a long list shown in the Markdown (report.json has them all).
const SHOWN: usize = 200;

/// Pure: why a section of a report has no figures — the reason a reader needs instead of a
/// silent gap (rejected, timed out, paused, failed at a named step, or a readiness drill).
pub fn not_reached(r: &Report) -> String {
    let error = r
        .error
        .as_ref()
        .and_then(|e| e.get("Error"))
        .and_then(Value::as_str);
    match (r.outcome, error) {
        (Outcome::Rejected, _) => "the approval was refused (nothing was touched)".into(),
        (_, Some(e)) if e.contains("Timeout") || e.contains("TimedOut") => {
            "the approval or a step timed out before it".into()
        }
        _ if r.intervention.as_ref().is_some_and(|i| i.pending) => format!(
            "the run is paused for a decision after {} failed",
            r.intervention
                .as_ref()
                .map(|i| i.failed_state.as_str())
                .unwrap_or("a step")
        ),
        (_, Some(e)) => format!("the run stopped with {e} before it"),
        _ if r.kind == "readiness" => "a readiness drill does not do this".into(),
        _ => "the run did not reach it".into(),
    }
}

/// Markdown rendering for humans (incident channels, reviews).
/// The Managed DR section: where the group was, where it is, how it was asked to move.
fn render_managed_dr(md: &mut String, title: &str, m: &ManagedFailoverOutput) {
    use std::fmt::Write;
    let region = |r: &Option<String>| md_cell(r.as_deref().unwrap_or("unknown"));
    let _ = writeln!(
        md,
        "\n## {title}\n\n- **Group:** {}\n- **Primary region:** {} → {} (goal {}; state {})",
        md_cell(m.group.as_deref().unwrap_or("unknown")),
        region(&m.region_before),
        region(&m.region_now),
        region(&m.goal_region),
        m.state
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|| "unknown".into()),
    );
    let kind = match m.failover_type {
        Some(crate::databricks::disaster_recovery::FailoverType::Forced) => {
            "FORCED (the site being left did not answer)"
        }
        Some(crate::databricks::disaster_recovery::FailoverType::Planned) => "planned",
        None => "none asked",
    };
    let _ = writeln!(
        md,
        "- **Failovers asked:** {} ({kind}); stale etag read again {} time(s)",
        m.attempts, m.stale_etag_retries
    );
    if let Some(p) = m.replication_point {
        let _ = writeln!(md, "- **Replication point:** {}", p.to_rfc3339());
    }
    if let Some(u) = &m.stable_url {
        let _ = writeln!(
            md,
            "- **Stable URL:** {} routes to workspace {} (expected {})",
            md_cell(u.url.as_deref().unwrap_or("unknown")),
            md_cell(u.routes_to.as_deref().unwrap_or("unknown")),
            md_cell(&u.expected),
        );
    }
    if !m.done {
        let _ = writeln!(
            md,
            "- **Not finished:** the group was not ACTIVE in the goal region when the run ended."
        );
    }
}

pub fn render_markdown(r: &Report) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let _ = writeln!(md, "# Lifeboat {} report — `{}`\n", r.kind, r.run_id);
    let _ = writeln!(md, "- **Outcome:** {:?}", r.outcome);
    let _ = writeln!(md, "- **Plan:** {} ({})", r.plan, r.direction);
    let _ = writeln!(
        md,
        "- **Trigger:** {} (declared {})",
        r.trigger.summary,
        r.trigger.declared_at.to_rfc3339()
    );
    match &r.approval {
        Some(a) => {
            let _ = writeln!(
                md,
                "- **Decision:** {} by {} via {} at {}",
                a.decision,
                a.approver,
                a.channel,
                a.decided_at.to_rfc3339()
            );
        }
        None => {
            let _ = writeln!(
                md,
                "- **Decision:** none recorded (pre-approved or not reached)"
            );
        }
    }
    let fmt_s = |s: Option<f64>| {
        s.map(|v| format!("{v:.1} s"))
            .unwrap_or_else(|| "n/a".into())
    };
    let _ = writeln!(
        md,
        "- **RTO:** {} from the incident's start, {} from declaration, {} from approval (objective {:.0} s){}",
        fmt_s(r.rto.from_incident_seconds),
        fmt_s(r.rto.from_declaration_seconds),
        fmt_s(r.rto.from_approval_seconds),
        r.rto.objective_seconds,
        match r.rto.met {
            Some(true) => " — met",
            Some(false) => " — MISSED",
            None => "",
        }
    );
    let reached = not_reached(r);
    let _ = writeln!(
        md,
        "\n## RTO by phase\n\n| phase | start | end | seconds | share |\n|---|---|---|---|---|"
    );
    for p in &r.phases {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:.0}% |",
            p.name,
            p.start.format("%H:%M:%S%.3f"),
            p.end.format("%H:%M:%S%.3f"),
            p.seconds,
            p.share * 100.0
        );
    }
    if r.phases.is_empty() {
        let _ = writeln!(md, "| (none reached: {reached}) | | | | |");
    }
    if r.rpo.is_none() {
        let _ = writeln!(md, "\n## RPO\n\nNot measured: {reached}.");
    }
    if let Some(rpo) = &r.rpo {
        let _ = writeln!(
            md,
            "\n## RPO\n\nWorst first. A table's RPO comes from the newest version a reader can \
             load at the replica.\n\n| kind | data | measured | objective | consistent version | as of | ok |\n|---|---|---|---|---|---|---|"
        );
        for row in rpo.worst_first() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} s | {} | {} | {} |",
                match row.kind {
                    RpoKind::Bucket => "bucket",
                    RpoKind::DeltaTable => "delta_table",
                    RpoKind::ManagedDr => "managed_dr",
                },
                row.name,
                row.rpo_seconds
                    .map(|s| format!("{s:.0} s"))
                    .unwrap_or_else(|| "unknown".into()),
                row.objective_seconds,
                row.version
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "—".into()),
                row.as_of
                    .map(|t| t.format("%H:%M:%S").to_string())
                    .unwrap_or_else(|| "—".into()),
                if row.ok { "yes" } else { "NO" }
            );
        }
        for b in rpo.buckets.iter().filter(|b| b.finding.is_some()) {
            let _ = writeln!(
                md,
                "\n- {}: {}",
                b.name,
                b.finding.as_deref().unwrap_or_default()
            );
        }
        for t in &rpo.tables {
            for finding in &t.findings {
                let _ = writeln!(md, "\n- table {}: {finding}", t.name);
            }
        }
    }
    let _ = writeln!(
        md,
        "\n## Steps\n\n| step | start | end | seconds | ok | summary |\n|---|---|---|---|---|---|"
    );
    for s in &r.steps {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {} | {} |",
            s.step,
            s.started_at.format("%H:%M:%S%.3f"),
            s.ended_at.format("%H:%M:%S%.3f"),
            (s.ended_at - s.started_at).num_milliseconds() as f64 / 1000.0,
            if s.ok { "yes" } else { "NO" },
            s.summary.replace('|', "/")
        );
    }
    if let Some(f) = &r.fence {
        let _ = writeln!(
            md,
            "\n## Fence of the old site\n\n{} attempts; {} resources confirmed fenced, {} outstanding; {} write actions.",
            f.attempt, f.confirmed, f.remaining, f.actions
        );
    }
    if !r.fence_actions.is_empty() {
        let _ = writeln!(md, "\n| resource | kind | prior | desired | confirmed | writes | last error |\n|---|---|---|---|---|---|---|");
        for a in r.fence_actions.iter().take(SHOWN) {
            let _ = writeln!(
                md,
                "| {} | {:?} | {} | {} | {} | {} | {} |",
                a.name.replace('|', "/"),
                a.kind,
                a.prior,
                a.desired,
                if a.confirmed { "yes" } else { "NO" },
                a.actions,
                a.last_error.as_deref().unwrap_or("").replace('|', "/")
            );
        }
        if r.fence_actions.len() > SHOWN {
            let _ = writeln!(
                md,
                "\n… and {} more in report.json and the ledger's fence record.",
                r.fence_actions.len() - SHOWN
            );
        }
    }
    if r.fence.is_none() {
        let _ = writeln!(md, "\n## Fence of the old site\n\nNot reached: {reached}.");
    }
    match &r.activation {
        Some(a) => {
            let _ = writeln!(md, "\n## Schedules at the target\n\n{}", a.summary);
        }
        None => {
            let _ = writeln!(
                md,
                "\n## Schedules at the target\n\nNot reached: {reached}."
            );
        }
    }
    let v = &r.verdict;
    let _ = writeln!(
        md,
        "\n## Safety verdicts\n\n- **Never both active:** {} ({} activations compared)\n- **None left behind:** {}",
        if v.never_both_active { "held" } else { "VIOLATED" },
        v.compared,
        if v.none_left_behind { "held".to_string() } else { format!("VIOLATED — {} left behind", v.left_behind.len()) }
    );
    for item in v.both_active.iter().take(SHOWN) {
        let _ = writeln!(md, "  - both active: {item}");
    }
    for item in v.left_behind.iter().take(SHOWN) {
        let _ = writeln!(md, "  - left behind: {item}");
    }
    for item in v.by_override.iter().take(SHOWN) {
        let _ = writeln!(
            md,
            "  - live at the target by override (source not confirmed): {item}"
        );
    }
    if r.data_fence.is_none() {
        let _ = writeln!(md, "\n## Data fence\n\nNot set: {reached}.");
    }
    if let Some(d) = &r.data_fence {
        let _ = writeln!(
            md,
            "\n## Data fence\n\nSet {}; {}; {}.",
            d.set_at.to_rfc3339(),
            match d.confirmed_at {
                Some(t) => format!("confirmed {}", t.to_rfc3339()),
                None => "NOT confirmed".into(),
            },
            match d.removed_at {
                Some(t) => format!("lifted {}", t.to_rfc3339()),
                None => "in place".into(),
            }
        );
        for b in &d.buckets {
            let _ = writeln!(
                md,
                "- {} (replica {}): deny {}; source rules: {:?}",
                b.name,
                b.replica,
                if b.confirmed {
                    "confirmed"
                } else {
                    "not confirmed"
                },
                b.source_rules
            );
        }
    }
    if let Some(o) = &r.gate_override {
        let _ = writeln!(
            md,
            "\n## Gate override\n\nOpened by {} via {} at {}: {}",
            o.who,
            o.channel,
            o.at.to_rfc3339(),
            o.reason
        );
    }
    if let Some(w) = &r.fence_watch {
        let _ = writeln!(
            md,
            "\n## Fence watch\n\nStarted {}; {}.",
            w.started_at.to_rfc3339(),
            match (&w.confirmed_at, &w.stopped) {
                (Some(t), _) => format!("old site confirmed fenced {}", t.to_rfc3339()),
                (None, Some((t, why))) => format!("stopped {}: {why}", t.to_rfc3339()),
                (None, None) => "still watching (see runs/<id>/fence-watch.json)".into(),
            }
        );
    }
    if let Some(i) = &r.intervention {
        let _ = writeln!(
            md,
            "\n## Intervention\n\nStep {} failed: {}{}",
            i.failed_state,
            i.error,
            if i.pending {
                " — WAITING for a decision"
            } else {
                ""
            }
        );
        for s in &i.sites {
            let _ = writeln!(md, "- {}: {}", s.site, s.summary);
        }
        for d in &i.history {
            let _ = writeln!(
                md,
                "- {} chose {} for {} via {} at {}",
                d.who,
                d.action.as_str(),
                d.failed_state,
                d.channel,
                d.decided_at.to_rfc3339()
            );
        }
    }
    if let Some(v) = &r.validation {
        render_checks(&mut md, "## Validation\n", &v.checks);
    }
    if r.validation.is_none() {
        let _ = writeln!(md, "\n## Validation\n\nNot reached: {reached}.");
    }
    match &r.dns {
        Some(d) => {
            let _ = writeln!(
                md,
                "\n## DNS and client settings\n\n{} → {} (was {})",
                d.record_name,
                d.current,
                d.previous.as_deref().unwrap_or("none")
            );
            if !d.parameters.is_empty() {
                // Before is what failback (or a restore) puts back.
                let _ = writeln!(
                    md,
                    "\n| Parameter | Holds | Before | After |\n| --- | --- | --- | --- |"
                );
                for p in &d.parameters {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {} |",
                        md_cell(&p.name),
                        md_cell(&p.describes),
                        md_cell(p.previous.as_deref().unwrap_or("(absent)")),
                        md_cell(&p.current)
                    );
                }
            }
        }
        // The client check ran on the stable URL: the plan has no `[dns]`.
        None if r
            .client_check
            .as_ref()
            .is_some_and(|c| c.checks.iter().any(|k| k.name.starts_with("stable URL:"))) =>
        {
            let _ = writeln!(
                md,
                "\n## DNS and client settings\n\nNo DNS switch: clients keep the Managed DR \
                 stable URL, which follows the failover group (see the Managed DR section)."
            );
        }
        None => {
            let _ = writeln!(
                md,
                "\n## DNS and client settings\n\nNot switched: {reached}."
            );
        }
    }
    if let Some(c) = &r.client_check {
        render_checks(
            &mut md,
            "## Clients verified\n\nThe switched name and the parameters clients read, \
             followed as clients follow them.\n",
            &c.checks,
        );
    }
    for (title, m) in [
        ("Managed DR failover group", &r.managed_dr),
        (
            "Managed DR failover group, put back by the abort",
            &r.managed_dr_restore,
        ),
    ] {
        if let Some(m) = m {
            render_managed_dr(&mut md, title, m);
        }
    }
    if let Some(e) = &r.error {
        let _ = writeln!(md, "\n## Error\n\n```\n{e}\n```");
    }
    render_announcements(&mut md, &r.announcements);
    if !r.lessons_learned.is_empty() {
        let _ = writeln!(md, "\n## Lessons learned\n");
        for l in &r.lessons_learned {
            let _ = writeln!(md, "- {l}");
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

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

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
            + chrono::Duration::seconds(s)
    }

    fn step(name: &str, a: i64, b: i64) -> StepRecord {
        StepRecord {
            step: name.into(),
            started_at: t(a),
            ended_at: t(b),
            ok: true,
            summary: String::new(),
        }
    }

    fn by_name(p: &[Phase]) -> BTreeMap<String, (f64, f64)> {
        p.iter()
            .map(|p| (p.name.clone(), (p.seconds, (p.share * 100.0).round())))
            .collect()
    }

    #[test]
    fn phases_of_a_failover_add_up_to_where_the_time_went() {
        // Incident at 0, declared at 100, checks 100–110, asked 110, decided 200, the fence
        // and data fence after the decision, activation pipelined behind the fence, DNS and
        // validation on the start-up branch; served at 300.
        let steps = vec![
            step("dr-config-check", 100, 104),
            step("replication-check", 104, 106),
            step("data-sources-check", 106, 110),
            step("request-approval", 110, 111),
            step("request-approval", 200, 201),
            step("data-fence", 201, 203),
            step("shutdown-sweep", 201, 240),
            step("shutdown-sweep", 250, 270),
            step("dr-startup", 201, 260),
            step("activate-schedules", 205, 300),
            step("validate-workspace", 260, 270),
            step("dns-switch", 270, 275),
        ];
        let p = phases(&steps, t(100), Some(t(0)), Some(t(200)), Some(t(300)));
        let got = by_name(&p);
        let want: BTreeMap<String, (f64, f64)> = [
            ("detection", (100.0, 33.0)),
            ("pre-checks", (10.0, 3.0)),
            ("decision", (90.0, 30.0)),
            ("data fence", (2.0, 1.0)),
            ("fence", (70.0, 23.0)),
            ("start-up", (59.0, 20.0)),
            ("activation", (95.0, 32.0)),
            ("validation", (10.0, 3.0)),
            ("client switch", (5.0, 2.0)),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        assert_eq!(got, want);
        // The sequential path — detection, checks, decision, activation (to serving) — is the
        // total: what the phases are for.
        let path = ["detection", "pre-checks", "decision"]
            .iter()
            .map(|n| got[*n].0)
            .sum::<f64>()
            + (300.0 - 200.0);
        assert_eq!(path, 300.0);
    }

    #[test]
    fn phases_table() {
        // No incident time: detection absent, shares of declaration → serving.
        let steps = vec![step("request-approval", 0, 1), step("dns-switch", 10, 20)];
        let p = by_name(&phases(&steps, t(0), None, Some(t(10)), Some(t(20))));
        assert_eq!(p.get("detection"), None);
        assert_eq!(p["decision"], (10.0, 50.0));
        assert_eq!(p["client switch"], (10.0, 50.0));
        // An incident "after" the declaration (clock skew) is not a detection phase.
        let p = by_name(&phases(&steps, t(0), Some(t(5)), Some(t(10)), Some(t(20))));
        assert_eq!(p.get("detection"), None);
        // Rejected: no decision time, nothing after it; shares of the last step's end.
        let p = by_name(&phases(
            &[step("dr-config-check", 0, 4)],
            t(0),
            None,
            None,
            None,
        ));
        assert_eq!(p.len(), 1);
        assert_eq!(p["pre-checks"], (4.0, 100.0));
        // Nothing at all.
        assert!(phases(&[], t(0), None, None, None).is_empty());
    }
}
