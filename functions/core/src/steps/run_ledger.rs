//! `run-ledger`: the first and last state of every execution. `begin` takes the plan's lock
//! (S3 `If-None-Match: *`: one run at a time) and writes the run record; `finish` decides the
//! outcome, writes the report, records which site is now active and releases the lock — on
//! every path, success or not.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, instrument, warn};

use crate::fence::watch::{fence_watch_name, FenceWatchRecord, WatchSettings};
use crate::kernel::{Deps, StepError};
use crate::ledger::keys::{self, ReportFormat};
use crate::{
    ledger::Written,
    plan::{Direction, SiteRole},
    report::Outcome,
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
    /// The run's fence loop gave up: start the fence watch (idempotent).
    StartFenceWatch,
    /// The fence watch ended (confirmed, or stopped by a failback): record when.
    FenceWatchDone,
    /// The fence watch started its next generation (`execution`): record it as the current one.
    FenceWatchContinued,
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
    pub results: crate::state::Results,
    /// The caught error, if the execution failed (`{Error, Cause}`).
    #[serde(default)]
    pub error: Option<Value>,
    /// This execution's ARN (`$$.Execution.Id`): recorded in the lock so that a later run can
    /// ask Step Functions whether the holder still runs. For `fence_watch_continued`: the next
    /// generation's execution.
    #[serde(default)]
    pub execution: Option<String>,
    /// `fence_watch_continued`: the next generation's number.
    #[serde(default)]
    pub generation: Option<u32>,
}

/// The lock document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lock {
    /// Holder.
    pub run_id: String,
    /// Since when.
    pub acquired_at: DateTime<Utc>,
    /// The holder's execution ARN; without it a lock is never presumed stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
}

/// What Step Functions says of a lock holder's execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderStatus {
    /// RUNNING (or PENDING_REDRIVE: it may resume and act).
    Running,
    /// Ended (SUCCEEDED, FAILED, TIMED_OUT, ABORTED): the name of the status.
    Ended(String),
    /// Step Functions does not know the execution.
    Unknown,
    /// The lock names no execution, or Step Functions could not be asked.
    Unverifiable(String),
}

/// Pure: may a lock whose holder is in this state be released by the next run? Only when
/// Step Functions itself says the holder ended (or never existed): a throttled or denied
/// `DescribeExecution` keeps the lock — a wrongly kept lock delays a run, a wrongly released
/// one lets two runs act at once.
pub fn lock_is_stale(holder: &HolderStatus) -> bool {
    matches!(holder, HolderStatus::Ended(_) | HolderStatus::Unknown)
}

use crate::run::ActiveSite;

/// Output of `begin` / `finish`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    /// Set by `begin` when another run holds the lock and this one was not an operator's: the
    /// holder's run id; the execution ends there ("already handled"), touching nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_handled: Option<String>,
}

/// Runs the action.
#[instrument(skip_all, fields(run = %input.run.run_id, action = ?input.action))]
pub async fn handle(deps: &Deps, input: RunLedgerInput) -> Result<RunLedgerOutput, StepError> {
    match input.action {
        RunAction::Begin => begin(deps, &input.run, input.execution.as_deref()).await,
        RunAction::Finish => finish(deps, &input).await,
        RunAction::StartFenceWatch => start_fence_watch(deps, &input.run).await,
        RunAction::FenceWatchDone => fence_watch_done(deps, &input).await,
        RunAction::FenceWatchContinued => fence_watch_continued(deps, &input).await,
    }
}

async fn begin(
    deps: &Deps,
    run: &RunContext,
    execution: Option<&str>,
) -> Result<RunLedgerOutput, StepError> {
    if run.direction == Direction::Failback {
        let active = deps
            .ledger
            .get::<ActiveSite>(&keys::active_site(&run.plan.name))
            .await?;
        if !matches!(&active, Some(a) if a.value.active == SiteRole::Dr) {
            return Err(StepError::Refused(
                "failback needs a completed failover: the ledger does not show the DR site active"
                    .into(),
            ));
        }
    }
    match acquire_lock(deps, run, execution).await {
        Ok(()) => {}
        // A second alarm about the outage a run already handles (a Health event and a probe
        // of the same incident, a drill colliding with it): no page, no Fail state — the
        // execution ends saying which run handles it. An operator's own start is refused.
        Err(StepError::LockHeld { holder, .. })
            if run.trigger.source != crate::run::TriggerSource::Operator =>
        {
            info!(%holder, "already handled by the run holding the lock");
            return Ok(RunLedgerOutput {
                already_handled: Some(holder),
                ..RunLedgerOutput::default()
            });
        }
        Err(e) => return Err(e),
    }
    if let (Direction::Failback, Some(previous)) = (run.direction, &run.restore_from) {
        // The failover's fence watch must not keep fencing the site this failback restores.
        deps.ledger
            .put(
                &keys::fence_watch_stop(previous),
                &serde_json::json!({"at": Utc::now(), "by": run.run_id, "reason": "failback began"}),
            )
            .await?;
    }
    deps.ledger
        .put(
            &keys::run_record(&run.run_id),
            &serde_json::json!({"run": run, "started_at": Utc::now(), "status": "running"}),
        )
        .await?;
    Ok(RunLedgerOutput {
        preapproved: run.preapproved(),
        ..RunLedgerOutput::default()
    })
}

/// Writes the report as JSON, Markdown and HTML (a later write of the same keys keeps the
/// earlier in the ledger bucket's object versions).
async fn write_report(
    deps: &Deps,
    run: &RunContext,
    built: &crate::report::Built,
) -> Result<(), StepError> {
    deps.ledger
        .put(
            &keys::report(&run.run_id, ReportFormat::Json),
            &built.report,
        )
        .await?;
    deps.ledger
        .put_raw(
            &keys::report(&run.run_id, ReportFormat::Markdown),
            built.markdown.clone().into_bytes(),
            "text/markdown; charset=utf-8",
        )
        .await?;
    deps.ledger
        .put_raw(
            &keys::report(&run.run_id, ReportFormat::Html),
            crate::report::html::render_html(&built.report).into_bytes(),
            "text/html; charset=utf-8",
        )
        .await?;
    Ok(())
}

async fn finish(deps: &Deps, input: &RunLedgerInput) -> Result<RunLedgerOutput, StepError> {
    let run = &input.run;
    let built =
        crate::report::build::build(deps, run, &input.results, input.error.as_ref()).await?;
    write_report(deps, run, &built).await?;
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
                &keys::active_site(&run.plan.name),
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
            &keys::run_record(&run.run_id),
            &serde_json::json!({"run": run, "finished_at": Utc::now(), "status": outcome}),
        )
        .await?;
    release_lock(deps, run).await?;
    // Users hear how it ended from `notify`, which the `Lifeboat Run Finished` / `Run Failed`
    // event this step's output publishes reaches (see `events::milestone_of`).
    Ok(RunLedgerOutput {
        preapproved: run.preapproved(),
        outcome: Some(outcome),
        succeeded: outcome.is_success(),
        report_key: Some(keys::report(&run.run_id, ReportFormat::Json)),
        already_handled: None,
    })
}

/// Starts the fence watch of a run whose fence loop gave up (idempotent: the execution name is
/// the dedup). Refused before any write when the run has no fence record of its source — there
/// is nothing to watch, and a watch would fence a site this run never inventoried.
async fn start_fence_watch(deps: &Deps, run: &RunContext) -> Result<RunLedgerOutput, StepError> {
    let key = keys::fence_watch(&run.run_id);
    if deps.ledger.get::<FenceWatchRecord>(&key).await?.is_some() {
        return Ok(RunLedgerOutput::default());
    }
    let Some(machine) = &deps.config.fence_watch_state_machine_arn else {
        return Err(StepError::InvalidInput(
            "FENCE_WATCH_STATE_MACHINE_ARN is not set: the fence cannot outlive the run".into(),
        ));
    };
    let (source, _) = run.direction.roles();
    if deps
        .ledger
        .get::<crate::fence::FenceRecord>(&keys::fence(&run.run_id, source))
        .await?
        .is_none()
    {
        return Err(StepError::Refused(format!(
            "run {} has no fence record of its {source:?} site: there is no fence to watch",
            run.run_id
        )));
    }
    let name = fence_watch_name(&run.run_id);
    let watch = WatchSettings {
        generation: 0,
        max_sweeps: deps.config.fence_watch_max_sweeps,
        sweeps: 0,
        name: name.clone(),
    };
    let input = serde_json::json!({ "run": run, "watch": watch }).to_string();
    let arn = match deps
        .aws
        .sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(&name)
        .input(input)
        .send()
        .await
    {
        Ok(out) => out.execution_arn().to_string(),
        // Already started by a retried invocation: the execution name is the dedup.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_already_exists()) =>
        {
            format!(
                "{}:{name}",
                machine.replace(":stateMachine:", ":execution:")
            )
        }
        Err(e) => return Err(StepError::aws("states", &e)),
    };
    info!(execution = %arn, max_sweeps = watch.max_sweeps, "fence watch started");
    deps.ledger
        .put(&key, &FenceWatchRecord::started(arn))
        .await?;
    Ok(RunLedgerOutput::default())
}

/// The watch continued as a new execution: it is the current one now (the chain is kept).
async fn fence_watch_continued(
    deps: &Deps,
    input: &RunLedgerInput,
) -> Result<RunLedgerOutput, StepError> {
    let (Some(execution), Some(generation)) = (&input.execution, input.generation) else {
        return Err(StepError::InvalidInput(
            "fence_watch_continued needs `execution` and `generation`".into(),
        ));
    };
    let key = keys::fence_watch(&input.run.run_id);
    let retry = crate::retry::RetryPolicy::LEDGER_CONFLICT;
    for attempt in 1..=retry.max_attempts {
        let current = deps.ledger.get::<FenceWatchRecord>(&key).await?;
        let (mut record, etag) = match current {
            Some(v) => (v.value, Some(v.etag)),
            None => (FenceWatchRecord::started(execution.clone()), None),
        };
        record.continued(execution.clone(), generation);
        let written = match &etag {
            Some(etag) => deps.ledger.replace(&key, &record, etag).await?,
            None => deps.ledger.create(&key, &record).await?,
        };
        if written != Written::Conflict {
            info!(%execution, generation, "fence watch continued as a new execution");
            return Ok(RunLedgerOutput::default());
        }
        tokio::time::sleep(retry.backoff(attempt)).await;
    }
    Err(StepError::InvalidInput(format!(
        "the fence watch record {key} kept changing while the next generation was recorded"
    )))
}

async fn fence_watch_done(
    deps: &Deps,
    input: &RunLedgerInput,
) -> Result<RunLedgerOutput, StepError> {
    let run = &input.run;
    let key = keys::fence_watch(&run.run_id);
    let mut record = deps
        .ledger
        .get::<FenceWatchRecord>(&key)
        .await?
        .map(|v| v.value)
        .unwrap_or_else(|| FenceWatchRecord::started(input.execution.clone().unwrap_or_default()));
    let sweep = input.results.sweep.clone();
    if let Some(s) = &sweep {
        record.attempts = s.attempt;
    }
    match sweep {
        Some(s) if s.complete => record.confirmed_at = Some(Utc::now()),
        _ => {
            record.stopped = Some((
                Utc::now(),
                "a failback began before the fence was confirmed".into(),
            ))
        }
    }
    deps.ledger.put(&key, &record).await?;
    // The run's report said "not confirmed" and compared what it could: amend it now.
    if let Some(built) = crate::report::build::amend(deps, run).await? {
        write_report(deps, run, &built).await?;
    }
    Ok(RunLedgerOutput::default())
}

/// Takes the plan's lock (`If-None-Match: *`). A lock held by an execution that Step Functions
/// reports as ended (stopped, aborted, timed out, failed before its `finish`) is released with
/// an audit entry and taken; one held by a running execution refuses with `LockHeld`.
async fn acquire_lock(
    deps: &Deps,
    run: &RunContext,
    execution: Option<&str>,
) -> Result<(), StepError> {
    let key = keys::lock(&run.plan.name);
    let lock = Lock {
        run_id: run.run_id.0.clone(),
        acquired_at: Utc::now(),
        execution_arn: execution.map(str::to_string),
    };
    // Three tries: a holder may finish, or a stale lock be cleared, between our calls.
    for _ in 0..3 {
        if let Written::Ok(_) = deps.ledger.create(&key, &lock).await? {
            return Ok(());
        }
        let Some(holder) = deps.ledger.get::<Lock>(&key).await? else {
            continue; // released between our write and our read
        };
        if holder.value.run_id == run.run_id.0 {
            info!("lock already ours (retried begin)");
            return Ok(());
        }
        let status = holder_status(deps, &holder.value).await;
        if !lock_is_stale(&status) {
            return Err(StepError::LockHeld {
                plan: run.plan.name.clone(),
                holder: holder.value.run_id,
            });
        }
        // Compare-and-delete: only the lock we judged stale, not one taken since.
        if let Written::Ok(_) = deps.ledger.delete_if_match(&key, &holder.etag).await? {
            let at = Utc::now();
            warn!(holder = %holder.value.run_id, ?status, "released a stale lock");
            deps.ledger
                .put(
                    &keys::lock_audit(&run.plan.name, at, &holder.value.run_id),
                    &serde_json::json!({
                        "released_at": at,
                        "released_by": run.run_id,
                        "holder": holder.value,
                        "holder_status": format!("{status:?}"),
                        "reason": "the holder's execution is no longer running",
                    }),
                )
                .await?;
        }
    }
    Err(StepError::LockHeld {
        plan: run.plan.name.clone(),
        holder: "unknown (the lock kept changing)".into(),
    })
}

/// What an operator's unlock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocked {
    /// No lock was held.
    NotLocked,
    /// Released (the holder had ended, or `--force` with a reason); audited.
    Released {
        /// The run that held it.
        holder: String,
        /// What Step Functions said of the holder.
        holder_status: String,
    },
}

/// Why an unlock was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    /// The holder still runs (or cannot be checked) and no force was given.
    #[error("run {holder} holds the lock of plan {plan} and {status}; it releases the lock when it ends (`lifeboat unlock --force --reason ...` only if you know it is stuck)")]
    HolderRunning {
        plan: String,
        holder: String,
        status: String,
    },
    /// `--force` without a reason.
    #[error("--force needs --reason (it is recorded in the audit)")]
    NoReason,
    /// Ledger failure.
    #[error(transparent)]
    Step(#[from] StepError),
}

/// Releases a plan's lock for an operator: only when Step Functions says its holder ended (or
/// never existed) — or with `force` and a reason — conditionally on the lock read, audited in
/// `audit/locks/<plan>/` with who and why.
pub async fn unlock(
    deps: &Deps,
    plan: &str,
    who: &str,
    force: bool,
    reason: Option<&str>,
) -> Result<Unlocked, UnlockError> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if force && reason.is_none() {
        return Err(UnlockError::NoReason);
    }
    let key = keys::lock(plan);
    let Some(holder) = deps
        .ledger
        .get::<Lock>(&key)
        .await
        .map_err(StepError::from)?
    else {
        return Ok(Unlocked::NotLocked);
    };
    let status = holder_status(deps, &holder.value).await;
    if !lock_is_stale(&status) && !force {
        return Err(UnlockError::HolderRunning {
            plan: plan.into(),
            holder: holder.value.run_id,
            status: match &status {
                HolderStatus::Running => "its execution is running".into(),
                HolderStatus::Unverifiable(why) => {
                    format!("its execution cannot be checked ({why})")
                }
                other => format!("{other:?}"),
            },
        });
    }
    if let Written::Conflict = deps
        .ledger
        .delete_if_match(&key, &holder.etag)
        .await
        .map_err(StepError::from)?
    {
        return Err(UnlockError::Step(StepError::InvalidInput(
            "the lock changed while it was being released; look again".into(),
        )));
    }
    let at = Utc::now();
    deps.ledger
        .put(
            &keys::lock_audit(plan, at, &holder.value.run_id),
            &serde_json::json!({
                "released_at": at,
                "released_by": crate::identity::bounded(who, 256),
                "holder": holder.value,
                "holder_status": format!("{status:?}"),
                "forced": force,
                "reason": reason.map(|r| crate::identity::bounded(r, 500))
                    .unwrap_or_else(|| "the holder's execution is no longer running".into()),
            }),
        )
        .await
        .map_err(StepError::from)?;
    Ok(Unlocked::Released {
        holder: holder.value.run_id,
        holder_status: format!("{status:?}"),
    })
}

/// Asks Step Functions about a lock holder's execution.
pub async fn holder_status(deps: &Deps, lock: &Lock) -> HolderStatus {
    use aws_sdk_sfn::types::ExecutionStatus;
    let Some(arn) = &lock.execution_arn else {
        return HolderStatus::Unverifiable("the lock names no execution".into());
    };
    match deps
        .aws
        .sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
    {
        Ok(out) => match out.status() {
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive => HolderStatus::Running,
            other => HolderStatus::Ended(other.as_str().to_string()),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_does_not_exist()) =>
        {
            HolderStatus::Unknown
        }
        Err(e) => HolderStatus::Unverifiable(crate::aws::sdk_error_message(&e)),
    }
}

/// Deletes the lock if this run holds it — conditionally on the ETag it was read at, so a
/// lock taken by another run in between is never removed.
pub async fn release_lock(deps: &Deps, run: &RunContext) -> Result<(), StepError> {
    let key = keys::lock(&run.plan.name);
    let holder = deps.ledger.get::<Lock>(&key).await?;
    let released = match &holder {
        Some(l) if l.value.run_id == run.run_id.0 => {
            Some(deps.ledger.delete_if_match(&key, &l.etag).await?)
        }
        _ => None,
    };
    match (holder, released) {
        (_, Some(Written::Conflict)) => warn!("lock changed while releasing it; left in place"),
        (_, Some(Written::Ok(_))) | (None, None) => {}
        (Some(l), None) => {
            warn!(holder = %l.value.run_id, "lock held by another run; left in place")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ended_or_unknown_holder_makes_a_lock_stale() {
        let table = [
            (HolderStatus::Running, false),
            (HolderStatus::Ended("ABORTED".into()), true),
            (HolderStatus::Ended("TIMED_OUT".into()), true),
            (HolderStatus::Ended("FAILED".into()), true),
            (HolderStatus::Ended("SUCCEEDED".into()), true),
            (HolderStatus::Unknown, true),
            (HolderStatus::Unverifiable("AccessDenied".into()), false),
            (
                HolderStatus::Unverifiable("the lock names no execution".into()),
                false,
            ),
        ];
        for (status, stale) in table {
            assert_eq!(lock_is_stale(&status), stale, "{status:?}");
        }
    }
}
