//! `health-ingest`: the detection step. An AWS Health event (EventBridge), a probe tick, a
//! Health API poll tick or a scheduled drill comes in; the incident domain ([`crate::incident`])
//! classifies, deduplicates and starts, the deep probe ([`crate::probe`]) judges the primary.

use tracing::instrument;

use crate::{
    incident::{ingest, poll_health_api, start_drill, HealthEvent, IngestOutput, ScheduledDrill},
    kernel::{Deps, StepError},
    run::TriggerSource,
};

/// Parses, classifies, deduplicates and starts; or starts a scheduled drill.
#[instrument(skip_all)]
pub async fn handle(deps: &Deps, event: serde_json::Value) -> Result<IngestOutput, StepError> {
    if event.get("lifeboat_probe").is_some() {
        let plan = crate::kernel::load_plan(deps).await?;
        return crate::probe::handle(deps, plan).await;
    }
    if let Some(drill) = event.get("lifeboat_drill") {
        let drill: ScheduledDrill = serde_json::from_value(drill.clone())
            .map_err(|e| StepError::InvalidInput(format!("field `lifeboat_drill`: {e}")))?;
        let plan = crate::kernel::load_plan(deps).await?;
        return start_drill(
            &deps.aws.sfn,
            &deps.config,
            &plan,
            drill,
            TriggerSource::Schedule,
        )
        .await;
    }
    if event.get("lifeboat_health_poll").is_some() {
        let plan = crate::kernel::load_plan(deps).await?;
        return poll_health_api(deps, &plan).await;
    }
    let event: HealthEvent = serde_json::from_value(event)
        .map_err(|e| StepError::InvalidInput(format!("not an AWS Health event: {e}")))?;
    let plan = crate::kernel::load_plan(deps).await?;
    ingest(deps, &plan, &event).await
}
