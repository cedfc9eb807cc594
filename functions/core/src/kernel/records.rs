//! Run records: every step of a run leaves a [`StepRecord`] in the ledger before it returns,
//! succeeded or not — the audit trail, and the report's timeline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Deps, StepError};

/// One step's execution, written by [`recorded`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step name (the Lambda's).
    pub step: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub ended_at: DateTime<Utc>,
    /// Whether it returned without error.
    pub ok: bool,
    /// Error name and message, or a short summary of the output.
    pub summary: String,
}

/// The timeline name of `validate-workspace` run through the clients after the switch.
pub const VERIFY_CLIENTS: &str = "verify-clients";

/// Runs a step and writes its [`StepRecord`] to the ledger before returning,
/// whether it succeeded or not — the ledger is the audit trail and the report's timeline.
pub async fn recorded<T, F>(
    deps: &Deps,
    run: &crate::run::RunContext,
    step: &str,
    work: F,
) -> Result<T, StepError>
where
    T: serde::Serialize,
    F: std::future::Future<Output = Result<T, StepError>>,
{
    let started_at = chrono::Utc::now();
    let result = work.await;
    let ended_at = chrono::Utc::now();
    let summary = match &result {
        Ok(v) => serde_json::to_string(v)
            .map(|s| s.chars().take(300).collect())
            .unwrap_or_default(),
        Err(e) => format!("{}: {e}", e.name()),
    };
    let record = StepRecord {
        step: step.to_string(),
        started_at,
        ended_at,
        ok: result.is_ok(),
        summary,
    };
    let key = crate::ledger::keys::step_record(&run.run_id, started_at, step);
    if let Err(e) = deps.ledger.put(&key, &record).await {
        tracing::error!(error = %e, "could not record step outcome");
        if result.is_ok() {
            return Err(e.into());
        }
    }
    result
}
