//! `request-approval`: the human in the loop. Gathers the evidence an on-call manager needs
//! (RPO, primary reachability, what will be fenced and started), stores the Step Functions task
//! token in the ledger — never in a message, URL or log — and publishes the request.
//!
//! Decisions (CLI, console helper, and later the e-mail callback) go through [`decide`], which
//! is single-use (conditional write), audited, and calls SendTaskSuccess / SendTaskFailure.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};

use super::{replication_check, Deps, StepError};
use crate::{
    ledger::Written,
    run::{RunContext, RunId},
    secret::Secret,
};

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

/// Input: the state document and the task token (`$$.Task.Token`).
#[derive(Deserialize)]
pub struct ApprovalInput {
    /// The run.
    pub run: RunContext,
    /// The token to resume the execution with.
    pub task_token: Secret,
    /// Which decision.
    #[serde(default)]
    pub stage: ApprovalStage,
    /// The results of the checks run before approval (`$.results`): drift, RPO, data sources
    /// go into the evidence as measured, not measured again.
    #[serde(default)]
    pub results: Option<serde_json::Value>,
    /// Intervention: the state that failed.
    #[serde(default)]
    pub failed_state: Option<String>,
    /// Intervention: the caught error (`{Error, Cause}`).
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

impl std::fmt::Debug for ApprovalInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalInput")
            .field("run", &self.run.run_id)
            .finish_non_exhaustive()
    }
}

/// The evidence shown to the approver.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Evidence {
    /// Worst measured RPO, seconds, and whether every bucket is within objective.
    pub worst_rpo_seconds: Option<f64>,
    /// Whether all RPOs are within objective.
    pub rpo_acceptable: bool,
    /// Whether the site to fence answered.
    pub source_reachable: bool,
    /// Active resources at the site to fence, by kind (when reachable).
    pub to_fence: Vec<(String, usize)>,
    /// What the plan starts at the target.
    pub to_start: Vec<String>,
    /// Configuration drift found by the check before approval (a summary line per kind).
    #[serde(default)]
    pub drift: Vec<String>,
    /// Activations live at the source that the target cannot take over: left behind if
    /// approved, each counted against the run's verdict.
    #[serde(default)]
    pub left_behind: Vec<String>,
    /// Data sources that did not answer (non-critical: a critical one refuses the run).
    #[serde(default)]
    pub data_sources_down: Vec<String>,
}

impl Evidence {
    /// The evidence as (label, value) rows — one rendering for the CLI prompt, the
    /// confirmation page and anything else that shows it.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            (
                "RPO (worst)".to_string(),
                format!(
                    "{} — {}",
                    self.worst_rpo_seconds
                        .map(|s| format!("{s:.0} s"))
                        .unwrap_or_else(|| "unknown".into()),
                    if self.rpo_acceptable {
                        "within objective"
                    } else {
                        "NOT within objective"
                    }
                ),
            ),
            (
                "Site to fence reachable".to_string(),
                if self.source_reachable { "yes" } else { "NO" }.to_string(),
            ),
        ];
        rows.extend(
            self.to_fence
                .iter()
                .map(|(k, n)| ("To fence".to_string(), format!("{n} {k}"))),
        );
        rows.extend(
            self.to_start
                .iter()
                .map(|s| ("To start".to_string(), s.clone())),
        );
        rows.extend(self.drift.iter().map(|d| ("Drift".to_string(), d.clone())));
        let shown = 20;
        rows.extend(
            self.left_behind
                .iter()
                .take(shown)
                .map(|d| ("LEFT BEHIND".to_string(), d.clone())),
        );
        if self.left_behind.len() > shown {
            rows.push((
                "LEFT BEHIND".to_string(),
                format!(
                    "... and {} more (see the dr-config-check record)",
                    self.left_behind.len() - shown
                ),
            ));
        }
        rows.extend(
            self.data_sources_down
                .iter()
                .map(|d| ("Data source down".to_string(), d.clone())),
        );
        rows
    }
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
    pub approver: String,
    pub channel: String,
    pub comment: Option<String>,
    pub decided_at: DateTime<Utc>,
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
    #[serde(default)]
    pub audit: Vec<AuditEntry>,
}

fn one() -> u32 {
    1
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

/// Output (ignored by `waitForTaskToken`, kept for the step record).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRequested {
    pub expires_at: DateTime<Utc>,
    pub evidence: Evidence,
    pub published: bool,
}

fn stage_name(stage: ApprovalStage) -> &'static str {
    match stage {
        ApprovalStage::Failover => "failover",
        ApprovalStage::RpoBreach => "rpo-breach",
        ApprovalStage::Intervention => "intervention",
    }
}

/// Approve/reject links for each approver, signed with the key from Secrets Manager; `None`
/// when the deployment has no callback API.
async fn signed_links(
    deps: &Deps,
    run: &RunContext,
    stage: ApprovalStage,
    expires_at: DateTime<Utc>,
) -> Result<Option<String>, StepError> {
    let (Some(base), Some(secret_id)) = (
        &deps.config.approval_base_url,
        &deps.config.approval_secret_id,
    ) else {
        return Ok(None);
    };
    let key = super::read_secret(&deps.aws.secrets, secret_id).await?;
    let approvers = if run.plan.approval.approvers.is_empty() {
        vec!["on-call".to_string()]
    } else {
        run.plan.approval.approvers.clone()
    };
    let mut text = String::new();
    for approver in approvers {
        text.push_str(&format!("  for {approver}:\n"));
        for decision in [Decision::Approve, Decision::Reject] {
            let params = crate::approval_link::LinkParams {
                run_id: run.run_id.clone(),
                stage,
                decision,
                approver: approver.clone(),
                expires: expires_at.timestamp(),
            };
            text.push_str(&format!(
                "    {}: {}/approval?{}\n",
                decision.as_str(),
                base.trim_end_matches('/'),
                crate::approval_link::query(&key, &params)
            ));
        }
    }
    Ok(Some(text))
}

/// Ledger key of a run's approval record for a stage.
pub fn approval_key(run_id: &RunId, stage: ApprovalStage) -> String {
    match stage {
        ApprovalStage::Failover => format!("runs/{run_id}/approval.json"),
        ApprovalStage::RpoBreach => format!("runs/{run_id}/approval-rpo-breach.json"),
        ApprovalStage::Intervention => crate::intervention::intervention_key(run_id),
    }
}

/// Gathers evidence, stores the token, publishes the request.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(deps: &Deps, input: ApprovalInput) -> Result<ApprovalRequested, StepError> {
    let run = &input.run;
    if input.stage == ApprovalStage::Intervention {
        return request_intervention(deps, &input).await;
    }
    let evidence = gather_evidence(deps, run, input.results.as_ref()).await;
    let requested_at = Utc::now();
    let expires_at =
        requested_at + chrono::Duration::seconds(i64::from(run.plan.approval.timeout_seconds));
    let record = ApprovalRecord {
        run_id: run.run_id.0.clone(),
        task_token: input.task_token.expose().to_string(),
        requested_at,
        expires_at,
        evidence: evidence.clone(),
        decision: None,
        required_approvals: run.plan.approval.required_approvals,
        approvals: Vec::new(),
        audit: Vec::new(),
    };
    deps.ledger
        .put(&approval_key(&run.run_id, input.stage), &record)
        .await?;
    let links = signed_links(deps, run, input.stage, expires_at).await?;
    let mut message = approval_message(run, &evidence, expires_at, links.as_deref());
    let subject = match input.stage {
        ApprovalStage::Failover => format!(
            "[Lifeboat] Approve {} of {}?",
            run.kind.as_str(),
            run.plan.name
        ),
        ApprovalStage::Intervention => unreachable!("handled above"),
        ApprovalStage::RpoBreach => {
            message = format!(
                "SECOND DECISION: the measured RPO is over its objective. Approving activates the \
                 DR site with the data it has: what was written after the replica's last sync is \
                 not there. Answer with --stage rpo-breach.\n\n{message}"
            );
            format!(
                "[Lifeboat] RPO over objective: continue {} of {}?",
                run.kind.as_str(),
                run.plan.name
            )
        }
    };
    let message_copy = format!("Subject: {subject}\n\n{message}");
    let mut published = false;
    if let Some(topic) = &deps.config.topic_arn {
        deps.aws
            .sns
            .publish()
            .topic_arn(topic)
            .subject(&subject)
            .message(&message)
            .message_attributes(
                "kind",
                aws_sdk_sns::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("approval_request")
                    .build()
                    .map_err(|e| StepError::Aws {
                        service: "sns",
                        message: e.to_string(),
                    })?,
            )
            .send()
            .await
            .map_err(|e| StepError::aws("sns", &e))?;
        published = true;
    }
    // What approvers were sent (no token in it): part of the audit trail.
    deps.ledger
        .put_raw(
            &format!(
                "{}/approval-message-{}.txt",
                run.prefix(),
                stage_name(input.stage)
            ),
            message_copy.into_bytes(),
            "text/plain; charset=utf-8",
        )
        .await?;
    info!(published, "approval requested");
    Ok(ApprovalRequested {
        expires_at,
        evidence,
        published,
    })
}

async fn gather_evidence(
    deps: &Deps,
    run: &RunContext,
    results: Option<&serde_json::Value>,
) -> Evidence {
    let (source_role, _) = run.direction.roles();
    let source = run.plan.site(source_role);
    let measured: Option<replication_check::ReplicationOutput> = results
        .and_then(|r| r.get("replication"))
        .and_then(|r| serde_json::from_value(r.clone()).ok());
    let replication = match measured {
        Some(r) => Some(r),
        None => replication_check::measure(deps, run).await.ok(),
    };
    let mut to_fence = Vec::new();
    let mut source_reachable = false;
    if let Ok(client) = deps.workspaces.client(source).await {
        let client = client.with_deadline(Instant::now() + Duration::from_secs(10));
        if let Ok(inventory) = super::shutdown_sweep::inventory(&client, &run.plan).await {
            source_reachable = true;
            to_fence = inventory.counts();
        }
    }
    let s = &run.plan.startup;
    let mut to_start: Vec<String> = s
        .pools
        .iter()
        .map(|p| format!("pool {} (min_idle {})", p.name, p.min_idle))
        .collect();
    to_start.extend(s.clusters.iter().map(|c| format!("cluster {c}")));
    to_start.extend(s.warehouses.iter().map(|w| format!("warehouse {w}")));
    to_start.extend(s.run_once.iter().map(|j| format!("run once: job {j}")));
    let config: Option<super::dr_config_check::ConfigCheckOutput> = results
        .and_then(|r| r.get("config"))
        .and_then(|r| serde_json::from_value(r.clone()).ok());
    let mut drift = Vec::new();
    let mut left_behind = Vec::new();
    if let Some(c) = config {
        drift.push(format!(
            "compared with the source's {} configuration{}: {} missing at the target, {} differing",
            c.compared_with,
            c.source_age_seconds
                .filter(|s| *s > 0)
                .map(|s| format!(" ({s} s old)"))
                .unwrap_or_default(),
            c.missing_at_target.len(),
            c.differing.len()
        ));
        drift.extend(c.blocking.iter().map(|b| format!("BLOCKING: {b}")));
        left_behind = c.left_behind;
    }
    let data_sources_down = results
        .and_then(|r| r.get("data_sources"))
        .and_then(|r| {
            serde_json::from_value::<super::data_sources_check::DataSourcesOutput>(r.clone()).ok()
        })
        .map(|d| {
            d.sources
                .into_iter()
                .filter(|s| !s.reachable)
                .map(|s| format!("{} ({})", s.name, s.detail))
                .collect()
        })
        .unwrap_or_default();
    Evidence {
        worst_rpo_seconds: replication.as_ref().and_then(|r| r.worst_rpo_seconds),
        rpo_acceptable: replication.as_ref().is_some_and(|r| r.acceptable),
        source_reachable,
        to_fence,
        to_start,
        drift,
        left_behind,
        data_sources_down,
    }
}

/// A step failed after the first write: records both sites' state with the token and asks
/// for retry / continue / abort.
async fn request_intervention(
    deps: &Deps,
    input: &ApprovalInput,
) -> Result<ApprovalRequested, StepError> {
    let run = &input.run;
    let failed_state = input
        .failed_state
        .clone()
        .unwrap_or_else(|| "unknown".into());
    let error = input
        .error
        .as_ref()
        .map(|e| {
            format!(
                "{}: {}",
                e.get("Error").and_then(|v| v.as_str()).unwrap_or("Error"),
                e.get("Cause")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .chars()
                    .take(500)
                    .collect::<String>()
            )
        })
        .unwrap_or_else(|| "unknown error".into());
    let mut sites = Vec::new();
    let (source_role, target_role) = run.direction.roles();
    for role in [source_role, target_role] {
        let mut state = crate::intervention::SiteState {
            site: format!("{role:?}").to_lowercase(),
            ..Default::default()
        };
        let fence = deps
            .ledger
            .get::<super::shutdown_sweep::FenceRecord>(&super::shutdown_sweep::fence_key(run, role))
            .await?
            .map(|v| v.value);
        let mut summary = match (&fence, role == source_role) {
            (Some(f), _) => {
                let confirmed = f.resources.values().filter(|r| r.confirmed).count();
                format!(
                    "fence {:?}: {confirmed} of {} resources confirmed fenced",
                    f.status,
                    f.resources.len()
                )
            }
            (None, true) => "no fence record yet".to_string(),
            (None, false) => "target: started by this run as far as the step records show".into(),
        };
        if let Ok(client) = deps.workspaces.client(run.plan.site(role)).await {
            let client = client.with_deadline(Instant::now() + Duration::from_secs(10));
            match super::shutdown_sweep::inventory(&client, &run.plan).await {
                Ok(inv) => state.active = inv.counts(),
                Err(e) => summary.push_str(&format!("; unreachable now ({:?})", e.kind)),
            }
        }
        state.summary = summary;
        sites.push(state);
    }
    let record = crate::intervention::record_request(
        deps,
        run,
        input.task_token.expose(),
        &failed_state,
        error.clone(),
        sites,
    )
    .await?;
    let mut message = format!(
        "Lifeboat PAUSED run {run_id} ({kind} of plan '{plan}'): step {failed_state} failed after \
         the first write to a site.\n\nError: {error}\n\nBoth sites now:\n",
        run_id = run.run_id,
        kind = run.kind.as_str(),
        plan = run.plan.name,
    );
    for s in &record.sites {
        message.push_str(&format!("- {}: {}", s.site, s.summary));
        if !s.active.is_empty() {
            let active: Vec<String> = s.active.iter().map(|(k, n)| format!("{n} {k}")).collect();
            message.push_str(&format!(" — active: {}", active.join(", ")));
        }
        message.push('\n');
    }
    message.push_str(&format!(
        "\nDecide (nothing more happens until someone does):\n\
         - lifeboat intervene --run {id} --action retry     (run {failed_state} again)\n\
         - lifeboat intervene --run {id} --action continue  (accept and go on)\n\
         - lifeboat intervene --run {id} --action abort     (fence the target again, restore the source)\n\
         - Console: send task success with output {{\"action\": \"retry\"}} (or continue / abort)\n",
        id = run.run_id
    ));
    let mut published = false;
    if let Some(topic) = &deps.config.topic_arn {
        deps.aws
            .sns
            .publish()
            .topic_arn(topic)
            .subject(format!(
                "[Lifeboat] PAUSED: {} of {} needs a decision",
                run.kind.as_str(),
                run.plan.name
            ))
            .message(&message)
            .send()
            .await
            .map_err(|e| StepError::aws("sns", &e))?;
        published = true;
    }
    info!(failed_state, "paused for intervention");
    Ok(ApprovalRequested {
        expires_at: record.requested_at
            + chrono::Duration::seconds(i64::from(run.plan.approval.timeout_seconds)),
        evidence: Evidence::default(),
        published,
    })
}

/// The request text: what happened, the evidence, what approval does, how to answer.
pub fn approval_message(
    run: &RunContext,
    e: &Evidence,
    expires_at: DateTime<Utc>,
    links: Option<&str>,
) -> String {
    let (from, to) = run.direction.roles();
    let mut m = format!(
        "Lifeboat asks for a decision: {kind} of plan '{plan}' ({from:?} -> {to:?}).\n\n\
         What happened: {summary} (declared {declared}).\n\n\
         Evidence:\n\
         - RPO: worst {rpo} ({rpo_ok})\n\
         - Site to fence reachable: {reach}\n\
         - To fence: {fence}\n\
         - To start at the target: {start}\n\n\
         On approve: fence {from:?} (pause schedules, stop compute), start {to:?}, activate schedules once {from:?} is fenced, validate, switch DNS/URLs.\n\
         On reject or no answer by {expires}: nothing is touched at either site.\n\n\
         How to answer (run id {run_id}):\n\
         - CLI: lifeboat approve --run {run_id} [--comment ...]  /  lifeboat reject --run {run_id}\n\
         - Console: Step Functions > the execution named {run_id} (the CLI records who decided)\n",
        kind = run.kind.as_str(),
        plan = run.plan.name,
        summary = run.trigger.summary,
        declared = run.trigger.declared_at.to_rfc3339(),
        rpo = e.worst_rpo_seconds.map(|s| format!("{s:.0} s")).unwrap_or_else(|| "unknown".into()),
        rpo_ok = if e.rpo_acceptable { "within objective" } else { "NOT within objective" },
        reach = if e.source_reachable { "yes" } else { "NO (fence will keep retrying)" },
        fence = if e.to_fence.is_empty() {
            "unknown".to_string()
        } else {
            e.to_fence.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
        },
        start = if e.to_start.is_empty() { "nothing declared".to_string() } else { e.to_start.join(", ") },
        expires = expires_at.to_rfc3339(),
        run_id = run.run_id,
    );
    if let Some(links) = links {
        m.push_str("- E-mail link (opens a confirmation page; only its button decides):\n");
        m.push_str(links);
    }
    m
}

/// Why a decision was not taken.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No approval is pending for that run.
    #[error("no approval request is recorded for run {0}")]
    NoRequest(String),
    /// Someone decided already.
    #[error("run {run_id} was already decided: {decision} by {approver}")]
    AlreadyDecided {
        run_id: String,
        decision: String,
        approver: String,
    },
    /// The request expired.
    #[error("the approval request of run {0} expired")]
    Expired(String),
    /// Two-person rule: the same approver cannot count twice.
    #[error("{approver} already approved run {run_id}; a different approver is needed")]
    SameApprover { run_id: String, approver: String },
    /// Ledger or Step Functions failure.
    #[error(transparent)]
    Step(#[from] StepError),
}

/// The result of an accepted vote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vote {
    /// The vote as recorded.
    pub record: DecisionRecord,
    /// Whether it settled the request (a reject, or the last approval needed).
    pub settled: bool,
    /// Distinct approvals so far.
    pub approvals: usize,
    /// Approvals the plan requires.
    pub required: u32,
}

/// Pure: does this vote settle the request, given the approvals so far?
pub fn settles(decision: Decision, approvals_so_far: usize, required: u32) -> bool {
    match decision {
        Decision::Reject => true,
        Decision::Approve => approvals_so_far + 1 >= required.max(1) as usize,
    }
}

/// Records and delivers a vote: audited (accepted or refused), single use per approver
/// (`If-Match` on the approval record), the plan's two-person rule, then SendTaskSuccess /
/// SendTaskFailure (`ApprovalRejected`) when the request is settled.
#[instrument(skip(deps, comment))]
pub async fn decide(
    deps: &Deps,
    run_id: &RunId,
    stage: ApprovalStage,
    decision: Decision,
    approver: &str,
    channel: &str,
    comment: Option<String>,
) -> Result<Vote, DecideError> {
    let key = approval_key(run_id, stage);
    let Some(current) = deps
        .ledger
        .get::<ApprovalRecord>(&key)
        .await
        .map_err(StepError::from)?
    else {
        return Err(DecideError::NoRequest(run_id.0.clone()));
    };
    let mut record = current.value;
    let now = Utc::now();
    let refusal = if let Some(d) = &record.decision {
        Some(DecideError::AlreadyDecided {
            run_id: run_id.0.clone(),
            decision: d.decision.as_str().into(),
            approver: d.approver.clone(),
        })
    } else if now > record.expires_at {
        Some(DecideError::Expired(run_id.0.clone()))
    } else if decision == Decision::Approve
        && record.approvals.iter().any(|a| a.approver == approver)
    {
        Some(DecideError::SameApprover {
            run_id: run_id.0.clone(),
            approver: approver.into(),
        })
    } else {
        None
    };
    if let Some(refusal) = refusal {
        audit_refusal(
            deps,
            &key,
            record,
            current.etag,
            channel,
            approver,
            Some(decision),
            &refusal.to_string(),
        )
        .await;
        return Err(refusal);
    }
    let vote = DecisionRecord {
        decision,
        approver: approver.into(),
        channel: channel.into(),
        comment: comment.clone(),
        decided_at: now,
    };
    let settled = settles(decision, record.approvals.len(), record.required_approvals);
    if decision == Decision::Approve {
        record.approvals.push(vote.clone());
    }
    if settled {
        let approvers: Vec<&str> = match decision {
            Decision::Approve => record
                .approvals
                .iter()
                .map(|a| a.approver.as_str())
                .collect(),
            Decision::Reject => vec![approver],
        };
        record.decision = Some(DecisionRecord {
            approver: approvers.join(" + "),
            ..vote.clone()
        });
    }
    record.audit.push(AuditEntry {
        at: now,
        channel: channel.into(),
        who: approver.into(),
        decision: Some(decision),
        accepted: true,
        reason: if settled {
            "decided".into()
        } else {
            "approval recorded; more approvers needed".into()
        },
    });
    match deps
        .ledger
        .replace(&key, &record, &current.etag)
        .await
        .map_err(StepError::from)?
    {
        Written::Ok(_) => {}
        Written::Conflict => {
            return Err(DecideError::AlreadyDecided {
                run_id: run_id.0.clone(),
                decision: "(concurrent decision)".into(),
                approver: "unknown".into(),
            })
        }
    }
    let result = Vote {
        approvals: record.approvals.len(),
        required: record.required_approvals.max(1),
        settled,
        record: vote,
    };
    if !settled {
        info!(
            approver,
            channel,
            approvals = result.approvals,
            "approval recorded, waiting for more"
        );
        return Ok(result);
    }
    let token = record.task_token.clone();
    let sent = match decision {
        Decision::Approve => deps
            .aws
            .sfn
            .send_task_success()
            .task_token(token)
            .output(
                serde_json::json!({"approved": true, "approvers": record.approvals.iter().map(|a| &a.approver).collect::<Vec<_>>(), "channel": channel, "comment": comment, "decided_at": now})
                    .to_string(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StepError::aws("states", &e)),
        // The error name carries the reason: Step Functions may drop the cause.
        Decision::Reject => deps
            .aws
            .sfn
            .send_task_failure()
            .task_token(token)
            .error("ApprovalRejected")
            .cause(format!("rejected by {approver} via {channel}"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StepError::aws("states", &e)),
    };
    sent?;
    info!(
        decision = decision.as_str(),
        approver, channel, "decision delivered"
    );
    Ok(result)
}

/// Appends a refused attempt to the audit trail (best effort: a race loses only an audit line,
/// never a decision).
#[allow(clippy::too_many_arguments)]
pub async fn audit_refusal(
    deps: &Deps,
    key: &str,
    mut record: ApprovalRecord,
    etag: String,
    channel: &str,
    who: &str,
    decision: Option<Decision>,
    reason: &str,
) {
    record.audit.push(AuditEntry {
        at: Utc::now(),
        channel: channel.into(),
        who: who.into(),
        decision,
        accepted: false,
        reason: reason.into(),
    });
    let _ = deps.ledger.replace(key, &record, &etag).await;
}
