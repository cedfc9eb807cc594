//! `run-ledger`: the first and last state of every execution. `begin` takes the plan's lock
//! (S3 `If-None-Match: *`: one run at a time) and writes the run record; `finish` decides the
//! outcome, writes the report, records which site is now active and releases the lock — on
//! every path, success or not.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, instrument, warn};

use super::{Deps, StepError};
use crate::{
    ledger::Written,
    plan::{Direction, SiteRole},
    report::{self, Outcome},
    run::{RunContext, RunKind},
};

/// `begin` or `finish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunAction {
    /// Lock and record.
    Begin,
    /// Outcome, report, unlock.
    Finish,
}

/// Input: the state document plus the action.
#[derive(Debug, Clone, Deserialize)]
pub struct RunLedgerInput {
    /// Which action.
    pub action: RunAction,
    /// The run.
    pub run: RunContext,
    /// Step results so far (for `finish`).
    #[serde(default)]
    pub results: Value,
    /// The caught error, if the execution failed (`{Error, Cause}`).
    #[serde(default)]
    pub error: Option<Value>,
}

/// The lock document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lock {
    /// Holder.
    pub run_id: String,
    /// Since when.
    pub acquired_at: DateTime<Utc>,
}

/// Which site serves production, recorded by every completed failover/failback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActiveSite {
    /// The active site.
    pub active: SiteRole,
    /// Since when.
    pub since: DateTime<Utc>,
    /// The run that made it active.
    pub run_id: String,
}

/// Output of `begin` / `finish`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunLedgerOutput {
    /// Whether the approval wait is skipped (pre-approved drill).
    #[serde(default)]
    pub preapproved: bool,
    /// Set by `finish`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Set by `finish`: whether the outcome counts as success.
    #[serde(default)]
    pub succeeded: bool,
    /// Set by `finish`: ledger key of the JSON report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_key: Option<String>,
}

/// Ledger key of a plan's lock.
pub fn lock_key(plan: &str) -> String {
    format!("locks/{plan}.json")
}

/// Ledger key recording the active site of a plan.
pub fn active_site_key(plan: &str) -> String {
    format!("sites/{plan}/active.json")
}

/// Runs the action.
#[instrument(skip_all, fields(run = %input.run.run_id, action = ?input.action))]
pub async fn handle(deps: &Deps, input: RunLedgerInput) -> Result<RunLedgerOutput, StepError> {
    match input.action {
        RunAction::Begin => begin(deps, &input.run).await,
        RunAction::Finish => finish(deps, &input).await,
    }
}

async fn begin(deps: &Deps, run: &RunContext) -> Result<RunLedgerOutput, StepError> {
    if run.direction == Direction::Failback {
        let active = deps
            .ledger
            .get::<ActiveSite>(&active_site_key(&run.plan.name))
            .await?;
        if !matches!(&active, Some(a) if a.value.active == SiteRole::Dr) {
            return Err(StepError::Refused(
                "failback needs a completed failover: the ledger does not show the DR site active"
                    .into(),
            ));
        }
    }
    let key = lock_key(&run.plan.name);
    let lock = Lock {
        run_id: run.run_id.0.clone(),
        acquired_at: Utc::now(),
    };
    if deps.ledger.create(&key, &lock).await? == Written::Conflict {
        let holder = deps.ledger.get::<Lock>(&key).await?;
        match holder {
            Some(h) if h.value.run_id == run.run_id.0 => {
                info!("lock already ours (retried begin)");
            }
            Some(h) => {
                return Err(StepError::LockHeld {
                    plan: run.plan.name.clone(),
                    holder: h.value.run_id,
                })
            }
            None => {
                // Released between our write and our read: try once more.
                if deps.ledger.create(&key, &lock).await? == Written::Conflict {
                    return Err(StepError::LockHeld {
                        plan: run.plan.name.clone(),
                        holder: "unknown".into(),
                    });
                }
            }
        }
    }
    deps.ledger
        .put(
            &format!("{}/run.json", run.prefix()),
            &serde_json::json!({"run": run, "started_at": Utc::now(), "status": "running"}),
        )
        .await?;
    Ok(RunLedgerOutput {
        preapproved: run.preapproved(),
        outcome: None,
        succeeded: false,
        report_key: None,
    })
}

async fn finish(deps: &Deps, input: &RunLedgerInput) -> Result<RunLedgerOutput, StepError> {
    let run = &input.run;
    let built = report::build(deps, run, &input.results, input.error.as_ref()).await?;
    let prefix = run.prefix();
    deps.ledger
        .put(&format!("{prefix}/report.json"), &built.report)
        .await?;
    deps.ledger
        .put_raw(
            &format!("{prefix}/report.md"),
            built.markdown.into_bytes(),
            "text/markdown; charset=utf-8",
        )
        .await?;
    deps.ledger
        .put_raw(
            &format!("{prefix}/report.html"),
            crate::report_html::render_html(&built.report).into_bytes(),
            "text/html; charset=utf-8",
        )
        .await?;
    let outcome = built.report.outcome;
    if let Some(fence) = &built.report.fence {
        crate::metrics::emit("FenceUnconfirmed", fence.remaining as f64, &run.plan.name);
    }
    crate::metrics::emit(
        if outcome.is_success() {
            "RunSucceeded"
        } else {
            "RunNotCompleted"
        },
        1.0,
        &run.plan.name,
    );
    // A full drill really moves the (drill) workload, so its failback needs the record too.
    if outcome.moved_production() && run.kind != RunKind::Readiness {
        let (_, target) = run.direction.roles();
        deps.ledger
            .put(
                &active_site_key(&run.plan.name),
                &ActiveSite {
                    active: target,
                    since: Utc::now(),
                    run_id: run.run_id.0.clone(),
                },
            )
            .await?;
    }
    deps.ledger
        .put(
            &format!("{prefix}/run.json"),
            &serde_json::json!({"run": run, "finished_at": Utc::now(), "status": outcome}),
        )
        .await?;
    release_lock(deps, run).await?;
    Ok(RunLedgerOutput {
        preapproved: run.preapproved(),
        outcome: Some(outcome),
        succeeded: outcome.is_success(),
        report_key: Some(format!("{prefix}/report.json")),
    })
}

/// Deletes the lock if this run holds it.
pub async fn release_lock(deps: &Deps, run: &RunContext) -> Result<(), StepError> {
    let key = lock_key(&run.plan.name);
    match deps.ledger.get::<Lock>(&key).await? {
        Some(l) if l.value.run_id == run.run_id.0 => deps.ledger.delete(&key).await?,
        Some(l) => warn!(holder = %l.value.run_id, "lock held by another run; left in place"),
        None => {}
    }
    Ok(())
}
