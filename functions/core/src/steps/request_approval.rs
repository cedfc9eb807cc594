//! `request-approval`: the human in the loop. Gathers the evidence an on-call manager needs
//! (RPO, primary reachability, what will be fenced and started), stores the Step Functions task
//! token in the ledger — never in a message, URL or log — and publishes the request.
//!
//! Decisions (CLI, console helper, and later the e-mail callback) go through [`decide`], which
//! is single-use (conditional write), audited, and calls SendTaskSuccess / SendTaskFailure.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument, warn};

use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::{
    identity::{self, Identity},
    ledger::Written,
    run::{RunContext, RunId},
    secret::Secret,
};

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
    /// When the waiting state was entered (`$$.State.EnteredTime`): the request expires when
    /// the task times out, not a Lambda start-up later.
    #[serde(default)]
    pub entered_at: Option<DateTime<Utc>>,
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
    /// RPO per bucket and per Delta table, worst first (one line each).
    #[serde(default)]
    pub rpo: Vec<String>,
}

/// Most RPO lines shown to the approver (the report has them all).
const RPO_LINES_SHOWN: usize = 10;

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
            self.rpo
                .iter()
                .take(RPO_LINES_SHOWN)
                .map(|l| ("RPO".to_string(), l.clone())),
        );
        if self.rpo.len() > RPO_LINES_SHOWN {
            rows.push((
                "RPO".to_string(),
                format!(
                    "... and {} more within the report",
                    self.rpo.len() - RPO_LINES_SHOWN
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

/// Why links were not sent (the request still goes out, answerable by CLI).
fn links_withheld(reason: &str) -> String {
    format!("E-mail approval links are withheld for this request: {reason}. Answer with the CLI.\n")
}

/// Pure: whether approval links may go to the approval topic. Each message carries one
/// approver's links and is routed by the `approver` attribute, so every subscription must be
/// filtered to exactly one approver: an unfiltered subscriber would read every approver's
/// links and could satisfy the two-person rule alone. `subs` are (subscription ARN, its
/// FilterPolicy JSON if any).
pub fn link_delivery_safe(subs: &[(String, Option<String>)]) -> Result<(), String> {
    for (arn, policy) in subs {
        let Some(policy) = policy.as_deref().filter(|p| !p.trim().is_empty()) else {
            return Err(format!(
                "subscription {arn} of the approval topic has no filter policy (it would receive every approver's links)"
            ));
        };
        let doc: serde_json::Value = serde_json::from_str(policy)
            .map_err(|_| format!("subscription {arn} has a filter policy that is not JSON"))?;
        let one = doc.as_object().filter(|o| o.len() == 1).and_then(|o| {
            o.get("approver")
                .and_then(serde_json::Value::as_array)
                .filter(|a| a.len() == 1 && a[0].is_string())
        });
        if one.is_none() {
            return Err(format!(
                "subscription {arn} is not filtered to exactly one approver (filter policy must be {{\"approver\": [\"<address>\"]}})"
            ));
        }
    }
    Ok(())
}

/// The approval topic's subscriptions with their filter policies.
async fn approval_subscriptions(
    deps: &Deps,
    topic: &str,
) -> Result<Vec<(String, Option<String>)>, StepError> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = deps
            .aws
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(|e| StepError::aws("sns", &e))?;
        for sub in page.subscriptions() {
            let Some(arn) = sub.subscription_arn() else {
                continue;
            };
            // Not yet confirmed: receives nothing.
            if !arn.starts_with("arn:") {
                continue;
            }
            let attrs = deps
                .aws
                .sns
                .get_subscription_attributes()
                .subscription_arn(arn)
                .send()
                .await
                .map_err(|e| StepError::aws("sns", &e))?;
            let policy = attrs
                .attributes()
                .and_then(|a| a.get("FilterPolicy"))
                .cloned();
            out.push((arn.to_string(), policy));
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(out);
        }
    }
}

/// One approver's approve/reject links, signed for this deployment.
fn approver_links(
    deps: &Deps,
    keys: &crate::approval_link::SigningKeys,
    base: &str,
    run: &RunContext,
    stage: ApprovalStage,
    approver: &str,
    expires_at: DateTime<Utc>,
) -> String {
    let mut text = String::new();
    for decision in [Decision::Approve, Decision::Reject] {
        let params = crate::approval_link::LinkParams {
            run_id: run.run_id.clone(),
            stage,
            decision,
            approver: approver.to_string(),
            expires: expires_at.timestamp(),
            stack: deps.config.stack_id.clone(),
        };
        text.push_str(&format!(
            "  {}: {}/approval?{}\n",
            decision.as_str(),
            base.trim_end_matches('/'),
            crate::approval_link::query(keys, &params)
        ));
    }
    text
}

/// The e-mail approvers of a plan, normalised (ARN approvers answer by CLI).
fn email_approvers(run: &RunContext) -> Vec<String> {
    if run.plan.approval.approvers.is_empty() {
        return vec![ON_CALL.to_string()];
    }
    let mut out: Vec<String> = run
        .plan
        .approval
        .approvers
        .iter()
        .filter_map(|a| match Identity::parse(a) {
            Ok(Identity::Email(e)) => Some(e),
            _ => None,
        })
        .collect();
    out.dedup();
    out
}

/// A link as kept in the ledger's copy of a message: the signature removed, so reading the
/// ledger does not hand out approvers' links.
pub fn redact_links(message: &str) -> String {
    message
        .lines()
        .map(|l| match l.find("&sig=") {
            Some(i) => format!("{}&sig=(redacted)", &l[..i]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Ledger key of a run's approval record for a stage.
pub fn approval_key(run_id: &RunId, stage: ApprovalStage) -> String {
    match stage {
        ApprovalStage::Failover => keys::approval(run_id),
        ApprovalStage::RpoBreach => keys::approval_rpo_breach(run_id),
        ApprovalStage::Intervention => keys::intervention(run_id),
    }
}

/// Gathers evidence, stores the token, publishes the request: one message per e-mail approver
/// with only their links on the approval topic, and one without links on the broadcast topic.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(deps: &Deps, input: ApprovalInput) -> Result<ApprovalRequested, StepError> {
    let run = &input.run;
    if input.stage == ApprovalStage::Intervention {
        return request_intervention(deps, &input).await;
    }
    let evidence = gather_evidence(deps, run, input.results.as_ref()).await;
    let requested_at = input.entered_at.unwrap_or_else(Utc::now);
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
        eligible: run.plan.approval.approvers.clone(),
        principals: run.plan.approval.principals.clone(),
        delivery: None,
        plan: run.plan.name.clone(),
        kind: run.kind.as_str().to_string(),
        direction: Some(run.direction),
    };
    deps.ledger
        .put(&approval_key(&run.run_id, input.stage), &record)
        .await?;
    let (subject, preface) = match input.stage {
        ApprovalStage::Failover => (
            format!(
                "[Lifeboat] Approve {} of {}?",
                run.kind.as_str(),
                run.plan.name
            ),
            String::new(),
        ),
        ApprovalStage::Intervention => unreachable!("handled above"),
        ApprovalStage::RpoBreach => (
            format!(
                "[Lifeboat] RPO over objective: continue {} of {}?",
                run.kind.as_str(),
                run.plan.name
            ),
            "SECOND DECISION: the measured RPO is over its objective. Approving activates the \
             DR site with the data it has: what was written after the replica's last sync is \
             not there. Answer with --stage rpo-breach.\n\n"
                .to_string(),
        ),
    };
    // Links: only when the deployment has a callback, a usable key and an approval topic whose
    // every subscription reaches exactly one approver.
    let links_allowed = match (
        &deps.config.approval_base_url,
        &deps.config.approval_topic_arn,
    ) {
        (Some(base), Some(topic)) => match deps.signing_keys().await {
            Ok(Some(keys)) => match approval_subscriptions(deps, topic).await {
                Ok(subs) => match link_delivery_safe(&subs) {
                    Ok(()) => Ok(Some((base.clone(), topic.clone(), keys))),
                    Err(why) => Err(why),
                },
                Err(e) => Err(format!(
                    "the approval topic's subscriptions could not be read ({e})"
                )),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(format!("the signing key cannot be used ({e})")),
        },
        _ => Ok(None),
    };
    let mut copies = Vec::new();
    let mut published = false;
    let withheld = match links_allowed {
        Ok(Some((base, topic, keys))) => {
            for approver in email_approvers(run) {
                let links =
                    approver_links(deps, &keys, &base, run, input.stage, &approver, expires_at);
                let message = format!(
                    "{preface}{}",
                    approval_message(run, &evidence, expires_at, Some((&approver, &links)))
                );
                publish(deps, &topic, &subject, &message, Some(&approver)).await?;
                copies.push(format!(
                    "To: {approver}\nSubject: {subject}\n\n{}",
                    redact_links(&message)
                ));
                published = true;
            }
            None
        }
        Ok(None) => None,
        Err(why) => {
            warn!(reason = %why, "approval links withheld");
            Some(why)
        }
    };
    // Everyone (broadcast): the request without any link.
    let mut message = format!(
        "{preface}{}",
        approval_message(run, &evidence, expires_at, None)
    );
    if let Some(why) = &withheld {
        message = format!("{}\n{message}", links_withheld(why));
    }
    if let Some(topic) = &deps.config.topic_arn {
        publish(deps, topic, &subject, &message, None).await?;
        published = true;
    }
    copies.push(format!("To: (broadcast)\nSubject: {subject}\n\n{message}"));
    // What was sent (signatures removed; no token): part of the audit trail.
    deps.ledger
        .put_raw(
            &keys::approval_message(&run.run_id, stage_name(input.stage)),
            copies.join("\n\n----\n\n").into_bytes(),
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

/// Publishes one message; `approver` routes it to that approver's subscription only.
async fn publish(
    deps: &Deps,
    topic: &str,
    subject: &str,
    message: &str,
    approver: Option<&str>,
) -> Result<(), StepError> {
    let attr = |v: &str| {
        aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .map_err(|e| StepError::Aws {
                service: "sns",
                message: e.to_string(),
            })
    };
    let mut req = deps
        .aws
        .sns
        .publish()
        .topic_arn(topic)
        .subject(subject)
        .message(message)
        .message_attributes("kind", attr("approval_request")?);
    if let Some(a) = approver {
        req = req.message_attributes("approver", attr(a)?);
    }
    req.send().await.map_err(|e| StepError::aws("sns", &e))?;
    Ok(())
}

async fn gather_evidence(
    deps: &Deps,
    run: &RunContext,
    results: Option<&serde_json::Value>,
) -> Evidence {
    let (source_role, _) = run.direction.roles();
    let source = run.plan.site(source_role);
    let measured: Option<crate::replication::ReplicationOutput> = results
        .and_then(|r| r.get("replication"))
        .and_then(|r| serde_json::from_value(r.clone()).ok());
    let replication = match measured {
        Some(r) => Some(r),
        None => crate::replication::measure(deps, run).await.ok(),
    };
    let mut to_fence = Vec::new();
    let mut source_reachable = false;
    if let Ok(client) = deps.workspaces.client(source).await {
        let client = client.with_deadline(Instant::now() + Duration::from_secs(10));
        if let Ok(inventory) = crate::fence::inventory(&client, &run.plan).await {
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
    let config: Option<crate::drift::check::ConfigCheckOutput> = results
        .and_then(|r| r.get("config"))
        .and_then(|r| serde_json::from_value(r.clone()).ok());
    let mut drift = Vec::new();
    let mut left_behind = Vec::new();
    if let Some(c) = config {
        let sum = &c.summary;
        let missing = sum.missing.max(c.missing_at_target.len());
        let differing = sum.differing.max(c.differing.len());
        drift.push(format!(
            "compared with the source's {} configuration{}: {missing} missing at the target, {differing} differing fields{}",
            c.compared_with,
            c.source_age_seconds
                .filter(|s| *s > 0)
                .map(|s| format!(" ({s} s old)"))
                .unwrap_or_default(),
            if sum.source_coverage.needed > 0 {
                format!(
                    "; ACLs and pipeline specs known for {}/{} objects at the source, {}/{} at the target",
                    sum.source_coverage.known,
                    sum.source_coverage.needed,
                    sum.target_coverage.known,
                    sum.target_coverage.needed
                )
            } else {
                String::new()
            }
        ));
        if let Some(a) = &c.accepted {
            drift.push(format!("ACCEPTED: {a}"));
        }
        let tag = if c.accepted.is_some() {
            "BLOCKING (accepted)"
        } else {
            "BLOCKING"
        };
        drift.extend(c.blocking.iter().map(|b| format!("{tag}: {b}")));
        drift.extend(
            c.missing_at_target
                .iter()
                .chain(&c.differing)
                .filter(|l| !c.blocking.contains(l))
                .take(10)
                .map(|l| format!("warns: {l}")),
        );
        drift.extend(
            sum.not_compared
                .iter()
                .map(|n| format!("not compared: {n}")),
        );
        if c.summary.left_behind > c.left_behind.len() {
            drift.push(format!(
                "{} activations would be left behind in all (the first {} are listed)",
                c.summary.left_behind,
                c.left_behind.len()
            ));
        }
        left_behind = c.left_behind;
    }
    let data_sources_down = results
        .and_then(|r| r.get("data_sources"))
        .and_then(|r| serde_json::from_value::<crate::sources::DataSourcesOutput>(r.clone()).ok())
        .map(|d| {
            d.sources
                .into_iter()
                .filter(|s| !s.reachable)
                .map(|s| format!("{} ({})", s.name, s.detail))
                .collect()
        })
        .unwrap_or_default();
    let rpo = replication
        .as_ref()
        .map(|r| r.worst_first().iter().map(|row| row.line()).collect())
        .unwrap_or_default();
    Evidence {
        rpo,
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
            .get::<crate::fence::FenceRecord>(&keys::fence(&run.run_id, role))
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
            match crate::fence::inventory(&client, &run.plan).await {
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

/// Untrusted text (a Health event's description, workspace and job names) as it may appear
/// in a message: one line, at most 300 characters, quoted with `| ` and defanged so it cannot
/// pose as a link or an instruction line.
pub fn quoted(text: &str) -> String {
    let one_line = identity::bounded(text, 300);
    // Link-like words lose what makes a mail client linkify them (`hxxps[:]//evil[.]example`);
    // `approve:`/`reject:` cannot open a line anyway (every line starts with `| `).
    let defanged: Vec<String> = one_line
        .split(' ')
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            if lower.contains("://") || lower.contains('/') || lower.starts_with("www.") {
                w.replace("://", "[:]//")
                    .replace('.', "[.]")
                    .replacen("http", "hxxp", 1)
            } else {
                w.to_string()
            }
        })
        .collect();
    format!("| {}", defanged.join(" "))
}

/// The request text. The decision part comes first (the recipient's own links, or how to
/// answer), then the evidence; text Lifeboat did not write (the trigger's description, names
/// from the workspaces) comes last, quoted, after the links.
pub fn approval_message(
    run: &RunContext,
    e: &Evidence,
    expires_at: DateTime<Utc>,
    links: Option<(&str, &str)>,
) -> String {
    let (from, to) = run.direction.roles();
    let mut m = format!(
        "Lifeboat asks for a decision: {kind} of plan '{plan}' ({from:?} -> {to:?}), run {run_id}.\n\
         Expires {expires}; without an answer nothing is touched at either site.\n\n",
        kind = run.kind.as_str(),
        plan = run.plan.name,
        run_id = run.run_id,
        expires = expires_at.to_rfc3339(),
    );
    if let Some((approver, links)) = links {
        m.push_str(&format!(
            "Your links ({approver}; each opens a confirmation page, only its button decides; do not forward):\n{links}\n"
        ));
    }
    m.push_str(&format!(
        "Other ways to answer:\n\
         - CLI: lifeboat approve --run {run_id} [--comment ...]  /  lifeboat reject --run {run_id}\n\
         - Console: Step Functions > the execution named {run_id} (the CLI records who decided)\n\n\
         On approve: fence {from:?} (pause schedules, stop compute), start {to:?}, activate schedules once {from:?} is fenced, validate, switch DNS/URLs.\n\n\
         Evidence measured by Lifeboat:\n\
         - RPO: worst {rpo} ({rpo_ok}){rpo_lines}\n\
         - Site to fence reachable: {reach}\n\
         - To fence: {fence}\n\
         - Declared: {declared}\n",
        run_id = run.run_id,
        rpo = e.worst_rpo_seconds.map(|s| format!("{s:.0} s")).unwrap_or_else(|| "unknown".into()),
        rpo_ok = if e.rpo_acceptable { "within objective" } else { "NOT within objective" },
        rpo_lines = e
            .rpo
            .iter()
            .take(RPO_LINES_SHOWN)
            .map(|l| format!("\n    - {l}"))
            .collect::<String>(),
        reach = if e.source_reachable { "yes" } else { "NO (fence will keep retrying)" },
        fence = if e.to_fence.is_empty() {
            "unknown".to_string()
        } else {
            e.to_fence.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
        },
        declared = run.trigger.declared_at.to_rfc3339(),
    ));
    m.push_str(
        "\nText from outside Lifeboat (the trigger's description and names from the workspaces; \
         quoted, not instructions):\n",
    );
    m.push_str(&format!(
        "{}\n",
        quoted(&format!("what happened: {}", run.trigger.summary))
    ));
    let start = if e.to_start.is_empty() {
        "nothing declared".to_string()
    } else {
        e.to_start.join(", ")
    };
    m.push_str(&format!(
        "{}\n",
        quoted(&format!("to start at the target: {start}"))
    ));
    for (label, value) in e
        .rows()
        .into_iter()
        .filter(|(l, _)| matches!(l.as_str(), "Drift" | "LEFT BEHIND" | "Data source down"))
    {
        m.push_str(&format!("{}\n", quoted(&format!("{label}: {value}"))));
    }
    m
}

/// Longest comment a decision may carry: it travels in the Step Functions task output (256 KiB
/// for the whole state) and in pages and mails.
pub const MAX_COMMENT: usize = 2000;

/// Most refused attempts kept per run and stage: the refusal log is append-only and bounded,
/// so a flood of attempts cannot grow the ledger without limit.
pub const MAX_REFUSALS_LOGGED: usize = 200;

/// A delivery older than this that never finished (the Lambda died between Step Functions and
/// the ledger) may be retried.
const DELIVERY_STALE: chrono::Duration = chrono::Duration::seconds(60);

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
    /// The identity is not one of the plan's approvers (or cannot be an identity at all).
    #[error("{who} is not an approver of run {run_id} ({reason})")]
    NotAnApprover {
        run_id: String,
        who: String,
        reason: String,
    },
    /// The comment is longer than [`MAX_COMMENT`].
    #[error("the comment is {len} characters; at most {max} are accepted — shorten it")]
    CommentTooLong { len: usize, max: usize },
    /// The vote is recorded and settles the request, but Step Functions did not take it: the
    /// same vote may be sent again.
    #[error("the decision on run {run_id} is recorded but was not delivered to Step Functions ({message}); send it again")]
    NotDelivered { run_id: String, message: String },
    /// Ledger failure.
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

/// What to do with a vote (pure: decided from the record, the vote and the clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteStep {
    /// Record it; `settles` says whether Step Functions must then be told.
    Record { settles: bool },
    /// The request is settled but its delivery failed (or died): deliver the settled decision
    /// again — or, for a reject against an undelivered approval, the reject instead.
    Redeliver { supersede: bool },
    /// Refuse, with the reason.
    Refuse(Refusal),
}

/// Why a vote is refused (pure counterpart of [`DecideError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Settled and delivered (or being delivered right now).
    AlreadyDecided,
    /// Past `expires_at`.
    Expired,
    /// This approver's approval is already counted.
    SameApprover,
}

/// Pure: the step a vote by `approver` (already resolved) takes on `record` at `now`.
pub fn next_step(
    record: &ApprovalRecord,
    decision: Decision,
    approver: &str,
    now: DateTime<Utc>,
) -> VoteStep {
    if let Some(settled) = &record.decision {
        let delivery = record.delivery.as_ref();
        let retryable = match delivery.map(|d| d.state) {
            Some(DeliveryState::Failed) => true,
            Some(DeliveryState::Pending) => delivery.is_some_and(|d| now - d.at > DELIVERY_STALE),
            Some(DeliveryState::Delivered) => false,
            // A record settled before delivery was tracked: treat as delivered.
            None => false,
        };
        if !retryable || now > record.expires_at {
            return VoteStep::Refuse(Refusal::AlreadyDecided);
        }
        return match (settled.decision, decision) {
            (a, b) if a == b => VoteStep::Redeliver { supersede: false },
            // A reject may replace an approval Step Functions never received: the safe way.
            (Decision::Approve, Decision::Reject) => VoteStep::Redeliver { supersede: true },
            _ => VoteStep::Refuse(Refusal::AlreadyDecided),
        };
    }
    if now > record.expires_at {
        return VoteStep::Refuse(Refusal::Expired);
    }
    if decision == Decision::Approve && record.approvals.iter().any(|a| a.approver == approver) {
        return VoteStep::Refuse(Refusal::SameApprover);
    }
    VoteStep::Record {
        settles: settles(decision, record.approvals.len(), record.required_approvals),
    }
}

/// Who a raw identity counts as for this request: the plan's approver it resolves to, or why
/// it is none.
pub fn resolve_approver(record: &ApprovalRecord, who: &str) -> Result<String, String> {
    if who == ON_CALL && record.eligible.is_empty() {
        return Ok(ON_CALL.to_string());
    }
    let identity = Identity::parse(who).map_err(|e| format!("the identity {e}"))?;
    identity::resolve(&record.eligible, &record.principals, &identity)
        .ok_or_else(|| "not listed in approval.approvers or approval.principals".to_string())
}

/// Records and delivers a vote. `who` is an identity the caller's channel verified (the signed
/// link's e-mail, the STS caller ARN); it is normalised and resolved against the plan's
/// approvers, so one person is one vote whatever the spelling or channel.
///
/// Order: the vote is written first (conditional on the record's ETag, re-read and retried on
/// conflict, so concurrent genuine votes are all kept), then Step Functions is called, then the
/// delivery is recorded. A failed delivery leaves the settled vote retryable
/// ([`DecideError::NotDelivered`]). Refusals go to a separate bounded log.
#[instrument(skip(deps, comment))]
pub async fn decide(
    deps: &Deps,
    run_id: &RunId,
    stage: ApprovalStage,
    decision: Decision,
    who: &str,
    channel: &str,
    comment: Option<String>,
) -> Result<Vote, DecideError> {
    if let Some(c) = &comment {
        let len = c.chars().count();
        if len > MAX_COMMENT {
            return Err(DecideError::CommentTooLong {
                len,
                max: MAX_COMMENT,
            });
        }
    }
    let key = approval_key(run_id, stage);
    let mut conflicts = 0;
    let (record, vote, settled, supersede_or_redeliver) = loop {
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
        let approver = match resolve_approver(&record, who) {
            Ok(a) => a,
            Err(reason) => {
                let e = DecideError::NotAnApprover {
                    run_id: run_id.0.clone(),
                    who: identity::bounded(who, 128),
                    reason,
                };
                log_refusal(
                    deps,
                    run_id,
                    stage,
                    channel,
                    who,
                    false,
                    Some(decision),
                    &e.to_string(),
                )
                .await;
                return Err(e);
            }
        };
        let vote = DecisionRecord {
            decision,
            approver: approver.clone(),
            channel: channel.into(),
            comment: comment.clone(),
            decided_at: now,
            principal: (approver != who.trim()).then(|| identity::bounded(who, 256)),
        };
        let step = next_step(&record, decision, &approver, now);
        let (settled, redeliver) = match step {
            VoteStep::Refuse(r) => {
                let e = match r {
                    Refusal::AlreadyDecided => {
                        let d = record.decision.as_ref();
                        DecideError::AlreadyDecided {
                            run_id: run_id.0.clone(),
                            decision: d.map(|d| d.decision.as_str()).unwrap_or("?").into(),
                            approver: d.map(|d| d.approver.clone()).unwrap_or_default(),
                        }
                    }
                    Refusal::Expired => DecideError::Expired(run_id.0.clone()),
                    Refusal::SameApprover => DecideError::SameApprover {
                        run_id: run_id.0.clone(),
                        approver,
                    },
                };
                log_refusal(
                    deps,
                    run_id,
                    stage,
                    channel,
                    who,
                    true,
                    Some(decision),
                    &e.to_string(),
                )
                .await;
                return Err(e);
            }
            VoteStep::Record { settles } => {
                if decision == Decision::Approve {
                    record.approvals.push(vote.clone());
                }
                if settles {
                    record.decision = Some(settled_record(&record, &vote));
                }
                (settles, false)
            }
            VoteStep::Redeliver { supersede } => {
                if supersede {
                    record.decision = Some(settled_record(&record, &vote));
                }
                (true, true)
            }
        };
        if settled {
            let attempts = record.delivery.as_ref().map_or(0, |d| d.attempts) + 1;
            record.delivery = Some(Delivery {
                state: DeliveryState::Pending,
                at: now,
                attempts,
                error: None,
            });
        }
        record.audit.push(AuditEntry {
            at: now,
            channel: channel.into(),
            who: approver,
            decision: Some(decision),
            accepted: true,
            reason: match (settled, redeliver) {
                (_, true) => "delivery retried".into(),
                (true, false) => "decided".into(),
                (false, _) => "approval recorded; more approvers needed".into(),
            },
        });
        match deps
            .ledger
            .replace(&key, &record, &current.etag)
            .await
            .map_err(StepError::from)?
        {
            Written::Ok(_) => break (record, vote, settled, redeliver),
            Written::Conflict => {
                // Another vote landed first: read it and apply this one on top.
                conflicts += 1;
                if conflicts > 20 {
                    return Err(DecideError::Step(StepError::InvalidInput(format!(
                        "the approval record of run {run_id} kept changing; try again"
                    ))));
                }
                tokio::time::sleep(std::time::Duration::from_millis(
                    20 * conflicts + rand::random::<u64>() % 50,
                ))
                .await;
            }
        }
    };
    let _ = supersede_or_redeliver;
    let result = Vote {
        approvals: record.approvals.len(),
        required: record.required_approvals.max(1),
        settled,
        record: vote,
    };
    if !settled {
        info!(
            channel,
            approvals = result.approvals,
            "approval recorded, waiting for more"
        );
        return Ok(result);
    }
    let settled_decision = record
        .decision
        .clone()
        .ok_or_else(|| StepError::InvalidInput("settled without a decision".into()))?;
    let sent = deliver(deps, &record, &settled_decision).await;
    let outcome = match &sent {
        Ok(()) => (DeliveryState::Delivered, None),
        Err(e) => (DeliveryState::Failed, Some(identity::bounded(e, 500))),
    };
    record_delivery(deps, &key, outcome.0, outcome.1.clone()).await;
    match sent {
        Ok(()) => {
            info!(
                decision = settled_decision.decision.as_str(),
                channel, "decision delivered"
            );
            // An approval is published once the state machine has verified it; a rejection
            // ends the wait with an error, so it is published here.
            if settled_decision.decision == Decision::Reject {
                crate::events::publish_detail(
                    deps,
                    crate::events::Milestone::ApprovalDecided,
                    serde_json::json!({
                        "run_id": run_id.0, "plan": record.plan, "kind": record.kind,
                        "direction": record.direction, "at": Utc::now(),
                        "stage": stage_name(stage), "decision": "reject",
                        "approvers": [settled_decision.approver], "channel": settled_decision.channel,
                    }),
                )
                .await;
            }
            Ok(result)
        }
        Err(message) => Err(DecideError::NotDelivered {
            run_id: run_id.0.clone(),
            message,
        }),
    }
}

/// The settled decision: for approvals, everyone who approved.
fn settled_record(record: &ApprovalRecord, vote: &DecisionRecord) -> DecisionRecord {
    match vote.decision {
        Decision::Approve => DecisionRecord {
            approver: record
                .approvals
                .iter()
                .map(|a| a.approver.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            ..vote.clone()
        },
        Decision::Reject => vote.clone(),
    }
}

/// SendTaskSuccess (an approval: `{"approved": true, ...}`) or SendTaskFailure
/// (`ApprovalRejected`).
async fn deliver(
    deps: &Deps,
    record: &ApprovalRecord,
    settled: &DecisionRecord,
) -> Result<(), String> {
    let token = record.task_token.clone();
    match settled.decision {
        Decision::Approve => deps
            .aws
            .sfn
            .send_task_success()
            .task_token(token)
            .output(
                serde_json::json!({
                    "approved": true,
                    "approvers": record.approvals.iter().map(|a| &a.approver).collect::<Vec<_>>(),
                    "channel": settled.channel,
                    "comment": settled.comment,
                    "decided_at": settled.decided_at,
                })
                .to_string(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::aws::sdk_error_message(&e)),
        // The error name carries the reason: Step Functions may drop the cause.
        Decision::Reject => deps
            .aws
            .sfn
            .send_task_failure()
            .task_token(token)
            .error("ApprovalRejected")
            .cause(identity::bounded(
                &format!("rejected by {} via {}", settled.approver, settled.channel),
                256,
            ))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::aws::sdk_error_message(&e)),
    }
}

/// Records the delivery's outcome (retried on conflict; a later vote's write is kept).
async fn record_delivery(deps: &Deps, key: &str, state: DeliveryState, error: Option<String>) {
    for attempt in 0..20u64 {
        let Ok(Some(current)) = deps.ledger.get::<ApprovalRecord>(key).await else {
            return;
        };
        let mut record = current.value;
        let attempts = record.delivery.as_ref().map_or(1, |d| d.attempts);
        record.delivery = Some(Delivery {
            state,
            at: Utc::now(),
            attempts,
            error: error.clone(),
        });
        match deps.ledger.replace(key, &record, &current.etag).await {
            Ok(Written::Ok(_)) => return,
            Ok(Written::Conflict) => {
                tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await
            }
            Err(e) => {
                warn!(error = %e, "delivery outcome not recorded");
                return;
            }
        }
    }
}

/// Ledger prefix of a run's refusal log for a stage.
pub fn refusal_prefix(run_id: &RunId, stage: ApprovalStage) -> String {
    keys::approval_refusals_prefix(run_id, stage_name(stage))
}

/// One refused attempt (its own object: appending never contends with votes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefusalEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// CLI, e-mail link, console.
    pub channel: String,
    /// Who the attempt claimed to be (truncated).
    pub who: String,
    /// Whether the channel verified `who` (a signed link, an STS identity).
    pub verified: bool,
    /// The decision attempted.
    pub decision: Option<Decision>,
    /// Why it was refused.
    pub reason: String,
}

/// Appends a refused attempt to the run's refusal log: one small object per attempt, at most
/// [`MAX_REFUSALS_LOGGED`] per run and stage (later ones are only logged). Best effort.
#[allow(clippy::too_many_arguments)]
pub async fn log_refusal(
    deps: &Deps,
    run_id: &RunId,
    stage: ApprovalStage,
    channel: &str,
    who: &str,
    verified: bool,
    decision: Option<Decision>,
    reason: &str,
) {
    let prefix = refusal_prefix(run_id, stage);
    let entry = RefusalEntry {
        at: Utc::now(),
        channel: identity::bounded(channel, 32),
        who: if verified {
            identity::bounded(who, 128)
        } else {
            format!("{} (unverified)", identity::bounded(who, 64))
        },
        verified,
        decision,
        reason: identity::bounded(reason, 300),
    };
    warn!(channel = %entry.channel, who = %entry.who, reason = %entry.reason, "approval attempt refused");
    match deps.ledger.count_up_to(&prefix, MAX_REFUSALS_LOGGED).await {
        Ok(n) if n < MAX_REFUSALS_LOGGED => {}
        Ok(_) => return,
        Err(e) => {
            warn!(error = %e, "refusal log not readable");
            return;
        }
    }
    let key = format!(
        "{prefix}{}-{}.json",
        entry.at.format("%Y%m%dT%H%M%S%.6fZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    if let Err(e) = deps.ledger.put(&key, &entry).await {
        warn!(error = %e, "refusal not recorded");
    }
}

/// The refused attempts logged for a run and stage, oldest first.
pub async fn refusals(
    deps: &Deps,
    run_id: &RunId,
    stage: ApprovalStage,
) -> Result<Vec<RefusalEntry>, StepError> {
    let mut out = Vec::new();
    for key in deps.ledger.list(&refusal_prefix(run_id, stage)).await? {
        if let Some(e) = deps.ledger.get::<RefusalEntry>(&key).await? {
            out.push(e.value);
        }
    }
    Ok(out)
}

/// Input of the `verify` action: the task output the approval wait produced.
#[derive(Debug, Deserialize)]
pub struct VerifyInput {
    /// The run.
    pub run: RunContext,
    /// Which decision.
    #[serde(default)]
    pub stage: ApprovalStage,
    /// The waitForTaskToken output (`$.results.approval`).
    #[serde(default)]
    pub decided: serde_json::Value,
}

/// What the state machine's Choice reads after an approval wait.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VerifiedApproval {
    /// Only `true` continues.
    pub approved: bool,
    /// Who approved (resolved identities, or a self-declared console name marked as such).
    pub approvers: Vec<String>,
    /// Channel of the settling vote.
    pub channel: String,
    /// Comment of the settling vote.
    pub comment: Option<String>,
    /// Whether every approver's identity was verified by Lifeboat (link signature, STS).
    pub verified: bool,
    /// Why, in words (shown in the report when the run stops here).
    pub reason: String,
}

/// Pure: whether the wait's output is an approval the plan accepts. An approval that did not go
/// through [`decide`] (console or API `SendTaskSuccess`) has no verified identity: it counts
/// only when the plan needs one approver, and never satisfies a two-person rule.
pub fn verify_decision(
    record: Option<&ApprovalRecord>,
    decided: &serde_json::Value,
) -> VerifiedApproval {
    let says_approved = decided.get("approved").and_then(serde_json::Value::as_bool) == Some(true);
    let text = |k: &str| {
        decided
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let no = |reason: &str| VerifiedApproval {
        approved: false,
        approvers: Vec::new(),
        channel: text("channel").unwrap_or_else(|| "console/api".into()),
        comment: None,
        verified: false,
        reason: reason.into(),
    };
    if !says_approved {
        return no("the decision was not an explicit approval (\"approved\": true)");
    }
    let Some(record) = record else {
        return no("no approval request is recorded for this run");
    };
    match &record.decision {
        Some(d) if d.decision == Decision::Approve => {
            let mut distinct: Vec<&str> = record.approvals.iter().map(|a| a.approver.as_str()).collect();
            distinct.sort_unstable();
            distinct.dedup();
            if distinct.len() >= record.required_approvals.max(1) as usize {
                VerifiedApproval {
                    approved: true,
                    approvers: distinct.into_iter().map(str::to_string).collect(),
                    channel: d.channel.clone(),
                    comment: d.comment.clone(),
                    verified: true,
                    reason: "approved by the required number of distinct approvers".into(),
                }
            } else {
                no("fewer distinct approvers than the plan requires")
            }
        }
        Some(_) => no("the recorded decision is a rejection"),
        None if record.required_approvals > 1 => no(&format!(
            "approved outside Lifeboat (console/API SendTaskSuccess) while the plan requires {} distinct verified approvers: use `lifeboat approve` or the e-mail links",
            record.required_approvals
        )),
        None => VerifiedApproval {
            approved: true,
            approvers: vec![format!(
                "{} (self-declared; the caller is in CloudTrail's SendTaskSuccess)",
                identity::bounded(&text("approver").unwrap_or_else(|| "unknown".into()), 64)
            )],
            channel: identity::bounded(&text("channel").unwrap_or_else(|| "console/api".into()), 32),
            comment: text("comment").map(|c| identity::bounded(&c, MAX_COMMENT)),
            verified: false,
            reason: "approved outside Lifeboat; one approval is enough under the plan".into(),
        },
    }
}

/// The `verify` action: checks the wait's output against the ledger and records a console
/// approval in the approval record (so the report and the audit show it).
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn verify(deps: &Deps, input: VerifyInput) -> Result<VerifiedApproval, StepError> {
    let key = approval_key(&input.run.run_id, input.stage);
    for attempt in 0..20u64 {
        let current = deps.ledger.get::<ApprovalRecord>(&key).await?;
        let verdict = verify_decision(current.as_ref().map(|c| &c.value), &input.decided);
        let Some(current) = current else {
            return Ok(verdict);
        };
        let mut record = current.value;
        let now = Utc::now();
        let changed = if verdict.approved && record.decision.is_none() {
            // A console approval: record it as such.
            record.decision = Some(DecisionRecord {
                decision: Decision::Approve,
                approver: verdict.approvers.join(" + "),
                channel: verdict.channel.clone(),
                comment: verdict.comment.clone(),
                decided_at: now,
                principal: None,
            });
            true
        } else {
            false
        };
        let delivered = record
            .delivery
            .as_ref()
            .is_some_and(|d| d.state != DeliveryState::Delivered);
        if delivered {
            // The wait ended with this decision: it was delivered, whatever the ledger says.
            if let Some(d) = record.delivery.as_mut() {
                d.state = DeliveryState::Delivered;
                d.error = None;
                d.at = now;
            }
        }
        if !changed && !delivered {
            return Ok(verdict);
        }
        match deps.ledger.replace(&key, &record, &current.etag).await? {
            Written::Ok(_) => return Ok(verdict),
            Written::Conflict => {
                tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await
            }
        }
    }
    Err(StepError::InvalidInput(format!(
        "the approval record {key} kept changing while it was verified"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(required: u32) -> ApprovalRecord {
        let now = Utc::now();
        ApprovalRecord {
            run_id: "r".into(),
            task_token: "t".into(),
            requested_at: now,
            expires_at: now + chrono::Duration::seconds(600),
            evidence: Evidence::default(),
            decision: None,
            required_approvals: required,
            approvals: Vec::new(),
            audit: Vec::new(),
            eligible: vec!["a@x.com".into(), "b@x.com".into()],
            principals: Default::default(),
            delivery: None,
            plan: "p".into(),
            kind: "failover".into(),
            direction: None,
        }
    }

    fn vote(decision: Decision, approver: &str) -> DecisionRecord {
        DecisionRecord {
            decision,
            approver: approver.into(),
            channel: "cli".into(),
            comment: None,
            decided_at: Utc::now(),
            principal: None,
        }
    }

    fn settled(
        mut r: ApprovalRecord,
        d: Decision,
        state: DeliveryState,
        age_s: i64,
    ) -> ApprovalRecord {
        if d == Decision::Approve {
            r.approvals.push(vote(d, "a@x.com"));
        }
        r.decision = Some(vote(d, "a@x.com"));
        r.delivery = Some(Delivery {
            state,
            at: Utc::now() - chrono::Duration::seconds(age_s),
            attempts: 1,
            error: None,
        });
        r
    }

    #[test]
    fn next_step_table() {
        use Decision::*;
        let now = Utc::now();
        let mut one_in = record(2);
        one_in.approvals.push(vote(Approve, "a@x.com"));
        let mut expired = record(1);
        expired.expires_at = now - chrono::Duration::seconds(1);
        let rows: Vec<(&str, ApprovalRecord, Decision, &str, VoteStep)> = vec![
            (
                "first of one",
                record(1),
                Approve,
                "a@x.com",
                VoteStep::Record { settles: true },
            ),
            (
                "first of two",
                record(2),
                Approve,
                "a@x.com",
                VoteStep::Record { settles: false },
            ),
            (
                "second person",
                one_in.clone(),
                Approve,
                "b@x.com",
                VoteStep::Record { settles: true },
            ),
            (
                "same person twice",
                one_in.clone(),
                Approve,
                "a@x.com",
                VoteStep::Refuse(Refusal::SameApprover),
            ),
            (
                "reject after one approval",
                one_in,
                Reject,
                "a@x.com",
                VoteStep::Record { settles: true },
            ),
            (
                "expired",
                expired,
                Approve,
                "a@x.com",
                VoteStep::Refuse(Refusal::Expired),
            ),
            (
                "delivered",
                settled(record(1), Approve, DeliveryState::Delivered, 0),
                Approve,
                "b@x.com",
                VoteStep::Refuse(Refusal::AlreadyDecided),
            ),
            (
                "being delivered",
                settled(record(1), Approve, DeliveryState::Pending, 5),
                Approve,
                "a@x.com",
                VoteStep::Refuse(Refusal::AlreadyDecided),
            ),
            (
                "delivery died",
                settled(record(1), Approve, DeliveryState::Pending, 120),
                Approve,
                "a@x.com",
                VoteStep::Redeliver { supersede: false },
            ),
            (
                "delivery failed: same",
                settled(record(1), Approve, DeliveryState::Failed, 0),
                Approve,
                "b@x.com",
                VoteStep::Redeliver { supersede: false },
            ),
            (
                "delivery failed: reject wins",
                settled(record(1), Approve, DeliveryState::Failed, 0),
                Reject,
                "b@x.com",
                VoteStep::Redeliver { supersede: true },
            ),
            (
                "a reject stands",
                settled(record(1), Reject, DeliveryState::Failed, 0),
                Approve,
                "b@x.com",
                VoteStep::Refuse(Refusal::AlreadyDecided),
            ),
        ];
        for (name, r, d, who, want) in rows {
            assert_eq!(next_step(&r, d, who, now), want, "{name}");
        }
    }

    #[test]
    fn verify_decision_table() {
        let approved = |n: usize| {
            let mut r = record(2);
            for who in ["a@x.com", "b@x.com"].iter().take(n) {
                r.approvals.push(vote(Decision::Approve, who));
            }
            r.decision = Some(vote(Decision::Approve, "a@x.com + b@x.com"));
            r
        };
        let rows: Vec<(&str, Option<ApprovalRecord>, serde_json::Value, bool, bool)> = vec![
            (
                "two verified",
                Some(approved(2)),
                json!({"approved": true}),
                true,
                true,
            ),
            (
                "recorded short of the rule",
                Some(approved(1)),
                json!({"approved": true}),
                false,
                false,
            ),
            (
                "console, two-person rule",
                Some(record(2)),
                json!({"approved": true, "approver": "a@x.com"}),
                false,
                false,
            ),
            (
                "console, one approval",
                Some(record(1)),
                json!({"approved": true, "approver": "a@x.com"}),
                true,
                false,
            ),
            (
                "console reject",
                Some(record(1)),
                json!({"approved": false}),
                false,
                false,
            ),
            (
                "no field",
                Some(record(1)),
                json!({"approver": "a@x.com"}),
                false,
                false,
            ),
            (
                "a string is not true",
                Some(record(1)),
                json!({"approved": "true"}),
                false,
                false,
            ),
            ("no record", None, json!({"approved": true}), false, false),
        ];
        for (name, r, out, approved, verified) in rows {
            let v = verify_decision(r.as_ref(), &out);
            assert_eq!(
                (v.approved, v.verified),
                (approved, verified),
                "{name}: {v:?}"
            );
        }
        let v = verify_decision(
            Some(&record(1)),
            &json!({"approved": true, "approver": "x".repeat(500)}),
        );
        assert!(v.approvers[0].contains("self-declared") && v.approvers[0].len() < 200);
    }

    #[test]
    fn link_delivery_safe_table() {
        let sub = |p: Option<&str>| vec![("arn:s".to_string(), p.map(str::to_string))];
        assert!(link_delivery_safe(&[]).is_ok());
        assert!(link_delivery_safe(&sub(Some(r#"{"approver": ["a@x.com"]}"#))).is_ok());
        for bad in [
            None,
            Some(""),
            Some("not json"),
            Some(r#"{"approver": ["a@x.com", "b@x.com"]}"#),
            Some(r#"{"approver": [{"prefix": "a"}]}"#),
            Some(r#"{"kind": ["approval_request"]}"#),
            Some(r#"{"approver": ["a@x.com"], "kind": ["x"]}"#),
        ] {
            assert!(link_delivery_safe(&sub(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quoted_text_cannot_pose_as_a_link_or_a_line() {
        for (raw, want) in [
            ("plain words", "| plain words"),
            ("a\nb", "| a b"),
            (
                "approve: https://evil.example/x",
                "| approve: hxxps[:]//evil[.]example/x",
            ),
            ("see www.evil.example", "| see www[.]evil[.]example"),
        ] {
            assert_eq!(quoted(raw), want, "{raw}");
        }
        assert!(quoted(&"x".repeat(1000)).chars().count() <= 303);
    }

    #[test]
    fn redacted_copies_hold_no_signature() {
        let m = "  approve: http://h/approval?run=r&kid=k0&sig=abcdef\nother";
        assert_eq!(
            redact_links(m),
            "  approve: http://h/approval?run=r&kid=k0&sig=(redacted)\nother"
        );
    }
}
