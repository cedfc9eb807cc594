//! `replication-check`: the seed's failover step 3 — how fresh is the data at the target?
//! The measurement is [`crate::replication`] (the readiness evaluation measures the same way).

use serde::Deserialize;
use tracing::instrument;

use crate::kernel::{Deps, StepError};
use crate::replication::{measure, ReplicationOutput};
use crate::run::RunContext;

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct ReplicationInput {
    /// The run.
    pub run: RunContext,
}

/// Measures RPO for the run.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(deps: &Deps, input: ReplicationInput) -> Result<ReplicationOutput, StepError> {
    measure(deps, &input.run).await
}
