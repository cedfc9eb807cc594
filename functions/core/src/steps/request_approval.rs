//! `request-approval`: the human in the loop. Gathers the evidence an on-call manager needs
//! (RPO, primary reachability, what will be fenced and started), stores the Step Functions task
//! token in the ledger — never in a message, URL or log — and publishes the request.
//!
//! A pause for a human after a failed step (`InterveneActivation`, `InterveneStartup`,
//! `Intervene`) asks here too: [`crate::intervention::request`]. Decisions (CLI, console, the
//! e-mail callback) go through [`crate::approval::decide`]; the `verify` action checks the
//! wait's output before the state machine's Choice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument, warn};

use crate::approval::{
    approval_key,
    evidence::{approval_message, gather_evidence, redact_links, Evidence},
    stage_name,
    votes::{verify_decision, VerifiedApproval},
    ApprovalRecord, ApprovalStage, Decision, DecisionRecord, DeliveryState, ON_CALL,
};
use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::{identity::Identity, ledger::Written, run::RunContext, secret::Secret};

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

/// Output (ignored by `waitForTaskToken`, kept for the step record).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRequested {
    pub expires_at: DateTime<Utc>,
    pub evidence: Evidence,
    pub published: bool,
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
    keys: &crate::kernel::signing::SigningKeys,
    base: &str,
    run: &RunContext,
    stage: ApprovalStage,
    approver: &str,
    expires_at: DateTime<Utc>,
) -> String {
    let mut text = String::new();
    for decision in [Decision::Approve, Decision::Reject] {
        let params = crate::approval::link::LinkParams {
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
            crate::approval::link::query(keys, &params)
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

/// Gathers evidence, stores the token, publishes the request: one message per e-mail approver
/// with only their links on the approval topic, and one without links on the broadcast topic.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(deps: &Deps, input: ApprovalInput) -> Result<ApprovalRequested, StepError> {
    let run = &input.run;
    if input.stage == ApprovalStage::Intervention {
        let (record, published) = crate::intervention::request(
            deps,
            run,
            &input.task_token,
            input.failed_state.as_deref(),
            input.error.as_ref(),
        )
        .await?;
        return Ok(ApprovalRequested {
            expires_at: record.requested_at
                + chrono::Duration::seconds(i64::from(run.plan.approval.timeout_seconds)),
            evidence: Evidence::default(),
            published,
        });
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

/// The `verify` action: checks the wait's output against the ledger and records a console
/// approval in the approval record (so the report and the audit show it).
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn verify(deps: &Deps, input: VerifyInput) -> Result<VerifiedApproval, StepError> {
    let key = approval_key(&input.run.run_id, input.stage);
    let retry = crate::retry::RetryPolicy::LEDGER_CONFLICT;
    for attempt in 1..=retry.max_attempts {
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
            Written::Conflict => tokio::time::sleep(retry.backoff(attempt)).await,
        }
    }
    Err(StepError::InvalidInput(format!(
        "the approval record {key} kept changing while it was verified"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
