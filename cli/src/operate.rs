//! The operator's commands against a stack (deployed or local): start a failover or failback,
//! see where a run is, preview what a failover would do without writing anything, release a
//! stuck lock. Each refuses bad input with one line naming what is wrong and what to do.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use chrono::{DateTime, Utc};
use lifeboat_core::{
    approval::{approval_key, ApprovalRecord, ApprovalStage},
    fence::{self, FenceRecord, FenceStatus},
    incident::run_context,
    kernel::StepRecord,
    plan::{Direction, Plan, SiteRole},
    report::Report,
    run::{ActiveSite, RunContext, RunId, RunKind, Trigger, TriggerSource},
    steps::run_ledger::{self, HolderStatus, Lock},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::stack::Stack;

pub use crate::stack::Refused;
use lifeboat_core::ledger::keys::{self, ReportFormat};

fn refuse<T>(msg: impl Into<String>) -> Result<T> {
    Err(Refused(msg.into()).into())
}

/// The execution ARN of a run started on a state machine.
pub fn execution_arn(machine_arn: &str, run_id: &str) -> String {
    format!(
        "{}:{run_id}",
        machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// Pure: the run id of an operator start — the same command by the same person in the same
/// minute names the same execution, so a repeated or retried command never starts a second run.
pub fn operator_run_id(
    direction: Direction,
    caller: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> RunId {
    let dir = match direction {
        Direction::Failover => "failover",
        Direction::Failback => "failback",
    };
    let digest = hex::encode(Sha256::digest(
        serde_json::json!([caller, reason]).to_string().as_bytes(),
    ));
    RunId(format!(
        "operator-{dir}-{}-{}",
        now.format("%Y%m%dT%H%MZ"),
        &digest[..8]
    ))
}

/// A started (or already started) execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Started {
    /// Run id (execution name).
    pub run_id: String,
    /// Execution ARN.
    pub execution_arn: String,
    /// The same command had started it already.
    pub already: bool,
}

/// Starts a failover or failback of the stack's plan: refused while another run holds the lock,
/// and (failback) unless a completed failover left the DR site active.
pub async fn start(
    stack: &Stack,
    direction: Direction,
    reason: &str,
    accept_drift: Option<&str>,
) -> Result<Started> {
    let plan = stack.plan().await?;
    let reason = reason.trim();
    if reason.chars().any(char::is_control) || reason.chars().count() > 500 {
        return refuse("--reason must be one line of at most 500 characters");
    }
    let accept_drift = accept_drift.map(str::trim);
    if accept_drift
        .is_some_and(|r| r.is_empty() || r.chars().any(char::is_control) || r.chars().count() > 500)
    {
        return refuse("--accept-drift needs a reason: one line of at most 500 characters");
    }
    if let Some(lock) = stack
        .deps
        .ledger
        .get::<Lock>(&keys::lock(&plan.name))
        .await?
    {
        let status = run_ledger::holder_status(&stack.deps, &lock.value).await;
        if !run_ledger::lock_is_stale(&status) {
            return refuse(format!(
                "run {} holds the lock of plan {} ({}); follow it with `lifeboat status {}`",
                lock.value.run_id,
                plan.name,
                describe_holder(&status),
                lock.value.run_id
            ));
        }
    }
    let active = stack
        .deps
        .ledger
        .get::<ActiveSite>(&keys::active_site(&plan.name))
        .await?
        .map(|v| v.value);
    let (machine, restore_from) = match direction {
        Direction::Failover => {
            if matches!(&active, Some(a) if a.active == SiteRole::Dr) {
                return refuse(format!(
                    "the DR site is already active (run {}); fail back first",
                    active.as_ref().map(|a| a.run_id.as_str()).unwrap_or("?")
                ));
            }
            (&stack.outputs.failover_state_machine_arn, None)
        }
        Direction::Failback => match &active {
            Some(a) if a.active == SiteRole::Dr => (
                &stack.outputs.failback_state_machine_arn,
                Some(RunId(a.run_id.clone())),
            ),
            _ => return refuse(
                "no completed failover: the ledger shows the primary active, nothing to fail back",
            ),
        },
    };
    let caller = stack.caller().await?;
    let now = Utc::now();
    let trigger = Trigger {
        source: TriggerSource::Operator,
        summary: format!(
            "{} started by {caller}: {}",
            match direction {
                Direction::Failover => "failover",
                Direction::Failback => "failback",
            },
            if reason.is_empty() {
                "(no reason given)"
            } else {
                reason
            }
        ),
        declared_at: now,
        event_arn: None,
        incident_started_at: None,
    };
    let kind = match direction {
        Direction::Failover => RunKind::Failover,
        Direction::Failback => RunKind::Failback,
    };
    let mut run = run_context(&plan, kind, direction, trigger, restore_from);
    run.run_id = operator_run_id(direction, &caller, reason, now);
    run.accept_drift = accept_drift.map(|r| lifeboat_core::run::DriftAcceptance {
        by: caller.to_string(),
        reason: r.to_string(),
        at: now,
    });
    let arn = execution_arn(machine, &run.run_id.0);
    match stack
        .deps
        .aws
        .sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(&run.run_id.0)
        .input(serde_json::json!({ "run": run }).to_string())
        .send()
        .await
    {
        Ok(out) => Ok(Started {
            run_id: run.run_id.0,
            execution_arn: out.execution_arn().to_string(),
            already: false,
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_already_exists()) =>
        {
            Ok(Started {
                run_id: run.run_id.0,
                execution_arn: arn,
                already: true,
            })
        }
        Err(e) => Err(anyhow::anyhow!(lifeboat_core::aws::sdk_error_message(&e)))
            .context("starting the execution"),
    }
}

fn describe_holder(status: &HolderStatus) -> String {
    match status {
        HolderStatus::Running => "its execution is running".into(),
        HolderStatus::Unverifiable(why) => format!("its execution cannot be checked: {why}"),
        HolderStatus::Ended(s) => format!("its execution ended: {s}"),
        HolderStatus::Unknown => "Step Functions does not know its execution".into(),
    }
}

/// Follows an execution, printing each state as it is entered and each approval as it waits,
/// until it ends; returns its final status.
pub async fn follow(
    stack: &Stack,
    started: &Started,
    mut out: impl std::io::Write,
) -> Result<ExecutionStatus> {
    let sfn = &stack.deps.aws.sfn;
    let t0 = Instant::now();
    let mut seen = 0usize;
    let mut announced: Vec<ApprovalStage> = Vec::new();
    let run_id = RunId(started.run_id.clone());
    loop {
        let history = sfn
            .get_execution_history()
            .execution_arn(&started.execution_arn)
            .send()
            .await
            .context("reading the execution history")?;
        for e in history.events().iter().skip(seen) {
            if let Some(d) = e.state_entered_event_details() {
                if !matches!(
                    e.r#type(),
                    HistoryEventType::ChoiceStateEntered | HistoryEventType::PassStateEntered
                ) {
                    writeln!(
                        out,
                        "  [{:6.1}s] > {}",
                        t0.elapsed().as_secs_f64(),
                        d.name()
                    )?;
                }
            }
        }
        seen = history.events().len();
        for stage in [ApprovalStage::Failover, ApprovalStage::RpoBreach] {
            if announced.contains(&stage) {
                continue;
            }
            if let Some(r) = stack
                .deps
                .ledger
                .get::<ApprovalRecord>(&approval_key(&run_id, stage))
                .await?
            {
                announced.push(stage);
                if r.value.decision.is_none() {
                    writeln!(
                        out,
                        "  approval pending ({}): lifeboat approve --run {}{} (or reject); expires {}",
                        match stage {
                            ApprovalStage::RpoBreach => "RPO over objective",
                            _ => "failover",
                        },
                        run_id,
                        if stage == ApprovalStage::RpoBreach {
                            " --stage rpo-breach"
                        } else {
                            ""
                        },
                        r.value.expires_at.to_rfc3339()
                    )?;
                }
            }
        }
        let d = sfn
            .describe_execution()
            .execution_arn(&started.execution_arn)
            .send()
            .await
            .context("reading the execution")?;
        if d.status() != &ExecutionStatus::Running {
            writeln!(
                out,
                "execution {}{}",
                d.status().as_str(),
                d.error().map(|e| format!(": {e}")).unwrap_or_default()
            )?;
            if let Some(report) = stack
                .deps
                .ledger
                .get::<Report>(&keys::report(&run_id, ReportFormat::Json))
                .await?
            {
                writeln!(
                    out,
                    "outcome {:?}; report s3://{}/runs/{run_id}/report.md",
                    report.value.outcome, stack.outputs.ledger_bucket
                )?;
            }
            return Ok(d.status().clone());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One approval stage as `status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApprovalView {
    /// `failover` or `rpo_breach`.
    pub stage: ApprovalStage,
    /// `pending`, `approved`, `rejected`, `expired`.
    pub state: String,
    /// Distinct approvals so far / required.
    pub approvals: usize,
    pub required: u32,
    /// Who decided (when decided).
    pub decided_by: Option<String>,
    /// Expiry of the request.
    pub expires_at: DateTime<Utc>,
}

/// A site's fence as `status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FenceView {
    /// The fenced site.
    pub site: SiteRole,
    /// In progress, confirmed, gave up.
    pub status: FenceStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// Per resource kind: (confirmed, outstanding).
    pub by_kind: BTreeMap<String, (usize, usize)>,
    /// Last site-level error.
    pub last_error: Option<String>,
}

/// Where a run is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStatus {
    pub run_id: String,
    pub kind: String,
    pub direction: String,
    pub plan: String,
    pub trigger: String,
    /// Step Functions' status of the execution (`RUNNING`, `SUCCEEDED`, ...).
    pub execution_status: String,
    /// The state it is in (or ended in).
    pub current_state: Option<String>,
    /// Whether this run holds the plan's lock now.
    pub holds_lock: bool,
    pub approvals: Vec<ApprovalView>,
    pub fence: Vec<FenceView>,
    /// Data fence: confirmed at, per bucket confirmed.
    pub data_fence: Option<serde_json::Value>,
    /// Operator override of the activation gate.
    pub gate_override: Option<serde_json::Value>,
    /// The fence watch, when the fence outlived the run.
    pub fence_watch: Option<serde_json::Value>,
    /// What Step Functions says of the watch's current execution (the last of its chain of
    /// continue-as-new generations).
    pub fence_watch_execution: Option<String>,
    /// Paused for a human after a failed step.
    pub intervention: Option<serde_json::Value>,
    /// Step records so far (name, ok, when).
    pub steps: Vec<StepRecord>,
    /// The report's headline when the run finished: outcome, RTO, RPO, validation, DNS.
    pub result: Option<serde_json::Value>,
    /// The continuous readiness evaluation: the latest and the last 7 days.
    pub readiness: lifeboat_core::readiness::ReadinessTrend,
}

/// Days of readiness history `status` and `trend` read.
pub const READINESS_DAYS: i64 = 7;

/// The plan's readiness evaluations of the last `days`, oldest first.
pub async fn readiness_history(
    ledger: &lifeboat_core::ledger::Ledger,
    plan: &str,
    days: i64,
) -> Result<Vec<lifeboat_core::readiness::Evaluation>> {
    use lifeboat_core::readiness;
    let since = keys::readiness_history(plan, Utc::now() - chrono::Duration::days(days));
    let keys = ledger
        .list_after(&keys::readiness_history_prefix(plan), Some(&since))
        .await?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        // An unreadable entry is skipped, not fatal: the others still tell the trend.
        if let Ok(Some(e)) = ledger.get::<readiness::Evaluation>(&key).await {
            out.push(e.value);
        }
    }
    Ok(out)
}

/// The readiness trend of a stack's plan: the latest evaluation and the recent list (two
/// reads, whatever the history holds).
pub async fn readiness(stack: &Stack) -> Result<lifeboat_core::readiness::ReadinessTrend> {
    use lifeboat_core::readiness;
    let plan = stack.plan().await?;
    let ledger = &stack.deps.ledger;
    let latest = ledger
        .get::<readiness::Evaluation>(&keys::readiness_latest(&plan.name))
        .await?
        .map(|v| v.value);
    let recent = ledger
        .get::<Vec<readiness::Recent>>(&keys::readiness_recent(&plan.name))
        .await?
        .map(|v| v.value)
        .unwrap_or_default();
    Ok(readiness::trend(&recent, latest))
}

fn fence_view(r: &FenceRecord) -> FenceView {
    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for res in r.resources.values() {
        let e = by_kind
            .entry(format!("{:?}", res.kind).to_lowercase())
            .or_default();
        if res.confirmed {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    FenceView {
        site: r.site,
        status: r.status,
        attempts: r.attempts,
        by_kind,
        last_error: r.last_error.clone(),
    }
}

/// The run `status` shows when none is named: the lock holder, else the latest run.
async fn current_or_last(stack: &Stack, plan: &Plan) -> Result<RunId> {
    if let Some(lock) = stack
        .deps
        .ledger
        .get::<Lock>(&keys::lock(&plan.name))
        .await?
    {
        return Ok(RunId(lock.value.run_id));
    }
    let mut latest: Option<(DateTime<Utc>, String)> = None;
    for run in stack.deps.ledger.list_prefixes("runs/").await? {
        let Some(id) = run.strip_prefix("runs/").and_then(|r| r.strip_suffix('/')) else {
            continue;
        };
        let key = format!("{run}run.json");
        if let Some(doc) = stack.deps.ledger.get::<serde_json::Value>(&key).await? {
            let at = doc
                .value
                .get("started_at")
                .or_else(|| doc.value.get("finished_at"))
                .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok())
                .unwrap_or_default();
            if latest.as_ref().is_none_or(|(t, _)| at > *t) {
                latest = Some((at, id.to_string()));
            }
        }
    }
    match latest {
        Some((_, id)) => Ok(RunId(id)),
        None => refuse("no run is recorded in this stack's ledger yet"),
    }
}

/// Gathers where a run (or the current/last one) is, from Step Functions and the ledger.
pub async fn status(stack: &Stack, run: Option<&str>) -> Result<RunStatus> {
    let plan = stack.plan().await?;
    let run_id = match run {
        Some(r) => RunId::parse(r).map_err(|e| Refused(format!("run id `{r}`: {e}")))?,
        None => current_or_last(stack, &plan).await?,
    };
    let ledger = &stack.deps.ledger;
    let record = keys::run_record(&run_id);
    let Some(doc) = ledger.get::<serde_json::Value>(&record).await? else {
        return refuse(format!(
            "no run `{run_id}` in this stack's ledger; `lifeboat status` shows the current or last one"
        ));
    };
    let ctx: RunContext = serde_json::from_value(doc.value["run"].clone())
        .with_context(|| format!("{record} is not a run record"))?;
    let machine = match ctx.direction {
        Direction::Failover if ctx.kind == RunKind::Readiness => {
            &stack.outputs.readiness_state_machine_arn
        }
        Direction::Failover => &stack.outputs.failover_state_machine_arn,
        Direction::Failback => &stack.outputs.failback_state_machine_arn,
    };
    let arn = execution_arn(machine, &run_id.0);
    let sfn = &stack.deps.aws.sfn;
    let (execution_status, current_state) =
        match sfn.describe_execution().execution_arn(&arn).send().await {
            Ok(d) => {
                // The latest state entered (moto ignores `reverseOrder`: read it all, take
                // the last).
                let events: Vec<_> = sfn
                    .get_execution_history()
                    .execution_arn(&arn)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Vec<_>>()
                    .await;
                let state = events
                    .into_iter()
                    .filter_map(Result::ok)
                    .rev()
                    .find_map(|e| {
                        e.state_entered_event_details()
                            .map(|d| d.name().to_string())
                    });
                (d.status().as_str().to_string(), state)
            }
            Err(e) => (
                format!("unknown ({})", lifeboat_core::aws::sdk_error_message(&e)),
                None,
            ),
        };
    let mut approvals = Vec::new();
    for stage in [ApprovalStage::Failover, ApprovalStage::RpoBreach] {
        if let Some(r) = ledger
            .get::<ApprovalRecord>(&approval_key(&run_id, stage))
            .await?
        {
            let r = r.value;
            let state = match &r.decision {
                Some(d) => match d.decision {
                    lifeboat_core::approval::Decision::Approve => "approved",
                    lifeboat_core::approval::Decision::Reject => "rejected",
                },
                None if Utc::now() > r.expires_at => "expired",
                None => "pending",
            };
            approvals.push(ApprovalView {
                stage,
                state: state.into(),
                approvals: r.approvals.len(),
                required: r.required_approvals.max(1),
                decided_by: r.decision.as_ref().map(|d| d.approver.clone()),
                expires_at: r.expires_at,
            });
        }
    }
    let mut fences = Vec::new();
    for site in [SiteRole::Primary, SiteRole::Dr] {
        if let Some(r) = ledger
            .get::<FenceRecord>(&keys::fence(&run_id, site))
            .await?
        {
            fences.push(fence_view(&r.value));
        }
    }
    let raw = |key: String| async move {
        ledger
            .get::<serde_json::Value>(&key)
            .await
            .map(|v| v.map(|v| v.value))
    };
    let fence_watch = raw(keys::fence_watch(&run_id)).await?;
    let mut intervention = raw(keys::intervention(&run_id)).await?;
    if let Some(i) = intervention.as_mut().and_then(|v| v.as_object_mut()) {
        i.remove("task_token");
    }
    let mut steps = Vec::new();
    for key in ledger.list(&keys::steps_prefix(&run_id)).await? {
        if let Some(s) = ledger.get::<StepRecord>(&key).await? {
            let mut s = s.value;
            s.summary = lifeboat_core::identity::bounded(&s.summary, 200);
            steps.push(s);
        }
    }
    steps.sort_by_key(|s| s.ended_at);
    let result = ledger
        .get::<Report>(&keys::report(&run_id, ReportFormat::Json))
        .await?
        .map(|r| {
            let r = r.value;
            serde_json::json!({
                "outcome": r.outcome,
                "rto": r.rto,
                "rpo_worst_seconds": r.rpo.as_ref().and_then(|p| p.worst_rpo_seconds),
                "validation_passed": r.validation.as_ref().map(|v| v.passed),
                "dns": r.dns,
                "verdict": r.verdict,
            })
        });
    let holds_lock = ledger
        .get::<Lock>(&keys::lock(&plan.name))
        .await?
        .is_some_and(|l| l.value.run_id == run_id.0);
    Ok(RunStatus {
        run_id: run_id.0.clone(),
        kind: ctx.kind.as_str().to_string(),
        direction: format!("{:?}", ctx.direction).to_lowercase(),
        plan: ctx.plan.name.clone(),
        trigger: ctx.trigger.summary.clone(),
        execution_status,
        current_state,
        holds_lock,
        approvals,
        fence: fences,
        data_fence: raw(keys::data_fence(&run_id)).await?,
        gate_override: raw(keys::gate_override(&run_id)).await?,
        fence_watch_execution: match &fence_watch {
            Some(w) => match w["execution_arn"].as_str() {
                Some(arn) => Some(
                    match sfn.describe_execution().execution_arn(arn).send().await {
                        Ok(d) => format!("{arn}: {}", d.status().as_str()),
                        Err(e) => format!("{arn}: {}", lifeboat_core::aws::sdk_error_message(&e)),
                    },
                ),
                None => None,
            },
            None => None,
        },
        fence_watch,
        intervention,
        steps,
        result,
        // The run's status does not depend on the readiness records.
        readiness: readiness(stack).await.unwrap_or_default(),
    })
}

/// `status` for a terminal.
pub fn render_status(s: &RunStatus) -> String {
    let mut out = lifeboat_core::readiness::render(&s.readiness, Utc::now());
    out += &format!(
        "run {} — {} {} of plan {}\n  trigger: {}\n  execution: {}{}{}\n",
        s.run_id,
        s.kind,
        s.direction,
        s.plan,
        s.trigger,
        s.execution_status,
        s.current_state
            .as_deref()
            .map(|c| format!(" (state {c})"))
            .unwrap_or_default(),
        if s.holds_lock { "; holds the lock" } else { "" }
    );
    for a in &s.approvals {
        out.push_str(&format!(
            "  approval {:?}: {} ({} of {}{})\n",
            a.stage,
            a.state,
            a.approvals,
            a.required,
            a.decided_by
                .as_deref()
                .map(|d| format!("; decided by {d}"))
                .unwrap_or_default()
        ));
    }
    for f in &s.fence {
        let kinds: Vec<String> = f
            .by_kind
            .iter()
            .map(|(k, (c, o))| format!("{k} {c} confirmed/{o} outstanding"))
            .collect();
        out.push_str(&format!(
            "  fence {:?}: {:?} after {} attempt(s): {}{}\n",
            f.site,
            f.status,
            f.attempts,
            if kinds.is_empty() {
                "nothing active".to_string()
            } else {
                kinds.join(", ")
            },
            f.last_error
                .as_deref()
                .map(|e| format!(" — last error: {e}"))
                .unwrap_or_default()
        ));
    }
    if let Some(d) = &s.data_fence {
        out.push_str(&format!(
            "  data fence: {}\n",
            match d.get("confirmed_at").and_then(|v| v.as_str()) {
                Some(at) => format!("confirmed {at}"),
                None => "set, not yet confirmed".into(),
            }
        ));
    }
    if let Some(g) = &s.gate_override {
        out.push_str(&format!(
            "  activation gate opened by {} ({})\n",
            g["who"].as_str().unwrap_or("?"),
            g["reason"].as_str().unwrap_or("")
        ));
    }
    if let Some(w) = &s.fence_watch {
        out.push_str(&format!(
            "  fence watch: {}, generation {} ({} sweeps); current execution {}\n",
            match (w["confirmed_at"].as_str(), &w["stopped"]) {
                (Some(at), _) => format!("old site confirmed fenced at {at}"),
                (None, serde_json::Value::Array(s)) => {
                    format!(
                        "stopped: {}",
                        s.get(1).and_then(|v| v.as_str()).unwrap_or("?")
                    )
                }
                _ => "watching (the old site is not confirmed fenced yet)".into(),
            },
            w["generation"].as_u64().unwrap_or(0),
            w["attempts"].as_u64().unwrap_or(0),
            s.fence_watch_execution.as_deref().unwrap_or("unknown"),
        ));
    }
    if let Some(i) = &s.intervention {
        out.push_str(&format!(
            "  paused after {}: decide with `lifeboat intervene --run {} --action retry|continue|abort`\n",
            i["failed_state"].as_str().unwrap_or("?"),
            s.run_id
        ));
    }
    for st in &s.steps {
        out.push_str(&format!(
            "  step {} {} at {}\n",
            st.step,
            if st.ok { "ok" } else { "FAILED" },
            st.ended_at.format("%H:%M:%S")
        ));
    }
    if let Some(r) = &s.result {
        out.push_str(&format!("  result: {r}\n"));
    }
    out
}

/// Releases the plan's lock (see [`run_ledger::unlock`]) as the caller.
pub async fn unlock(stack: &Stack, force: bool, reason: Option<&str>) -> Result<String> {
    let plan = stack.plan().await?;
    let who = stack.caller().await?;
    match run_ledger::unlock(&stack.deps, &plan.name, &who, force, reason).await {
        Ok(run_ledger::Unlocked::NotLocked) => Ok(format!("plan {} is not locked", plan.name)),
        Ok(run_ledger::Unlocked::Released {
            holder,
            holder_status,
        }) => Ok(format!(
            "lock of plan {} released (held by {holder}: {holder_status}); audited as {who}",
            plan.name
        )),
        Err(
            e @ (run_ledger::UnlockError::HolderRunning { .. } | run_ledger::UnlockError::NoReason),
        ) => refuse(e.to_string()),
        Err(e) => bail!(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_run_ids_are_stable_per_minute_person_and_reason() {
        let t = DateTime::parse_from_rfc3339("2026-11-30T12:00:10Z")
            .unwrap()
            .with_timezone(&Utc);
        let later = t + chrono::Duration::seconds(30);
        let next = t + chrono::Duration::seconds(60);
        let a = operator_run_id(Direction::Failover, "arn:a", "outage", t);
        assert_eq!(
            a,
            operator_run_id(Direction::Failover, "arn:a", "outage", later)
        );
        assert_ne!(
            a,
            operator_run_id(Direction::Failover, "arn:a", "outage", next)
        );
        assert_ne!(
            a,
            operator_run_id(Direction::Failover, "arn:b", "outage", t)
        );
        assert_ne!(
            a,
            operator_run_id(Direction::Failback, "arn:a", "outage", t)
        );
        assert!(RunId::parse(&a.0).is_ok(), "{a}");
    }

    #[test]
    fn execution_arns_follow_the_machine() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-west-2:1:stateMachine:lifeboat-failover",
                "r1"
            ),
            "arn:aws:states:us-west-2:1:execution:lifeboat-failover:r1"
        );
    }
}

/// What a failover (or failback) would do now, computed with reads only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preview {
    /// `failover` or `failback`.
    pub kind: String,
    /// The site that would be fenced, and the one activated.
    pub source: SiteRole,
    pub target: SiteRole,
    /// Whether the source answered; why not.
    pub source_reachable: bool,
    pub source_error: Option<String>,
    /// Fence writes per rate-limit family, riskiest family first: (family, writes).
    pub fence: Vec<(String, usize)>,
    /// Resources the plan excludes from the fence.
    pub excluded: usize,
    /// What the data fence would set.
    pub data_fence: Vec<String>,
    /// RPO now, per bucket.
    pub rpo: Option<lifeboat_core::replication::ReplicationOutput>,
    /// Drift between the sites: missing at the target, differing, blocking.
    pub drift_missing: Vec<String>,
    pub drift_differing: Vec<String>,
    pub drift_blocking: Vec<String>,
    /// Activations the target cannot take over (left behind if approved).
    pub left_behind: Vec<String>,
    /// What the plan starts at the target.
    pub to_start: Vec<String>,
    /// DNS and client parameter changes: (what, now, after).
    pub switch: Vec<(String, String, String)>,
    /// Estimated fence time from the rate-limit model (the slowest family's writes at its
    /// limit; families proceed concurrently), and that family.
    pub fence_estimate_seconds: f64,
    pub fence_bound_family: Option<String>,
    /// Estimated RTO from approval: the fence bound (the slowest family's writes plus two job
    /// listings at the jobs-read limit) — activation is gated on the fence and pipelines with
    /// it; the large-fixture benchmark measured RTO at 1.06x this bound (BENCHMARKS.md).
    pub rto_estimate_seconds: f64,
}

/// Computes the preview: every call is a read (Databricks GET/list calls, S3 GetObject and
/// GetBucketReplication, Route 53 and SSM reads); nothing is written anywhere.
pub async fn preview(stack: &Stack, direction: Direction) -> Result<Preview> {
    use lifeboat_core::steps::dr_config_check;
    let plan = stack.plan().await?;
    let deps = &stack.deps;
    let (source, target) = direction.roles();
    let (source_site, target_site) = plan.sites_for(direction);
    let trigger = Trigger {
        source: TriggerSource::Operator,
        summary: "preview (no writes)".into(),
        declared_at: Utc::now(),
        event_arn: None,
        incident_started_at: None,
    };
    let run = run_context(&plan, RunKind::Readiness, direction, trigger, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    let source_client = deps
        .workspaces
        .client(source_site)
        .await
        .map(|c| c.with_deadline(deadline));
    let target_client = deps
        .workspaces
        .client(target_site)
        .await
        .map(|c| c.with_deadline(deadline));
    let mut out = Preview {
        kind: format!("{direction:?}").to_lowercase(),
        source,
        target,
        source_reachable: false,
        source_error: None,
        fence: Vec::new(),
        excluded: 0,
        data_fence: Vec::new(),
        rpo: lifeboat_core::replication::measure(deps, &run).await.ok(),
        drift_missing: Vec::new(),
        drift_differing: Vec::new(),
        drift_blocking: Vec::new(),
        left_behind: Vec::new(),
        to_start: Vec::new(),
        switch: Vec::new(),
        fence_estimate_seconds: 0.0,
        fence_bound_family: None,
        rto_estimate_seconds: 0.0,
    };
    let mut source_snapshot = None;
    match &source_client {
        Ok(client) => match fence::inventory(client, &plan).await {
            Ok(inventory) => {
                out.source_reachable = true;
                let mut record = FenceRecord::new(source);
                let (planned, excluded) =
                    fence::plan_fence(&plan, &inventory, &mut record, Utc::now());
                out.excluded = excluded;
                let mut per: Vec<(lifeboat_core::databricks::limiter::Family, usize)> = Vec::new();
                for p in &planned {
                    let f = p.action.family();
                    match per.iter_mut().find(|(g, _)| *g == f) {
                        Some((_, n)) => *n += 1,
                        None => per.push((f, 1)),
                    }
                }
                for (family, n) in &per {
                    let secs = *n as f64 / deps.workspaces.rate_limits.rate(*family);
                    if secs > out.fence_estimate_seconds {
                        out.fence_estimate_seconds = secs;
                        out.fence_bound_family = Some(family.name().to_string());
                    }
                }
                out.fence = per
                    .into_iter()
                    .map(|(f, n)| (f.name().to_string(), n))
                    .collect();
                // jobs/list pages of 100, read twice (inventory, read-back) at the jobs-read
                // limit.
                let pages = inventory.jobs.len().div_ceil(100).max(1) as f64;
                let listing = 2.0 * pages
                    / deps
                        .workspaces
                        .rate_limits
                        .rate(lifeboat_core::databricks::limiter::Family::JobsRead);
                out.rto_estimate_seconds = out.fence_estimate_seconds + listing;
                source_snapshot = dr_config_check::snapshot(client, &plan).await.ok();
            }
            Err(e) => out.source_error = Some(e.to_string()),
        },
        Err(e) => out.source_error = Some(e.to_string()),
    }
    if let (Ok(client), Some(src)) = (&target_client, &source_snapshot) {
        if let Ok(tgt) = dr_config_check::snapshot(client, &plan).await {
            let (items, plan_blocking) =
                lifeboat_core::drift::sites::compare(&plan, direction, Some(src), &tgt);
            let (missing, differing, blocking, _) =
                dr_config_check::summarize(&items, plan_blocking);
            out.drift_missing = missing;
            out.drift_differing = differing;
            out.drift_blocking = blocking;
            out.left_behind = dr_config_check::left_behind(src, &tgt);
        }
    }
    for b in &plan.replication.buckets {
        out.data_fence.push(match direction {
            Direction::Failover => format!(
                "deny s3:ReplicateObject/ReplicateDelete/ReplicateTags into {} (bucket policy Sid {}); disable {}'s replication rules towards it",
                b.replica,
                lifeboat_core::steps::data_fence::FENCE_SID,
                b.source
            ),
            Direction::Failback => format!(
                "lift the deny on {} and re-enable the rules the failover disabled",
                b.replica
            ),
        });
    }
    let s = &plan.startup;
    out.to_start = s
        .pools
        .iter()
        .map(|p| format!("pool {} (min_idle {})", p.name, p.min_idle))
        .chain(s.clusters.iter().map(|c| format!("cluster {c}")))
        .chain(s.warehouses.iter().map(|w| format!("warehouse {w}")))
        .chain(s.run_once.iter().map(|j| format!("run once: job {j}")))
        .collect();
    if let Some(dns) = &plan.dns {
        let current = deps
            .aws
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&dns.hosted_zone_id)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.resource_record_sets()
                    .iter()
                    .find(|r| {
                        r.name().trim_end_matches('.') == dns.record_name.trim_end_matches('.')
                    })
                    .and_then(|r| r.resource_records().first().map(|v| v.value().to_string()))
            })
            .unwrap_or_else(|| "(not readable)".into());
        match (&dns.switch, &dns.routing_control) {
            (lifeboat_core::plan::SwitchMode::RoutingControl, Some(rc)) => {
                // The statically stable switch flips the control, not the record.
                let now = match lifeboat_core::switch::serving(&deps.aws, rc, &rc.control_arn).await
                {
                    Ok(Some(s)) => s.control_state().as_str().to_string(),
                    Ok(None) => "(unknown state)".into(),
                    Err(e) => format!("(not readable: {e})"),
                };
                let next = match target {
                    SiteRole::Primary => lifeboat_core::switch::Serving::Primary,
                    SiteRole::Dr => lifeboat_core::switch::Serving::Dr,
                };
                out.switch.push((
                    format!(
                        "routing control of {} ({})",
                        dns.record_name, rc.control_arn
                    ),
                    now,
                    next.control_state().as_str().to_string(),
                ));
            }
            _ => out.switch.push((
                format!("CNAME {}", dns.record_name),
                current,
                target_site.cname_target(),
            )),
        }
        // Resolved at the target exactly as the switch will (warehouses by name).
        let settings = dns.all_client_settings();
        let resolved = match &target_client {
            Ok(c) => lifeboat_core::clients::resolve(Some(c), &settings, target_site)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("the target is not reachable: {e}")),
        };
        for setting in &settings {
            let p = &setting.parameter;
            let now = deps
                .aws
                .ssm
                .get_parameter()
                .name(p)
                .send()
                .await
                .ok()
                .and_then(|o| o.parameter().and_then(|p| p.value().map(str::to_string)))
                .unwrap_or_else(|| "(not readable)".into());
            let next = match &resolved {
                Ok(values) => values
                    .iter()
                    .find(|r| &r.parameter == p)
                    .map(|r| r.value.clone())
                    .unwrap_or_default(),
                Err(e) => format!("(not resolvable: {e})"),
            };
            out.switch.push((format!("SSM {p}"), now, next));
        }
    }
    Ok(out)
}

/// `preview` for a terminal.
pub fn render_preview(p: &Preview) -> String {
    let mut s = format!(
        "PREVIEW of a {} ({:?} -> {:?}); nothing was written.\n",
        p.kind, p.source, p.target
    );
    if p.source_reachable {
        s.push_str("Would fence at the source (writes per rate-limit family, riskiest first):\n");
        for (f, n) in &p.fence {
            s.push_str(&format!("  {f}: {n}\n"));
        }
        if p.fence.is_empty() {
            s.push_str("  nothing active\n");
        }
        s.push_str(&format!(
            "  excluded by the plan: {}\n  estimated fence: {:.1} s at the API's rate limits{}\n  estimated RTO from approval: {:.1} s (the fence bound; activation follows the fence)\n",
            p.excluded,
            p.fence_estimate_seconds,
            p.fence_bound_family
                .as_deref()
                .map(|f| format!(" (bound by {f})"))
                .unwrap_or_default(),
            p.rto_estimate_seconds
        ));
    } else {
        s.push_str(&format!(
            "The source does NOT answer ({}): the fence would keep retrying; the data fence protects the data meanwhile.\n",
            p.source_error.as_deref().unwrap_or("unknown")
        ));
    }
    s.push_str("Data fence:\n");
    for d in &p.data_fence {
        s.push_str(&format!("  {d}\n"));
    }
    match &p.rpo {
        Some(r) => s.push_str(&format!(
            "RPO now: worst {} ({})\n",
            r.worst_rpo_seconds
                .map(|w| format!("{w:.0} s"))
                .unwrap_or_else(|| "unknown".into()),
            if r.acceptable {
                "within objective"
            } else {
                "NOT within objective"
            }
        )),
        None => s.push_str("RPO now: not measurable\n"),
    }
    s.push_str(&format!(
        "Drift: {} missing at the target, {} differing, {} blocking\n",
        p.drift_missing.len(),
        p.drift_differing.len(),
        p.drift_blocking.len()
    ));
    for b in &p.drift_blocking {
        s.push_str(&format!("  BLOCKING: {b}\n"));
    }
    for l in p.left_behind.iter().take(20) {
        s.push_str(&format!("  LEFT BEHIND: {l}\n"));
    }
    s.push_str("Would start at the target:\n");
    for t in &p.to_start {
        s.push_str(&format!("  {t}\n"));
    }
    s.push_str("Would switch:\n");
    for (what, now, after) in &p.switch {
        s.push_str(&format!("  {what}: {now} -> {after}\n"));
    }
    s
}
