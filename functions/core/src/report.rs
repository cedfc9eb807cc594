//! The run report: what happened, when, and how it measured against the objectives. Built by
//! `run-ledger finish` from the step records in the ledger and the execution's results;
//! stored as JSON and Markdown next to the run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    run::RunContext,
    steps::{
        activate_schedules::ActivationOutput, dns_switch::DnsSwitchOutput,
        replication_check::ReplicationOutput, request_approval::ApprovalRecord,
        shutdown_sweep::SweepOutput, validate_workspace::ValidationOutput, Deps, StepError,
    },
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

/// One step's execution, written by [`crate::steps::recorded`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step name (the Lambda's).
    pub step: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub ended_at: DateTime<Utc>,
    /// Whether it returned without error.
    pub ok: bool,
    /// Error name and message, or a short summary of the output.
    pub summary: String,
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
    pub fence_actions: Vec<crate::steps::shutdown_sweep::ResourceRecord>,
    pub activation: Option<ActivationOutput>,
    pub validation: Option<ValidationOutput>,
    pub dns: Option<DnsSwitchOutput>,
    pub error: Option<Value>,
    pub lessons_learned: Vec<String>,
    pub generated_at: DateTime<Utc>,
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
    results
        .get(key)
        .or_else(|| results.get("failover").and_then(|f| f.get(key)))
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// An approval given with SendTaskSuccess directly: `{"approver": ..., "channel": ..., "comment": ...}`
/// in the task output, as the README asks operators to send.
fn approval_from_task_output(results: &Value) -> Option<ApprovalSummary> {
    let out = results.get("approval").filter(|v| v.is_object())?;
    let text = |k: &str| out.get(k).and_then(Value::as_str).map(str::to_string);
    Some(ApprovalSummary {
        decision: "approve".into(),
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
    dns: Option<&DnsSwitchOutput>,
    readiness_only: bool,
) -> Outcome {
    if let Some(error) = error {
        let name = error.get("Error").and_then(Value::as_str).unwrap_or("");
        return match name {
            "ApprovalRejected" => Outcome::Rejected,
            "States.Timeout" | "ApprovalTimedOut" => Outcome::ApprovalTimedOut,
            "RpoBreached" => Outcome::StoppedRpoBreach,
            "LockHeld" | "Refused" | "DataSourcesUnavailable" => Outcome::Refused,
            _ => Outcome::Failed,
        };
    }
    let validated = validation.is_some_and(|v| v.passed);
    if !validated {
        return Outcome::Failed;
    }
    if readiness_only {
        return Outcome::ReadinessVerified;
    }
    if dns.is_none() {
        return Outcome::Failed;
    }
    let fenced = sweep.is_some_and(|s| s.complete);
    let activated = activation.is_some_and(|a| a.activated);
    if fenced && activated {
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
    let prefix = run.prefix();
    let mut steps = Vec::new();
    for key in deps.ledger.list(&format!("{prefix}/steps/")).await? {
        if let Some(r) = deps.ledger.get::<StepRecord>(&key).await? {
            steps.push(r.value);
        }
    }
    steps.sort_by_key(|s| s.started_at);
    let recorded = deps
        .ledger
        .get::<ApprovalRecord>(&crate::steps::request_approval::approval_key(
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
            .get::<crate::steps::shutdown_sweep::FenceRecord>(
                &crate::steps::shutdown_sweep::fence_key(run, site),
            )
            .await?
            .map(|r| r.value.resources.into_values().collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let activation: Option<ActivationOutput> = pick(results, "activation");
    let validation: Option<ValidationOutput> = pick(results, "validation");
    let dns: Option<DnsSwitchOutput> = pick(results, "dns");
    let rpo: Option<ReplicationOutput> = pick(results, "replication");
    let outcome = decide_outcome(
        error,
        sweep.as_ref(),
        activation.as_ref(),
        validation.as_ref(),
        dns.as_ref(),
        run.kind == crate::run::RunKind::Readiness,
    );
    let served_at = steps
        .iter()
        .filter(|s| s.ok && (s.step == "dns-switch" || s.step == "validate-workspace"))
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
    };
    let mut lessons = Vec::new();
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
            lessons.push(
                "Job schedules at the target stayed gated: activate them with `lifeboat activate --override-reason` once the old site is known fenced.".into(),
            );
        }
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
        error: error.cloned(),
        lessons_learned: lessons,
        generated_at: Utc::now(),
    };
    let markdown = render_markdown(&report);
    Ok(Built { report, markdown })
}

/// Markdown rendering for humans (incident channels, reviews).
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
        "- **RTO:** {} from declaration, {} from approval (objective {:.0} s){}",
        fmt_s(r.rto.from_declaration_seconds),
        fmt_s(r.rto.from_approval_seconds),
        r.rto.objective_seconds,
        match r.rto.met {
            Some(true) => " — met",
            Some(false) => " — MISSED",
            None => "",
        }
    );
    if let Some(rpo) = &r.rpo {
        let _ = writeln!(
            md,
            "\n## RPO\n\n| data | measured | objective | ok |\n|---|---|---|---|"
        );
        for b in &rpo.buckets {
            let _ = writeln!(
                md,
                "| {} | {} | {} s | {} |",
                b.name,
                b.rpo_seconds
                    .map(|s| format!("{s:.0} s"))
                    .unwrap_or_else(|| "unknown".into()),
                b.objective_seconds,
                if b.ok { "yes" } else { "NO" }
            );
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
        const SHOWN: usize = 200;
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
    if let Some(a) = &r.activation {
        let _ = writeln!(md, "\n## Schedules at the target\n\n{}", a.summary);
    }
    if let Some(v) = &r.validation {
        let _ = writeln!(
            md,
            "\n## Validation\n\n| check | ok | detail |\n|---|---|---|"
        );
        for c in &v.checks {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                c.name,
                if c.ok { "yes" } else { "NO" },
                c.detail.replace('|', "/")
            );
        }
    }
    if let Some(d) = &r.dns {
        let _ = writeln!(
            md,
            "\n## DNS and client settings\n\n{} → {} (was {})",
            d.record_name,
            d.current,
            d.previous.as_deref().unwrap_or("none")
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(md, "\n## Error\n\n```\n{e}\n```");
    }
    if !r.lessons_learned.is_empty() {
        let _ = writeln!(md, "\n## Lessons learned\n");
        for l in &r.lessons_learned {
            let _ = writeln!(md, "- {l}");
        }
    }
    md
}
