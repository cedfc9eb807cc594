//! `activate-schedules`: the seed's failover step 9 — unpause job schedules at the target, but
//! only once the ledger shows the source fenced (or an operator overrides with a recorded
//! reason): never both sites active. Exactly what was active at the source is activated, then
//! the plan's one-time jobs run (seed step 8), behind the same gate.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};

use super::{
    shutdown_sweep::{fence_key, FenceRecord, FenceStatus},
    Deps, StepError,
};
use crate::{
    databricks::jobs::{pause_field, PauseStatus},
    run::RunContext,
};

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct ActivationInput {
    /// The run (its `override_reason` opens the gate).
    pub run: RunContext,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "gate", content = "reason")]
pub enum Gate {
    /// Activate.
    Open(String),
    /// Not yet: the fence is still working.
    Wait(String),
    /// Not without an operator: the fence gave up.
    Blocked(String),
}

/// Pure: may the target's schedules be activated?
pub fn may_activate(fence: Option<FenceStatus>, override_reason: Option<&str>) -> Gate {
    if let Some(reason) = override_reason.filter(|r| !r.trim().is_empty()) {
        return Gate::Open(format!("operator override: {reason}"));
    }
    match fence {
        Some(FenceStatus::Confirmed) => Gate::Open("source confirmed fenced".into()),
        Some(FenceStatus::GaveUp) => Gate::Blocked(
            "the source's fence was not confirmed; an operator override is required".into(),
        ),
        Some(FenceStatus::InProgress) => Gate::Wait("the source's fence is in progress".into()),
        None => Gate::Wait("no fence record yet".into()),
    }
}

/// Output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationOutput {
    /// Schedules were activated.
    pub activated: bool,
    /// The gate said wait (the state machine loops).
    pub waiting: bool,
    /// The gate's verdict.
    pub gate: Gate,
    /// Activations unpaused.
    pub unpaused: usize,
    /// Jobs active at the source that the target lacks.
    pub missing: Vec<String>,
    /// One line for the report.
    pub summary: String,
    /// One-time runs started at the target (job name → run id), idempotently.
    #[serde(default)]
    pub runs: std::collections::BTreeMap<String, u64>,
}

/// Applies the gate and, when open, unpauses what was active at the source.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(deps: &Deps, input: ActivationInput) -> Result<ActivationOutput, StepError> {
    let run = &input.run;
    let (source_role, target_role) = run.direction.roles();
    let fence = deps
        .ledger
        .get::<FenceRecord>(&fence_key(run, source_role))
        .await?
        .map(|v| v.value);
    let gate = may_activate(
        fence.as_ref().map(|f| f.status),
        run.override_reason.as_deref(),
    );
    let reason = match &gate {
        Gate::Open(r) => r.clone(),
        Gate::Wait(r) | Gate::Blocked(r) => {
            return Ok(ActivationOutput {
                activated: false,
                waiting: matches!(gate, Gate::Wait(_)),
                summary: format!("Schedules not activated: {r}."),
                gate,
                unpaused: 0,
                missing: Vec::new(),
                runs: Default::default(),
            })
        }
    };
    // A failback restores what was active at the primary before the failover (that run's
    // fence record of the primary); otherwise what was active at the source just fenced.
    let restore = match &run.restore_from {
        Some(previous) => deps
            .ledger
            .get::<FenceRecord>(&super::shutdown_sweep::fence_key_of(previous, target_role))
            .await?
            .map(|v| v.value.restore_set())
            .ok_or_else(|| {
                StepError::Refused(format!(
                    "run {previous} has no fence record of the {target_role:?} site"
                ))
            })?,
        None => fence.map(|f| f.restore_set()).unwrap_or_default(),
    };
    let client = deps.workspaces.client(run.plan.site(target_role)).await?;
    let jobs = client.all_jobs().await?;
    let mut unpaused = 0;
    let mut missing = Vec::new();
    for (name, activation) in &restore.activations {
        let Some(job) = jobs.iter().find(|j| &j.settings.name == name) else {
            missing.push(name.clone());
            continue;
        };
        if job.settings.pause_status(*activation) != Some(PauseStatus::Paused) {
            continue;
        }
        if let Some(settings) = pause_field(&job.settings, *activation, PauseStatus::Unpaused) {
            client.update_job(job.job_id.clone(), settings).await?;
            unpaused += 1;
        }
    }
    let mut runs = std::collections::BTreeMap::new();
    for name in &run.plan.startup.run_once {
        let Some(job) = jobs.iter().find(|j| &j.settings.name == name) else {
            missing.push(name.clone());
            continue;
        };
        let token = super::dr_startup::idempotency_token(run, name);
        let started = client.run_now(job.job_id.clone(), &token, None).await?;
        runs.insert(name.clone(), started.run_id.0);
    }
    deps.ledger
        .put(
            &format!("{}/activation.json", run.prefix()),
            &serde_json::json!({"at": Utc::now(), "gate": gate, "unpaused": unpaused, "missing": missing, "activations": restore.activations, "runs": runs}),
        )
        .await?;
    info!(unpaused, missing = missing.len(), "schedules activated");
    Ok(ActivationOutput {
        activated: true,
        waiting: false,
        summary: format!(
            "{unpaused} schedules/triggers activated at the target ({reason}); {} missing at the target.",
            missing.len()
        ),
        gate,
        unpaused,
        missing,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_needs_confirmation_or_override() {
        assert!(matches!(
            may_activate(Some(FenceStatus::Confirmed), None),
            Gate::Open(_)
        ));
        assert!(matches!(
            may_activate(Some(FenceStatus::InProgress), None),
            Gate::Wait(_)
        ));
        assert!(matches!(may_activate(None, None), Gate::Wait(_)));
        assert!(matches!(
            may_activate(Some(FenceStatus::GaveUp), None),
            Gate::Blocked(_)
        ));
        assert!(matches!(
            may_activate(Some(FenceStatus::GaveUp), Some("primary region is gone")),
            Gate::Open(_)
        ));
        assert!(
            matches!(
                may_activate(Some(FenceStatus::GaveUp), Some("  ")),
                Gate::Blocked(_)
            ),
            "a blank reason is no reason"
        );
    }
}
