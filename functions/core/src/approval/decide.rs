//! A decision, recorded then delivered. Every channel (the CLI, the e-mail link's callback)
//! ends here: the vote is written to the approval record first (conditional, retried on a
//! conflict so concurrent genuine votes are all kept), then Step Functions is told, then the
//! delivery is recorded. Refused attempts go to a separate bounded log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument, warn};

use super::{
    approval_key, stage_name,
    votes::{next_step, resolve_approver, settled_record, Refusal, Vote, VoteStep},
    ApprovalRecord, ApprovalStage, AuditEntry, Decision, DecisionRecord, Delivery, DeliveryState,
    MAX_COMMENT, MAX_REFUSALS_LOGGED,
};
use crate::{
    identity,
    kernel::{Deps, StepError},
    ledger::{keys, Written},
    retry::RetryPolicy,
    run::RunId,
};

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

/// One vote as a channel received it. `who` is an identity the channel verified (the signed
/// link's e-mail, the STS caller ARN); it is normalised and resolved against the plan's
/// approvers, so one person is one vote whatever the spelling or channel.
#[derive(Debug, Clone)]
pub struct Ballot<'a> {
    /// The run decided on.
    pub run_id: &'a RunId,
    /// Which decision.
    pub stage: ApprovalStage,
    /// Approve or reject.
    pub decision: Decision,
    /// The verified identity.
    pub who: &'a str,
    /// `cli`, `email-link`, ...
    pub channel: &'a str,
    /// At most [`MAX_COMMENT`] characters.
    pub comment: Option<String>,
}

impl Ballot<'_> {
    fn attempt(&self) -> Attempt<'_> {
        Attempt {
            run_id: self.run_id,
            stage: self.stage,
            channel: self.channel,
            who: self.who,
            decision: Some(self.decision),
        }
    }
}

/// Records and delivers a vote.
///
/// Order: the vote is written first (conditional on the record's ETag, re-read and retried on
/// conflict, so concurrent genuine votes are all kept), then Step Functions is called, then the
/// delivery is recorded. A failed delivery leaves the settled vote retryable
/// ([`DecideError::NotDelivered`]). Refusals go to a separate bounded log.
#[instrument(skip(deps, ballot), fields(run = %ballot.run_id, channel = ballot.channel))]
pub async fn decide(deps: &Deps, ballot: Ballot<'_>) -> Result<Vote, DecideError> {
    if let Some(c) = &ballot.comment {
        let len = c.chars().count();
        if len > MAX_COMMENT {
            return Err(DecideError::CommentTooLong {
                len,
                max: MAX_COMMENT,
            });
        }
    }
    let (record, vote, settled) = record_vote(deps, &ballot).await?;
    let result = Vote {
        approvals: record.approvals.len(),
        required: record.required_approvals.max(1),
        settled,
        record: vote,
    };
    if !settled {
        info!(
            approvals = result.approvals,
            "approval recorded, waiting for more"
        );
        return Ok(result);
    }
    deliver_settled(deps, &ballot, &record).await?;
    Ok(result)
}

/// Writes the vote into the approval record (conditional on its ETag; on a conflict the record
/// is read again and the vote applied on top). Returns the record as written, the vote, and
/// whether the request is now settled.
async fn record_vote(
    deps: &Deps,
    ballot: &Ballot<'_>,
) -> Result<(ApprovalRecord, DecisionRecord, bool), DecideError> {
    let key = approval_key(ballot.run_id, ballot.stage);
    let retry = RetryPolicy::LEDGER_CONFLICT;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(current) = deps
            .ledger
            .get::<ApprovalRecord>(&key)
            .await
            .map_err(StepError::from)?
        else {
            return Err(DecideError::NoRequest(ballot.run_id.0.clone()));
        };
        let mut record = current.value;
        let now = Utc::now();
        let (vote, settled) = match apply_vote(&mut record, ballot, now) {
            Ok(applied) => applied,
            Err((e, verified)) => {
                log_refusal(deps, &ballot.attempt(), verified, &e.to_string()).await;
                return Err(e);
            }
        };
        match deps
            .ledger
            .replace(&key, &record, &current.etag)
            .await
            .map_err(StepError::from)?
        {
            Written::Ok(_) => return Ok((record, vote, settled)),
            Written::Conflict => {
                // Another vote landed first: read it and apply this one on top.
                if !retry.may_retry(attempt) {
                    return Err(DecideError::Step(StepError::InvalidInput(format!(
                        "the approval record of run {} kept changing; try again",
                        ballot.run_id
                    ))));
                }
                tokio::time::sleep(retry.backoff(attempt)).await;
            }
        }
    }
}

/// Pure: the vote applied to the record at `now` — the vote as recorded and whether it settles
/// the request — or why it is refused (and whether the voter's identity resolved).
fn apply_vote(
    record: &mut ApprovalRecord,
    ballot: &Ballot<'_>,
    now: DateTime<Utc>,
) -> Result<(DecisionRecord, bool), (DecideError, bool)> {
    let run_id = || ballot.run_id.0.clone();
    let approver = resolve_approver(record, ballot.who).map_err(|reason| {
        let e = DecideError::NotAnApprover {
            run_id: run_id(),
            who: identity::bounded(ballot.who, 128),
            reason,
        };
        (e, false)
    })?;
    let vote = DecisionRecord {
        decision: ballot.decision,
        approver: approver.clone(),
        channel: ballot.channel.into(),
        comment: ballot.comment.clone(),
        decided_at: now,
        principal: (approver != ballot.who.trim()).then(|| identity::bounded(ballot.who, 256)),
    };
    let (settled, redeliver) = match next_step(record, ballot.decision, &approver, now) {
        VoteStep::Refuse(r) => {
            let e = match r {
                Refusal::AlreadyDecided => {
                    let d = record.decision.as_ref();
                    DecideError::AlreadyDecided {
                        run_id: run_id(),
                        decision: d.map(|d| d.decision.as_str()).unwrap_or("?").into(),
                        approver: d.map(|d| d.approver.clone()).unwrap_or_default(),
                    }
                }
                Refusal::Expired => DecideError::Expired(run_id()),
                Refusal::SameApprover => DecideError::SameApprover {
                    run_id: run_id(),
                    approver,
                },
            };
            return Err((e, true));
        }
        VoteStep::Record { settles } => {
            if ballot.decision == Decision::Approve {
                record.approvals.push(vote.clone());
            }
            if settles {
                record.decision = Some(settled_record(record, &vote));
            }
            (settles, false)
        }
        VoteStep::Redeliver { supersede } => {
            if supersede {
                record.decision = Some(settled_record(record, &vote));
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
        channel: ballot.channel.into(),
        who: approver,
        decision: Some(ballot.decision),
        accepted: true,
        reason: match (settled, redeliver) {
            (_, true) => "delivery retried".into(),
            (true, false) => "decided".into(),
            (false, _) => "approval recorded; more approvers needed".into(),
        },
    });
    Ok((vote, settled))
}

/// Tells Step Functions the settled decision and records how that went; a rejection is
/// published here (an approval is, once the state machine has verified it).
async fn deliver_settled(
    deps: &Deps,
    ballot: &Ballot<'_>,
    record: &ApprovalRecord,
) -> Result<(), DecideError> {
    let settled = record
        .decision
        .clone()
        .ok_or_else(|| StepError::InvalidInput("settled without a decision".into()))?;
    let sent = deliver(deps, record, &settled).await;
    let (state, error) = match &sent {
        Ok(()) => (DeliveryState::Delivered, None),
        Err(e) => (DeliveryState::Failed, Some(identity::bounded(e, 500))),
    };
    let key = approval_key(ballot.run_id, ballot.stage);
    record_delivery(deps, &key, state, error).await;
    if let Err(message) = sent {
        return Err(DecideError::NotDelivered {
            run_id: ballot.run_id.0.clone(),
            message,
        });
    }
    info!(decision = settled.decision.as_str(), "decision delivered");
    if settled.decision == Decision::Reject {
        // A rejection ends the wait with an error: nothing later would publish it.
        crate::events::publish_detail(
            deps,
            crate::events::Milestone::ApprovalDecided,
            serde_json::json!({
                "run_id": ballot.run_id.0, "plan": record.plan, "kind": record.kind,
                "direction": record.direction, "at": Utc::now(),
                "stage": stage_name(ballot.stage), "decision": "reject",
                "approvers": [settled.approver], "channel": settled.channel,
            }),
        )
        .await;
    }
    Ok(())
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
    let retry = RetryPolicy::LEDGER_CONFLICT;
    for attempt in 1..=retry.max_attempts {
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
            Ok(Written::Conflict) => tokio::time::sleep(retry.backoff(attempt)).await,
            Err(e) => {
                warn!(error = %e, "delivery outcome not recorded");
                return;
            }
        }
    }
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

/// Who tried to decide, and how: a vote, or an attempt refused before it was one (a link that
/// does not verify names no decision the channel can trust).
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// The run named.
    pub run_id: &'a RunId,
    /// The stage named.
    pub stage: ApprovalStage,
    /// `cli`, `email-link`, ...
    pub channel: &'a str,
    /// Who the attempt is from (verified or only claimed: see [`log_refusal`]'s `verified`).
    pub who: &'a str,
    /// The decision attempted.
    pub decision: Option<Decision>,
}

/// Appends a refused attempt to the run's refusal log: one small object per attempt, at most
/// [`MAX_REFUSALS_LOGGED`] per run and stage (later ones are only logged). Best effort.
pub async fn log_refusal(deps: &Deps, attempt: &Attempt<'_>, verified: bool, reason: &str) {
    let prefix = keys::approval_refusals_prefix(attempt.run_id, stage_name(attempt.stage));
    let entry = RefusalEntry {
        at: Utc::now(),
        channel: identity::bounded(attempt.channel, 32),
        who: if verified {
            identity::bounded(attempt.who, 128)
        } else {
            format!("{} (unverified)", identity::bounded(attempt.who, 64))
        },
        verified,
        decision: attempt.decision,
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
    let key = keys::approval_refusal(attempt.run_id, stage_name(attempt.stage), entry.at);
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
    let prefix = keys::approval_refusals_prefix(run_id, stage_name(stage));
    for key in deps.ledger.list(&prefix).await? {
        if let Some(e) = deps.ledger.get::<RefusalEntry>(&key).await? {
            out.push(e.value);
        }
    }
    Ok(out)
}
