//! The vote machine, pure: who a raw identity counts as, whether a vote settles the request,
//! what a vote on a settled or expired request does, and whether the wait's output is an
//! approval the plan accepts. Decided from the record, the vote and the clock only; the I/O is
//! in [`super::decide`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApprovalRecord, Decision, DecisionRecord, DeliveryState, MAX_COMMENT, ON_CALL};
use crate::identity::{self, Identity};

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

/// The settled decision: for approvals, everyone who approved.
pub(crate) fn settled_record(record: &ApprovalRecord, vote: &DecisionRecord) -> DecisionRecord {
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

/// A delivery older than this that never finished (the Lambda died between Step Functions and
/// the ledger) may be retried.
const DELIVERY_STALE: chrono::Duration = chrono::Duration::seconds(60);

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::approval::{evidence::Evidence, Delivery};

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
}
