//! The activation gate — invariant 1, "never both active". An activation (schedule, trigger,
//! continuous job) may go live at the target only when that same job is confirmed fenced at
//! the source (per-job handoff), or when the whole source is: its API fence confirmed, or — in
//! an outage, when the API cannot be reached — its data fence confirmed and a human has opened
//! the gate with a reason. The override is a ledger record (`runs/<id>/gate-override.json`),
//! created once, with the identity of who opened it; every attempt, accepted or refused, is
//! audited under `runs/<id>/gate-audit/`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{data::DataFenceRecord, FenceStatus};
use crate::ledger::keys;
use crate::{
    kernel::{Deps, StepError},
    ledger::Written,
    run::RunId,
};

/// The gate's verdict for the site as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "gate", content = "reason")]
pub enum Gate {
    /// Everything may be activated.
    Open(String),
    /// Not yet as a whole: the fence is still working (jobs confirmed one by one still go).
    Wait(String),
    /// Not without a human: the fence gave up (jobs confirmed one by one still go).
    Blocked(String),
}

impl Gate {
    /// Whether the whole site may be activated.
    pub fn is_open(&self) -> bool {
        matches!(self, Gate::Open(_))
    }
}

/// An operator's opening of the gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateOverride {
    /// Why, in their words.
    pub reason: String,
    /// Who (a verified identity where the channel has one).
    pub who: String,
    /// How (cli, console, api).
    pub channel: String,
    /// When.
    pub at: DateTime<Utc>,
    /// When the data fence it relies on was confirmed.
    pub data_fence_confirmed_at: DateTime<Utc>,
}

/// Pure: the whole-site gate from the source's fence status and an override, if any.
pub fn may_activate(fence: Option<FenceStatus>, gate_override: Option<&GateOverride>) -> Gate {
    if fence == Some(FenceStatus::Confirmed) {
        return Gate::Open("source confirmed fenced".into());
    }
    if let Some(o) = gate_override {
        return Gate::Open(format!(
            "operator override by {} ({}): {} — data fence confirmed {}",
            o.who,
            o.channel,
            o.reason,
            o.data_fence_confirmed_at.to_rfc3339()
        ));
    }
    match fence {
        Some(FenceStatus::GaveUp) => Gate::Blocked(
            "the source's fence is not confirmed (the fence watch keeps trying); with the data \
             fence confirmed an operator may open the gate: lifeboat override --run <run> --reason <why>"
                .into(),
        ),
        Some(FenceStatus::InProgress) => Gate::Wait("the source's fence is in progress".into()),
        Some(FenceStatus::Confirmed) => unreachable!("handled above"),
        None => Gate::Wait("no fence record yet".into()),
    }
}

/// Why an override is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideRefused {
    /// A blank reason is no reason.
    #[error("an override needs a reason (--reason): it is the audit's answer to \"why\"")]
    BlankReason,
    /// Reasons are for people; a novel is an attack on the audit.
    #[error("the reason is {0} characters; keep it under {MAX_REASON} characters")]
    ReasonTooLong(usize),
    /// Nobody to hold accountable.
    #[error("an override needs the identity of who opens the gate")]
    NoIdentity,
    /// The run set no data fence.
    #[error("run {0} has no data fence: the gate opens without the API fence only when the data fence is confirmed")]
    NoDataFence(String),
    /// The data fence is set but not confirmed on every replica.
    #[error("the data fence of run {run} is not confirmed on: {buckets}")]
    DataFenceUnconfirmed {
        /// Run.
        run: String,
        /// Replica buckets without a confirmed deny.
        buckets: String,
    },
    /// The data fence was lifted (failback or abort).
    #[error("the data fence of run {0} was lifted")]
    DataFenceLifted(String),
}

/// The longest accepted reason.
pub const MAX_REASON: usize = 1000;

/// Pure: may this override be accepted? Returns when the data fence was confirmed.
pub fn check_override(
    run_id: &RunId,
    reason: &str,
    who: &str,
    data_fence: Option<&DataFenceRecord>,
) -> Result<DateTime<Utc>, OverrideRefused> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(OverrideRefused::BlankReason);
    }
    if reason.chars().count() > MAX_REASON {
        return Err(OverrideRefused::ReasonTooLong(reason.chars().count()));
    }
    if who.trim().is_empty() {
        return Err(OverrideRefused::NoIdentity);
    }
    let Some(fence) = data_fence else {
        return Err(OverrideRefused::NoDataFence(run_id.0.clone()));
    };
    if fence.removed_at.is_some() {
        return Err(OverrideRefused::DataFenceLifted(run_id.0.clone()));
    }
    match (fence.confirmed(), fence.confirmed_at) {
        (true, Some(at)) => Ok(at),
        _ => Err(OverrideRefused::DataFenceUnconfirmed {
            run: run_id.0.clone(),
            buckets: fence
                .buckets
                .iter()
                .filter(|b| !b.confirmed)
                .map(|b| b.replica.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Why [`open_gate`] did not open it.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// Refused by the rules above (audited).
    #[error(transparent)]
    Refused(#[from] OverrideRefused),
    /// Somebody opened it already (the first override stands).
    #[error("the gate of run {run} was already opened by {who} at {at}")]
    AlreadyOpen {
        /// Run.
        run: String,
        /// By whom.
        who: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Ledger failure.
    #[error(transparent)]
    Step(#[from] StepError),
}

/// The ledger-level override: checks the rules, records the override once (create-only, so two
/// operators cannot both "open" it with different reasons), and audits every attempt. The
/// activation step reads the record at its next poll.
pub async fn open_gate(
    deps: &Deps,
    run_id: &RunId,
    reason: &str,
    who: &str,
    channel: &str,
) -> Result<GateOverride, OverrideError> {
    let at = Utc::now();
    let data_fence = deps
        .ledger
        .get::<DataFenceRecord>(&keys::data_fence(run_id))
        .await
        .map_err(StepError::from)?
        .map(|v| v.value);
    let checked = check_override(run_id, reason, who, data_fence.as_ref());
    // The audit keeps a bounded copy of what was asked: it is evidence, not a log sink.
    let audit = |accepted: bool, outcome: String| {
        serde_json::json!({
            "at": at,
            "who": who.chars().take(200).collect::<String>(),
            "channel": channel,
            "reason": reason.chars().take(MAX_REASON).collect::<String>(),
            "accepted": accepted,
            "outcome": outcome,
        })
    };
    let confirmed_at = match checked {
        Ok(at) => at,
        Err(refused) => {
            warn!(run = %run_id, %refused, "gate override refused");
            deps.ledger
                .put(
                    &keys::gate_audit(run_id, at),
                    &audit(false, refused.to_string()),
                )
                .await
                .map_err(StepError::from)?;
            return Err(refused.into());
        }
    };
    let record = GateOverride {
        reason: reason.trim().to_string(),
        who: who.trim().to_string(),
        channel: channel.to_string(),
        at,
        data_fence_confirmed_at: confirmed_at,
    };
    let written = deps
        .ledger
        .create(&keys::gate_override(run_id), &record)
        .await
        .map_err(StepError::from)?;
    if written == Written::Conflict {
        let existing = deps
            .ledger
            .get::<GateOverride>(&keys::gate_override(run_id))
            .await
            .map_err(StepError::from)?
            .map(|v| v.value);
        let err = match existing {
            Some(e) => OverrideError::AlreadyOpen {
                run: run_id.0.clone(),
                who: e.who,
                at: e.at,
            },
            None => OverrideError::AlreadyOpen {
                run: run_id.0.clone(),
                who: "unknown".into(),
                at,
            },
        };
        deps.ledger
            .put(
                &keys::gate_audit(run_id, at),
                &audit(false, err.to_string()),
            )
            .await
            .map_err(StepError::from)?;
        return Err(err);
    }
    deps.ledger
        .put(
            &keys::gate_audit(run_id, at),
            &audit(true, "gate opened".into()),
        )
        .await
        .map_err(StepError::from)?;
    info!(run = %run_id, who, "activation gate opened by override");
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fence::data::{BucketFence, SourceRules};

    fn fence(confirmed: bool, removed: bool) -> DataFenceRecord {
        DataFenceRecord {
            set_at: Utc::now(),
            confirmed_at: confirmed.then(Utc::now),
            buckets: vec![BucketFence {
                name: "lake".into(),
                replica: "lake-dr".into(),
                source: "lake".into(),
                prior_policy: None,
                confirmed,
                source_rules: SourceRules::NoneEnabled,
                error: None,
            }],
            removed_at: removed.then(Utc::now),
        }
    }

    #[test]
    fn whole_gate_needs_the_api_fence_or_an_override() {
        let o = GateOverride {
            reason: "primary region down".into(),
            who: "arn:aws:sts::1:assumed-role/oncall/alice".into(),
            channel: "cli".into(),
            at: Utc::now(),
            data_fence_confirmed_at: Utc::now(),
        };
        let table: &[(Option<FenceStatus>, Option<&GateOverride>, &str)] = &[
            (Some(FenceStatus::Confirmed), None, "open"),
            (Some(FenceStatus::InProgress), None, "wait"),
            (None, None, "wait"),
            (Some(FenceStatus::GaveUp), None, "blocked"),
            (Some(FenceStatus::GaveUp), Some(&o), "open"),
            (Some(FenceStatus::InProgress), Some(&o), "open"),
        ];
        for (status, ov, want) in table {
            let got = match may_activate(*status, *ov) {
                Gate::Open(_) => "open",
                Gate::Wait(_) => "wait",
                Gate::Blocked(_) => "blocked",
            };
            assert_eq!(got, *want, "{status:?} {ov:?}");
        }
    }

    #[test]
    fn an_override_needs_a_reason_an_identity_and_a_confirmed_data_fence() {
        let run = RunId("r1".into());
        let ok = fence(true, false);
        let unconfirmed = fence(false, false);
        let lifted = fence(true, true);
        type Case<'a> = (
            &'a str,
            &'a str,
            Option<&'a DataFenceRecord>,
            Result<(), OverrideRefused>,
        );
        let table: &[Case] = &[
            ("region down", "alice", Some(&ok), Ok(())),
            ("   ", "alice", Some(&ok), Err(OverrideRefused::BlankReason)),
            (
                "region down",
                " ",
                Some(&ok),
                Err(OverrideRefused::NoIdentity),
            ),
            (
                "region down",
                "alice",
                None,
                Err(OverrideRefused::NoDataFence("r1".into())),
            ),
            (
                "region down",
                "alice",
                Some(&unconfirmed),
                Err(OverrideRefused::DataFenceUnconfirmed {
                    run: "r1".into(),
                    buckets: "lake-dr".into(),
                }),
            ),
            (
                "region down",
                "alice",
                Some(&lifted),
                Err(OverrideRefused::DataFenceLifted("r1".into())),
            ),
        ];
        for (reason, who, df, want) in table {
            let got = check_override(&run, reason, who, *df).map(|_| ());
            assert_eq!(&got, want, "{reason:?} {who:?}");
        }
        let long = "x".repeat(MAX_REASON + 1);
        assert_eq!(
            check_override(&run, &long, "alice", Some(&ok)).map(|_| ()),
            Err(OverrideRefused::ReasonTooLong(MAX_REASON + 1))
        );
    }
}
